# Configuration, the cohort manifest and input functions shared by all rules.

import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from snakemake.utils import validate

# The workflow's own packages import from src/ whether or not the project is installed
# (e.g. a bare Snakemake with --sdm conda); parsing needs only pandas and jsonschema.
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from cohort.code_digest import code_digest  # noqa: E402
from cohort.manifest import read_cohort  # noqa: E402
from phantom.ids import CT_NAMES, subject_ids  # noqa: E402
from phantom.ids import target_side as synthetic_target_side  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")

# Rules run the packages' CLIs (`python -m <package>`); src/ goes on PYTHONPATH so they
# import even where the project is not installed into the job's environment (--sdm conda).
# Every job's libraries get the job's threads: Snakemake sets OMP_NUM_THREADS (torch, BLAS)
# to them, and ITK and numba, which would start a thread per core of the node, get it too.
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"
    " ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=$OMP_NUM_THREADS NUMBA_NUM_THREADS=$OMP_NUM_THREADS; "
)

SYNTHETIC = not config["cohort"]["subjects"]
# validate() filled in every default the schema declares.
CALIBRATION = config["calibration"]
SEGMENTATION = config["segmentation"]
REGISTRATION = config["registration"]
if REGISTRATION["poses"] == "true" and not SYNTHETIC:
    raise ValueError(
        "registration.poses: true takes the synthetic cohort's true poses; a cohort from a "
        "manifest has none (use registered)"
    )
DATASET = config["dataset"]
# Registration's search and the projections: on the CPU's numba kernels, or on CUDA.
DRR_GPUS = config["drr"]["gpus"]
DRR_DEVICE = f"--device {'cuda' if DRR_GPUS else 'cpu'}"
MODELS = config["models"]
EVALUATION = config["evaluation"]
COMPRESSION = EVALUATION["compression"]
# The experiments models are trained in: "main" (every pose, the phantom-calibrated CT)
# and the robustness studies' (Gu et al. 2023, Sec. 4.2.3 and 4.2.5): "limited_poses",
# stages 2 and 3 trained on LIMITED_POSES' radiographs (stage 1 is main's), tested on
# every pose; "uncalibrated_ct", every stage trained on the decomposition of the CT whose
# density comes from a fixed HU line (rules/robustness.smk); and the ablation
# "without_hierarchy", stage 2 trained from scratch instead of from stage 1 (then stage 3
# on it), when main learns hierarchically.
LIMITED_POSES = EVALUATION["limited_poses"]
UNCALIBRATED = EVALUATION["uncalibrated_ct"]
# What sets each experiment apart, in one place: its datasets' folder, the experiment
# whose stage 1 its stage 2 starts from (None: from scratch), the poses it trains on
# (empty: all).
EXPERIMENT_SETTINGS = {
    "main": {"cohort": "results/cohort", "stage1": "main", "poses": []},
    "limited_poses": {"cohort": "results/cohort", "stage1": "main", "poses": LIMITED_POSES},
    "uncalibrated_ct": {
        "cohort": "results/cohort/uncalibrated_ct",
        "stage1": "uncalibrated_ct",
        "poses": [],
    },
    "without_hierarchy": {"cohort": "results/cohort", "stage1": None, "poses": []},
}
if not MODELS["hierarchical"]:  # then main's stage 2, and every other, starts from scratch
    for settings in EXPERIMENT_SETTINGS.values():
        settings["stage1"] = None
EXPERIMENTS = ["main"]
EXPERIMENTS += ["limited_poses"] if LIMITED_POSES else []
EXPERIMENTS += ["uncalibrated_ct"] if UNCALIBRATED["enabled"] else []
if EVALUATION["without_hierarchy"] and MODELS["hierarchical"]:
    EXPERIMENTS.append("without_hierarchy")
FOLDS = list(range(DATASET["folds"]))
SYNTHETIC_DIR = "results/synthetic"

if SYNTHETIC:
    # The synthetic cohort's IDs follow from the config, so the DAG is known before the
    # phantom has generated anything.
    SUBJECTS = subject_ids(config["synthetic"]["n_subjects"])
    SYNTHETIC_POSES = list(config["synthetic"]["poses"])
    IMAGES = {s: SYNTHETIC_POSES for s in SUBJECTS}
    MANIFEST_SUBJECTS = f"{SYNTHETIC_DIR}/subjects.tsv"
else:
    COHORT = read_cohort(
        config["cohort"]["subjects"],
        config["cohort"]["radiographs"] or None,
        extra_roots=config["cohort"]["data_roots"],
    )
    SUBJECTS = COHORT.subject_ids
    IMAGES = {s: COHORT.images_of(s) for s in SUBJECTS}
    MANIFEST_SUBJECTS = config["cohort"]["subjects"]
    SYNTHETIC_POSES = []


