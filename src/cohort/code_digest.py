"""Which code a job runs, read from the code: the modules of ``src/`` that a CLI imports,
transitively, lazy imports (inside functions) included, and a digest of their text.

A rule's ``code`` param is this digest of its CLI's closure, so Snakemake (params are a
rerun trigger; imported code is not) reruns a job exactly when code it can execute
changed: an edit to a module only the models import reruns the training jobs and
nothing upstream of them; a module nothing imports reruns nothing. Parsed once per
process (the DAG of 1,000 subjects asks for a handful of closures).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path


def _module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` → ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages too."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The names a module's code can import (module-level and lazy)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # submodules, if they are
    return found


@functools.cache
def import_graph(src: str) -> tuple[dict[str, Path], dict[str, frozenset[str]]]:
    """(module → file, module → the modules of ``src`` it imports) for every ``*.py``."""
    root = Path(src)
    files = {}
    for path in sorted(root.rglob("*.py")):
        if "egg-info" in str(path) or "__pycache__" in path.parts:
            continue
        files[_module_name(root, path)] = path
    edges = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        named = _imports(tree, module, path.name == "__init__.py")
        edges[module] = frozenset(
            parent for name in named for parent in _with_parents(name) if parent in files
        )
    return files, edges


def closure(src: str | Path, entries) -> list[Path]:
    """The files of every module the ``entries`` (module names) can run, sorted."""
    files, edges = import_graph(str(Path(src).resolve()))
    todo = [p for e in entries for p in _with_parents(e) if p in files]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges[module] - seen)
    return sorted(files[m] for m in seen)


def code_digest(src: str | Path, *packages: str) -> str:
    """A digest of the code ``python -m <package>`` runs, for each package given."""
    root = Path(src).resolve()
    missing = [p for p in packages if not (root / p / "__main__.py").is_file()]
    if missing:
        raise ValueError(f"no CLI (__main__.py) under {root} for {missing}")
    digest = hashlib.sha256()
    for path in closure(root, [f"{p}.__main__" for p in packages]):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
