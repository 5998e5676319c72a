"""The QC record's label statistics and the warnings a reader of it should see."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from conventions.labels import BONE_LABELS
from segmentation.heads import FemoralHead

# The proximal-femur region runs to 10 mm below the lesser trochanter, itself 50-70 mm
# below the head's centre: a field of view ending closer than this cuts it.
PROXIMAL_FEMUR_BELOW_HEAD_MM = 80.0


def label_volumes(labels: np.ndarray, spacing) -> dict[str, dict]:
    """Voxel count and volume (cm³) of every bone label."""
    counts = np.bincount(labels.ravel(), minlength=256)
    voxel_cm3 = float(np.prod(spacing)) / 1000.0
    return {
        name: {"voxels": int(counts[v]), "volume_cm3": round(float(counts[v]) * voxel_cm3, 3)}
        for name, v in BONE_LABELS.items()
    }


def missing_bones(volumes: dict[str, dict]) -> list[str]:
    return [f"{name}: not found (no voxels)" for name, v in volumes.items() if v["voxels"] == 0]


def field_of_view_warnings(heads: dict[str, FemoralHead], image: sitk.Image) -> list[str]:
    """Femoral heads the field of view cuts, and femurs it ends too close below."""
    size = image.GetSize()
    corners = [
        image.TransformIndexToPhysicalPoint([i * (n - 1) for i, n in zip(c, size, strict=True)])
        for c in np.ndindex(2, 2, 2)
    ]
    z_lo, z_hi = min(p[2] for p in corners), max(p[2] for p in corners)
    out = []
    for side, head in sorted(heads.items()):
        name = "femur_left" if side == "L" else "femur_right"
        z, r = float(head.centre_mm[2]), head.joint_radius_mm
        if z - r < z_lo:
            out.append(f"{name}: the femoral head reaches the bottom of the field of view")
        if z + r > z_hi:
            out.append(f"{name}: the femoral head reaches the top of the field of view")
        if z - z_lo < PROXIMAL_FEMUR_BELOW_HEAD_MM:
            out.append(
                f"{name}: the field of view ends {z - z_lo:.0f} mm below the femoral head's "
                f"centre; the proximal-femur region needs about "
                f"{PROXIMAL_FEMUR_BELOW_HEAD_MM:.0f} mm"
            )
    return out
