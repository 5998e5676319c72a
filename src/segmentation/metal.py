"""Metal (implants, screws, prostheses): found, described for QC, and kept out of the bone.

**Threshold.** Metal is what reads above ``METAL_MG_CM3`` = 2500 mg/cm³ HA-equivalent:
the densest cortical bone is about 1200-1400 mg/cm³ (1500-1900 HU), so this leaves
almost a factor of two, while titanium reads 3000 HU and more and steel or
cobalt-chromium saturate the scale; partial volume at 3 mm voxels still leaves a screw's
core above it (the TotalSegmentator example's screws reach 3400 HU). Voxels from
``METAL_EDGE_MG_CM3`` (1500) up that touch such a core, within ``METAL_EDGE_MM``, are the
implant's blurred edge and count as metal too.

**Decision: metal is excluded from the bone labels.** The labels feed the bone-only DRR
that a network learns to predict from the radiograph and the proximal-femur BMD; an
implant in that DRR would be counted as bone mineral (metal voxels are 3-10 times
denser than cortex). The bone around the implant keeps its label, and the QC record
says where the metal is, how much there is and which bone it lies in, so a later stage
can decide to leave a subject or a region out.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from conventions.labels import BONE_LABELS
from segmentation.morphology import ball
from segmentation.space import VoxelSpace

METAL_MG_CM3 = 2500.0
METAL_EDGE_MG_CM3 = 1500.0
METAL_EDGE_MM = 2.0
NEARBY_MM = 10.0  # a metal object outside bone is "next to" the bone within this distance
MAX_OBJECTS = 10

_NAMES = {v: k for k, v in BONE_LABELS.items()}


def find_metal(density: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Boolean mask of metal voxels (cores above METAL_MG_CM3 and their blurred edges)."""
    core = density > METAL_MG_CM3
    if not core.any():
        return core
    reach = max(METAL_EDGE_MM, float(np.max(spacing)))  # at least the next voxel
    near = ndimage.binary_dilation(core, structure=ball(reach, spacing))
    return core | (near & (density > METAL_EDGE_MG_CM3))


def metal_record(
    metal: np.ndarray, labels: np.ndarray, density: np.ndarray, space: VoxelSpace
) -> dict:
    """What the QC record says about metal: whether there is any, its volume (cm³), its
    bounding box and centroid (LPS mm), the bone it lies in or next to, and the same for
    each of its largest objects. ``labels`` are the bone labels before metal is taken
    out (or, for given masks, whatever they hold)."""
    voxel_cm3 = float(np.prod(space.spacing)) / 1000.0
    record = {
        "present": bool(metal.any()),
        "threshold_mg_cm3": METAL_MG_CM3,
        "voxels": int(metal.sum()),
        "volume_cm3": round(float(metal.sum()) * voxel_cm3, 3),
    }
    if not metal.any():
        return record
    record.update(_describe(metal, labels, density, space))
    objects, n = ndimage.label(metal, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(objects.ravel())[1:]
    record["objects"] = [
        {
            "volume_cm3": round(float(sizes[k - 1]) * voxel_cm3, 3),
            **_describe(objects == k, labels, density, space),
        }
        for k in (np.argsort(sizes)[::-1][:MAX_OBJECTS] + 1)
    ]
    record["object_count"] = int(n)
    return record


def _describe(mask: np.ndarray, labels: np.ndarray, density: np.ndarray, space: VoxelSpace):
    points = space.points(np.argwhere(mask))
    return {
        "centroid_mm": np.round(points.mean(0), 1).tolist(),
        "bounding_box_mm": {
            "min": np.round(points.min(0), 1).tolist(),
            "max": np.round(points.max(0), 1).tolist(),
        },
        "max_mg_cm3": round(float(density[mask].max()), 1),
        **_bone_of(mask, labels, space),
    }


def _bone_of(mask: np.ndarray, labels: np.ndarray, space: VoxelSpace) -> dict:
    """The bone most of ``mask`` lies in, else the bone most of its surroundings (within
    NEARBY_MM) belong to, else none."""
    inside = np.bincount(labels[mask].ravel(), minlength=256)[1:]
    if inside.any():
        return {"bone": _NAMES.get(int(np.argmax(inside)) + 1), "relation": "in"}
    # Only the object's own neighbourhood is dilated, not the whole volume.
    where = np.argwhere(mask)
    reach = np.ceil(NEARBY_MM / space.spacing).astype(int)
    lo = np.maximum(where.min(0) - reach, 0)
    hi = np.minimum(where.max(0) + reach + 1, mask.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    dist = ndimage.distance_transform_edt(~mask[box], sampling=space.spacing)
    around = np.bincount(labels[box][dist <= NEARBY_MM].ravel(), minlength=256)[1:]
    if around.any():
        return {"bone": _NAMES.get(int(np.argmax(around)) + 1), "relation": "next to"}
    return {"bone": None, "relation": "outside bone"}
