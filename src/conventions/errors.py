"""The project's own error type for bad input.

Every reader raises :class:`InputError` naming the file and what is wrong with it;
the stage CLIs add the subject, so a failed job's log says which subject, which file
and what to fix.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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


# What a CLI reports as bad input rather than a crash: the project's own InputError, a
# file the system cannot open or read (OSError), and a value the libraries refuse
# (ValueError: a table without its columns, folds that cannot be made).
INPUT_ERRORS = (InputError, OSError, ValueError)


def run_cli(command: Callable[[], int | None], subject: str | None = None) -> int:
    """Run a CLI's command; its exit status (0 when it returns None). Bad input becomes
    one line on stderr, ``error: subject X: <file>: <what>``, and exit status 2, the
    same in every stage's CLI: the job's log says which subject, which file, what to
    fix, and nothing it had already written is touched."""
    try:
        return command() or 0
    except INPUT_ERRORS as e:
        if isinstance(e, InputError):
            named = e if e.subject or not subject else e.for_subject(subject)
        elif isinstance(e, OSError) and e.filename is not None:
            named = InputError(e.filename, e.strerror or str(e), subject)
        else:
            named = InputError(None, str(e), subject)
        print(f"error: {named}", file=sys.stderr)
        return 2
