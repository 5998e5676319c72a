"""``python -m models``: train the decomposition stages, predict, read BMD.

``train``         one stage on one fold's training subjects: stage 1 radiograph → bone
                  DRR (dataset A), stage 2 radiograph → PF-DRR (dataset B), optionally
                  from stage 1's weights (hierarchical learning) → ``final.pt`` and the
                  loss history.
``predict-fold``  a stage-2 model on its fold (or each of several folds in turn, one
                  process): PF-DRRs of the training and test subjects' pairs; per
                  target (DXA-BMD, QCT-BMD) the threshold and line fitted on the
                  training subjects, applied to the test subjects; the ground-truth
                  PF-DRRs through the same procedure; with ``--regressors`` the fold's
                  regressors' BMD of the test subjects → predictions TSV and the
                  calibrations; with ``--out-checks``, failure detection: each test
                  PF-DRR's plausibility against the training fold's true ones.
``train-regressor``  stage three (stage two's encoder and a regression head: encoder
                  frozen, then end to end) or the conventional baseline (a CNN on the PF
                  ROI), for each BMD target in turn on one fold → ``frozen.pt`` (stage
                  three), ``final.pt`` and the loss history per target.
``predict-regressors``  a fold's regressors on its test subjects → predictions TSV.
``predict-compressed``  a fold's stage-two model (through its BMD calibration) and its
                  regressors (each of several folds in turn) on its test subjects'
                  radiographs compressed (each condition's index from ``python -m
                  evaluation compress``) → predictions TSV with the condition and the
                  file's size.
``gather``        the folds' predictions in one table (``results/cohort/predictions.tsv``).
``predict``       one new radiograph: PF-DRR (pair and radiograph frames) and BMD (from
                  the PF-DRR, and from a stage-three regressor when given).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from conventions.errors import InputError, run_cli
from conventions.predictions import BMD_TARGETS, PREDICTION_COLUMNS
from conventions.who import NHANES_TOTAL_HIP_WOMEN
from models.folds import fold_index, fold_rows, fold_subjects

# Each command imports torch, timm and the networks itself: a job pays ~4 s for them,
# which argument parsing, --help and the table-only ``gather`` do not need.

STAGE_TARGET = {1: "bone", 2: "pf"}


def train_command(a) -> int:
    from conventions.files import write_json
    from models.data import PairDataset
    from models.train import TrainConfig, train_stage

    train, _ = fold_subjects(a.folds, a.fold)
    overrides = json.loads(a.config) if a.config else {}
    factor = int(overrides.pop("factor", 1))
    cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), **overrides})
    data = PairDataset(a.table, train, STAGE_TARGET[a.stage], factor, augment=cfg.augment,
                       poses=a.poses, augment_intensity=cfg.augment_intensity,
                       augment_range=cfg.augment_range)  # fmt: skip
    poses = f" in the poses {', '.join(a.poses)}" if a.poses else ""
    print(f"stage {a.stage}, fold {a.fold}: {len(data)} pairs of {len(train)} subjects{poses}")
    run = train_stage(data, cfg, a.out_dir, init_from=a.init, progress=not a.quiet)
    write_json(a.out_history, {"stage": a.stage, "fold": a.fold, "factor": factor,
                               "init": a.init, "poses": a.poses,
                               "history": run["history"]})  # fmt: skip
    return 0


def per_fold(a, names: tuple[str, ...], grouped: tuple[str, ...] = ()) -> list[dict]:
    """The arguments of each of ``a.fold``'s folds: one value of each of ``names`` a fold,
    and of each of ``grouped`` (lists given fold after fold) an equal share. One process
    predicts an experiment's folds in turn: a models job pays ~4.5 s for torch and timm
    before any work (docs/performance.md, round nine)."""
    n = len(a.fold)
    if len(set(a.fold)) != n:
        raise ValueError(f"--fold names a fold twice: {a.fold}")
    for name in names:
        values = getattr(a, name)
        if values is not None and len(values) != n:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} gives {len(values)} values for {n} folds: one a fold")
    shares = {}
    for name in grouped:
        values = getattr(a, name) or []
        if len(values) % n:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} gives {len(values)} files for {n} folds: as many a fold")
        k = len(values) // n
        shares[name] = [values[i * k : (i + 1) * k] for i in range(n)]
    return [
        {
            "fold": fold,
            **{name: (getattr(a, name) or [None] * n)[i] for name in names},
            **{name: shares[name][i] for name in grouped},
        }
        for i, fold in enumerate(a.fold)
    ]


def predict_fold_command(a) -> int:
    import numpy as np
    import pandas as pd

    from conventions.files import write_json, write_text
    from models.cross_validation import (
        fold_bmd_predictions,
        pf_drr_checks,
        pf_roi_intensities,
        regressor_rows,
    )
    from models.data import load_pair
    from models.plausibility import PlausibleRange
    from models.predict import load_generator, predict_images

    folds = per_fold(a, ("model", "out_predictions", "out_calibration", "out_intensities",
                         "out_checks"), ("regressors",))  # fmt: skip
    loaded = {}  # the pairs by file: every fold reads most of the cohort's
    for f in folds:
        generator, _ = load_generator(f["model"])
        train, test = fold_subjects(a.folds, f["fold"])
        table = fold_rows(a.table, set(train) | set(test))
        for p in table["pair"]:
            if p not in loaded:
                loaded[p] = load_pair(p, "pf", a.factor)
        pairs = [loaded[p] for p in table["pair"]]
        predicted = predict_images(generator, np.stack([x for x, _ in pairs]))
        truth_images = np.stack([y for _, y in pairs])
        # The calibration is fitted on the training radiographs the model was trained on
        # (its poses only, in a limited-pose training); every pose of the test subjects is
        # predicted.
        is_test = table["subject_id"].isin(set(test)).to_numpy()
        is_train = ~is_test & (table["pose"].isin(set(a.poses)).to_numpy() if a.poses else True)
        rows, calibrations = fold_bmd_predictions(
            table, is_test, is_train, predicted, truth_images, a.bmd_fit, f["fold"]
        )
        if f["regressors"]:  # the fold's stage-three regressors and baseline, same table
            test_table = table[is_test].reset_index(drop=True)
            rows += regressor_rows(test_table, f["regressors"], f["fold"])
        out = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
        write_text(f["out_predictions"], out.to_csv(sep="\t", index=False, float_format="%.6g"))
        if f["out_intensities"]:
            intensities = pf_roi_intensities(table, is_test, f["fold"], a.factor, predicted)
            write_text(f["out_intensities"],
                       intensities.to_csv(sep="\t", index=False, float_format="%.6g"))  # fmt: skip
        if f["out_checks"]:
            # Failure detection: the test PF-DRRs against the training fold's true ones.
            plausible = None
            if is_train.sum() >= 3:
                plausible = PlausibleRange.fit(truth_images[is_train])
                calibrations["plausible_range"] = plausible.to_dict()
            checks = pf_drr_checks(table, is_test, f["fold"], predicted, plausible)
            write_text(f["out_checks"], checks.to_csv(sep="\t", index=False, float_format="%.6g"))
        write_json(f["out_calibration"], {"fold": f["fold"], "factor": a.factor, **calibrations})
        print(f"fold {f['fold']}: {len(out)} predictions of {int(is_test.sum())} test pairs")
    return 0


def train_regressor_command(a) -> int:
    """One regressor per ``--target`` in turn, each into its own ``--out-dir``: one
    process (torch, timm and the fold's split loaded once) for a fold's targets."""
    if not len(a.target) == len(a.out_dir) == len(a.out_history):
        raise ValueError("--target, --out-dir and --out-history must pair up")
    train, _ = fold_subjects(a.folds, a.fold)
    for target, out_dir, out_history in zip(a.target, a.out_dir, a.out_history, strict=True):
        train_one_regressor(a, train, target, out_dir, out_history)
    return 0


def train_one_regressor(a, train, target: str, out_dir: str, out_history: str) -> None:
    from conventions.files import write_json
    from models.data import RegressionDataset
    from models.train import load_checkpoint
    from models.train_regression import RegressionConfig, train_regressor

    settings = {**(json.loads(a.config) if a.config else {}), "kind": a.kind, "target": target}
    if a.kind == "decomposition":
        if a.init is None:
            raise ValueError("stage three needs --init, the fold's stage-two checkpoint")
        stage2 = load_checkpoint(a.init)["config"]  # the encoder is stage two's
        settings.update(backbone=stage2["backbone"], width=stage2["width"])
    cfg = RegressionConfig.from_dict(settings)
    roi = cfg.roi_pixels if a.kind == "conventional" else None
    data = RegressionDataset(a.table, train, target, cfg.factor, cfg.augment, roi_size=roi,
                             poses=a.poses, augment_intensity=cfg.augment_intensity,
                             augment_range=cfg.augment_range)  # fmt: skip
    cfg.image_size = tuple(data.inputs[0].shape)
    print(f"{a.kind} regression of {target}, fold {a.fold}: {len(data)} radiographs of "
          f"{len(train)} subjects, input {cfg.image_size}", flush=True)  # fmt: skip
    run = train_regressor(data, cfg, out_dir, init_from=a.init, progress=not a.quiet)
    label = "stage 3" if a.kind == "decomposition" else "conventional"
    write_json(out_history, {"stage": f"{label}, {target}", "fold": a.fold,
                             "factor": cfg.factor, "history": run["history"]})  # fmt: skip


def predict_regressors_command(a) -> int:
    import pandas as pd

    from conventions.files import write_text
    from models.cross_validation import regressor_rows

    _, test = fold_subjects(a.folds, a.fold)
    rows = regressor_rows(fold_rows(a.table, test), a.models, a.fold)
    out = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
    write_text(a.out, out.to_csv(sep="\t", index=False, float_format="%.6g"))
    print(f"fold {a.fold}: {len(out)} predictions by {len(a.models)} regressors")
    return 0


def predict_compressed_command(a) -> int:
    """Every model of each fold on its test radiographs under each compression condition:
    the networks trained on the original radiographs, as a clinic would use them."""
    import numpy as np
    import pandas as pd

    from conventions.files import write_text
    from conventions.geometry import read_json_object
    from conventions.radiograph import read_radiograph
    from models.bmd import BmdCalibration
    from models.cross_validation import prediction_rows, regressor_rows
    from models.data import load_input
    from models.predict import load_generator, predict_images

    folds = per_fold(a, ("model", "calibration", "out"), ("regressors",))
    indexes = {}
    for index_path in a.compressed:
        index = pd.read_csv(index_path, sep="\t", dtype={"subject_id": str, "image": str})
        index = index.set_index(["subject_id", "image"])
        conditions = set(index["condition"])
        if len(conditions) != 1:
            raise InputError(index_path, f"holds {len(conditions)} conditions, not one")
        indexes[index_path] = (conditions.pop(), index)
    for f in folds:
        generator, _ = load_generator(f["model"])
        doc = read_json_object(f["calibration"])
        fits = {t: doc.get(f"decomposition/{t}", {"error": "absent"}) for t in BMD_TARGETS}
        calibrations = {t: BmdCalibration.from_record(c) for t, c in fits.items()
                        if "error" not in c}  # fmt: skip
        _, test = fold_subjects(a.folds, f["fold"])
        table = fold_rows(a.table, test)
        every = np.ones(len(table), bool)
        keys = list(zip(table["subject_id"], table["image"], strict=True))
        rows = []
        for index_path, (condition, index) in indexes.items():
            missing = [k for k in keys if k not in index.index]
            if missing:
                raise InputError(index_path, f"lacks the test radiographs {missing[:3]}")
            xrays = [read_radiograph(index.loc[k, "file"]).pixels for k in keys]
            pairs = list(zip(table["pair"], xrays, strict=True))
            part = []
            if calibrations:
                factor = int(doc["factor"])  # the stage-two model's, as predict-fold read it
                images = predict_images(generator, np.stack([load_input(p, factor, xray=x)
                                                             for p, x in pairs]))  # fmt: skip
                for target, cal in calibrations.items():
                    part += prediction_rows(table, every, f["fold"], "decomposition", target,
                                            cal.predict(images))  # fmt: skip
            part += regressor_rows(table, f["regressors"], f["fold"], xrays)
            frame = pd.DataFrame(part, columns=PREDICTION_COLUMNS)
            frame["condition"] = condition
            frame["bytes"] = index.loc[list(zip(frame["subject_id"], frame["image"],
                                                strict=True)), "bytes"].to_numpy()  # fmt: skip
            rows.append(frame)
        out = pd.concat(rows, ignore_index=True)
        write_text(f["out"], out.to_csv(sep="\t", index=False, float_format="%.6g"))
        print(f"fold {f['fold']}: {len(out)} predictions under {len(a.compressed)} conditions")
    return 0


def gather_command(a) -> int:
    import pandas as pd

    from conventions.files import write_text

    tables = [
        pd.read_csv(p, sep="\t", dtype={"subject_id": str, "image": str}) for p in a.predictions
    ]
    out = pd.concat(tables, ignore_index=True)
    keys = ["condition", "method", "target", "subject_id", "image"]
    out = out.sort_values([k for k in keys if k in out.columns], kind="stable")
    write_text(a.out, out.to_csv(sep="\t", index=False, float_format="%.6g"))
    print(f"{len(out)} predictions from {len(tables)} folds")
    return 0


def package_command(a) -> int:
    from models.deploy import package_model

    doc = package_model(
        a.generator,
        a.regressors,
        a.table,
        a.folds,
        a.factor,
        a.out_dir,
        {"mean_g_cm2": a.t_mean, "sd_g_cm2": a.t_sd},
        metrics=a.metrics,
        bmd_fit=a.bmd_fit,
    )
    c = doc["cohort"]
    print(f"model of {c['subjects']} subjects ({c['pairs']} pairs) in {a.out_dir}")
    return 0


def predict_command(a) -> int:
    from conventions.files import write_json, write_npz
    from conventions.labels import SIDES
    from conventions.radiograph import read_radiograph
    from models.deploy import load_model, overlay_figure, predict_hips

    model = load_model(a.model_dir)
    radiograph = read_radiograph(a.xray)
    sides = SIDES if a.side == "both" else (a.side,)
    hips, overlay = predict_hips(model, radiograph, sides)
    out = Path(a.out_dir) if a.out_dir else Path(f"{Path(a.xray).stem}.bmd")
    record = {
        "model": model.doc["what"],
        "t_score_reference": model.t_reference,
        "image": {
            k: radiograph.info.get(k)
            for k in (
                "format",
                "modality",
                "view_position",
                "photometric_interpretation",
                "bits_stored",
            )
        },
        "shape": list(radiograph.pixels.shape),
        "hips": hips,
    }
    write_json(out / "prediction.json", record)
    write_npz(out / "pf_drr.npz", pf_drr_radiograph_g_cm2=overlay)
    overlay_figure(radiograph.pixels, overlay, hips, out / "pf_drr.png")
    print(json.dumps(hips, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m models", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="one decomposition stage on one fold")
    p.add_argument("--stage", type=int, choices=(1, 2), required=True)
    p.add_argument("--table", required=True, help="dataset_A.tsv (stage 1) or dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument(
        "--fold", type=fold_index, required=True, help="a fold, or 'all': the final model"
    )
    p.add_argument("--poses", nargs="*", default=None,
                   help="train (and calibrate) on these poses' radiographs only")  # fmt: skip
    p.add_argument("--init", default=None, help="start from this checkpoint's weights")
    p.add_argument("--config", default=None, help="JSON: TrainConfig fields and 'factor'")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--out-history", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=train_command)
    p = sub.add_parser("predict-fold", help="PF-DRRs and BMD of folds' test subjects")
    p.add_argument("--fold", type=int, nargs="+", required=True,
                   help="one or more folds, predicted in turn in one process")  # fmt: skip
    p.add_argument("--model", nargs="+", required=True, help="each fold's stage-two final.pt")
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument("--poses", nargs="*", default=None,
                   help="train (and calibrate) on these poses' radiographs only")  # fmt: skip
    p.add_argument("--factor", type=int, default=1, help="the model's training downsampling")
    p.add_argument("--bmd-fit", choices=("ground_truth", "predicted"), default="ground_truth",
                   help="fit the BMD threshold and line on the training fold's ground-truth "
                   "PF-DRRs (the paper's) or on their predictions")  # fmt: skip
    p.add_argument("--out-predictions", nargs="+", required=True, help="one a fold")
    p.add_argument("--out-calibration", nargs="+", required=True, help="one a fold")
    p.add_argument("--regressors", nargs="*", default=[],
                   help="the folds' regressors (frozen.pt / final.pt), their BMD too: "
                   "the first fold's, then the next fold's, as many each")  # fmt: skip
    p.add_argument("--out-intensities", nargs="+", default=None,
                   help="the test pairs' PF-region mean intensities (Fig. 1, TSV), "
                   "one a fold")  # fmt: skip
    p.add_argument("--out-checks", nargs="+", default=None,
                   help="failure detection: the test PF-DRRs' plausibility (TSV), "
                   "one a fold")  # fmt: skip
    p.set_defaults(run=predict_fold_command)
    p = sub.add_parser("train-regressor", help="stage three or the baseline, per target")
    p.add_argument("--kind", choices=("decomposition", "conventional"), required=True)
    p.add_argument("--target", nargs="+", choices=BMD_TARGETS, required=True,
                   help="one or more BMD columns, each trained in turn")  # fmt: skip
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument(
        "--fold", type=fold_index, required=True, help="a fold, or 'all': the final model"
    )
    p.add_argument("--poses", nargs="*", default=None,
                   help="train (and calibrate) on these poses' radiographs only")  # fmt: skip
    p.add_argument("--init", default=None, help="stage three: the fold's stage-two checkpoint")
    p.add_argument("--config", default=None, help="JSON: RegressionConfig fields")
    p.add_argument("--out-dir", nargs="+", required=True, help="one per --target")
    p.add_argument("--out-history", nargs="+", required=True, help="one per --target")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=train_regressor_command)
    p = sub.add_parser("predict-regressors", help="a fold's regressors on its test subjects")
    p.add_argument("--models", nargs="+", required=True, help="frozen.pt / final.pt files")
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument("--fold", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=predict_regressors_command)
    p = sub.add_parser("predict-compressed",
                       help="folds' models on their compressed test radiographs")  # fmt: skip
    p.add_argument("--fold", type=int, nargs="+", required=True,
                   help="one or more folds, predicted in turn in one process")  # fmt: skip
    p.add_argument("--model", nargs="+", required=True, help="each fold's stage-two final.pt")
    p.add_argument("--calibration", nargs="+", required=True, help="each fold's calibration.json")
    p.add_argument("--regressors", nargs="*", default=[],
                   help="the folds' frozen.pt / final.pt files, fold after fold, "
                   "as many each")  # fmt: skip
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument("--compressed", nargs="+", required=True, help="conditions' index TSVs")
    p.add_argument("--out", nargs="+", required=True, help="one a fold")
    p.set_defaults(run=predict_compressed_command)
    p = sub.add_parser("gather", help="the folds' predictions in one table")
    p.add_argument("--predictions", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(run=gather_command)
    p = sub.add_parser("package", help="the deployable model folder from fold 'all'")
    p.add_argument("--generator", required=True, help="fold all's stage-two final.pt")
    p.add_argument("--regressors", nargs="*", default=[], help="fold all's stage-three final.pt")
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--folds", required=True)
    p.add_argument("--factor", type=int, default=1, help="the models' training downsampling")
    p.add_argument("--bmd-fit", choices=("ground_truth", "predicted"), default="ground_truth")
    p.add_argument("--metrics", default=None, help="the cross-validation's metrics.tsv")
    p.add_argument("--t-mean", type=float, default=NHANES_TOTAL_HIP_WOMEN["mean_g_cm2"])
    p.add_argument("--t-sd", type=float, default=NHANES_TOTAL_HIP_WOMEN["sd_g_cm2"])
    p.add_argument("--out-dir", required=True)
    p.set_defaults(run=package_command)
    p = sub.add_parser("predict", help="BMD, T-score and WHO category of a radiograph's hips")
    p.add_argument("--model-dir", required=True, help="a model folder (python -m models package)")
    p.add_argument("--xray", required=True, help="an AP hip radiograph: DICOM or image file")
    p.add_argument("--side", choices=("L", "R", "both"), default="both",
                   help="the patient's hip to read")  # fmt: skip
    p.add_argument(
        "--out-dir", default=None, help="prediction.json, pf_drr.png, pf_drr.npz (<xray>.bmd/)"
    )
    p.set_defaults(run=predict_command)
    a = ap.parse_args(argv)
    return run_cli(lambda: a.run(a), getattr(a, "subject", None))


if __name__ == "__main__":
    sys.exit(main())
