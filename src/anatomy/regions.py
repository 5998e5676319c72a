"""The proximal-femur (PF) region, the femoral-neck ROI and the DXA view of the femur.

The PF region is DXA's "total hip" region of the femur, as the seed paper's group
defines it from landmarks (Uemura et al. 2022): the femur lateral of the head-neck
junction plane (perpendicular to the neck axis, so the head is left out) and proximal
of a plane perpendicular to the shaft axis ``PF_BELOW_LESSER_TROCHANTER_MM`` below the
lesser trochanter. The neck ROI is the first ``NECK_ROI_WIDTH_MM`` of the neck lateral
of that junction, like DXA's neck box.

DXA images the femur in "neutral" rotation: the shaft vertical and the neck parallel to
the detector (the leg turned in by its anteversion). :func:`dxa_rotation` gives that
frame: z′ along the shaft axis (proximal), x′ the neck axis's direction across the shaft
(toward the patient's left, as LPS x), y′ = z′ × x′ (posterior), so the beam runs
along y′.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from anatomy.landmarks import FemurLandmarks, voxel_points
from conventions.labels import femur_label

PF_BELOW_LESSER_TROCHANTER_MM = 10.0
NECK_ROI_WIDTH_MM = 15.0
NECK_ROI_RADIUS_FACTOR = 1.6  # of the neck radius: the neck, not what lies beside it


def distal_border_point(lm: FemurLandmarks) -> np.ndarray:
    """The point on the shaft axis where the PF region's distal plane crosses it."""
    level = lm.shaft_level(lm.lesser_trochanter) - PF_BELOW_LESSER_TROCHANTER_MM
    return lm.shaft_point + level * lm.shaft_axis


def pf_region_of_points(points: np.ndarray, lm: FemurLandmarks) -> np.ndarray:
    """Which femur points (N, 3) lie in the PF region."""
    lateral_of_junction = (points - lm.head_neck_junction) @ lm.neck_axis <= 0.0
    proximal = (points - distal_border_point(lm)) @ lm.shaft_axis >= 0.0
    return lateral_of_junction & proximal


def neck_roi_of_points(points: np.ndarray, lm: FemurLandmarks) -> np.ndarray:
    rel = points - lm.head_neck_junction
    along = rel @ lm.neck_axis
    radial = np.linalg.norm(rel - np.outer(along, lm.neck_axis), axis=1)
    return (
        (along <= 0.0)
        & (along >= -NECK_ROI_WIDTH_MM)
        & (radial <= NECK_ROI_RADIUS_FACTOR * lm.neck_radius_mm)
    )


def _mask_from(labels: np.ndarray, image: sitk.Image, lm: FemurLandmarks, select) -> np.ndarray:
    femur = labels == femur_label(lm.side)
    out = np.zeros(labels.shape, dtype=bool)
    idx = np.nonzero(femur)
    out[idx] = select(voxel_points(femur, image), lm)
    return out


def pf_region_mask(labels: np.ndarray, image: sitk.Image, lm: FemurLandmarks) -> np.ndarray:
    """The PF region of the femur on ``lm.side`` as a boolean (z, y, x) mask."""
    return _mask_from(labels, image, lm, pf_region_of_points)


def neck_roi_mask(labels: np.ndarray, image: sitk.Image, lm: FemurLandmarks) -> np.ndarray:
    return _mask_from(labels, image, lm, neck_roi_of_points)


def dxa_rotation(lm: FemurLandmarks) -> np.ndarray:
    """3×3 rotation whose rows are the neutral frame's axes (x′, y′, z′) in LPS."""
    z = lm.shaft_axis / np.linalg.norm(lm.shaft_axis)
    across = lm.neck_axis - (lm.neck_axis @ z) * z
    x = across / np.linalg.norm(across)
    if x[0] < 0:  # keep x′ toward the patient's left, like LPS x
        x = -x
    y = np.cross(z, x)
    return np.stack([x, y, z])
