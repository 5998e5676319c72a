"""The paper's agreement metrics between predicted and reference BMD (Gu et al. 2023,
Sec. 4.1 and Table 2), on plain arrays.

- :func:`pearson`: Pearson's correlation coefficient (PCC) and its p-value (scipy).
- :func:`icc`: the intraclass correlation of prediction and reference as two "raters"
  of each image, from the two-way ANOVA's mean squares (Shrout & Fleiss 1979;
  McGraw & Wong 1996). ``"ICC(2,1)"`` (two-way random effects, absolute agreement, single
  measurement) is the one reported: a method that is correlated but biased or on the
  wrong scale scores lower, as a clinical agreement measure should. ``"ICC(3,1)"``
  (two-way mixed, consistency) ignores a constant bias.
- :func:`mae`: mean absolute error.
- :func:`see`: standard error of estimate, the residual SD of the least-squares line of
  the reference on the prediction (n − 2 degrees of freedom): the error left once a
  method's linear bias is calibrated away.
- :func:`rms_cv`: reproducibility across a subject's radiographs (poses): the root mean
  square over subjects of each subject's coefficient of variation (SD with n − 1 over
  the mean), in per cent, as in precision studies of densitometry (Glüer et al. 1995).
- :func:`bland_altman`: bias (mean of prediction − reference), the SD of the
  differences, the 95 % limits of agreement (bias ± 1.96 SD) and which points lie
  beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

ICC_FORMS = ("ICC(2,1)", "ICC(3,1)")


def _paired(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    if pred.shape != truth.shape or pred.ndim != 1:
        raise ValueError(f"predictions {pred.shape} and references {truth.shape} must be 1-D alike")
    if not (np.isfinite(pred).all() and np.isfinite(truth).all()):
        raise ValueError("predictions and references must be finite (drop missing ones first)")
    return pred, truth


def pearson(pred, truth) -> tuple[float, float]:
    """(PCC, two-sided p-value)."""
    pred, truth = _paired(pred, truth)
    if len(pred) < 3:
        raise ValueError(f"PCC needs at least 3 pairs, got {len(pred)}")
    result = stats.pearsonr(pred, truth)
    return float(result.statistic), float(result.pvalue)


def icc(pred, truth, form: str = "ICC(2,1)") -> float:
    """Intraclass correlation of prediction and reference (k = 2 raters, n images)."""
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {ICC_FORMS}, not {form!r}")
    pred, truth = _paired(pred, truth)
    y = np.stack([truth, pred], axis=1)  # (n targets, k raters)
    n, k = y.shape
    if n < 2:
        raise ValueError(f"ICC needs at least 2 pairs, got {n}")
    grand = y.mean()
    ms_rows = k * ((y.mean(axis=1) - grand) ** 2).sum() / (n - 1)  # between targets
    ms_cols = n * ((y.mean(axis=0) - grand) ** 2).sum() / (k - 1)  # between raters
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_err = (resid**2).sum() / ((n - 1) * (k - 1))
    if form == "ICC(3,1)":
        return float((ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err))
    return float((ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n))


def mae(pred, truth) -> float:
    pred, truth = _paired(pred, truth)
    return float(np.abs(pred - truth).mean())


def see(pred, truth) -> float:
    """Residual SD of the line truth ≈ a·pred + b (n − 2 degrees of freedom)."""
    pred, truth = _paired(pred, truth)
    if len(pred) < 3:
        raise ValueError(f"SEE needs at least 3 pairs, got {len(pred)}")
    slope, intercept = np.polyfit(pred, truth, 1)
    residual = truth - (slope * pred + intercept)
    return float(np.sqrt((residual**2).sum() / (len(pred) - 2)))


def rms_cv(values, subjects) -> float:
    """Root mean square of the per-subject coefficients of variation, per cent.

    ``values``: a prediction per radiograph; ``subjects``: whose radiograph it is.
    Subjects with a single radiograph carry no variation and are left out."""
    values = np.asarray(values, float)
    subjects = np.asarray(subjects)
    if values.shape != subjects.shape:
        raise ValueError(f"{values.shape} values but {subjects.shape} subject labels")
    cvs = []
    for s in np.unique(subjects):
        v = values[subjects == s]
        if len(v) < 2:
            continue
        if v.mean() == 0:
            raise ValueError(f"subject {s}: mean 0, its coefficient of variation is undefined")
        cvs.append(v.std(ddof=1) / abs(v.mean()))
    if not cvs:
        raise ValueError("RMS-CV needs a subject with at least 2 radiographs")
    return float(100.0 * np.sqrt(np.mean(np.square(cvs))))


@dataclass(frozen=True)
class BlandAltman:
    bias: float  # mean of prediction − reference
    sd: float  # SD of the differences (n − 1)
    lower: float  # bias − 1.96 SD
    upper: float  # bias + 1.96 SD
    outliers: np.ndarray  # (n,) bool: differences beyond the limits


def bland_altman(pred, truth) -> BlandAltman:
    pred, truth = _paired(pred, truth)
    if len(pred) < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {len(pred)}")
    diff = pred - truth
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    lower, upper = bias - 1.96 * sd, bias + 1.96 * sd
    return BlandAltman(bias, sd, lower, upper, (diff < lower) | (diff > upper))
