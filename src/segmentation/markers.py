"""Seeds for the watershed that splits the bone mask into bones, placed by anatomy.

All positions are relative to the femoral heads (:mod:`segmentation.heads`) and the
midplane, so they hold from small to large pelvises and whatever the field of view:

- femur: the ball inside each head's joint space;
- hip bone: the acetabular shell just outside the joint space (the cone the acetabulum
  covers); the iliac wing, bone lying wholly on one side, reaching the lateral extent of
  the hip joints, above the acetabulum; every axial section of such bone;
- sacrum: midline bone behind the hip joints, from 30 mm above them to 60 % of the way up
  to the iliac crest (below L5), and axial sections crossing the midline there without
  reaching the wings;
- unlabelled bone (``OTHER``): midline bone from 10 mm below the iliac crest up, i.e. the
  lumbar vertebrae, so the sacrum's label does not climb the spine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from conventions.labels import BONE_LABELS, femur_label, hip_label
from segmentation.heads import FemoralHead, covered_direction
from segmentation.space import VoxelSpace

OTHER = 255  # bone that gets no label (lumbar vertebrae); 0 in the output
SIGNS = {"L": 1.0, "R": -1.0}  # LPS: +x is the patient's left


def place_markers(
    bone: np.ndarray, space: VoxelSpace, heads: dict[str, FemoralHead], x_mid: float
) -> tuple[np.ndarray, dict]:
    """Marker image (uint8: BONE_LABELS values, OTHER, 0 unassigned) and where the
    landmarks used lie (iliac crest height)."""
    markers = np.zeros(bone.shape, np.uint8)
    if not heads:
        return markers, {}
    index = np.argwhere(bone)
    p = space.points(index)
    dx = p[:, 0] - x_mid

    def mark(select: np.ndarray, value: int, overwrite: bool = False) -> None:
        at = tuple(index[select].T)
        markers[at] = value if overwrite else np.where(markers[at] == 0, value, markers[at])

    for side, head in heads.items():
        d = p - head.centre_mm
        dist = np.linalg.norm(d, axis=1)
        mark(dist <= head.joint_radius_mm - 1.5, femur_label(side), overwrite=True)
        cone = d @ covered_direction(SIGNS[side]) >= np.cos(np.deg2rad(80.0)) * dist
        cup = (dist >= head.joint_radius_mm + 1.5) & (dist <= head.joint_radius_mm + 10.0)
        mark(cup & cone, hip_label(side))

    z_head = float(np.mean([h.centre_mm[2] for h in heads.values()]))
    y_head = float(np.mean([h.centre_mm[1] for h in heads.values()]))
    radius = float(np.mean([h.joint_radius_mm for h in heads.values()]))
    above_cup = z_head + 1.5 * radius + 5.0
    reach = {s: 0.8 * abs(h.centre_mm[0] - x_mid) for s, h in heads.items()}

    # The iliac wing: lateral bone above the acetabulum, the 3D piece of it that holds the
    # most bone up to 100 mm above the hips; its top is the iliac crest.
    crest = z_head
    for side, sign in SIGNS.items():
        if side not in heads:
            continue
        wing = (sign * dx >= max(reach[side], 35.0)) & (p[:, 2] >= above_cup)
        region = np.zeros(bone.shape, bool)
        region[tuple(index[wing].T)] = True
        low = np.zeros(bone.shape, np.float64)
        low[tuple(index[wing & (p[:, 2] <= z_head + 100.0)].T)] = 1.0
        ilium = _component_with_most(region, low)
        markers[ilium & (low > 0) & (markers == 0)] = hip_label(side)
        if ilium.any():
            crest = max(crest, float(space.points(np.argwhere(ilium))[:, 2].max()))
    sacrum_top = z_head + 0.6 * (crest - z_head)

    # Whole axial sections (4-connected in the slice): one side only and reaching the
    # wing → hip bone; across the midline without reaching either wing → sacrum.
    plane = np.zeros((3, 3, 3), bool)
    plane[tuple(1 if a == space.axial else slice(None) for a in range(3))] = (
        ndimage.generate_binary_structure(2, 1)
    )
    sections, n = ndimage.label(bone, structure=plane)
    which = sections[bone]  # same (C) order as ``index``
    lo_x = np.full(n + 1, np.inf)
    hi_x = np.full(n + 1, -np.inf)
    np.minimum.at(lo_x, which, dx)
    np.maximum.at(hi_x, which, dx)
    count = np.maximum(np.bincount(which, minlength=n + 1), 1)
    z_mean = np.bincount(which, p[:, 2], minlength=n + 1) / count
    y_mean = np.bincount(which, p[:, 1], minlength=n + 1) / count
    level = (z_mean >= above_cup) & (z_mean <= crest)
    for side, sign in SIGNS.items():
        if side not in heads:
            continue
        near_edge, far_edge = (lo_x, hi_x) if sign > 0 else (-hi_x, -lo_x)
        one_side = level & (near_edge > 15.0) & (far_edge >= reach[side])
        mark(one_side[which], hip_label(side))
    wing = min(reach.values())
    across = (lo_x < -5.0) & (hi_x > 5.0) & (lo_x > -wing) & (hi_x < wing)
    across &= (y_mean >= y_head + 20.0) & (z_mean >= z_head + 30.0) & (z_mean <= sacrum_top)
    mark(across[which], BONE_LABELS["sacrum"])

    # The sacrum's body itself, behind the hips; then the lumbar spine above the crest.
    body = (np.abs(dx) <= 25.0) & (p[:, 1] >= y_head + 20.0)
    body &= (p[:, 2] >= z_head + 30.0) & (p[:, 2] <= sacrum_top)
    region = np.zeros(bone.shape, bool)
    region[tuple(index[body].T)] = True
    markers[_component_with_most(region) & (markers == 0)] = BONE_LABELS["sacrum"]
    mark((np.abs(dx) <= 30.0) & (p[:, 2] >= crest - 10.0), OTHER)
    return markers, {"iliac_crest_z_mm": round(crest, 1)}


def _component_with_most(mask: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """The connected component of ``mask`` holding the most voxels (or ``weight``)."""
    cc, n = ndimage.label(mask)
    if n == 0:
        return mask.copy()
    w = np.bincount(cc.ravel(), None if weight is None else weight.ravel(), minlength=n + 1)
    w[0] = 0
    return cc == np.argmax(w)
