"""The workflow on a real SLURM cluster: a one-node cluster on localhost (tests/local_slurm.py)
runs the tiny synthetic cohort's data preparation and a training job through
``--profile profiles/slurm``; one subject is rerun alone; a registration job cancelled
mid-run is resubmitted and its products are whole.

Skipped, with the reason, where SLURM cannot be installed or started (no root, no apt).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, job_counts, snakemake
from conventions.pose import read_pose
from local_slurm import LocalSlurm, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

TINY = str(REPO / "tests" / "configs" / "synthetic_tiny.yaml")
SUBJECTS = ("S001", "S002")
# Every per-subject product (through each subject's inventory), the cohort's datasets
# and one training job: what a cluster runs per subject, and a GPU-capable rule.
TARGETS = (
    *(f"results/subjects/{s}/products.tsv" for s in SUBJECTS),
    "results/cohort/dataset_B.tsv",
    "results/models/main/fold0/stage1/final.pt",
)
# Status checks every 2 s instead of the plugin's 40 s start and 40 s interval: a test's
# jobs take seconds.
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "1",
               "--seconds-between-status-checks", "2")  # fmt: skip
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$",
                       re.M)  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    with slurm as env:
        yield slurm, env


def on_slurm(wf: Path, env: dict[str, str], targets, *options: str) -> subprocess.CompletedProcess:
    # The uncalibrated-CT study off: it doubles the projections without adding a kind
    # of job. Targets first: --configfile and --forcerun take every word after them.
    study_off = wf / "study_off.yaml"
    study_off.write_text("evaluation:\n  uncalibrated_ct:\n    enabled: false\n")
    p = snakemake(wf, *targets, "--profile", "profiles/slurm", *FAST_STATUS,
                  "--configfile", TINY, str(study_off), *options, env=env)  # fmt: skip
    (wf / f"slurm_run_{len(list(wf.glob('slurm_run_*')))}.txt").write_text(p.stdout + p.stderr)
    return p


def submissions(p: subprocess.CompletedProcess) -> dict[str, str]:
    """SLURM job ID -> the job's SLURM log, from Snakemake's output."""
    return {m.group(2): m.group(3) for m in SUBMITTED.finditer(p.stdout + p.stderr)}


def squeue_jobs(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Every job the controller knows (MinJobAge keeps finished ones): ID -> (state,
    comment, which Snakemake sets to the rule and wildcards)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {i: (state, comment) for i, state, comment in
            (line.split("|", 2) for line in out.splitlines())}  # fmt: skip


def inventory(wf: Path, subject: str) -> pd.DataFrame:
    return pd.read_csv(wf / f"results/subjects/{subject}/products.tsv", sep="\t")


def test_workflow_on_slurm_reruns_one_subject_and_survives_a_cancelled_job(cluster, workflow):
    slurm, env = cluster
    first = on_slurm(workflow, env, TARGETS)
    jobs = submissions(first)
    output = first.stdout + first.stderr
    # Every job but the local rules went through sbatch (one submission per group of
    # cheap steps, Snakefile), and the controller knows each submission as finished.
    stats = job_counts(output)
    local = set(re.findall(r"^localrule (\w+):", output, re.M))
    remote = set(stats) - local - {"total"}
    assert {"synthetic_subject", "segment", "register", "train_stage1"} <= remote
    assert local == {"synthetic_manifest", "subject_products", "dataset_tables", "folds"}
    for rule in remote:
        assert any(rule in log for log in jobs.values()), (rule, jobs)
    known = squeue_jobs(env)
    for job_id in jobs:
        assert known[job_id][0] == "COMPLETED", (job_id, known[job_id], slurm.logs())
    assert len(jobs) < sum(stats[rule] for rule in remote)  # groups share submissions
    for subject in SUBJECTS:
        assert len(inventory(workflow, subject)) > 20
    assert (workflow / "results/models/main/fold0/stage1/final.pt").is_file()

    # Rerun one subject: its inventory as the target, its first steps forced. Only its
    # jobs run; meanwhile one of its registrations is cancelled as a node failure or
    # pre-emption would, and the profile's retry resubmits it.
    before = {s: inventory(workflow, s) for s in SUBJECTS}
    mtimes = {f: f.stat().st_mtime_ns for f in (workflow / "results/subjects/S001").rglob("*")}
    cancelled: list[str] = []

    def cancel_one_registration():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not cancelled:
            for job_id, (state, comment) in squeue_jobs(env).items():
                if state == "RUNNING" and "register" in comment and job_id not in jobs:
                    time.sleep(2)  # well into the registration
                    subprocess.run(["scancel", job_id], env=env, check=True)
                    cancelled.append(job_id)
                    return
            time.sleep(0.5)

    canceller = threading.Thread(target=cancel_one_registration)
    canceller.start()
    started = time.time_ns()
    again = on_slurm(workflow, env, ["results/subjects/S002/products.tsv"],
                     "--forcerun", "import_ct", "import_radiograph")  # fmt: skip
    canceller.join()
    rerun = job_counts(again.stdout + again.stderr)
    assert rerun.pop("total") == sum(rerun.values())
    assert rerun == {"import_ct": 1, "import_radiograph": 2, "calibrate": 1, "segment": 1,
                     "landmarks": 1, "ct_bmd": 1, "ct_qc": 1, "register": 1, "project": 1,
                     "radiograph_qc": 1, "subject_products": 1}, again.stdout  # fmt: skip
    resubmitted = submissions(again)
    assert all(f.stat().st_mtime_ns == t for f, t in mtimes.items())  # S001 untouched
    assert cancelled, "no registration job was seen running to cancel"
    assert squeue_jobs(env)[cancelled[0]][0] == "CANCELLED"
    # The cancelled registration (the subject's one register job) ran again: a second
    # register submission; its poses are whole, and the subject has every product it had.
    register_logs = [log for log in resubmitted.values() if "register" in log]
    assert len(register_logs) == 2, register_logs
    for image in ("supine", "abduction"):
        for body in ("pelvis", "femur"):
            read_pose(workflow / f"results/subjects/S002/registration/{image}/pose_{body}.json")
    after = inventory(workflow, "S002")
    assert before["S002"]["file"].tolist() == after["file"].tolist()
    folder = workflow / "results/subjects/S002"
    assert all((folder / f).stat().st_mtime_ns > started for f in after["file"])
    assert before["S001"].equals(inventory(workflow, "S001"))
