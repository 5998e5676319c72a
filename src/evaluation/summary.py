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

from evaluation.metrics import bland_altman, icc, mae, pearson, rms_cv, see

# Table 2's rows, in the paper's order, then the references.
METHODS = {
    "conventional_regression": "Conventional regression",
    "decomposition": "Decomposition",
    "decomposition+regression_frozen": "+ Regression (freeze M_E)",
    "decomposition+regression": "+ Regression",
    "gt_pf_drr": "Ground-truth PF-DRR (reference)",
    "training_mean": "Training-fold mean (null model)",
}
TARGETS = {"dxa_bmd_g_cm2": ("DXA-BMD", "g/cm²"), "qct_bmd_mg_cm3": ("QCT-BMD", "mg/cm³")}
METRIC_COLUMNS = [
    "method", "target", "n", "n_missing", "pcc", "pcc_p", "icc", "mae", "see", "rms_cv_pct",
    "ba_bias", "ba_lower", "ba_upper", "ba_outliers",
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


def cohort_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, target) present, in Table 2's order."""
    rows = []
    known = list(METHODS) + sorted(set(predictions["method"]) - set(METHODS))
    for method in known:
        for target in TARGETS:
            group = predictions[
                (predictions["method"] == method) & (predictions["target"] == target)
            ]
            if len(group):
                rows.append({"method": method, "target": target, **method_metrics(group)})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _cell(value: float, digits: int) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"


def table2_markdown(metrics: pd.DataFrame) -> str:
    """Table 2's shape: a row per method; PCC, ICC(2,1), MAE, SEE and RMS-CV per target."""
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
    n = int(metrics["n"].max()) if len(metrics) else 0
    lines += [
        "",
        f"Cross-validated over the folds' test radiographs (up to {n} per method and "
        "target). ICC is ICC(2,1), absolute agreement; SEE is the residual SD of the "
        "reference's line on the prediction; RMS-CV is across each subject's radiographs "
        "(docs/evaluation.md). The null model predicts each test subject's training-fold "
        "mean: a method must beat it to carry information.",
    ]
    return "\n".join(lines) + "\n"
