# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Does the workflow repeat itself exactly? Two runs from nothing, in two copies of the
workflow with the same config, and every file they wrote compared by SHA-256.

    python benchmarks/determinism.py [--configfile tests/configs/synthetic_tiny.yaml]
                                     [--cores 2] [--keep DIR]

Without --configfile, the default config (the README's demo, ~20 min per run on two
cores). Prints, per kind of product (the dataset: CT stages, poses, pairs and tables;
the models; the evaluation; QC figures), how many files there are and how many differ,
then each differing file. Logs and Snakemake's own records are left out: they hold times.
Exit status 1 when a dataset file or a metric differs (docs/robustness.md, Determinism).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

REPO = HERE.parent
WORKFLOW_PARTS = ("Snakefile", "rules", "schemas", "src", "envs", "report", "profiles",
                  "config.yaml")  # fmt: skip


def kind_of(rel: str) -> str:
    """Which part of the data flow a file under results/ belongs to."""
    parts = rel.split("/")
    if rel.endswith((".png", ".html")) or "qc" in parts or "audit" in parts:
        return "QC figures and audit"
    if parts[1] in ("subjects", "synthetic"):
        return "dataset"
    if parts[1] == "cohort" and (
        parts[2] in ("uncalibrated_ct", "folds.json")
        or parts[2].startswith(("fingerprint", "dataset_"))
    ):
        return "dataset"
    if parts[1] == "models":
        return "models"
    return "evaluation"


def run(workflow: Path, configfile: Path | None, cores: int) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
    if configfile:
        args += ["--configfile", str(configfile)]
    t0 = time.perf_counter()
    subprocess.run(args, cwd=workflow, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def digests(workflow: Path) -> dict[str, str]:
    root = workflow / "results"
    return {
        str(p.relative_to(workflow)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configfile", type=Path, default=None)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--keep", type=Path, default=None, help="run here and keep both copies")
    a = ap.parse_args()
    root = a.keep or Path(tempfile.mkdtemp(prefix="determinism-"))
    configfile = a.configfile.resolve() if a.configfile else None
    runs = []
    for name in ("first", "second"):
        wf = root / name
        wf.mkdir(parents=True, exist_ok=True)
        for part in WORKFLOW_PARTS:
            src = REPO / part
            if src.is_dir():
                skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
                shutil.copytree(src, wf / part, dirs_exist_ok=True, ignore=skip)
            else:
                shutil.copy(src, wf / part)
        seconds = run(wf, configfile, a.cores)
        print(f"{name} run: {seconds / 60:.1f} min", flush=True)
        runs.append(digests(wf))
    first, second = runs
    names = sorted(set(first) | set(second))
    by_kind: dict[str, list[str]] = {}
    differ: dict[str, list[str]] = {}
    for n in names:
        k = kind_of(n)
        by_kind.setdefault(k, []).append(n)
        if first.get(n) != second.get(n):
            differ.setdefault(k, []).append(n)
    print(f"\n{'products':24s} {'files':>6s} {'differ':>6s}")
    for k in sorted(by_kind):
        print(f"{k:24s} {len(by_kind[k]):6d} {len(differ.get(k, [])):6d}")
    for k in sorted(differ):
        print(f"\n{k}, differing:")
        for n in differ[k]:
            print(f"  {n}")
    if not a.keep:
        shutil.rmtree(root)
    return 1 if differ.get("dataset") or differ.get("evaluation") else 0


if __name__ == "__main__":
    sys.exit(main())
