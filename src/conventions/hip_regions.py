"""The hip's regions and femoral landmarks, as every stage must agree on them: the
phantom writes its truth over them, anatomy measures over them, the dataset projects
them. Defined once here, below the stages (docs/architecture.md).

- :class:`FemurLandmarks`: a femur's landmarks (LPS mm), as ``landmarks.json`` holds
  them; anatomy.landmarks computes them from a label image.
- The proximal-femur (PF) region, the femoral-neck ROI and the DXA view of the femur.
- :func:`spill_shell`: the non-bone voxels around a region that its mineral spills
  into (a CT's blur), counted with the region by anatomy's BMC and by the phantom's
  truth alike.

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

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.ct import voxel_to_physical_matrix
from conventions.labels import femur_label

PF_BELOW_LESSER_TROCHANTER_MM = 10.0
NECK_ROI_WIDTH_MM = 15.0
NECK_ROI_RADIUS_FACTOR = 1.6  # of the neck radius: the neck, not what lies beside it
SPILL_MARGIN_MM = 3.0  # a few σ of a clinical CT's blur (PSF ⊕ voxel ≈ 0.6-1.2 mm)


# The femoral landmarks every femur gets, as named in landmarks files (plus "_L"/"_R").
POINT_NAMES = (
    "head_center",
    "head_neck_junction",
    "head_neck_junction_superior",
    "head_neck_junction_inferior",
    "lesser_trochanter",
    "greater_trochanter",
    "shaft_point",
)


@dataclass
class FemurLandmarks:
    side: str
    head_center: np.ndarray
    head_radius_mm: float
    head_fit_rms_mm: float
    neck_axis: np.ndarray  # unit, from the neck toward the head
    neck_radius_mm: float  # of the narrowest cross-section
    head_neck_junction: np.ndarray  # centre of the junction circle, on the neck axis
    head_neck_junction_superior: np.ndarray
    head_neck_junction_inferior: np.ndarray
    shaft_point: np.ndarray  # a point on the shaft axis
    shaft_axis: np.ndarray  # unit, toward proximal (superior)
    lesser_trochanter: np.ndarray
    greater_trochanter: np.ndarray

    def points(self) -> dict[str, np.ndarray]:
        """The landmark points, named ``<name>_<side>`` as in the landmarks files."""
        return {f"{n}_{self.side}": np.asarray(getattr(self, n), float) for n in POINT_NAMES}

    def to_dict(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            out[k] = v.tolist() if isinstance(v, np.ndarray) else v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> FemurLandmarks:
        kw = {}
        for k, v in d.items():
            kw[k] = np.asarray(v, float) if isinstance(v, list) else v
        return cls(**kw)

    def shaft_level(self, point: np.ndarray) -> float:
        """Signed distance (mm) of ``point`` along the shaft axis from ``shaft_point``."""
        return float((np.asarray(point) - self.shaft_point) @ self.shaft_axis)


def voxel_points(mask: np.ndarray, image: sitk.Image) -> np.ndarray:
    m = voxel_to_physical_matrix(image)
    return np.argwhere(mask)[:, ::-1].astype(np.float64) @ m[:3, :3].T + m[:3, 3]


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


def distance_from(mask: np.ndarray, spacing_zyx: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(~mask, sampling=spacing_zyx)


def box_around(mask: np.ndarray, margin_vox: np.ndarray) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - margin_vox, 0)
    hi = np.minimum(idx.max(axis=0) + margin_vox + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))


def spill_margin_mm(spacing_zyx) -> float:
    """How far mineral spills: ``SPILL_MARGIN_MM``, or one voxel where voxels are coarser."""
    return max(SPILL_MARGIN_MM, 1.01 * float(np.max(spacing_zyx)))


def spill_shell(
    region: np.ndarray, bone: np.ndarray, cut: np.ndarray, spacing_zyx
) -> tuple[np.ndarray, np.ndarray]:
    """(shell, distance): the non-bone voxels within ``SPILL_MARGIN_MM`` of ``region``
    and not within it of ``cut`` (the femur beyond the region's planes), and every
    voxel's distance (mm) from the region."""
    spacing = np.asarray(spacing_zyx, float)
    margin = spill_margin_mm(spacing)
    dist = distance_from(region, spacing)
    shell = (dist > 0) & (dist <= margin) & ~bone
    if cut.any():
        shell &= distance_from(cut, spacing) > margin
    return shell, dist


def spill_shell_mask(
    region: np.ndarray, bone: np.ndarray, cut: np.ndarray, spacing_zyx
) -> np.ndarray:
    """:func:`spill_shell`'s shell on the whole grid, its distances computed in a box
    around the region: a shell voxel lies within the spill margin of the region, and a
    cut voxel that can exclude it within twice that, so the box decides every voxel
    exactly as the whole grid would, at the box's cost (the two distance transforms of
    the whole CT were most of the phantom's BMD truth)."""
    spacing = np.asarray(spacing_zyx, float)
    if not region.any():
        return spill_shell(region, bone, cut, spacing)[0]
    reach = np.ceil(2 * spill_margin_mm(spacing) / spacing).astype(int) + 1
    box = box_around(region, reach)
    shell = np.zeros(region.shape, bool)
    shell[box] = spill_shell(region[box], bone[box], cut[box], spacing)[0]
    return shell
