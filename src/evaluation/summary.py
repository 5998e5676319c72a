"""The cohort's metrics per method and target, and the Table-2-shaped summary.

Input: ``results/cohort/predictions.tsv`` (subject, image, pose, fold, method, target,
prediction, truth: every fold's test radiographs). Every metric is computed over the
radiographs pooled across folds, as the paper reports cross-validated results; a
prediction that is missing (NaN: a fold whose model produced no usable estimate) is
counted and left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conventions.predictions import (
    BMD_TARGETS,
    LEARNED_METHODS,
    METHODS,
    ROBUSTNESS_EXPERIMENTS,
    read_predictions,
)
from evaluation.metrics import bland_altman, icc, mae, pearson, rms_cv, see

__all__ = ["LEARNED_METHODS", "METHODS", "TARGETS"]  # Table 2's rows, the paper's order
TARGETS = BMD_TARGETS  # id → (name, unit)
METRIC_COLUMNS = [
    "experiment", "method", "target", "n", "n_missing", "pcc", "pcc_p", "icc", "mae", "see",
    "rms_cv_pct", "ba_bias", "ba_lower", "ba_upper", "ba_outliers",
]  # fmt: skip


def method_metrics(group: pd.DataFrame) -> dict:
    """The metrics of one method on one target (NaN where too few radiographs)."""
    ok = group[np.isfinite(group["prediction"].to_numpy(float))]
    pred, truth = ok["prediction"].to_numpy(float), ok["truth"].to_numpy(float)
    row = {"n": len(ok), "n_missing": len(group) - len(ok)}
    nan = float("nan")
    row["pcc"], row["pcc_p"] = pearson(pred, truth) if len(ok) >= 3 and np.ptp(pred) > 0 else (
        nan, nan)  # fmt: skip
    row["icc"] = icc(pred, truth) if len(ok) >= 2 else nan
    row["mae"] = mae(pred, truth) if len(ok) else nan
    row["see"] = see(pred, truth) if len(ok) >= 3 and np.ptp(pred) > 0 else nan
    repeated = ok["subject_id"].duplicated(keep=False).any()
    row["rms_cv_pct"] = rms_cv(pred, ok["subject_id"].to_numpy()) if repeated else nan
    if len(ok) >= 2:
        ba = bland_altman(pred, truth)
        row.update(ba_bias=ba.bias, ba_lower=ba.lower, ba_upper=ba.upper,
                   ba_outliers=int(ba.outliers.sum()))  # fmt: skip
    else:
        row.update(ba_bias=nan, ba_lower=nan, ba_upper=nan, ba_outliers=0)
    return row


def ordered_methods(methods) -> list[str]:
    """The methods present, Table 2's first (in its order), then any others sorted."""
    present = set(methods)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def cohort_metrics(predictions: pd.DataFrame, experiment: str = "main") -> pd.DataFrame:
    """One row per (method, target) present, in Table 2's order."""
    rows = []
    for method in ordered_methods(predictions["method"]):
        for target in TARGETS:
            group = predictions[
                (predictions["method"] == method) & (predictions["target"] == target)
            ]
            if len(group):
                rows.append({"experiment": experiment, "method": method, "target": target,
                             **method_metrics(group)})  # fmt: skip
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


# The paper's poses in its order; a cohort's other pose labels follow, sorted.
POSES = ("standing", "supine", "abduction", "adduction")


def ordered_poses(poses) -> list[str]:
    present = set(poses)
    return [p for p in POSES if p in present] + sorted(present - set(POSES))


POSEWISE_COLUMNS = ["experiment", "method", "target", "pose", "n", "pcc", "mae"]


