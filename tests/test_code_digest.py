"""A job's code digest follows the code its CLI can run (cohort.code_digest): the
closure of src/'s imports from ``<package>.__main__``, lazy imports included."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cohort.code_digest import closure, code_digest, import_graph

SRC = Path(__file__).resolve().parents[1] / "src"
CLIS = sorted(p.parent.name for p in SRC.glob("*/__main__.py"))


def _names(paths, root=SRC):
    return {p.relative_to(root).as_posix() for p in paths}


def test_the_models_cli_runs_the_floor_it_imports_and_no_other_stage():
    files = _names(closure(SRC, ["models.__main__"]))
    assert {"models/losses.py", "conventions/similarity.py", "conventions/pairs.py"} <= files
    assert not {f for f in files if f.split("/")[0] in {"registration", "dataset", "drr"}}
    registration = _names(closure(SRC, ["registration.__main__"]))
    assert "conventions/similarity.py" in registration
    assert not {f for f in registration if f.startswith("models/")}


@pytest.fixture
def src_copy(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def _digests(src):
    import_graph.cache_clear()  # the graph is cached per folder: read the edit
    return {cli: code_digest(src, cli) for cli in CLIS}


def test_an_edit_reruns_exactly_the_clis_that_can_run_it(src_copy):
    before = _digests(src_copy)
    with open(src_copy / "models" / "losses.py", "a") as f:
        f.write("\n# a change to a loss helper\n")
    after = _digests(src_copy)
    assert {c for c in CLIS if after[c] != before[c]} == {"models"}
    # The shared GC: registration and the models, nothing else.
    with open(src_copy / "conventions" / "similarity.py", "a") as f:
        f.write("\n# a change to gradient correlation\n")
    shared = _digests(src_copy)
    changed = {c for c in CLIS if shared[c] != after[c]}
    assert {"models", "registration"} <= changed
    assert not changed & {"calibration", "segmentation", "cohort", "evaluation"}
    # A module nothing imports, added to the floor, reruns nothing.
    (src_copy / "conventions" / "unused.py").write_text("X = 1\n")
    assert _digests(src_copy) == shared


def test_lazy_and_relative_imports_are_followed(tmp_path):
    src = tmp_path / "src"
    for package in ("alpha", "beta", "gamma"):
        (src / package).mkdir(parents=True)
        (src / package / "__init__.py").write_text("")
    (src / "alpha" / "__main__.py").write_text("def main():\n    from beta import helper\n")
    (src / "beta" / "helper.py").write_text("from .deep import x\n")
    (src / "beta" / "deep.py").write_text("x = 1\n")
    (src / "gamma" / "__main__.py").write_text("")
    import_graph.cache_clear()
    assert _names(closure(src, ["alpha.__main__"]), src) == {
        "alpha/__init__.py", "alpha/__main__.py", "beta/__init__.py", "beta/helper.py",
        "beta/deep.py",
    }  # fmt: skip
    with pytest.raises(ValueError, match="no CLI"):
        code_digest(src, "beta")
