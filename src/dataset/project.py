"""The decomposed images of one radiograph: DRRs of the calibrated CT at the registered
poses, in g/cm² (docs/conventions.md).

- **bone DRR** (dataset A's target): the density inside the bone labels: both hip bones
  and the sacrum at the pelvis's pose, the target femur at its own pose. The other
  femur is not registered: its pose in the radiograph is not known, so it is left out
  (its side of the image is not used; :mod:`conventions.pairs`).
- **PF-DRR** (dataset B's target): the proximal-femur region's bone mineral at the
  femur's pose, the spill-corrected mineral the anatomy stage measured BMC from
  (:func:`anatomy.bmd.mineral_content`), so its sum is the region's BMC.
- **PF silhouette**: pixels whose ray crosses the region (exact path lengths).
- **PF-DRR mean**: the PF-DRR's sum over its silhouette's pixel count, i.e. BMC over
  projected area: an areal BMD in this radiograph's view. A region the radiograph (or
  the pair's crop) cuts is recorded as such: its mean is then not the region's.
- **landmarks**: the target femur's landmarks projected at the femur's pose (row, col).

Line integrals are exact (Siddon): these images are what the network learns, rendered
once per radiograph.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from conventions.ct import voxel_to_physical_matrix
from conventions.geometry import ProjectionGeometry
from conventions.labels import BONE_LABELS, femur_label
from conventions.pairs import PairTransform, pair_transform
from conventions.pose import project_ct_points
from conventions.units import (
    G_CM2_PER_MG_CM3_MM,
    MIN_PATH_MM,  # the silhouette rule the DXA-view area uses
)
from drr.projector import project
from drr.volume import Volume

PELVIS_BONES = ("hip_left", "hip_right", "sacrum")


def _volume(image: sitk.Image, data: np.ndarray, name: str) -> Volume:
    return Volume(
        np.asarray(data, np.float32)[None], voxel_to_physical_matrix(image), (name,)
    ).cropped_to_support()


def _drr(
    volume: Volume, geometry: ProjectionGeometry, pose: np.ndarray, device: str = "cpu"
) -> np.ndarray:
    """Exact line integrals (value × mm) of a one-channel volume, (rows, cols), rendered
    on the CPU (numba) or on a torch device such as "cuda"."""
    if not volume.data.any():
        return np.zeros((geometry.rows, geometry.cols), np.float32)
    return project(volume, geometry, pose, integrator="siddon", device=device)[0, 0]


def decomposition_drrs(
    density_image: sitk.Image,
    labels: np.ndarray,
    pf_mineral: np.ndarray,
    pf_region: np.ndarray,
    side: str,
    geometry: ProjectionGeometry,
    pelvis_pose: np.ndarray,
    femur_pose: np.ndarray,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """The bone DRR and PF-DRR (g/cm²) and the PF silhouette (bool) of one radiograph.

    Arrays are (z, y, x) on the density image's grid: ``labels`` the bone labels,
    ``pf_mineral`` the PF region's mineral (mg/cm³), ``pf_region`` its mask."""
    density = sitk.GetArrayFromImage(density_image).astype(np.float32)
    pelvis = np.isin(labels, [BONE_LABELS[n] for n in PELVIS_BONES])
    femur = labels == femur_label(side)
    to_g_cm2 = np.float32(G_CM2_PER_MG_CM3_MM)
    bone = _drr(
        _volume(density_image, np.where(pelvis, density, 0), "pelvis"),
        geometry,
        pelvis_pose,
        device,
    )
    bone = bone + _drr(
        _volume(density_image, np.where(femur, density, 0), "femur"), geometry, femur_pose, device
    )
    pf = _drr(_volume(density_image, pf_mineral, "pf_mineral"), geometry, femur_pose, device)
    path = _drr(
        _volume(density_image, pf_region.astype(np.float32), "pf_region"),
        geometry,
        femur_pose,
        device,
    )
    return {
        "bone_drr_g_cm2": (bone * to_g_cm2).astype(np.float32),
        "pf_drr_g_cm2": (pf * to_g_cm2).astype(np.float32),
        "pf_silhouette": path > MIN_PATH_MM,
    }


