"""Bone densities that give a subject the areal BMD drawn for it.

The proximal-femur (PF) region's areal BMD (its mineral over its silhouette's area in
the DXA view, :mod:`anatomy.bmd`) is linear in the cortical and trabecular densities
once the anatomy is fixed, so the densities are solved for, not drawn: one
density level z sets trabecular = 190 + 45 z and cortical = 1000 + 60 z mg/cm³ (young
adults' proximal femur; both fall together with bone loss), and z is chosen so that the
region's areal BMD is the target.
"""

from __future__ import annotations

import numpy as np

from conventions.hip_regions import FemurLandmarks, dxa_rotation, spill_shell_mask
from conventions.labels import BONE_LABELS
from phantom.acquisition import MUSCLE_MG_CM3, TRABECULAR_TEXTURE, bone_fractions
from phantom.anatomy import Anatomy, Grid, SubjectParameters, femur_frame

TRABECULAR = (190.0, 45.0)  # mg/cm³ at z = 0, per unit z
CORTICAL = (1000.0, 60.0)
Z_RANGE = (-4.0, 4.0)
SILHOUETTE_STEP_MM = 0.25  # sampling of the region in the DXA view (truth area)


def femur_name(side: str) -> str:
    return "femur_left" if side == "L" else "femur_right"


def true_landmarks(p: SubjectParameters, side: str) -> FemurLandmarks:
    """The femur's landmarks as the phantom built it: the head sphere, the neck capsule's
    axis, the junction where a neck of that radius meets the head, the shaft capsule's
    axis and the lesser trochanter's centre."""
    fr, f = femur_frame(p, side), p.femur[side]
    centre, toward_head = fr["head_center"], fr["neck_axis"]
    junction = centre - np.sqrt(f.head_radius_mm**2 - f.neck_radius_mm**2) * toward_head
    up = np.array([0.0, 0.0, 1.0])
    e_sup = up - (up @ toward_head) * toward_head
    e_sup /= np.linalg.norm(e_sup)
    shaft = fr["shaft_top"] - fr["shaft_bottom"]
    return FemurLandmarks(
        side=side,
        head_center=centre,
        head_radius_mm=f.head_radius_mm,
        head_fit_rms_mm=0.0,
        neck_axis=toward_head,
        neck_radius_mm=f.neck_radius_mm,
        head_neck_junction=junction,
        head_neck_junction_superior=junction + f.neck_radius_mm * e_sup,
        head_neck_junction_inferior=junction - f.neck_radius_mm * e_sup,
        shaft_point=fr["shaft_bottom"],
        shaft_axis=shaft / np.linalg.norm(shaft),
        lesser_trochanter=fr["lesser_trochanter"],
        greater_trochanter=fr["greater_trochanter"] + np.array([0.0, 0.0, 22.0]),
    )


def dxa_projected_area_cm2(region: np.ndarray, grid: Grid, lm: FemurLandmarks) -> float:
    """Area of the region's silhouette in the DXA view
    (:func:`conventions.hip_regions.dxa_rotation`), by sampling the voxelised region
    (nearest voxel) along parallel rays on a fine grid: a computation independent of the
    DRR engine the pipeline measures it with."""
    rot = dxa_rotation(lm)
    c = lm.head_center
    centres = grid.origin_mm + np.argwhere(region)[:, ::-1] * grid.spacing_mm
    q = (centres - c) @ rot.T  # voxel centres in the neutral frame
    half = np.linalg.norm(grid.spacing_mm) / 2
    lo, hi = q.min(axis=0) - half, q.max(axis=0) + half
    h = SILHOUETTE_STEP_MM
    xs, ys, zs = (np.arange(lo[i], hi[i] + h, h) for i in range(3))
    area = 0
    for z in zs:  # one row of the view at a time keeps memory small
        qx, qy = np.meshgrid(xs, ys, indexing="ij")
        pts = np.stack([qx, qy, np.full_like(qx, z)], axis=-1) @ rot + c
        idx = np.rint((pts - grid.origin_mm) / grid.spacing_mm).astype(int)[..., ::-1]
        inside = np.all((idx >= 0) & (idx < region.shape), axis=-1)
        hit = np.zeros(qx.shape, dtype=bool)
        hit[inside] = region[tuple(idx[inside].T)]
        area += int(hit.any(axis=1).sum())
    return area * h * h / 100.0


def region_mass_mg(density: np.ndarray, region: np.ndarray, grid: Grid) -> float:
    return float(density[region].sum() * np.prod(grid.spacing_mm) / 1000.0)


def spill_shell(region: np.ndarray, labels: np.ndarray, side: str, grid: Grid) -> np.ndarray:
    """The thin shell around ``region`` whose bone partial volume counts as its mineral
    (:func:`conventions.hip_regions.spill_shell_mask`; the femur outside the region cut
    away)."""
    femur = labels == BONE_LABELS[femur_name(side)]
    return spill_shell_mask(region, labels > 0, femur & ~region, grid.spacing_mm[::-1])


def solve_densities(
    p: SubjectParameters,
    anatomy: Anatomy,
    grid: Grid,
    side: str,
    frames,
    region: np.ndarray,
    shell: np.ndarray,
    area_cm2: float,
) -> float:
    """Set ``p``'s trabecular and cortical densities to reach its target areal BMD;
    returns the density level z (clipped to ±4: anatomy too small or large for the
    target then misses it, and the truth records what was reached).

    ``region`` is the PF region of the true landmarks, ``shell`` its :func:`spill_shell`
    and ``area_cm2`` its :func:`dxa_projected_area_cm2`: computed once by the caller, which
    reports the truth over the same region."""
    name = femur_name(side)
    z_mm = grid.origin_mm[2] + grid.spacing_mm[2] * np.arange(grid.size_xyz[2])
    z_mm = np.broadcast_to(z_mm[:, None, None], region.shape)
    occ, inner = bone_fractions(name, anatomy.bones[name], z_mm, frames, p.cortex_scale)

    # The truth counts the region's voxels and the bone's partial-volume excess in the
    # shell around it (phantom.cohort.bmd_truth); soft tissue there is taken as muscle.
    both = region | shell

    def areal(volume):  # g/cm² per unit of the volume's density
        return region_mass_mg(volume, both, grid) / 1000.0 / area_cm2

    cortical = areal(occ - inner)  # per mg/cm³ of cortical density
    trabecular = areal(inner * (1 + TRABECULAR_TEXTURE * anatomy.texture))
    rest = areal(np.where(region, 1 - occ, -occ) * MUSCLE_MG_CM3)
    at_zero = cortical * CORTICAL[0] + trabecular * TRABECULAR[0] + rest
    per_z = cortical * CORTICAL[1] + trabecular * TRABECULAR[1]
    z = float(np.clip((p.target_areal_bmd_g_cm2 - at_zero) / per_z, *Z_RANGE))
    p.trabecular_mg_cm3 = TRABECULAR[0] + TRABECULAR[1] * z
    p.cortical_mg_cm3 = CORTICAL[0] + CORTICAL[1] * z
    return z
