"""Failure detection from the predicted PF-DRR itself (Gu et al. 2023, Sec. 5.3): a
network that has not found the proximal femur draws a PF-DRR of the wrong size, place,
shape or density, and that is visible before any BMD is read off it.

Each PF-DRR is reduced to a few features of its bone region (pixels above
``BONE_G_CM2``): area (the fraction of the image), mean areal density, centroid
(fractions of the rows and columns), eccentricity and solidity of the largest connected
region, and the fraction of the bone region outside it (fragments). The plausible range
is the training fold's ground-truth PF-DRRs, which the network learned to draw: a
prediction is flagged when any feature's modified z-score (Iglewicz & Hoaglin 1993:
0.6745 · (x − median) / MAD) exceeds ``Z_LIMIT`` = 5.

Iglewicz and Hoaglin's 3.5 assumes a large, normal sample. A fold's training set is small
and mixes poses: on the demo cohort 3.5 flagged 7 of 22 true test PF-DRRs (the largest
|z| of a true one was 4.7), 5 flagged none, and the demo network's broken PF-DRRs scored
20 or more (docs/evaluation.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage.measure import label, regionprops

BONE_G_CM2 = 0.1  # areal density that counts as bone (soft tissue's PF-DRR is ~0)
Z_LIMIT = 5.0
FEATURES = ("area", "mean_g_cm2", "centroid_row", "centroid_col", "eccentricity", "solidity",
            "fragments")  # fmt: skip
# A MAD of zero (identical training images) would flag any difference at all: the spread
# is at least this share of the median's magnitude, or this absolute floor.
_MIN_SPREAD = {"area": 0.002, "mean_g_cm2": 0.01, "centroid_row": 0.01, "centroid_col": 0.01,
               "eccentricity": 0.02, "solidity": 0.02, "fragments": 0.01}  # fmt: skip


def pf_drr_features(pf_drr: np.ndarray) -> dict[str, float]:
    """The features of one PF-DRR (g/cm²); an image without bone gets area 0 and NaN
    elsewhere (flagged by its area alone)."""
    image = np.asarray(pf_drr, float)
    bone = image > BONE_G_CM2
    features = dict.fromkeys(FEATURES, float("nan"))
    features["area"] = float(bone.mean())
    if not bone.any():
        return features
    regions = regionprops(label(bone))
    largest = max(regions, key=lambda r: r.area)
    rows, cols = image.shape
    features.update(
        mean_g_cm2=float(image[bone].mean()),
        centroid_row=float(largest.centroid[0] / rows),
        centroid_col=float(largest.centroid[1] / cols),
        eccentricity=float(largest.eccentricity),
        solidity=float(largest.solidity),
        fragments=float(1.0 - largest.area / bone.sum()),
    )
    return features


@dataclass(frozen=True)
class PlausibleRange:
    """Median and MAD of each feature over a set of plausible PF-DRRs."""

    median: dict[str, float]
    mad: dict[str, float]
    n: int

    @classmethod
    def fit(cls, pf_drrs) -> PlausibleRange:
        table = np.array([[pf_drr_features(p)[f] for f in FEATURES] for p in pf_drrs])
        if len(table) < 3:
            raise ValueError(f"a plausible range needs 3 or more PF-DRRs, not {len(table)}")
        median = np.nanmedian(table, axis=0)
        mad = np.nanmedian(np.abs(table - median), axis=0)
        return cls(dict(zip(FEATURES, map(float, median), strict=True)),
                   dict(zip(FEATURES, map(float, mad), strict=True)), len(table))  # fmt: skip

    def z_scores(self, features: dict[str, float]) -> dict[str, float]:
        """Modified z-scores; NaN features (no bone) score +inf."""
        out = {}
        for f in FEATURES:
            spread = max(self.mad[f], _MIN_SPREAD[f] * max(abs(self.median[f]), 1.0))
            x = features[f]
            out[f] = float("inf") if not np.isfinite(x) else 0.6745 * (x - self.median[f]) / spread
        return out

    def check(self, pf_drr: np.ndarray, limit: float = Z_LIMIT) -> tuple[dict, list[str]]:
        """(features with their z-scores, the reasons to flag: empty when plausible)."""
        features = pf_drr_features(pf_drr)
        z = self.z_scores(features)
        reasons = [f"{f} z={z[f]:+.1f}" for f in FEATURES if abs(z[f]) > limit]
        record = {**features, **{f"z_{f}": z[f] for f in FEATURES}}
        return record, reasons

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> PlausibleRange:
        return cls(dict(record["median"]), dict(record["mad"]), int(record["n"]))
