"""The Snakemake workflow end to end: DAG, the synthetic demo, a user cohort with bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from conftest import (
    IDENTIFIERS,
    REPO,
    job_counts,
    snakemake,
    write_dicom_ct_series,
    write_dicom_radiograph,
)
from conventions.ct import read_ct
from conventions.geometry import read_geometry
from conventions.pose import HIP_BODIES, pose_path, read_pose
from evaluation.compression import jpeg_quality
from registration.rigid import mean_projection_distance, target_registration_error


def test_default_config_builds_a_dag(workflow):
    counts = job_counts(snakemake(workflow, "-n", "--quiet", "rules").stdout)
    assert counts["synthetic_subject"] == 8  # config.yaml's n_subjects
    assert counts["import_ct"] == 8
    assert counts["import_radiograph"] == 8 * 4  # four poses each
    assert counts["calibrate"] == 8
    for rule in ("segment", "landmarks", "ct_bmd", "ct_qc"):
        assert counts[rule] == 8
    assert counts["cohort_fingerprint"] == 1
    # registration and projection: one job per subject for all its radiographs
    assert counts["register"] == counts["project"] == 8
    assert counts["radiograph_qc"] == 8  # one per subject: its overlays and pairs
    for rule in ("dataset_tables", "folds", "dataset_audit", "gather_predictions",
                 "training_curves", "evaluate", "evaluation_plots",
                 "compression_study"):  # fmt: skip
        assert counts[rule] == 1
    # config.yaml's 5 folds in four experiments: main, limited poses and without
    # hierarchical learning (stages 2 and 3 again), uncalibrated CT (stages 1 to 3 again);
    # the baseline in main only; and the deployable model (stages 1 to 3 on fold "all")
    assert counts["predict_compressed"] == 1  # the main experiment's folds in one job
    assert counts["train_stage1"] == 5 * 2 + 1
    assert counts["train_stage2"] == 20 + 1
    assert counts["predict_folds"] == 4  # every method and fold of an experiment, one job
    assert counts["train_baseline"] == 5  # DXA and QCT in one job per fold
    assert counts["train_stage3"] == 4 * 5 + 1  # both targets in one job per fold
    assert counts["package_model"] == 1
    assert counts["gather_experiment_predictions"] == 3
    # the uncalibrated CT's own density, PF mineral, pairs and tables
    assert counts["calibrate_fixed_line"] == counts["ct_bmd_uncalibrated"] == 8
    assert counts["project_uncalibrated"] == 8
    assert counts["dataset_tables_uncalibrated"] == 1
    assert counts["compress_radiographs"] == 5  # config.yaml's conditions


def test_every_rule_declares_its_resources_and_the_profile_groups_cheap_steps():
    """What a scheduler needs of each job (docs/cluster.md), stated in every rule."""
    import re

    import yaml

    rules = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        # A rule may sit in an `if` (register: only where poses are searched); its body
        # ends at the next line indented no deeper than its own `rule` line.
        for m in re.finditer(r"^([ \t]*)rule (\w+):\n(.*?)(?=^\1\S|\Z)", text, re.M | re.S):
            rules[m.group(2)] = m.group(3)
    assert len(rules) >= 30
    for name, body in rules.items():
        for key in ("threads:", "mem_mb=", "runtime="):
            assert key in body, (name, key)
        if name.startswith("train_"):
            assert 'gpu=MODELS["gpus"]' in body, name
        if name in ("register", "project"):  # the DRR jobs: on a GPU with drr.gpus
            assert "gpu=DRR_GPUS" in body and "DRR_DEVICE" in body, name
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    uses = set(re.findall(r"^use rule \w+ as (\w+)", "".join(
        p.read_text() for p in (REPO / "rules").glob("*.smk")), re.M))  # fmt: skip
    assert set(profile["groups"]) <= set(rules) | uses
    # A failed group job loses its members' outputs: the expensive steps stay alone.
    assert not {"segment", "train_stage1", "train_stage2", "train_stage3"} & set(profile["groups"])


def test_drr_jobs_run_on_cuda_and_ask_for_a_gpu_when_the_config_says_so(workflow, tmp_path):
    """drr.gpus: registration's search and the projections render on CUDA, and the jobs
    ask the scheduler for a GPU (SLURM's gpu request); with 0 (the default) on the CPU."""
    for gpus, device in ((0, "cpu"), (1, "cuda")):
        cfg = tmp_path / f"gpus{gpus}.yaml"
        cfg.write_text(f"drr: {{gpus: {gpus}}}\n")
        out = snakemake(
            workflow, "-n", "-p", "--configfile", str(cfg), "--forceall",
            "results/subjects/S001/dataset_index.tsv",
        ).stdout  # fmt: skip
        for rule in ("register", "project"):
            block = out[out.index(f"rule {rule}:") :]
            block = block[: block.index("python -m") + 400]
            assert f"gpu={gpus}" in block.replace(" ", ""), (rule, gpus)
            assert f"--device {device}" in block, (rule, gpus)


def test_every_training_job_gets_settings_its_trainer_accepts(workflow):
    """The config's models block, as the rules hand it to ``python -m models train`` and
    ``train-regressor``, holds only settings those take (an option added to the config
    for another job must not reach them: a run would fail at training)."""
    from models.train import TrainConfig
    from models.train_regression import RegressionConfig

    out = snakemake(workflow, "-n", "-p", "--forceall", "results/cohort/predictions.tsv").stdout
    configs = re.findall(r"python -m models (train|train-regressor) .*?--config '(\{.*?\})'", out)
    assert {kind for kind, _ in configs} == {"train", "train-regressor"}
    for kind, text in configs:
        settings = json.loads(text)
        if kind == "train":
            settings.pop("factor")
            TrainConfig.from_dict({**TrainConfig().to_dict(), **settings})
        else:
            RegressionConfig.from_dict({**settings, "kind": "conventional", "target": "x"})


def test_true_poses_replace_the_search_only_where_asked(workflow, tmp_path):
    """registration.poses: true writes the phantom's poses in the search's place (no
    register job); a manifest cohort, which has no true poses, is refused."""
    cfg = tmp_path / "true.yaml"
    cfg.write_text('registration: {poses: "true"}\n')
    target = "results/subjects/S001/dataset_index.tsv"
    out = snakemake(workflow, "-n", "-p", "--configfile", str(cfg), "--forceall", target).stdout
    assert "rule true_poses:" in out and "rule register:" not in out
    views = " ".join(f"results/synthetic/S001/truth/radiographs/{i}.json"
                     for i in ("standing", "supine", "abduction", "adduction"))  # fmt: skip
    assert f"python -m phantom true-poses --view {views}" in out
    assert "--out-dir results/subjects/S001/registration --out-index" in out
    out = snakemake(workflow, "-n", "--forceall", target).stdout
    assert "rule register:" in out and "rule true_poses:" not in out
    cfg.write_text('registration: {poses: "true"}\ncohort: {subjects: site/subjects.tsv}\n')
    refused = snakemake(workflow, "-n", target, "--configfile", str(cfg), check=False)
    assert refused.returncode != 0
    assert "synthetic cohort's true poses" in refused.stdout + refused.stderr


@pytest.mark.slow
def test_synthetic_demo_runs_and_caches(workflow):
    cfg = str(REPO / "tests" / "configs" / "synthetic_tiny.yaml")
    snakemake(workflow, "--configfile", cfg)
    fp = json.loads((workflow / "results/cohort/fingerprint.json").read_text())
    assert fp["n_subjects"] == 2
    assert fp["ct"]["with_phantom"] == 2
    assert fp["n_radiographs"] == 4  # two poses each in the tiny config
    assert fp["radiographs"]["poses"] == {"supine": 2, "abduction": 2}
    ct = sitk.ReadImage(str(workflow / "results/subjects/S001/ct/ct_hu.nii.gz"))
    truth = read_ct(workflow / "results/synthetic/S001/ct_dicom")  # the tiny config's DICOM
    assert ct.GetOrigin() == pytest.approx(truth.GetOrigin())
    assert np.array_equal(sitk.GetArrayFromImage(ct), sitk.GetArrayFromImage(truth))
    # Calibrated with the phantom, on the true scanner line.
    cal = json.loads((workflow / "results/subjects/S001/ct/calibration.json").read_text())
    scanner = json.loads((workflow / "results/synthetic/S001/truth/truth.json").read_text())[
        "scanner"
    ]
    assert cal["method"] == "phantom"
    assert cal["slope_hu_per_mg_cm3"] == pytest.approx(scanner["slope_hu_per_mg_cm3"], rel=0.01)
    # The CT stages reach the truth even on the tiny config's coarse 2.5 × 2.5 × 4 mm
    # voxels (docs/ct_stages.md has the figures at clinical resolutions).
    for subject in ("S001", "S002"):
        truth = json.loads((workflow / f"results/synthetic/{subject}/truth/truth.json").read_text())
        bmd = json.loads((workflow / f"results/subjects/{subject}/ct/ct_bmd.json").read_text())
        assert bmd["side"] == truth["target_side"]
        assert bmd["areal_bmd_g_cm2"] == pytest.approx(truth["areal_bmd_g_cm2"], rel=0.03)
        assert bmd["qct_bmd_mg_cm3"] == pytest.approx(truth["qct_bmd_mg_cm3"], rel=0.08)
        seg = json.loads(
            (workflow / f"results/subjects/{subject}/ct/segmentation.json").read_text()
        )
        assert seg["method"] == "threshold" and not seg["metal"]["present"]
        assert (workflow / f"results/subjects/{subject}/qc/ct.png").stat().st_size > 10_000
    # Every radiograph registered, pelvis and femur, each with a status; on this coarse CT
    # (2.5 × 2.5 × 4 mm) the pelvis still projects the femoral heads within 1 mm of the
    # truth (in 3D within 6 mm: depth is what one view and 4 mm slices pin down least).
    for subject in ("S001", "S002"):
        truth = json.loads((workflow / f"results/synthetic/{subject}/truth/truth.json").read_text())
        heads = np.array([truth["femurs"][s]["head_center"] for s in ("L", "R")])
        for image in ("supine", "abduction"):
            found = workflow / f"results/subjects/{subject}/registration/{image}"
            view = workflow / f"results/synthetic/{subject}/truth/radiographs/{image}.json"
            true = np.array(json.loads(view.read_text())["camera_from_ct"]["pelvis"])
            pelvis = read_pose(found / "pose_pelvis.json")
            femur = read_pose(found / "pose_femur.json")
            assert {pelvis.extra["status"], femur.extra["status"]} <= {"ok", "suspect", "failed"}
            assert femur.extra["side"] == truth["target_side"]
            geometry = read_geometry(
                workflow / f"results/subjects/{subject}/radiographs/{image}/geometry.json"
            )
            assert mean_projection_distance(heads, pelvis.camera_from_ct, true, geometry) < 1.0
            assert target_registration_error(heads, pelvis.camera_from_ct, true) < 6.0
    for subject in ("S001", "S002"):
        for figure in ("registration", "pairs"):
            assert (workflow / f"results/subjects/{subject}/qc/{figure}.png").is_file()
    # The datasets: a pair per radiograph unless excluded, and never both; folds by subject.
    table_a, table_b, excluded = (
        pd.read_csv(workflow / f"results/cohort/{n}.tsv", sep="\t")
        for n in ("dataset_A", "dataset_B", "excluded")
    )
    key = ["subject_id", "image"]
    for name, table in (("A", table_a), ("B", table_b)):
        out = excluded.loc[excluded.dataset == name, key]
        assert len(table) + len(out) == 4
        assert not set(map(tuple, out.values)) & set(map(tuple, table[key].values))
        assert not (table.status == "failed").any()
    folds = json.loads((workflow / "results/cohort/folds.json").read_text())
    assert sorted(s for f in folds["folds"] for s in f["test"]) == ["S001", "S002"]
    for _, row in table_b.iterrows():
        record = json.loads(
            (
                workflow / f"results/subjects/{row.subject_id}/dataset/{row.image}/pair.json"
            ).read_text()
        )
        with np.load(workflow / record["pair"]) as pair:
            assert pair["xray"].shape == pair["pf_drr_g_cm2"].shape == (512, 256)
        truth = json.loads(
            (workflow / f"results/synthetic/{row.subject_id}/truth/truth.json").read_text()
        )
        # At the registered poses, on 2.5 × 2.5 × 4 mm voxels (tests/test_dataset_project.py
        # checks 2 % at the true poses).
        assert row.pf_drr_mean_g_cm2 == pytest.approx(truth["areal_bmd_g_cm2"], rel=0.05)
    # The models: each fold's stages trained (stage 2 from stage 1), its test subjects
    # predicted; the cohort's predictions gather the folds'.
    for fold in (0, 1):
        for stage in (1, 2):
            history = json.loads(
                (workflow / f"results/models/main/fold{fold}/stage{stage}/history.json").read_text()
            )
            assert history["fold"] == fold and np.isfinite(history["history"][-1]["total"])
        assert (workflow / f"results/models/main/fold{fold}/calibration.json").is_file()
        for model in ("stage3_dxa", "stage3_qct", "baseline_dxa", "baseline_qct"):
            history = json.loads(
                (workflow / f"results/models/main/fold{fold}/{model}/history.json").read_text()
            )
            assert history["fold"] == fold and np.isfinite(history["history"][-1]["mae"])
    predictions = pd.read_csv(workflow / "results/cohort/predictions.tsv", sep="\t")
    # (gt_pf_drr's threshold and line need three training radiographs; a tiny fold has two)
    assert set(predictions["method"]) >= {
        "training_mean", "conventional_regression", "decomposition+regression_frozen",
        "decomposition+regression",
    }  # fmt: skip
    assert set(predictions["target"]) == {"dxa_bmd_g_cm2", "qct_bmd_mg_cm3"}
    regressed = predictions[predictions["method"] != "decomposition"]
    assert np.isfinite(regressed["prediction"]).all()
    metrics = pd.read_csv(workflow / "results/cohort/metrics.tsv", sep="\t")
    main = metrics[metrics["experiment"] == "main"]
    assert set(main["method"]) == set(predictions["method"])
    # The limited-pose study (the tiny config trains on abduction only): the proposed method's
    # rows, no baseline; its own Table 2 section.
    limited = metrics[metrics["experiment"] == "limited_poses"]
    assert "decomposition+regression" in set(limited["method"])
    assert "conventional_regression" not in set(limited["method"])
    table2 = (workflow / "results/cohort/table2.md").read_text()
    assert table2.startswith("### Trained on every pose, phantom-calibrated CT")
    assert "### Trained on abduction only" in table2
    assert "### Trained on every pose, uncalibrated CT" in table2
    assert "without hierarchical learning" in table2

    # stage 2 from main's stage 1, from scratch without hierarchical learning, on
    # abduction only in the limited-pose study
    def stage2(experiment):
        path = workflow / f"results/models/{experiment}/fold0/stage2/history.json"
        return json.loads(path.read_text())

    assert stage2("main")["init"] == "results/models/main/fold0/stage1/final.pt"
    assert stage2("limited_poses")["init"] == "results/models/main/fold0/stage1/final.pt"
    assert stage2("limited_poses")["poses"] == ["abduction"]
    assert (
        stage2("uncalibrated_ct")["init"] == "results/models/uncalibrated_ct/fold0/stage1/final.pt"
    )
    assert stage2("without_hierarchy")["init"] is None
    # The uncalibrated CT: config.yaml's fixed line (slope 1, intercept 0) reads HU as
    # mg/cm³; its own decomposition targets, the references the calibrated CT's.
    hu = sitk.GetArrayFromImage(
        sitk.ReadImage(str(workflow / "results/subjects/S001/ct/ct_hu.nii.gz"))
    )
    density = sitk.GetArrayFromImage(sitk.ReadImage(
        str(workflow / "results/subjects/S001/ct/uncalibrated/density_mg_cm3.nii.gz")))  # fmt: skip
    assert np.allclose(density, hu, atol=1e-3)
    calibrated = pd.read_csv(workflow / "results/cohort/dataset_B.tsv", sep="\t")
    fixed = pd.read_csv(workflow / "results/cohort/uncalibrated_ct/dataset_B.tsv", sep="\t")
    assert list(fixed["pair"]) == [p.replace("/dataset/", "/dataset_uncalibrated/")
                                   for p in calibrated["pair"]]  # fmt: skip
    assert np.array_equal(fixed["qct_bmd_mg_cm3"], calibrated["qct_bmd_mg_cm3"])
    ratio = fixed["pf_drr_mean_g_cm2"] / calibrated["pf_drr_mean_g_cm2"]
    assert (np.abs(ratio - 1) > 0.01).all()  # scanner slopes 0.78-1.02, intercepts ±20 HU
    assert "decomposition+regression" in set(
        metrics.loc[metrics["experiment"] == "uncalibrated_ct", "method"]
    )
    posewise = pd.read_csv(workflow / "results/cohort/posewise.tsv", sep="\t")
    assert set(posewise["pose"]) == {"supine", "abduction"}
    assert set(posewise["experiment"]) == {"main", "limited_poses", "uncalibrated_ct",
                                           "without_hierarchy"}  # fmt: skip
    statistics = pd.read_csv(workflow / "results/cohort/statistics.tsv", sep="\t")
    assert "rm_anova" in set(statistics["test"])
    # The compression study: files of the requested quality and depth, every test
    # radiograph predicted under each condition.
    for condition, suffix in (("jpeg50", ".jpg"), ("bits8", ".png")):
        index = pd.read_csv(workflow / f"results/cohort/robustness/compression/{condition}.tsv",
                            sep="\t")  # fmt: skip
        assert len(index) == len(table_b)
        for file in index["file"]:
            assert file.endswith(suffix)
            if suffix == ".jpg":
                assert jpeg_quality(workflow / file) == 50
            else:
                with Image.open(workflow / file) as im:
                    assert im.mode == "L"  # 8 bits
    curves = pd.read_csv(workflow / "results/cohort/robustness/compression.tsv", sep="\t")
    assert set(curves["condition"]) == {"bits8", "jpeg50"}
    sizes = curves.groupby("condition")["mean_bytes"].first()
    assert sizes["jpeg50"] < sizes["bits8"]
    for figure in ("absolute_error", "posewise", "scatter", "bland_altman"):
        assert (workflow / f"results/cohort/evaluation/{figure}.png").stat().st_size > 5_000
    categories = pd.read_csv(workflow / "results/cohort/who_categories.tsv", sep="\t")
    assert set(categories["dxa"]) == {"normal", "osteopenia", "osteoporosis"}
    assert (workflow / "results/cohort/models/training_curves.png").stat().st_size > 5_000
    # The deployable model: trained on both subjects (fold "all"), packaged, applied.
    model = json.loads((workflow / "results/model/model.json").read_text())
    assert model["cohort"]["subjects"] == 2 and model["pair"]["factor"] == 8
    assert set(model["regressors"]) == {"dxa_bmd_g_cm2", "qct_bmd_mg_cm3"}
    assert {r["method"] for r in model["cross_validated"]} == {"decomposition+regression"} | (
        {"decomposition"} & set(main["method"])
    )
    assert "2 subjects" in (workflow / "results/model/model_card.md").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "models", "predict", "--model-dir", "results/model", "--xray",
         "results/synthetic/S001/radiographs/supine.dcm", "--out-dir", "results/predicted"],
        cwd=workflow, capture_output=True, text=True,
    )  # fmt: skip
    # After one epoch of training a hip is read, or every hip refused by the failure check.
    if out.returncode == 0:
        record = json.loads((workflow / "results/predicted/prediction.json").read_text())
        assert {h["side"] for h in record["hips"]} == {"L", "R"}
    else:
        assert out.returncode == 2 and "no hip could be read" in out.stderr, out.stderr
    # Everything is cached: a second run has nothing to do.
    again = snakemake(workflow, "--configfile", cfg, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # A change to a stage's code reruns that stage's jobs (and what depends on them) only.
    with open(workflow / "src" / "qc" / "ct.py", "a") as f:
        f.write("\n# a change\n")
    changed = snakemake(workflow, "--configfile", cfg, "-n", "--quiet", "rules")
    # (the qc package also draws the registration overlays)
    assert job_counts(changed.stdout) == {
        "ct_qc": 2,
        "radiograph_qc": 2,
        "subject_products": 2,  # the inventories list the figures' checksums
        "dataset_audit": 1,
        "training_curves": 1,
        "all": 1,
        "total": 9,
    }
    snakemake(workflow, "--configfile", cfg)
    # The digests follow the code each CLI imports (cohort.code_digest): a module added
    # that nothing imports reruns nothing; a models-only helper reruns the models' jobs
    # (and what reads their products) and nothing upstream of them.
    (workflow / "src" / "conventions" / "unused.py").write_text("X = 1\n")
    again = snakemake(workflow, "--configfile", cfg, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    with open(workflow / "src" / "models" / "losses.py", "a") as f:
        f.write("\n# a change to a loss helper\n")
    changed = job_counts(snakemake(workflow, "--configfile", cfg, "-n", "--quiet", "rules").stdout)
    assert changed["train_stage1"] > 0 and changed["predict_folds"] > 0
    upstream = {"import_ct", "import_radiograph", "calibrate", "segment", "landmarks", "ct_bmd",
                "register", "project", "dataset_tables", "folds", "synthetic_subject"}  # fmt: skip
    assert not upstream & set(changed), changed
    (workflow / "src" / "models" / "losses.py").write_text(
        (REPO / "src" / "models" / "losses.py").read_text()
    )
    # Rerunning one subject's step touches that subject only.
    one = snakemake(
        workflow,
        "results/subjects/S002/ct/ct_hu.nii.gz",
        "--configfile",
        cfg,
        "--forcerun",
        "import_ct",
        "-n",
        "--quiet",
        "rules",
    )
    assert job_counts(one.stdout) == {"import_ct": 1, "total": 1}
    one = snakemake(workflow, "results/subjects/S002/dataset_index.tsv", "--configfile",
                    cfg, "--forcerun", "project", "-n", "--quiet", "rules")  # fmt: skip
    assert job_counts(one.stdout) == {"project": 1, "total": 1}
    # Adding a subject to the cohort builds that subject and the cohort-level files only.
    bigger = workflow / "three_subjects.yaml"
    bigger.write_text(Path(cfg).read_text().replace("n_subjects: 2", "n_subjects: 3"))
    added = job_counts(
        snakemake(workflow, "--configfile", str(bigger), "-n", "--quiet", "rules").stdout
    )
    for rule in ("synthetic_subject", "import_ct", "segment", "ct_bmd", "radiograph_qc"):
        assert added[rule] == 1, added
    assert added["register"] == added["project"] == 1, added  # S003's, both radiographs
    assert added["import_radiograph"] == 2, added
    for rule in ("synthetic_manifest", "dataset_tables", "folds", "dataset_audit"):
        assert added[rule] == 1, added
    # The audit report holds the cohort fingerprint table.
    snakemake(workflow, "--configfile", cfg, "--report", "report.zip")
    with zipfile.ZipFile(workflow / "report.zip") as z:
        names = z.namelist()
    assert any(n.endswith("report.html") for n in names)
    assert any("fingerprint.tsv" in n for n in names)
    assert any(n.endswith("ct.png") for n in names)  # the CT QC montages
    assert any(n.endswith("registration.png") for n in names)  # the registration overlays
    assert any(n.endswith("pairs.png") for n in names)  # the training pairs
    assert any(n.endswith("pf_drr_vs_bmd.png") for n in names)  # the dataset audit
    assert any(n.endswith("summary.html") for n in names)
    assert any(n.endswith("training_curves.png") for n in names)
    assert any(n.endswith("table2.md") for n in names)  # the evaluation
    assert any(n.endswith("bland_altman.png") for n in names)
    assert any(n.endswith("posewise.png") for n in names)
    assert any(n.endswith("compression.png") for n in names)  # the robustness study
    # A crash mid-registration (Snakemake and its job killed, as by a lost node or a
    # wall-time limit) leaves the subject's registration folder marked incomplete, its last
    # radiograph unregistered, and the same command again finishes it (docs/cluster.md,
    # "Stopping and resuming").
    target = "results/subjects/S001/registration_index.tsv"  # written last, with the folder
    folder = workflow / "results/subjects/S001/registration"
    files = [pose_path(folder, i, b) for i in ("supine", "abduction") for b in HIP_BODIES]
    first = [f.read_bytes() for f in files]
    command = "registration hip --subject S001 --image supine abduction"
    killed = _kill_while_running(workflow, cfg, target, "register", command)
    assert killed and not files[-1].exists() and not (workflow / target).exists()
    assert list((workflow / ".snakemake" / "incomplete").iterdir())  # marked for a rerun
    # The dead Snakemake's lock stays until `--unlock`; until then nothing runs.
    locked = snakemake(workflow, target, "--configfile", cfg, "-n", "--quiet", "rules")
    assert "cannot be locked" in locked.stdout + locked.stderr
    snakemake(workflow, "--configfile", cfg, "--unlock")
    rerun = snakemake(workflow, target, "--configfile", cfg, "-n", "--quiet", "rules")
    assert job_counts(rerun.stdout) == {"register": 1, "total": 1}, rerun.stdout
    snakemake(workflow, target, "--configfile", cfg)
    for f, before in zip(files, first, strict=True):
        assert read_pose(f).extra["status"] in ("ok", "suspect")
        # Deterministic: registered again, the same bytes (docs/robustness.md).
        assert f.read_bytes() == before
    # Snakemake's checksum of the folder's index sees the same poses: a plain run rebuilds
    # nothing on them and registers nothing again.
    after = job_counts(snakemake(workflow, "--configfile", cfg, "-n", "--quiet", "rules").stdout)
    assert "project" not in after and "register" not in after, after


def _running(command: str) -> bool:
    """Whether a process whose command line contains ``command`` runs (/proc, no pgrep)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if command in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return True
        except OSError:  # the process ended meanwhile
            continue
    return False


def _kill_while_running(wf: Path, cfg: str, target: str, rule: str, command: str) -> bool:
    """Run ``target`` with ``rule`` forced, and SIGKILL Snakemake and the job together once
    the job's ``command`` is running; whether it was seen running."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    p = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", target, "--configfile", cfg,
         "--forcerun", rule],
        cwd=wf, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(1200):
            if _running(command):
                time.sleep(3)  # well into the search
                os.killpg(p.pid, signal.SIGKILL)
                return True
            if p.poll() is not None:
                return False
            time.sleep(0.1)
        return False
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def _user_cohort(root: Path) -> Path:
    """Three subjects: a DICOM CT, a NIfTI CT, and a radiograph lacking its geometry."""
    data = root / "data"
    hu = np.full((6, 10, 12), -1000.0, dtype=np.float32)
    hu[:, 3:7, 3:9] = 40.0
    # Coarse voxels: few bytes, yet the field of a hip (import refuses less than 60 mm).
    write_dicom_ct_series(data / "ct_A", hu, spacing_xyz=(6.0, 7.0, 12.0))
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing((6.0, 7.0, 12.0))
    sitk.WriteImage(img, str(data / "ct_B.nii.gz"))
    sitk.WriteImage(img, str(data / "ct_C.mha"))
    px = (np.arange(40 * 30).reshape(40, 30) % 4096).astype(np.uint16)
    write_dicom_radiograph(
        data / "A_ap.dcm",
        px,
        ImagerPixelSpacing=[0.2, 0.2],
        DistanceSourceToDetector="1100",
        DistanceSourceToPatient="1000",
    )
    sitk.WriteImage(sitk.GetImageFromArray((px % 256).astype(np.uint8)), str(data / "B_ap.png"))
    (data / "B_ap.json").write_text(json.dumps({"sdd_mm": 1000.0, "pixel_spacing_mm": [0.3, 0.3]}))
    write_dicom_radiograph(data / "C_ap.dcm", px)  # no geometry tags, no geometry JSON
    (root / "subjects.tsv").write_text(
        "subject_id\tct\ttarget_side\tphantom\tct_scanner\n"
        "A\tdata/ct_A\tL\tabsent\t\nB\tdata/ct_B.nii.gz\tR\tabsent\tScanner X\n"
        "C\tdata/ct_C.mha\tL\tabsent\t\n"
    )
    (root / "radiographs.tsv").write_text(
        "subject_id\timage_id\tpath\tpose\tgeometry\n"
        "A\tap\tdata/A_ap.dcm\tsupine\t\nB\tap\tdata/B_ap.png\tstanding\tdata/B_ap.json\n"
        "C\tap\tdata/C_ap.dcm\tstanding\t\n"
    )
    cfg = root / "config.yaml"
    cfg.write_text(
        f"cohort:\n  subjects: {root / 'subjects.tsv'}\n  radiographs: {root / 'radiographs.tsv'}\n"
        "calibration:\n  scanners:\n"
        "    Scanner X: {slope_hu_per_mg_cm3: 0.9, intercept_hu: -5.0}\n"
    )
    return cfg


@pytest.mark.slow
def test_user_cohort_bad_radiograph_fails_alone_and_no_identifier_leaks(workflow, tmp_path):
    cfg = _user_cohort(tmp_path / "cohort")
    p = snakemake(workflow, "--configfile", str(cfg), "--keep-going", check=False)
    assert p.returncode != 0
    res = workflow / "results" / "subjects"
    for s in ("A", "B"):
        assert (res / s / "radiographs" / "ap" / "radiograph.mha").is_file()
        assert (res / s / "radiographs" / "ap" / "geometry.json").is_file()
    for s in ("A", "B", "C"):
        assert (res / s / "ct" / "ct_hu.nii.gz").is_file()
    assert not (res / "C" / "radiographs" / "ap" / "radiograph.mha").exists()
    log = (workflow / "logs" / "import_radiograph" / "C" / "ap.log").read_text()
    assert "subject C" in log and "C_ap.dcm" in log and "DistanceSourceToDetector" in log
    # No phantom: B falls back to its scanner's line from the config, A cannot be
    # calibrated and says why, naming the subject.
    cal_b = json.loads((res / "B" / "ct" / "calibration.json").read_text())
    assert cal_b["method"] == "scanner" and cal_b["slope_hu_per_mg_cm3"] == 0.9
    assert not (res / "A" / "ct" / "density_mg_cm3.nii.gz").exists()
    log_a = (workflow / "logs" / "calibrate" / "A.log").read_text()
    assert "subject A" in log_a and "cannot calibrate" in log_a
    # B's "CT" is a box of muscle: segmentation stops it, naming the subject and why.
    log_b = (workflow / "logs" / "segment" / "B.log").read_text()
    assert "subject B" in log_b and "error" in log_b
    assert not (res / "B" / "ct" / "labels.nii.gz").exists()
    geometry = json.loads((res / "A" / "radiographs" / "ap" / "geometry.json").read_text())
    assert geometry["sdd_mm"] == 1100.0 and geometry["pixel_spacing_mm"] == [0.2, 0.2]
    # Privacy: no DICOM identifier in any product or log.
    for folder in ("results", "logs"):
        for f in (workflow / folder).rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                for value in IDENTIFIERS.values():
                    assert value.encode() not in data, (f, value)
