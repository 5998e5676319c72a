"""A job pays only for the imports it uses (issue 20, target 2): the CLIs' table-only
commands and their argument parsing do not load torch, timm, matplotlib or the
statistics libraries. Each check runs a command in a fresh interpreter and reads which
modules it loaded (timings belong in benchmarks/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "timm", "torchvision", "matplotlib", "statsmodels", "scipy.stats", "skimage")


def loaded_heavy_modules(package: str, argv: list[str], modules=HEAVY) -> list[str]:
    """Run ``python -m <package> <argv>`` in a fresh interpreter; which of ``modules``
    it loaded (its exit status must be 0)."""
    code = (
        "import importlib, json, sys\n"
        f"status = importlib.import_module('{package}.__main__').main({argv!r})\n"
        f"print(json.dumps([status, [m for m in {tuple(modules)!r} if m in sys.modules]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    status, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 0
    return heavy


def test_models_gather_loads_no_torch(tmp_path):
    paths = []
    for fold in range(2):
        path = tmp_path / f"fold{fold}.tsv"
        pd.DataFrame({"subject_id": [f"S{fold}"], "image": ["standing"], "method": ["m"],
                      "target": ["t"], "prediction": [1.0], "truth": [1.1]}).to_csv(
            path, sep="\t", index=False)  # fmt: skip
        paths.append(str(path))
    out = tmp_path / "all.tsv"
    heavy = loaded_heavy_modules("models", ["gather", "--predictions", *paths, "--out", str(out)])
    assert heavy == []
    assert list(pd.read_csv(out, sep="\t")["subject_id"]) == ["S0", "S1"]


def test_evaluation_compress_loads_no_figures_or_statistics(tmp_path):
    pair = tmp_path / "pair.npz"
    np.savez(pair, xray=np.random.default_rng(0).random((16, 8), dtype=np.float32))
    table = tmp_path / "dataset_B.tsv"
    pd.DataFrame({"subject_id": ["S1"], "image": ["standing"], "pair": [str(pair)]}).to_csv(
        table, sep="\t", index=False
    )
    index = tmp_path / "index.tsv"
    argv = ["compress", "--table", str(table), "--condition", "jpeg90",
            "--out-dir", str(tmp_path / "out"), "--out-index", str(index)]  # fmt: skip
    assert loaded_heavy_modules("evaluation", argv) == []
    assert pd.read_csv(index, sep="\t")["bytes"].iloc[0] > 0


def test_a_training_command_does_load_torch():
    """The check can fail: the parser alone is light, a training command is not."""
    code = "import models.__main__, models.train, sys; print('torch' in sys.modules)"
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip() == "True", done.stderr


def test_per_file_commands_import_no_cohort_level_libraries():
    """The jobs run once per CT or radiograph: importing their CLI and the modules their
    command uses loads neither pandas (the cohort's tables) nor numba (the projector)
    where the command does not use it."""
    cases = {
        # module list → modules that must stay out
        "cohort.__main__, cohort.ingest, cohort.inventory": ("pandas",),
        "anatomy.__main__, anatomy.landmarks, anatomy.implants": ("numba", "pandas"),
        "dataset.__main__, dataset.project": ("pandas",),
        "qc.__main__": ("matplotlib", "pandas", "numba"),
    }
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    for modules, absent in cases.items():
        code = f"import sys, {modules}; print([m for m in {absent!r} if m in sys.modules])"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]", (modules, done.stdout)


def test_a_decomposition_training_loads_no_scipy_ndimage(tmp_path):
    """skimage's resize (the baseline's ROI) brings scipy.ndimage, 0.3 s: stages one to
    three's jobs do not use it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_pairs import write_tiny_pairs

    table = write_tiny_pairs(tmp_path / "pairs", 4, shape=(64, 32))
    folds = tmp_path / "folds.json"
    subjects = [f"S{i:03d}" for i in range(4)]
    folds.write_text(json.dumps({"folds": [{"train": subjects[:3], "test": subjects[3:]}]}))
    config = {"epochs": 1, "width": 8, "adversarial": False, "augment": False}
    argv = ["train", "--stage", "2", "--table", str(table), "--folds", str(folds), "--fold", "0",
            "--config", json.dumps(config), "--out-dir", str(tmp_path / "run"),
            "--out-history", str(tmp_path / "history.json"), "--quiet"]  # fmt: skip
    loaded = loaded_heavy_modules("models", argv, modules=("torch", "scipy.ndimage"))
    assert loaded == ["torch"]  # it trained, without scipy.ndimage
    assert (tmp_path / "run" / "final.pt").is_file()
