# ruff: noqa: E402  (imports follow the sys.path fix below)
"""The default run from nothing, measured: `snakemake --cores N` in a fresh clone of this
repository (its HEAD, or --commit), then where the time went and what Snakemake's own
process cost beside its jobs.

    python benchmarks/default_run.py [--commit REV] [--cores N] [--dir DIR] [--discard]

Prints the wall clock; the CPU seconds of the whole run (every job and Snakemake, from
the kernel's accounting of the finished process tree); Snakemake's own CPU seconds (its
process's user + system time, read from /proc every second: it schedules, stats the
ready jobs' inputs and writes metadata on the same cores as the jobs); then
benchmarks/workflow_time.py's tables of the run's log (per rule, per stage, the seconds
with fewer than N jobs running, a subject's data preparation). The run uses this interpreter's
environment (the clone's Snakefile puts the clone's src/ first). The clone and its
results (about 1.7 GB for the demo) are kept in DIR unless --discard. Issue 20's target:
the demo under 10 minutes on two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from datetime import timedelta

REPO = HERE.parent


def own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` itself (not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # After the command's ")": state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workflow(workdir: Path, cores: int, log: Path) -> tuple[float, float, float, int]:
    """(wall s, CPU s of the whole process tree, Snakemake's own CPU s, exit status)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", str(cores)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        own = 0.0
        while p.poll() is None:
            own = own_cpu_seconds(p.pid) or own
            time.sleep(1.0)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, tree, own, p.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default="HEAD", help="what to clone and run (default HEAD)")
    ap.add_argument("--cores", default="all", help="Snakemake's --cores (default all)")
    ap.add_argument("--dir", default=None, help="clone here (default: a new temporary folder)")
    ap.add_argument("--discard", action="store_true", help="remove the clone afterwards")
    a = ap.parse_args()
    cores = (os.cpu_count() or 1) if a.cores == "all" else int(a.cores)
    workdir = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="default_run_"))
    if workdir.exists() and any(workdir.iterdir()):
        raise SystemExit(f"{workdir} is not empty: the run must start from nothing")
    subprocess.run(["git", "clone", "-q", str(REPO), str(workdir)], check=True)
    subprocess.run(["git", "-C", str(workdir), "checkout", "-q", a.commit], check=True)
    commit = subprocess.run(["git", "-C", str(workdir), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    log = workdir / "default_run.log"
    print(f"# snakemake --cores {cores} in a fresh clone of {commit} ({workdir})", flush=True)
    wall, tree, own, status = run_workflow(workdir, cores, log)
    print(f"exit status {status}; Snakemake's output in {log}")
    print(f"wall clock            {timedelta(seconds=round(wall))}")
    print(f"CPU, every process    {tree:7.0f} s ({tree / wall:.2f} cores busy on average)")
    print(f"CPU, Snakemake itself {own:7.0f} s ({100 * own / max(tree, 1e-9):.1f} % of the run's)")
    runs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if runs:  # per rule and stage, and the seconds with fewer jobs running than cores
        print(flush=True)
        subprocess.run([sys.executable, str(HERE / "workflow_time.py"), str(runs[-1])],
                       cwd=workdir)  # fmt: skip
    if a.discard:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