def posewise_metrics(predictions: pd.DataFrame, experiment: str = "main") -> pd.DataFrame:
    """PCC and MAE of each method and target on each pose's radiographs alone (the
    paper's Fig. 7): does a method hold up on every pose, or only on some?"""
    rows = []
    for method in ordered_methods(predictions["method"]):
        for target in TARGETS:
            g = predictions[(predictions["method"] == method) & (predictions["target"] == target)]
            for pose in ordered_poses(g["pose"]):
                m = method_metrics(g[g["pose"] == pose])
                rows.append({"experiment": experiment, "method": method, "target": target,
                             "pose": pose, "n": m["n"], "pcc": m["pcc"],
                             "mae": m["mae"]})  # fmt: skip
    return pd.DataFrame(rows, columns=POSEWISE_COLUMNS)


COMPRESSION_COLUMNS = ["condition", "mean_bytes", "method", "target", "n", "pcc", "icc",
                       "mae"]  # fmt: skip


def compression_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per compression condition, method and target: PCC, ICC and MAE, with the mean file
    size of the condition's test radiographs (Fig. 8's axes)."""
    rows = []
    for condition, c in predictions.groupby("condition", sort=False):
        size = float(c.drop_duplicates(["subject_id", "image"])["bytes"].mean())
        for method in ordered_methods(c["method"]):
            for target in TARGETS:
                g = c[(c["method"] == method) & (c["target"] == target)]
                if not len(g):
                    continue
                m = method_metrics(g)
                rows.append({"condition": condition, "mean_bytes": size, "method": method,
                             "target": target, "n": m["n"], "pcc": m["pcc"], "icc": m["icc"],
                             "mae": m["mae"]})  # fmt: skip
    return pd.DataFrame(rows, columns=COMPRESSION_COLUMNS)


FAILURE_COLUMNS = ["method", "target", "n", "n_flagged", "pcc_all", "pcc_kept", "icc_all",
                   "icc_kept", "mae_all", "mae_kept"]  # fmt: skip


def failure_detection_metrics(predictions: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Per method and target, PCC, ICC and MAE over every test radiograph and over those
    whose predicted PF-DRR was not flagged as implausible (``checks``: subject_id, image,
    flagged): what failure detection would have saved (Sec. 5.3)."""
    flagged = {(r.subject_id, r.image) for r in checks.itertuples() if bool(r.flagged)}
    rows = []
    for method in ordered_methods(predictions["method"]):
        for target in TARGETS:
            g = predictions[(predictions["method"] == method) & (predictions["target"] == target)]
            if not len(g):
                continue
            keys = zip(g["subject_id"], g["image"], strict=True)
            is_flagged = np.array([k in flagged for k in keys], bool)
            every, rest = method_metrics(g), method_metrics(g[~is_flagged])
            rows.append({"method": method, "target": target, "n": every["n"],
                         "n_flagged": int(is_flagged.sum()), "pcc_all": every["pcc"],
                         "pcc_kept": rest["pcc"], "icc_all": every["icc"],
                         "icc_kept": rest["icc"], "mae_all": every["mae"],
                         "mae_kept": rest["mae"]})  # fmt: skip
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def _cell(value: float, digits: int) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"


BMD_FITS = {
    "ground_truth": "the training fold's ground-truth PF-DRRs, as in the paper's Fig. 4",
    "predicted": "the network's predicted PF-DRRs of the training fold's radiographs",
}


def table2_markdown(
    metrics: pd.DataFrame, titles: dict[str, str] | None = None, bmd_fit: str | None = None
) -> str:
    """Table 2's shape: a row per method; PCC, ICC(2,1), MAE, SEE and RMS-CV per target;
    a section per experiment (headed by ``titles``) when there is more than one; with
    ``bmd_fit``, a note of what the decomposition's BMD threshold and line were fitted on."""
    experiments = list(dict.fromkeys(metrics["experiment"])) if len(metrics) else ["main"]
    lines = []
    for experiment in experiments:
        if len(experiments) > 1:
            lines += [f"### {(titles or {}).get(experiment, experiment)}", ""]
        lines += [*_table2_rows(metrics[metrics["experiment"] == experiment]), ""]
    n = int(metrics["n"].max()) if len(metrics) else 0
    lines += [
        f"Cross-validated over the folds' test radiographs (up to {n} per method and "
        "target). ICC is ICC(2,1), absolute agreement; SEE is the residual SD of the "
        "reference's line on the prediction; RMS-CV is across each subject's radiographs "
        "(docs/evaluation.md). The null model predicts each test subject's training-fold "
        "mean: a method must beat it to carry information.",
    ]
    if bmd_fit:
        lines[-1] += (" The decomposition's BMD threshold and line were fitted on "
                      f"{BMD_FITS[bmd_fit]}.")  # fmt: skip
    return "\n".join(lines) + "\n"


