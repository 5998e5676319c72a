"""Bone labels from a calibrated CT by density and anatomy: the default, needing no
model weights.

1. **Body.** The patient is the largest tissue component (> -300 mg/cm³), opened a little
   to let go of the table and the calibration phantom under it; bone outside it (rods of
   a phantom up to 200 mg/cm³ and beyond, a table's rails) is ignored.
2. **Shell.** Bone's cortical shell is what exceeds ``SHELL_MG_CM3`` (120 mg/cm³: above
   muscle's 30-60 plus noise, below thin cortex blurred by partial volume at 3 mm voxels,
   which reads 200-600 where dense cortex reads 700-1200). Trabecular bone is *not*
   thresholded: osteoporotic or fatty marrow can read 0-100, like muscle; it is what the
   shell encloses (:func:`segmentation.morphology.solid`).
3. **Markers** by anatomy (:mod:`segmentation.heads`, :mod:`segmentation.markers`):
   femoral heads by a sphere Hough transform, their joint space from the radial density
   profile, hip bones lateral above the acetabula, sacrum on the midline behind them,
   lumbar vertebrae above the iliac crest. Left and right by position (LPS +x is left).
4. **Watershed** from the markers over the bone mask (shell and what it encloses),
   flooding the *gap depth* (a black top-hat of density): joint spaces, the sacroiliac
   joints and the pubic symphysis are narrow gaps between cortices and become the ridges
   where bones meet. Enclosed voxels count by how dark they are, so a thin plate's marrow
   is no barrier. The two hip bones are then split on the midsagittal plane through the
   hip joints' midpoint (the symphysis lies on it).
5. **Each bone refilled from its own shell**, holes holding another bone left open (the
   acetabulum's ring must not swallow the head), so a joint space the union's fill closed
   drops out again; then the outer surface is trimmed to 0.6 of the way from soft
   tissue to the nearby cortical peak (``SURFACE_FRACTION``), the partial-volume edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.labels import BONE_LABELS
from segmentation.heads import FemoralHead, find_femoral_heads
from segmentation.markers import OTHER, place_markers
from segmentation.morphology import (
    ball,
    drop_small,
    fill_slices,
    gap_depth,
    largest_component,
    solid,
)
from segmentation.space import VoxelSpace

BODY_MG_CM3 = -300.0  # between fat (about -100) and air, foam pads and tables (≤ -350)
SHELL_MG_CM3 = 120.0
SOFT_TISSUE_MG_CM3 = 40.0  # muscle, the tissue around most bone surfaces
# The edge: 0.6 of the step from soft tissue to the nearby cortical peak. Half the step
# left femurs 0.5-1.6 % too large at 1 × 1 × 2 mm and the PF region's QCT-BMD up to 3 %
# low; 0.6 keeps it within 2 % at 1 × 1 × 2 and 1.5 × 1.5 × 3 mm (docs/ct_stages.md).
SURFACE_FRACTION = 0.6
PEAK_RADIUS_MM = 2.5  # the cortex a surface voxel belongs to lies this close
TRIM_STEPS = 2  # voxels of closing-filled concavity trimmed off the outer surface
GAP_RADIUS_MM = 3.5  # gaps up to 7 mm wide are joints (hip 2-5 mm, sacroiliac 1-4 mm)
MIN_BONE_CM3 = 0.3  # shell pieces smaller than this are noise or calcification
MARGIN_VOXELS = 4  # around the bones' bounding box, for the morphology


@dataclass
class ThresholdResult:
    labels: np.ndarray  # uint8 (z, y, x), BONE_LABELS, on the CT's grid
    heads: dict[str, FemoralHead] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    landmarks: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {
            "femoral_heads": {s: h.to_dict() for s, h in sorted(self.heads.items())},
            **self.landmarks,
        }


def body_mask(density: np.ndarray, axis: int) -> np.ndarray:
    """The patient: the largest tissue component, opened by two voxels so that a table or
    phantom touching the body comes away, with gas and lungs filled slice by slice."""
    tissue = ndimage.binary_opening(density > BODY_MG_CM3, iterations=2)
    return fill_slices(largest_component(tissue), axis)


def segment_bones(density: sitk.Image) -> ThresholdResult:
    """Labels of the hip bones, femurs and sacrum of a density volume (mg/cm³ HA).

    Metal is treated as bone here (an implant's shape is part of the bone it sits in);
    :mod:`segmentation.metal` takes it out of the labels afterwards.
    """
    g_full = sitk.GetArrayFromImage(density).astype(np.float32)
    space = VoxelSpace.of(density)
    voxel_cm3 = float(np.prod(space.spacing)) / 1000.0
    shell = (g_full > SHELL_MG_CM3) & body_mask(g_full, space.axial)
    shell = drop_small(shell, max(1, int(MIN_BONE_CM3 / voxel_cm3)))
    result = ThresholdResult(np.zeros(g_full.shape, np.uint8))
    if not shell.any():
        result.warnings.append("no bone found (nothing above the shell threshold in the body)")
        return result
    where = np.argwhere(shell)
    lo = np.maximum(where.min(0) - MARGIN_VOXELS, 0)
    hi = np.minimum(where.max(0) + MARGIN_VOXELS + 1, g_full.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    g, shell, space = g_full[box], shell[box], space.box(lo)

    bone = solid(shell, space.axial, space.spacing)
    x_mid = float(np.median(space.points(np.argwhere(bone))[:, 0]))
    result.heads, warnings = find_femoral_heads(g, space, x_mid)
    result.warnings += warnings
    markers, result.landmarks = place_markers(bone, space, result.heads, x_mid)
    labels = separate(g, shell, bone, markers, space.spacing)
    if len(result.heads) == 2:
        split_hips_at_midplane(labels, space, result.heads)
    labels = refill(labels, g, shell, space)
    labels[labels == OTHER] = 0
    result.labels[box] = labels
    return result


def separate(
    g: np.ndarray, shell: np.ndarray, bone: np.ndarray, markers: np.ndarray, spacing
) -> np.ndarray:
    """Marker watershed of the bone mask on the gap depth; each label keeps only the part
    connected to its markers (bone no marker reaches stays 0)."""
    depth = gap_depth(g, spacing, GAP_RADIUS_MM)
    darkness = np.clip((SHELL_MG_CM3 - g) / (SHELL_MG_CM3 - SOFT_TISSUE_MG_CM3), 0.05, 1.0)
    elevation = np.where(shell, depth, depth * darkness)
    elevation[~bone] = elevation.max() + 1.0  # crossed last, and cleared below
    flooded = sitk.GetArrayFromImage(
        sitk.MorphologicalWatershedFromMarkers(
            sitk.GetImageFromArray(elevation.astype(np.float32)),
            sitk.GetImageFromArray(markers),
            markWatershedLine=False,
            fullyConnected=False,
        )
    ).astype(np.uint8)
    flooded[~bone] = 0
    out = np.zeros_like(flooded)
    for value in np.unique(markers[markers > 0]):
        cc, _ = ndimage.label(flooded == value)
        seeded = np.unique(cc[(markers == value) & (cc > 0)])
        out[np.isin(cc, seeded) & (cc > 0)] = value
    return out


def split_hips_at_midplane(labels: np.ndarray, space: VoxelSpace, heads) -> None:
    """Give each hip-bone voxel the side of the midsagittal plane it lies on: the plane
    halfway between the hip joints, perpendicular to the line joining them (the pubic
    symphysis lies on it, even when the pelvis is turned)."""
    left, right = heads["L"].centre_mm, heads["R"].centre_mm
    normal = (left - right) * np.array([1.0, 1.0, 0.0])
    normal /= np.linalg.norm(normal)
    hip = np.isin(labels, [BONE_LABELS["hip_left"], BONE_LABELS["hip_right"]])
    index = np.argwhere(hip)
    on_left = (space.points(index) - (left + right) / 2) @ normal > 0
    labels[tuple(index.T)] = np.where(on_left, BONE_LABELS["hip_left"], BONE_LABELS["hip_right"])


def refill(labels: np.ndarray, g: np.ndarray, shell: np.ndarray, space: VoxelSpace) -> np.ndarray:
    """Each bone from its own shell and what that encloses, its outer surface trimmed to
    the partial-volume edge. A voxel two bones claim goes to the watershed's choice."""
    peak = ndimage.maximum_filter(g, footprint=ball(PEAK_RADIUS_MM, space.spacing))
    edge = g >= SOFT_TISSUE_MG_CM3 + SURFACE_FRACTION * (peak - SOFT_TISSUE_MG_CM3)
    out = np.zeros_like(labels)
    for value in np.unique(labels[labels > 0]):
        # Work in this bone's box (plus room for the closing): much less than the whole.
        where = np.argwhere(labels == value)
        lo = np.maximum(where.min(0) - MARGIN_VOXELS, 0)
        hi = np.minimum(where.max(0) + MARGIN_VOXELS + 1, labels.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        lab, sh = labels[box], shell[box]
        own = sh & (lab == value)
        filled = solid(own, space.axial, space.spacing, forbidden=sh & (lab > 0) & (lab != value))
        for _ in range(TRIM_STEPS):
            outer = filled & ~ndimage.binary_erosion(filled, border_value=1)
            filled &= ~(outer & ~edge[box])
        view = out[box]
        view[filled & ((view == 0) | (lab == value))] = value
    return out
