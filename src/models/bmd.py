"""BMD from a (predicted) PF-DRR (Gu et al. 2023, Sec. 3.3 and Fig. 4).

The PF-DRR's mean over its pixels at or above a threshold t is the BMD estimate: the
threshold drops the faint rim a network paints around the femur. t is chosen on the
training fold as the one whose thresholded means correlate best (PCC) with the
ground-truth BMD; a least-squares line then maps the means to DXA-BMD (g/cm²) or
QCT-BMD (mg/cm³). Both are applied unchanged to the test fold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

# Candidate thresholds, g/cm² (a PF-DRR's bone lies at ~0.3-2 g/cm²).
DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.0, 0.81, 0.02), 3))


def thresholded_mean(pf_drr: np.ndarray, threshold: float) -> float:
    """Mean of the pixels ≥ ``threshold`` (and > 0). An image with none reads 0: a
    prediction with no bone in it (an untrained or failed network) is an estimate of no
    bone, kept in the fit and in the predictions rather than dropped."""
    values = np.asarray(pf_drr, float)
    keep = (values >= threshold) & (values > 0)
    return float(values[keep].mean()) if keep.any() else 0.0


def _pcc(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


@dataclass(frozen=True)
class BmdCalibration:
    """Threshold and line fitted on a training fold, for one target."""

    target: str  # e.g. "dxa_bmd_g_cm2"
    threshold_g_cm2: float
    slope: float
    intercept: float
    train_pcc: float
    n_train: int

    def predict(self, pf_drrs) -> np.ndarray:
        means = np.array([thresholded_mean(p, self.threshold_g_cm2) for p in pf_drrs])
        return self.slope * means + self.intercept

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> BmdCalibration:
        """From a fold's ``calibration.json`` entry (which also holds the threshold scan)."""
        return cls(**{f.name: record[f.name] for f in fields(cls)})


def fit_bmd_calibration(
    pf_drrs, bmd, target: str, thresholds=DEFAULT_THRESHOLDS
) -> tuple[BmdCalibration, dict[float, float]]:
    """Choose t by the PCC of the thresholded means with ``bmd`` (ties: the lower t), then
    fit the line. Returns the calibration and the PCC of every candidate (Fig. 4)."""
    bmd = np.asarray(bmd, float)
    if len(pf_drrs) != len(bmd):
        raise ValueError(f"{len(pf_drrs)} images but {len(bmd)} BMD values")
    curve, usable = {}, {}
    for t in thresholds:
        means = np.array([thresholded_mean(p, t) for p in pf_drrs])
        curve[float(t)] = _pcc(means, bmd)
        if np.isfinite(curve[float(t)]):
            usable[float(t)] = curve[float(t)]
    if not usable:
        raise ValueError(
            f"no threshold gives a correlation: {len(bmd)} training images, or their "
            "means or BMD values do not vary"
        )
    # Ties (to rounding) go to the lowest threshold: the least of the image discarded.
    best = max(usable, key=lambda t: (round(usable[t], 9), -t))
    means = np.array([thresholded_mean(p, best) for p in pf_drrs])
    ok = np.isfinite(means) & np.isfinite(bmd)
    slope, intercept = np.polyfit(means[ok], bmd[ok], 1)
    calibration = BmdCalibration(
        target, best, float(slope), float(intercept), usable[best], int(ok.sum())
    )
    return calibration, curve


def roi_mean(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``image`` over ``mask``'s pixels (NaN for an empty mask)."""
    mask = np.asarray(mask, bool)
    return float(np.asarray(image, float)[mask].mean()) if mask.any() else float("nan")
