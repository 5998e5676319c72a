"""Where a workflow run's time went, from its Snakemake log: per rule the jobs, their
summed and mean seconds, and per stage (a group of rules) the wall-clock span from its
first job's start to its last job's end.

    snakemake --cores all                       # a run
    python benchmarks/workflow_time.py [.snakemake/log/<run>.snakemake.log]

Without a path, the newest log under .snakemake/log. Seconds are whole (Snakemake logs
timestamps to the second); a job's seconds include its Python start-up and whatever
else ran beside it. The seconds with fewer jobs running than the run's cores show
where the scheduling, not the work, set the wall clock.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

# Stages of the data flow (docs/architecture.md), by rule; the rest is "other".
STAGES = {
    "synthetic cohort": ("synthetic_subject", "synthetic_manifest"),
    "import": ("import_ct", "import_radiograph", "cohort_fingerprint"),
    "CT stages": ("calibrate", "segment", "landmarks", "ct_bmd", "ct_qc"),
    "registration": ("register", "true_poses"),
    "dataset": ("project", "radiograph_qc", "dataset_tables", "folds", "dataset_audit"),
    "models": (
        "train_stage1",
        "train_stage2",
        "predict_fold",  # before round nine: one job a fold
        "predict_folds",
        "train_stage3",
        "train_baseline",
        "package_model",
        "gather_predictions",
        "gather_experiment_predictions",
        "training_curves",
    ),
    "robustness data": (
        "calibrate_fixed_line",
        "ct_bmd_uncalibrated",
        "project_uncalibrated",
        "dataset_tables_uncalibrated",
        "compress_radiographs",
        "predict_compressed",
        "compression_study",
    ),
    "evaluation": ("evaluate", "evaluation_plots"),
}
# A subject's data preparation (issue 20's target 1): import, calibration, segmentation,
# landmarks, CT BMD, registration of its radiographs, its pairs and QC; not the phantom
# that stands in for a hospital's files, nor the robustness studies.
SUBJECT_PREPARATION = (
    "import_ct",
    "import_radiograph",
    "calibrate",
    "segment",
    "landmarks",
    "ct_bmd",
    "ct_qc",
    "register",
    "true_poses",
    "project",
    "radiograph_qc",
    "subject_products",
)
STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ [\d:]+ \d{4})\]")
RULE = re.compile(r"^(?:local)?rule (\w+):")
JOBID = re.compile(r"^\s+jobid: (\d+)")
DONE = re.compile(r"^Finished job(?:id:)? (\d+)")
CORES = re.compile(r"^Provided cores: (\d+)", re.M)


def job_spans(log: Path) -> list[tuple[str, datetime, datetime]]:
    """(rule, start, end) of every finished job."""
    now, rule, started, spans = None, None, {}, []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if m := STAMP.match(line):
            now = datetime.strptime(re.sub(" +", " ", m.group(1)), "%a %b %d %H:%M:%S %Y")
        elif m := RULE.match(line):
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule:
            started[m.group(1)] = (rule, now)
            rule = None
        elif (m := DONE.match(line)) and m.group(1) in started:
            name, start = started.pop(m.group(1))
            spans.append((name, start, now))
    return spans


def underused_seconds(spans, cores: int) -> tuple[int, int]:
    """(seconds with fewer than ``cores`` jobs running, seconds from the first start to
    the last end): whole seconds, as Snakemake stamps its log."""
    t0 = min(s for _, s, _ in spans)
    n = int((max(e for _, _, e in spans) - t0).total_seconds()) + 1
    running = [0] * n
    for _, s, e in spans:
        for t in range(int((s - t0).total_seconds()), int((e - t0).total_seconds())):
            running[t] += 1
    return sum(1 for r in running if r < cores), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", default=None)
    a = ap.parse_args()
    log = Path(a.log) if a.log else max(Path(".snakemake/log").glob("*.log"),
                                        key=lambda p: p.stat().st_mtime)  # fmt: skip
    spans = job_spans(log)
    if not spans:
        print(f"{log}: no finished jobs", file=sys.stderr)
        return 1
    per_rule = defaultdict(list)
    for name, start, end in spans:
        per_rule[name].append((end - start).total_seconds())
    print(f"# {log}")
    print(f"{'rule':32s} {'jobs':>5s} {'job-s':>7s} {'mean s':>7s}")
    for name, secs in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"{name:32s} {len(secs):5d} {sum(secs):7.0f} {sum(secs) / len(secs):7.1f}")
    print()
    print(f"{'stage':20s} {'jobs':>5s} {'job-s':>7s} {'first start':>12s} {'last end':>9s}")
    first = min(s for _, s, _ in spans)
    for stage, rules in [*STAGES.items(), ("other", None)]:
        known = {r for rs in STAGES.values() for r in rs}
        mine = [(s, e) for n, s, e in spans if (n in rules if rules else n not in known)]
        if not mine:
            continue
        t0 = min(s for s, _ in mine) - first
        t1 = max(e for _, e in mine) - first
        secs = sum((e - s).total_seconds() for s, e in mine)
        print(f"{stage:20s} {len(mine):5d} {secs:7.0f} {_clock(t0):>12s} {_clock(t1):>9s}")
    total = max(e for _, _, e in spans) - first
    print(f"\nwall clock {_clock(total)} for {len(spans)} jobs")
    if m := CORES.search(log.read_text(encoding="utf-8", errors="replace")):
        cores = int(m.group(1))
        idle, span = underused_seconds(spans, cores)
        print(f"seconds with fewer than {cores} jobs running: {idle} of {span}")
    subjects = len(per_rule.get("import_ct", []))
    if subjects:
        prep = sum(sum(per_rule.get(r, [])) for r in SUBJECT_PREPARATION)
        print(f"a subject's data preparation: {prep / subjects:.1f} job-s "
              f"(mean of {subjects} subjects; rules {', '.join(SUBJECT_PREPARATION)})")  # fmt: skip
    return 0


def _clock(delta) -> str:
    s = int(delta.total_seconds())
    return f"{s // 60}:{s % 60:02d}"


if __name__ == "__main__":
    sys.exit(main())