IMAGE_EDGES = ("top", "bottom", "left", "right")
# A pair shows every hip as a right hip does: lateral on the left (conventions.pairs).
PAIR_EDGES = ("superior", "inferior", "lateral", "medial")


def cut_edges(mask: np.ndarray, names=IMAGE_EDGES) -> list[str]:
    """The edges of the image (top, bottom, left, right, or ``names`` in that order) that
    a mask reaches: where the image cuts the region."""
    mask = np.asarray(mask, bool)
    reached = (mask[0].any(), mask[-1].any(), mask[:, 0].any(), mask[:, -1].any())
    return [name for name, hit in zip(names, reached, strict=True) if hit]


def touches_border(mask: np.ndarray) -> bool:
    """Whether a mask reaches the image's edge (a region the image cuts)."""
    return bool(cut_edges(mask))


def pf_drr_mean(pf_drr_g_cm2: np.ndarray, silhouette: np.ndarray) -> float:
    """BMC over projected area (g/cm²): the PF-DRR's sum over its silhouette's pixels."""
    n = int(np.count_nonzero(silhouette))
    return float(pf_drr_g_cm2.sum() / n) if n else float("nan")


def projected_landmarks(
    points_ct: dict[str, np.ndarray], pose: np.ndarray, geometry: ProjectionGeometry
) -> dict[str, list[float]]:
    """Landmarks (LPS mm) projected to (row, col) pixel indices at ``pose``."""
    return {
        name: project_ct_points(np.asarray(p, float), pose, geometry).tolist()
        for name, p in points_ct.items()
    }


def training_pair(
    xray: np.ndarray, drrs: dict, side: str, pair_shape: tuple[int, int]
) -> tuple[dict, PairTransform]:
    """The ``side`` hip's pair (radiograph, bone DRR, PF-DRR, PF mask) through the pair
    transform (:mod:`conventions.pairs`), and the transform."""
    t = pair_transform(xray.shape, side, pair_shape)
    pair = {
        "xray": t.apply(xray),
        "bone_drr_g_cm2": t.apply(drrs["bone_drr_g_cm2"]),
        "pf_drr_g_cm2": t.apply(drrs["pf_drr_g_cm2"]),
        "pf_mask": t.apply(drrs["pf_silhouette"].astype(np.float32), order=0).astype(np.uint8),
    }
    return pair, t


def registration_status(pose_extra: dict) -> dict:
    """What a pair records of one body's registration (its pose file's status)."""
    return {
        "status": pose_extra.get("status", "ok"),
        "reasons": list(pose_extra.get("reasons", [])),
        "gc": pose_extra.get("gc"),
    }


def pair_measures(drrs: dict, pair: dict, points: dict, t: PairTransform) -> dict:
    """The pair record's measurements: the PF-DRR mean in the radiograph's view, where
    the radiograph's edge or the pair's crop cuts the PF region, and the landmarks in
    both frames."""
    edges = cut_edges(drrs["pf_silhouette"])
    pair_edges = cut_edges(pair["pf_mask"] > 0, PAIR_EDGES)
    return {
        "pf_drr_mean_g_cm2": pf_drr_mean(drrs["pf_drr_g_cm2"], drrs["pf_silhouette"]),
        "pf_silhouette_pixels": int(drrs["pf_silhouette"].sum()),
        "pf_cut": {
            "by_radiograph_edge": bool(edges),
            "radiograph_edges": edges,
            "by_pair_crop": bool(pair_edges),
            "pair_edges": pair_edges,
        },
        "landmarks_radiograph_rc": points,
        "landmarks_pair_rc": {k: t.to_pair(np.array(v)).tolist() for k, v in points.items()},
        "transform": t.to_dict(),
        "units": {"drr": "g/cm2", "landmarks": "pixel (row, col), centres at integers"},
    }
