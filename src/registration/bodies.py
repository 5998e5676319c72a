"""What a radiograph shows of each rigid body, as a volume to project.

A bone appears on a radiograph through the attenuation it adds *over the soft tissue it
displaces*: the edges GC compares are steps of that excess. So a body's moving image is
the DRR of ``max(μ − μ_soft, 0)`` inside the body's labels grown by one voxel (the
partial-volume rim belongs to the bone's edge; labels end where the rim starts). Masking
plain attenuation instead draws a false step at the mask's edge, the soft tissue inside
it, and a bone that looks smaller than it is: on the synthetic cohort GC then prefers
femurs 7–14 mm nearer the source (a magnified DRR) and binned levels bias the pelvis's
depth by 8 mm. With the excess model both vanish (docs/performance.md, registration).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.ct import voxel_to_physical_matrix
from conventions.labels import BONE_LABELS, femur_label
from drr.quantities import hu_to_linear_attenuation
from drr.volume import Volume, index_shift, support_box

# Soft tissue the bones displace: muscle, HU (the phantom's and a typical CT's value).
SOFT_TISSUE_HU = 40.0
PELVIS_LABELS = tuple(BONE_LABELS[n] for n in ("hip_left", "hip_right", "sacrum"))


def bone_excess_attenuation(hu: np.ndarray, soft_tissue_hu: float = SOFT_TISSUE_HU) -> np.ndarray:
    """Linear attenuation (1/mm) above that of soft tissue, never negative."""
    mu = hu_to_linear_attenuation(np.asarray(hu, np.float32))
    mu_soft = hu_to_linear_attenuation(np.float32(soft_tissue_hu))
    return np.clip(mu - mu_soft, 0.0, None).astype(np.float32)


def grow_labels(labels: np.ndarray, voxels: int = 1) -> np.ndarray:
    """Labels grown into the background by ``voxels`` (never into another label), so each
    bone keeps its partial-volume rim."""
    grown = labels
    for _ in range(voxels):
        neighbour = ndimage.grey_dilation(grown, size=3)
        grown = np.where(grown > 0, grown, neighbour)
    return grown


def body_volume(
    image: sitk.Image,
    labels: np.ndarray,
    label_values,
    name: str,
    soft_tissue_hu: float = SOFT_TISSUE_HU,
    excess: np.ndarray | None = None,
    grown: np.ndarray | None = None,
) -> Volume:
    """The bone-excess attenuation of the bones ``label_values`` of a CT (HU image) and its
    label image (z, y, x), cropped to them. ``excess`` and ``grown`` may be passed when
    several bodies come from one CT (computed once)."""
    if excess is None:
        excess = bone_excess_attenuation(sitk.GetArrayFromImage(image), soft_tissue_hu)
    if grown is None:
        grown = grow_labels(labels)
    mask = np.isin(grown, list(label_values))
    return Volume.from_image(image, masks={name: mask}, value=excess).cropped_to_support()


def hip_bodies(
    image: sitk.Image, labels: np.ndarray, side: str, soft_tissue_hu: float = SOFT_TISSUE_HU
) -> dict[str, Volume]:
    """The two bodies registered per radiograph, the pelvis (both hip bones and the sacrum)
    and the femur on ``side``, plus the other femur (``femur_other``), which the femur's
    search shows at the pelvis's pose. Each as :func:`body_volume` makes it."""
    # Only the bones' box is converted and grown: two voxels of margin hold the labels'
    # growth and the bodies' crop, so the volumes are those of the whole CT, voxel for
    # voxel and affine for affine, for a fraction of the work.
    box = support_box(labels > 0, margin=2)
    excess = bone_excess_attenuation(sitk.GetArrayFromImage(image)[box], soft_tissue_hu)
    grown = grow_labels(labels[box])
    ct_from_index = voxel_to_physical_matrix(image)

    def body(label_values, name: str) -> Volume:
        data = np.where(np.isin(grown, list(label_values)), excess, np.float32(0))
        inner = support_box(data != 0, margin=1)
        whole = tuple(
            slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner, strict=True)
        )
        return Volume(data[inner][None], ct_from_index @ index_shift(whole), (name,))

    other = "R" if side == "L" else "L"
    return {
        "pelvis": body(PELVIS_LABELS, "pelvis"),
        "femur": body([femur_label(side)], "femur"),
        "femur_other": body([femur_label(other)], "femur_other"),
    }


def whole_ct_volume(ct: sitk.Image) -> Volume:
    """The whole CT as one rigid body: every voxel's linear attenuation, cropped to what
    attenuates (the issue-6 form of ``python -m registration body``)."""
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    return Volume.from_image(ct, value=hu_to_linear_attenuation(hu)).cropped_to_support()


def missing_hip_bodies(labels: np.ndarray, side: str) -> list[str]:
    """What the hip registration needs and ``labels`` lacks: the pelvis's bones, the
    target femur."""
    present = set(np.unique(labels).tolist())
    needed = (("hip bones or sacrum", PELVIS_LABELS),
              (f"the target femur ({side})", [femur_label(side)]))  # fmt: skip
    return [name for name, values in needed if not present.intersection(values)]


def label_centroid(labels: np.ndarray, values, image: sitk.Image) -> np.ndarray:
    """Centre of mass (LPS mm) of the voxels carrying ``values``."""
    idx = np.argwhere(np.isin(labels, list(values))).mean(axis=0)[::-1]  # (x, y, z)
    return np.array(image.TransformContinuousIndexToPhysicalPoint(idx.tolist()))