wildcard_constraints:
    subject=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    image=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    fold=r"\d+|all",  # "all": the final model, trained on every subject
    target="dxa|qct",
    experiment="|".join(EXPERIMENTS),
    condition=r"(bits|jpeg)\d+",


def source_hash(*packages):
    """A digest of the code ``python -m <package>`` runs for each package (the modules of
    ``src/`` its CLI imports, transitively, read from the code: cohort.code_digest). As a
    param it makes Snakemake rerun exactly the jobs whose code changed (params are a
    rerun trigger; imported code is not), so an upgrade never leaves stale products
    behind, and a module no job imports reruns nothing."""
    return code_digest(SRC, *packages)


def site_defaults_arguments():
    """import-radiograph's options for the config's site defaults (only those given)."""
    given = config["cohort"].get("site_defaults") or {}
    return " ".join(
        f"--default-{key.replace('_', '-')} {float(value)}"
        for key, value in sorted(given.items())
        if value is not None
    )


def subject_dir(subject):
    return f"results/subjects/{subject}"


def synthetic_ct(subject="{subject}"):
    name = CT_NAMES[config["synthetic"]["ct_format"]]
    return f"{SYNTHETIC_DIR}/{subject}/{name}"


def synthetic_ct_output():
    """The phantom's CT: a file, or a DICOM series folder Snakemake treats as one output."""
    path = synthetic_ct()
    return directory(path) if path.endswith("ct_dicom") else path


def ct_source(wildcards):
    """The subject's CT as given: the user's file or folder, or the phantom's."""
    if SYNTHETIC:
        return synthetic_ct(wildcards.subject)
    return COHORT.subject(wildcards.subject)["ct"]


def subject_phantom(wildcards):
    """'present' or 'absent': the synthetic cohort always has its phantom."""
    return "present" if SYNTHETIC else COHORT.subject(wildcards.subject)["phantom"]


def scanner_line_argument(wildcards):
    """The config's calibration line for the subject's scanner, as a CLI option, if any."""
    scanner = None if SYNTHETIC else COHORT.subject(wildcards.subject)["ct_scanner"]
    line = CALIBRATION["scanners"].get(scanner) if scanner else None
    if line is None:
        return ""
    return f"--scanner-line {line['slope_hu_per_mg_cm3']},{line['intercept_hu']}"


def subject_row(wildcards):
    """The subject's manifest row; the synthetic cohort's has no optional columns."""
    return {} if SYNTHETIC else COHORT.subject(wildcards.subject)


def target_side(wildcards):
    """'L' or 'R': the side whose proximal femur the subject's DXA measured."""
    if SYNTHETIC:
        return synthetic_target_side(config["synthetic"]["seed"], wildcards.subject)
    return COHORT.subject(wildcards.subject)["target_side"]


def segmentation_inputs(wildcards):
    inputs = {
        "ct": f"results/subjects/{wildcards.subject}/ct/ct_hu.nii.gz",
        "density": f"results/subjects/{wildcards.subject}/ct/density_mg_cm3.nii.gz",
    }
    masks = subject_row(wildcards).get("bone_masks")
    if masks:
        inputs["masks"] = masks
    return inputs


def masks_argument(wildcards, input):
    """The manifest's label image and the config's label map, as CLI options."""
    if "masks" not in input.keys():
        return ""
    label_map = SEGMENTATION["label_map"]
    if isinstance(label_map, dict):
        label_map = json.dumps(label_map)
    return f"--masks {shlex.quote(input.masks)} --label-map {shlex.quote(label_map)}"


def segmentation_method(wildcards):
    """The user's masks when the manifest gives them, else the configured method."""
    return "masks" if subject_row(wildcards).get("bone_masks") else SEGMENTATION["method"]


def landmarks_inputs(wildcards):
    inputs = {
        "labels": f"results/subjects/{wildcards.subject}/ct/labels.nii.gz",
        "segmentation": f"results/subjects/{wildcards.subject}/ct/segmentation.json",
    }
    slicer = subject_row(wildcards).get("landmarks")
    if slicer:
        inputs["slicer"] = slicer
    return inputs


def slicer_argument(wildcards, input):
    return f"--slicer {shlex.quote(input.slicer)}" if "slicer" in input.keys() else ""


def radiograph_row(wildcards):
    """The radiograph's manifest row (for the synthetic cohort: its pose label is its ID)."""
    if SYNTHETIC:
        path = f"{SYNTHETIC_DIR}/{wildcards.subject}/radiographs/{wildcards.image}.dcm"
        return {"path": path, "pose": wildcards.image, "geometry": None}
    return COHORT.radiograph(wildcards.subject, wildcards.image)


def radiograph_inputs(wildcards):
    row = radiograph_row(wildcards)
    inputs = {"image": row["path"]}
    if row.get("geometry"):
        inputs["geometry"] = row["geometry"]
    return inputs


