# ruff: noqa: E402  (imports follow the sys.path fix below)
"""How long Snakemake takes to build the workflow's DAG for a large cohort, and with how
much memory: `snakemake -n` on synthetic manifests of N subjects with four radiographs
each (the files exist but are empty: nothing is read, only the DAG is built).

    python benchmarks/dag_scale.py [--subjects 100 1000 5000] [--studies-off] [--slurm]
                                   [--keep DIR]

Per N: wall seconds of `snakemake -n --quiet rules` (process start included), its peak
resident memory, the jobs in the DAG, and seconds per subject; the ratio of the largest
N's seconds per subject to the smallest's says whether building grows faster than
linearly (an input function that scans every subject per job makes it quadratic).
Target (issue 10): 1,000 subjects in under 30 s. --studies-off switches the robustness
studies off (config `evaluation`), as a cohort that only wants its models would; --slurm
builds it as `--profile profiles/slurm` does, with the profile's groups of cheap steps.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import tempfile
import time

REPO = HERE.parent
WORKFLOW_PARTS = ("Snakefile", "rules", "schemas", "src", "envs", "report", "profiles",
                  "config.yaml")  # fmt: skip
POSES = ("standing", "supine", "abduction", "adduction")


STUDIES_OFF = """evaluation:
  compression: []
  limited_poses: []
  uncalibrated_ct: {enabled: false}
  without_hierarchy: false
"""


def write_cohort(root: Path, n: int, studies_off: bool = False) -> Path:
    """subjects.tsv and radiographs.tsv of ``n`` subjects (empty CT and radiograph files
    with a geometry JSON each), and a config pointing at them; returns the config."""
    data = root / "data"
    data.mkdir(parents=True)
    geometry = data / "geometry.json"
    geometry.write_text('{"sdd_mm": 1100.0, "pixel_spacing_mm": [0.2, 0.2]}\n')
    subjects = ["subject_id\tct\ttarget_side\tdxa_bmd_g_cm2\tphantom"]
    radiographs = ["subject_id\timage_id\tpath\tpose\tgeometry"]
    for i in range(n):
        s = f"P{i:05d}"
        (data / f"{s}.nii.gz").touch()
        subjects.append(f"{s}\tdata/{s}.nii.gz\t{'LR'[i % 2]}\t0.8\tpresent")
        for pose in POSES:
            (data / f"{s}_{pose}.dcm").touch()
            radiographs.append(f"{s}\t{pose}\tdata/{s}_{pose}.dcm\t{pose}\tdata/geometry.json")
    (root / "subjects.tsv").write_text("\n".join(subjects) + "\n")
    (root / "radiographs.tsv").write_text("\n".join(radiographs) + "\n")
    config = root / "cohort.yaml"
    config.write_text(
        f"cohort:\n  subjects: {root / 'subjects.tsv'}\n  radiographs: {root / 'radiographs.tsv'}\n"
        + (STUDIES_OFF if studies_off else "")
    )
    return config


def build_dag(workflow: Path, config: Path, slurm: bool = False) -> tuple[float, float, int]:
    """(seconds, peak MB of the snakemake process, jobs) of a dry run."""
    profile = ["--profile", "profiles/slurm"] if slurm else []
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", *profile,
         "--configfile", str(config)],
        cwd=workflow, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: grows monotonically with N here
    total = re.search(r"^total\s+(\d+)", p.stdout, re.M)
    return seconds, max(peak, before) / 1024, int(total.group(1)) if total else -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--studies-off", action="store_true", help="robustness studies off")
    ap.add_argument("--slurm", action="store_true", help="with profiles/slurm (its groups)")
    ap.add_argument("--keep", default=None, help="build the cohorts here and keep them")
    a = ap.parse_args()
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="dag_scale_"))
    workflow = base / "workflow"
    workflow.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src, dst = REPO / part, workflow / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
        else:
            shutil.copy(src, dst)
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"studies {'off' if a.studies_off else 'on (config.yaml)'}, "
          f"profile {'slurm' if a.slurm else 'default'}")  # fmt: skip
    print(f"{'subjects':>8s} {'radiographs':>11s} {'jobs':>7s} {'seconds':>8s} "
          f"{'peak MB':>8s} {'ms/subject':>10s}")  # fmt: skip
    rows = []
    for n in sorted(a.subjects):
        config = write_cohort(base / f"cohort_{n}", n, a.studies_off)
        seconds, peak, jobs = build_dag(workflow, config, a.slurm)
        rows.append((n, seconds))
        print(f"{n:8d} {4 * n:11d} {jobs:7d} {seconds:8.1f} {peak:8.0f} "
              f"{1000 * seconds / n:10.1f}")  # fmt: skip
    if len(rows) > 1:
        (n0, s0), (n1, s1) = rows[0], rows[-1]
        print(f"seconds per subject at {n1} / at {n0}: {(s1 / n1) / (s0 / n0):.2f} "
              "(about 1 or less: linear)")  # fmt: skip
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