def _table2_rows(metrics: pd.DataFrame) -> list[str]:
    header = ["Method"]
    for name, unit in TARGETS.values():
        header += [f"{name} PCC", "ICC", f"MAE ({unit})", f"SEE ({unit})", "RMS-CV"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    by_key = {(r.method, r.target): r for r in metrics.itertuples()}
    for method in dict.fromkeys(metrics["method"]):
        cells = [METHODS.get(method, method)]
        for target in TARGETS:
            r = by_key.get((method, target))
            if r is None:
                cells += ["–"] * 5
                continue
            digits = 3 if target == "dxa_bmd_g_cm2" else 1
            rms = "–" if not np.isfinite(r.rms_cv_pct) else f"{r.rms_cv_pct:.2f}%"
            cells += [_cell(r.pcc, 3), _cell(r.icc, 3), _cell(r.mae, digits),
                      _cell(r.see, digits), rms]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# The paper's Fig. 1: what the PF region's mean intensity of each image says about BMD.
PF_INTENSITIES = {
    "radiograph": "Radiograph (stored values)",
    "radiograph_standardised": "Radiograph (standardised)",
    "gt_pf_drr": "Ground-truth PF-DRR",
    "predicted_pf_drr": "Predicted PF-DRR",
}


def pf_intensity_correlations(intensities: pd.DataFrame) -> pd.DataFrame:
    """PCC (and p) of each image's PF-region mean intensity with each BMD target, over
    the test pairs pooled across folds (``python -m models predict-fold
    --out-intensities``)."""
    rows = []
    for target in TARGETS:
        if target not in intensities.columns:
            continue
        for image in PF_INTENSITIES:
            x, y = intensities[image].to_numpy(float), intensities[target].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            r, p = pearson(x[ok], y[ok]) if ok.sum() >= 3 and np.ptp(x[ok]) > 0 else (
                float("nan"), float("nan"))  # fmt: skip
            rows.append({"image": image, "target": target, "n": int(ok.sum()), "pcc": r,
                         "pcc_p": p})  # fmt: skip
    return pd.DataFrame(rows, columns=["image", "target", "n", "pcc", "pcc_p"])


def read_experiments(main: str, items=(), limited_poses=()) -> dict[str, pd.DataFrame]:
    """The main experiment's predictions and the robustness experiments' given as
    ``NAME=PATH`` items."""
    out = {"main": read_predictions(main)}
    for item in items:
        name, _, path = item.partition("=")
        if name not in ROBUSTNESS_EXPERIMENTS or not path:
            raise ValueError(f"--experiment {item!r}: expected NAME=PATH, NAME one of "
                             f"{', '.join(ROBUSTNESS_EXPERIMENTS)}")  # fmt: skip
        out[name] = read_predictions(path)
    if "limited_poses" in out and not limited_poses:
        raise ValueError("the limited_poses experiment needs --limited-poses, the poses trained on")
    return out


def experiment_titles(limited_poses) -> dict[str, str]:
    """Table 2's section headings (the paper's "pose in training dataset" and "using
    QCT / CT")."""
    titles = {
        "main": "Trained on every pose, phantom-calibrated CT",
        "uncalibrated_ct": "Trained on every pose, uncalibrated CT (a fixed HU line)",
        "without_hierarchy": "Trained on every pose, phantom-calibrated CT, without "
        "hierarchical learning (stage 2 from scratch)",
    }
    if limited_poses:
        titles["limited_poses"] = (
            f"Trained on {', '.join(limited_poses)} only, phantom-calibrated CT"
        )
    return titles