def geometry_argument(wildcards, input):
    """The CLI option passing the manifest's geometry JSON, when the row has one."""
    return f"--geometry {shlex.quote(input.geometry)}" if "geometry" in input.keys() else ""


def registration_inputs(wildcards):
    """The CT stages' products and the subject's imported radiographs, plus the manifest's
    initial poses where its rows give them (``init_{body}_{k}``, k the radiograph's index)."""
    subject = f"results/subjects/{wildcards.subject}"
    inputs = {
        "ct": f"{subject}/ct/ct_hu.nii.gz",
        "labels": f"{subject}/ct/labels.nii.gz",
        "landmarks": f"{subject}/ct/landmarks.json",
        **subject_radiograph_inputs(wildcards),
    }
    if not SYNTHETIC:
        for k, image in enumerate(IMAGES[wildcards.subject]):
            row = COHORT.radiograph(wildcards.subject, image)
            for body in ("pelvis", "femur"):
                if row.get(f"init_pose_{body}"):
                    inputs[f"init_{body}_{k}"] = row[f"init_pose_{body}"]
    return inputs


def init_arguments(wildcards, input):
    """``--init-pelvis IMAGE=PATH …`` and ``--init-femur …`` for the rows that give them."""
    args = []
    for body in ("pelvis", "femur"):
        pairs = [
            f"{image}={input[f'init_{body}_{k}']}"
            for k, image in enumerate(IMAGES[wildcards.subject])
            if f"init_{body}_{k}" in input.keys()
        ]
        if pairs:
            args.append(f"--init-{body} " + " ".join(shlex.quote(p) for p in pairs))
    return " ".join(args)


def status_arguments(wildcards):
    return " ".join(
        f"--{key.replace('_', '-')} {value}" for key, value in REGISTRATION["status"].items()
    )


def stage_config(stage):
    """The training settings of a stage (config ``models``), as ``python -m models train``
    takes them."""
    skip = ("stage1", "stage2", "stage3", "baseline", "gpus", "hierarchical", "bmd_fit",
            "final_model")
    cfg = {k: v for k, v in MODELS.items() if k not in skip}
    return {**cfg, **MODELS[f"stage{stage}"]}


# The BMD targets the regressors learn, by the short name their files carry.
REGRESSION_TARGETS = {"dxa": "dxa_bmd_g_cm2", "qct": "qct_bmd_mg_cm3"}


def regressor_config(kind):
    """The settings of stage three (kind "decomposition") or the baseline
    ("conventional"), as ``python -m models train-regressor`` takes them."""
    shared = ["factor", "batch_size", "lr", "weight_decay", "restart_epochs"]
    shared += ["checkpoint_every", "checkpoint_minutes", "seed"]
    shared += ["augment", "augment_intensity", "augment_range"]
    cfg = {k: MODELS[k] for k in shared}
    own = dict(MODELS["stage3" if kind == "decomposition" else "baseline"])
    if kind == "conventional":
        own["baseline_backbone"] = own.pop("backbone")
    return {**cfg, **own}


def fold_regressors(wildcards):
    """A fold's trained regressors: stage three frozen and fine-tuned for each target,
    and in the main experiment the conventional baseline (the robustness studies retrain
    only the proposed method: the baseline sees neither the CT nor, in the paper's
    limited-pose study, fewer poses)."""
    experiment = getattr(wildcards, "experiment", "main")
    stage3 = expand(
        "results/models/{e}/fold{fold}/stage3_{t}/{m}.pt",
        e=experiment,
        fold=wildcards.fold,
        t=REGRESSION_TARGETS,
        m=["frozen", "final"],
    )
    if experiment != "main":
        return stage3
    return stage3 + expand(
        "results/models/main/fold{fold}/baseline_{t}/final.pt",
        fold=wildcards.fold,
        t=REGRESSION_TARGETS,
    )


def experiment_regressors(wildcards):
    """Every fold's regressors (:func:`fold_regressors`), fold after fold: as many a fold,
    in the order ``python -m models predict-fold`` shares them out."""
    experiment = getattr(wildcards, "experiment", "main")
    return [
        path
        for fold in FOLDS
        for path in fold_regressors(SimpleNamespace(experiment=experiment, fold=fold))
    ]


def experiment_table(dataset):
    """An input function: the experiment's dataset table ("A" or "B")."""

    def table(wildcards):
        return f"{EXPERIMENT_SETTINGS[wildcards.experiment]['cohort']}/dataset_{dataset}.tsv"

    return table


def stage2_inputs(wildcards):
    inputs = {"table": experiment_table("B")(wildcards), "folds": "results/cohort/folds.json"}
    stage1 = EXPERIMENT_SETTINGS[wildcards.experiment]["stage1"]
    if stage1 is not None:
        inputs["init"] = f"results/models/{stage1}/fold{wildcards.fold}/stage1/final.pt"
    return inputs


