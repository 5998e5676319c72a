"""Do the models still learn? A guard to run before the next long study (issue 21).

The workflow, whole, on a reduced synthetic cohort (``configs/learning.yaml``: 40
subjects of another seed than the study's, the phantom's true poses in registration's
place so that the guard measures the models and not the search, the study's networks
and schedule at fewer epochs); then the cross-validated PCC of every method against
DXA- and QCT-BMD beside the null model's (the training-fold mean) and the ground-truth
PF-DRR's, and the paper's Fig. 1 correlations. Under 30 minutes on two cores.

    python benchmarks/learning.py [--workdir DIR] [--cores N] [--min-pcc 0.5]

The workflow runs in a copy (``--workdir``, default a fresh temporary folder; give
one to keep its results or to resume). The exit status is 1 when the decomposition's
PCC with DXA-BMD is below ``--min-pcc``: a change that breaks learning shows before the
study is run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PARTS = ("Snakefile", "config.yaml", "configs", "rules", "schemas", "src", "envs", "profiles",
         "report")  # fmt: skip
TARGETS = ("results/cohort/metrics.tsv", "results/cohort/pf_roi_intensity_pcc.tsv")


def copy_workflow(workdir: Path) -> None:
    """The workflow's files into ``workdir`` (results already there are kept)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        src, dst = REPO / part, workdir / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True,
                            ignore=shutil.ignore_patterns("*.egg-info"))  # fmt: skip
        else:
            shutil.copy(src, dst)


def report(workdir: Path) -> float:
    """Print the PCCs; returns the decomposition's PCC with DXA-BMD (main experiment)."""
    metrics = pd.read_csv(workdir / TARGETS[0], sep="\t")
    table = metrics.pivot_table(index=["experiment", "method"], columns="target",
                                values="pcc", sort=False)  # fmt: skip
    print("cross-validated PCC of every method (test folds pooled):")
    print(table.round(3).to_string())
    fig1 = pd.read_csv(workdir / TARGETS[1], sep="\t")
    print("\nFig. 1: PCC of the PF region's mean intensity with each target:")
    print(fig1.pivot(index="image", columns="target", values="pcc").round(3).to_string())
    main = metrics[(metrics["experiment"] == "main") & (metrics["target"] == "dxa_bmd_g_cm2")]
    return float(main.set_index("method").loc["decomposition", "pcc"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=None, help="where the workflow runs (kept)")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--config", default="configs/learning.yaml")
    ap.add_argument(
        "--min-pcc",
        type=float,
        default=0.5,
        help="the decomposition's PCC with DXA-BMD below which learning is broken",
    )
    a = ap.parse_args(argv)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="learning-")).resolve()
    copy_workflow(workdir)
    print(f"workflow in {workdir}, {a.config}", flush=True)
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "--cores", str(a.cores), *TARGETS,
               "--configfile", a.config]  # fmt: skip
    # The jobs call `python`: make it this interpreter, activated or not.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(workdir / "learning.log", "w", encoding="utf-8") as log:
        run = subprocess.run(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    minutes = (time.perf_counter() - t0) / 60
    if run.returncode:
        print(f"the workflow failed after {minutes:.1f} min: {workdir / 'learning.log'}")
        return 2
    print(f"workflow: {minutes:.1f} min on {a.cores} cores\n")
    pcc = report(workdir)
    verdict = "learns" if pcc >= a.min_pcc else "does NOT learn"
    print(f"\ndecomposition vs DXA-BMD: PCC {pcc:.3f} (guard {a.min_pcc}): {verdict}")
    return 0 if pcc >= a.min_pcc else 1


if __name__ == "__main__":
    sys.exit(main())
