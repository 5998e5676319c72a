"""Stages meet through files and the floor (``conventions``, and ``drr``, the projector
every stage may call), never by importing each other: the imports of ``src/``, lazy
ones included, read from the code (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FLOOR = {"conventions", "drr"}
# The exceptions, each with its reason. A new arrow fails the test; so does one listed
# here that the code no longer has (the list shrinks with the code).
ALLOWED = {
    # The audit layer reads what each stage made, with the stage's own readers.
    ("qc", "registration"): "the overlays rebuild the bodies registration projected",
}


def packages() -> list[str]:
    return sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())


def stage_imports() -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) → the files that import across."""
    names = set(packages())
    arrows: dict[tuple[str, str], set[str]] = {}
    for package in names:
        for path in (SRC / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in names and top != package:
                        arrows.setdefault((package, top), set()).add(str(path.relative_to(SRC)))
    return arrows


def test_stages_import_only_the_floor_and_the_listed_exceptions():
    arrows = stage_imports()
    across = {a: files for a, files in arrows.items() if a[1] not in FLOOR}
    new = {a: sorted(files) for a, files in across.items() if a not in ALLOWED}
    assert not new, f"stage-to-stage imports (move the shared part to conventions): {new}"
    gone = set(ALLOWED) - set(across)
    assert not gone, f"listed exceptions the code no longer has (remove them): {gone}"


def test_the_floor_imports_no_stage():
    arrows = stage_imports()
    assert not [a for a in arrows if a[0] == "conventions"], arrows
    assert not [a for a in arrows if a[0] == "drr" and a[1] != "conventions"], arrows


def test_the_reader_sees_lazy_imports(tmp_path, monkeypatch):
    """An import inside a function is an arrow too (the test would be blind without)."""
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    (tmp_path / "alpha" / "__init__.py").write_text("")
    (tmp_path / "beta" / "__init__.py").write_text("")
    (tmp_path / "alpha" / "late.py").write_text("def f():\n    from beta import x\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path)
    assert stage_imports() == {("alpha", "beta"): {"alpha/late.py"}}