def poses_argument(wildcards):
    """``--poses …`` for an experiment trained on some poses only, else nothing."""
    poses = EXPERIMENT_SETTINGS[wildcards.experiment]["poses"]
    return "--poses " + " ".join(shlex.quote(p) for p in poses) if poses else ""


def evaluation_inputs(wildcards):
    """The main experiment's predictions and checks, and each robustness experiment's
    predictions."""
    inputs = {
        "predictions": "results/cohort/predictions.tsv",
        "checks": "results/cohort/pf_drr_checks.tsv",
    }
    for e in EXPERIMENTS[1:]:
        inputs[e] = f"results/cohort/robustness/{e}/predictions.tsv"
    return inputs


def experiment_arguments(wildcards, input):
    """The robustness experiments' predictions as ``python -m evaluation`` options."""
    args = [f"--experiment {e}={input[e]}" for e in EXPERIMENTS[1:]]
    if LIMITED_POSES:
        args.append("--limited-poses " + " ".join(shlex.quote(p) for p in LIMITED_POSES))
    return " ".join(args)


def radiograph_pairs():
    return [(s, i) for s in SUBJECTS for i in IMAGES[s]]


def subject_radiograph_files(wildcards, pattern):
    """One file per radiograph of the subject, in manifest order: ``pattern`` below
    results/subjects/{subject}/, with ``{image}`` in it."""
    folder = subject_dir(wildcards.subject)
    return [f"{folder}/{pattern.format(image=image)}" for image in IMAGES[wildcards.subject]]


def radiograph_poses(wildcards):
    """The pose labels of the subject's radiographs, in manifest order."""
    if SYNTHETIC:
        return list(IMAGES[wildcards.subject])
    return [COHORT.radiograph(wildcards.subject, i)["pose"] for i in IMAGES[wildcards.subject]]


def subject_radiograph_inputs(wildcards):
    """A subject's imported radiographs and their geometries, in manifest order."""
    return {
        "xrays": subject_radiograph_files(wildcards, "radiographs/{image}/radiograph.mha"),
        "geometries": subject_radiograph_files(wildcards, "radiographs/{image}/geometry.json"),
    }


# The rules whose products are one subject's: per subject, and per radiograph of it.
# Registration and projection are one job per subject (a folder of per-radiograph files):
# one start-up and one reading of the CT for all its radiographs (docs/performance.md).
POSE_RULE = "true_poses" if REGISTRATION["poses"] == "true" else "register"
SUBJECT_RULES = ["import_ct", "calibrate", "segment", "landmarks", "ct_bmd", "ct_qc"]
SUBJECT_RULES += [POSE_RULE, "project", "radiograph_qc"]
RADIOGRAPH_RULES = ["import_radiograph"]
if UNCALIBRATED["enabled"]:
    SUBJECT_RULES += ["calibrate_fixed_line", "ct_bmd_uncalibrated", "project_uncalibrated"]


def subject_products(subject, first_only=False):
    """The outputs of the subject's jobs, from the rules' own output patterns; with
    ``first_only``, one per job (each job writes all its outputs or none)."""
    jobs = [(r, {"subject": subject}) for r in SUBJECT_RULES]
    jobs += [(r, {"subject": subject, "image": i}) for i in IMAGES[subject] for r in RADIOGRAPH_RULES]
    files = []
    for r, wildcards in jobs:
        outputs = getattr(rules, r).output
        files += [f.format(**wildcards) for f in (outputs[:1] if first_only else outputs)]
    return files


def all_products():
    return [
        *expand("results/subjects/{subject}/products.tsv", subject=SUBJECTS),
        "results/cohort/fingerprint.json",
        "results/cohort/fingerprint.tsv",
        "results/cohort/dataset_A.tsv",
        "results/cohort/dataset_B.tsv",
        "results/cohort/folds.json",
        "results/cohort/audit/pf_drr_vs_bmd.png",
        "results/cohort/audit/summary.html",
        "results/cohort/predictions.tsv",
        "results/cohort/models/training_curves.png",
        "results/cohort/metrics.tsv",
        "results/cohort/table2.md",
        "results/cohort/evaluation/scatter.png",
        "results/cohort/evaluation/bland_altman.png",
        "results/cohort/evaluation/absolute_error.png",
        "results/cohort/evaluation/posewise.png",
        "results/cohort/evaluation/pf_roi_intensity.png",
        "results/cohort/posewise.tsv",
        "results/cohort/statistics.tsv",
        "results/cohort/failure_detection.tsv",
        *(["results/cohort/robustness/compression.png"] if COMPRESSION else []),
        *(["results/model/model.json"] if MODELS["final_model"] else []),
    ]
