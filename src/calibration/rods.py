"""Find a calibration phantom's rods in a CT, with no manual region of interest.

A phantom lies under the patient for the whole scan, so along z it does not change:
the median over slices keeps it crisp while the patient, who changes from slice to
slice, blurs. Rods are round plateaus in that median image: connected regions where the
image is flat (low gradient, which also erodes them away from their edges), still along
z, of a rod's size and round. The rods are the row of such regions lying furthest
posterior (under the patient); their HU order gives their densities (HU rises with
density). Each rod's HU is the median over slices of the mean inside its region.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

ROD_RADIUS_RANGE_MM = (4.0, 14.0)
MAX_GRADIENT_HU_PER_MM = 4.0  # flat: well below a 25 HU rod edge blurred over ~2 mm
# Interquartile range over slices of a region's mean HU: a rod's varies by noise only
# (a few HU for a region of tens of voxels), the patient's by anatomy.
MAX_SPREAD_ALONG_Z_HU = 10.0
# Area over the disc reaching its farthest pixel: about 1 for a pixelised disc, 0.5 for
# the strips of base left between rods.
MIN_ROUNDNESS = 0.75
MAX_ROW_OFFSET_FRACTION = 0.5  # rods in one row: centres within half a radius in y


@dataclass
class Rod:
    x_mm: float
    y_mm: float
    radius_mm: float
    hu: float  # median over slices of the eroded-disc mean
    hu_spread: float  # interquartile range of the per-slice means
    slices: int
    density_mg_cm3: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def find_rods(ct: sitk.Image, n_rods: int) -> list[Rod]:
    """The phantom's rods, ordered by HU, or [] if no row of ``n_rods`` rods is found.

    Assumes an axial CT (identity-like direction), as scanners produce; the rods run
    along z.
    """
    hu = sitk.GetArrayViewFromImage(ct)
    sx, sy, _ = ct.GetSpacing()
    median = np.median(hu, axis=0)
    # Derivative of Gaussian 0.7 mm wide (at least half a pixel): narrow, so coarse voxels
    # still leave a flat core inside a rod.
    sigma_px = max(0.5, 0.7 / min(sx, sy))
    gradient = ndimage.gaussian_gradient_magnitude(median, sigma=sigma_px) / min(sx, sy)  # HU/mm
    flat = (gradient < MAX_GRADIENT_HU_PER_MM) & (median > -500.0)  # flat, and not air
    regions, _ = ndimage.label(flat)
    candidates = []
    lo, hi = ROD_RADIUS_RANGE_MM
    for k, sl in enumerate(ndimage.find_objects(regions), start=1):
        inside = regions[sl] == k
        area_mm2 = inside.sum() * sx * sy
        radius = float(np.sqrt(area_mm2 / np.pi))
        if not lo - 2.0 <= radius <= hi:  # the flat core is ~1-2 mm smaller than the rod
            continue
        rows, cols = np.nonzero(inside)
        row, col = rows.mean() + sl[0].start, cols.mean() + sl[1].start
        reach = np.sqrt(
            ((rows + sl[0].start - row) * sy) ** 2 + ((cols + sl[1].start - col) * sx) ** 2
        )
        if area_mm2 < MIN_ROUNDNESS * np.pi * reach.max() ** 2:
            continue  # not round
        per_slice = hu[:, regions == k].mean(axis=1)
        p25, p50, p75 = np.percentile(per_slice, [25, 50, 75])
        if p75 - p25 > MAX_SPREAD_ALONG_Z_HU:
            continue  # changes along z: the patient, not the phantom
        x, y, _ = ct.TransformContinuousIndexToPhysicalPoint((float(col), float(row), 0.0))
        candidates.append(Rod(x, y, radius, float(p50), float(p75 - p25), len(per_slice)))
    return _best_row(candidates, n_rods)


def _best_row(candidates: list[Rod], n_rods: int) -> list[Rod]:
    """The row of exactly ``n_rods`` distinct candidates lying furthest posterior."""
    rows = []
    for c in candidates:
        members = [
            o for o in candidates if abs(o.y_mm - c.y_mm) <= MAX_ROW_OFFSET_FRACTION * c.radius_mm
        ]
        # One candidate per rod: several scales may fire on the same rod.
        distinct: list[Rod] = []
        for m in sorted(members, key=lambda m: m.hu_spread):
            if all(abs(m.x_mm - d.x_mm) > 1.5 * max(m.radius_mm, d.radius_mm) for d in distinct):
                distinct.append(m)
        if len(distinct) == n_rods:
            rows.append(distinct)
    if not rows:
        return []
    best = max(rows, key=lambda row: np.mean([r.y_mm for r in row]))  # +y is posterior
    return sorted(best, key=lambda r: r.hu)
