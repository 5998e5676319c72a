"""Bone densities that give a subject the areal BMD drawn for it.

The proximal-femur region's areal BMD is linear in the cortical and trabecular
densities once the anatomy is fixed, so the densities are solved for, not drawn: one
density level z sets trabecular = 190 + 45 z and cortical = 1000 + 60 z mg/cm³ (young
adults' proximal femur; both fall together with bone loss), and z is chosen so that the
region's areal BMD is the target.
"""

from __future__ import annotations

import numpy as np

from conventions.labels import BONE_LABELS
from conventions.units import G_CM2_PER_MG_CM3_MM
from phantom.acquisition import MUSCLE_MG_CM3, TRABECULAR_TEXTURE, bone_fractions
from phantom.anatomy import Anatomy, Grid, SubjectParameters

PF_BELOW_LESSER_TROCHANTER_MM = 10.0  # the proximal-femur region's distal border
TRABECULAR = (190.0, 45.0)  # mg/cm³ at z = 0, per unit z
CORTICAL = (1000.0, 60.0)
Z_RANGE = (-4.0, 4.0)


def femur_name(side: str) -> str:
    return "femur_left" if side == "L" else "femur_right"


def pf_region(labels: np.ndarray, grid: Grid, frames: dict, side: str) -> np.ndarray:
    """The target femur above a transverse plane 10 mm below its lesser trochanter: head,
    neck and trochanteric region, DXA's total-hip region of the femur."""
    name = femur_name(side)
    z = grid.origin_mm[2] + grid.spacing_mm[2] * np.arange(grid.size_xyz[2])
    lt_z = frames[name]["lesser_trochanter"][2]
    return (labels == BONE_LABELS[name]) & (
        z[:, None, None] >= lt_z - PF_BELOW_LESSER_TROCHANTER_MM
    )


def areal_bmd_g_cm2(density: np.ndarray, region: np.ndarray, dy_mm: float) -> float:
    """Mean over the region's AP projection of the line integral of density (g/cm²)."""
    areal = np.where(region, density, 0.0).sum(axis=1) * dy_mm * G_CM2_PER_MG_CM3_MM
    return float(areal[region.any(axis=1)].mean())


def solve_densities(
    p: SubjectParameters, anatomy: Anatomy, grid: Grid, labels: np.ndarray, side: str, frames
) -> float:
    """Set ``p``'s trabecular and cortical densities to reach its target areal BMD;
    returns the density level z (clipped to ±4: anatomy too small or large for the
    target then misses it, and the truth records what was reached)."""
    name = femur_name(side)
    region = pf_region(labels, grid, frames, side)
    z_mm = grid.origin_mm[2] + grid.spacing_mm[2] * np.arange(grid.size_xyz[2])
    z_mm = np.broadcast_to(z_mm[:, None, None], region.shape)
    occ, inner = bone_fractions(name, anatomy.bones[name], z_mm, frames)
    dy = float(grid.spacing_mm[1])
    cortical = areal_bmd_g_cm2(occ - inner, region, dy)  # per mg/cm³ of cortical density
    trabecular = areal_bmd_g_cm2(inner * (1 + TRABECULAR_TEXTURE * anatomy.texture), region, dy)
    rest = areal_bmd_g_cm2((1 - occ) * MUSCLE_MG_CM3, region, dy)
    at_zero = cortical * CORTICAL[0] + trabecular * TRABECULAR[0] + rest
    per_z = cortical * CORTICAL[1] + trabecular * TRABECULAR[1]
    z = float(np.clip((p.target_areal_bmd_g_cm2 - at_zero) / per_z, *Z_RANGE))
    p.trabecular_mg_cm3 = TRABECULAR[0] + TRABECULAR[1] * z
    p.cortical_mg_cm3 = CORTICAL[0] + CORTICAL[1] * z
    return z
