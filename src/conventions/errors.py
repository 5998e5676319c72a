"""The project's own error type for bad input.

Every reader raises :class:`InputError` naming the file and what is wrong with it;
the stage CLIs add the subject, so a failed job's log says which subject, which file
and what to fix.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Input that cannot be used, with the file it came from and the reason."""

    def __init__(self, path: str | Path | None, problem: str, subject: str | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.subject = subject
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.subject:
            parts.append(f"subject {self.subject}")
        if self.path:
            parts.append(self.path)
        parts.append(self.problem)
        return ": ".join(parts)

    def for_subject(self, subject: str) -> InputError:
        """The same error, now naming the subject it belongs to."""
        return InputError(self.path, self.problem, subject=subject)
