"""Simulated CT acquisition: materials in HU, the calibration phantom, the scanner.

Every tissue (bone, muscle, water, fat, marrow) and the phantom's rods lie on the
scanner's hydroxyapatite line HU = intercept + slope·ρ (ρ in mg/cm³ HA, or its HA
equivalent for soft tissue), so the subject's own fat and muscle calibrate the scanner
as in QCT's internal (phantom-less) calibration. Gas (−1000 HU, the HU scale's
definition) and the table (not tissue) have fixed HU off that line. The true density
volume is what an ideal phantom calibration returns from the noiseless CT:
(HU − intercept) / slope.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from conventions.units import BMAS200_ROD_DENSITIES_MG_CM3, HU_AIR
from phantom import sdf
from phantom.anatomy import Anatomy, Grid, SubjectParameters, femur_frame, sdf_in_box

HU_TABLE = -350.0
MUSCLE_MG_CM3 = 40.0
# HA-equivalent densities of fat and yellow marrow: what a phantom calibration reads in
# them. At ~120 kVp adipose tissue reads about −100 HU and the HA line's slope is near
# 1 HU per mg/cm³ through water, so fat reads about −100 mg/cm³ HA. The value depends on
# kVp (the marrow-fat error of single-energy QCT: Laval-Jeantet et al., Radiology 1986;
# Glüer & Genant, JCAT 1989); phantom-less calibration uses adipose tissue as a
# reference with a site-specific value (Lee et al., Bone 2017). The femoral canal's
# marrow is mostly, not wholly, fat (red marrow remains in the proximal shaft): between
# fat and water.
FAT_MG_CM3 = -100.0
MARROW_MG_CM3 = -50.0
TRABECULAR_TEXTURE = 0.22  # relative SD of trabecular density about its mean
EDGE_MM = 0.5  # partial-volume width of tissue boundaries
PHANTOM_ROD_RADIUS_MM = 8.0
# The phantom's resin base is not water: it reads below the 0 mg/cm³ rod, so every rod,
# the 0 rod included, stands out from it.
PHANTOM_BASE_MG_CM3 = -30.0
PHANTOM_ROD_X_MM = (-100.0, -50.0, 0.0, 50.0, 100.0)


@dataclass
class Scanner:
    slope_hu_per_mg_cm3: float
    intercept_hu: float
    noise_sd_hu: float
    psf_sigma_mm: float
    name: str

    def hu(self, density_mg_cm3):
        return self.intercept_hu + self.slope_hu_per_mg_cm3 * density_mg_cm3

    def to_dict(self) -> dict:
        return asdict(self)


SCANNER_MODELS = ("SynthCT A 64", "SynthCT B 128", "SynthCT C 320")


def draw_scanner(rng: np.random.Generator) -> Scanner:
    return Scanner(
        slope_hu_per_mg_cm3=float(rng.uniform(0.78, 1.02)),
        intercept_hu=float(rng.uniform(-20.0, 20.0)),
        noise_sd_hu=float(rng.uniform(10.0, 22.0)),
        psf_sigma_mm=float(rng.uniform(0.5, 0.9)),
        name=str(rng.choice(SCANNER_MODELS)),
    )


def _mix(hu: np.ndarray, occ: np.ndarray, value) -> np.ndarray:
    return hu * (1.0 - occ) + occ * value


def _slab(points: np.ndarray, lo, hi) -> np.ndarray:
    """Signed distance (Chebyshev, fine for flat faces) to an axis-aligned box."""
    c, h = (np.asarray(lo) + hi) / 2.0, (np.asarray(hi) - lo) / 2.0
    return np.max(np.abs(points - c) - h, axis=-1)


def trabecular_density(
    p: SubjectParameters, bone: str, z_mm: np.ndarray, texture: np.ndarray, side_frames: dict
) -> np.ndarray:
    """Trabecular density (mg/cm³) with texture; the femoral shaft turns into marrow."""
    rho = p.trabecular_mg_cm3 * (1.0 + TRABECULAR_TEXTURE * texture)
    if bone.startswith("femur"):
        lt_z = side_frames[bone]["lesser_trochanter"][2]
        # Below the lesser trochanter the medullary canal holds marrow, not trabeculae.
        keep = np.clip((z_mm - (lt_z - 45.0)) / 35.0, 0.0, 1.0)
        return rho * keep
    return rho * (0.85 if bone.startswith("hip") else 0.8)


def cortical_thickness(
    bone: str, z_mm: np.ndarray, side_frames: dict, scale: float = 1.0
) -> np.ndarray:
    if bone.startswith("femur"):
        lt_z = side_frames[bone]["lesser_trochanter"][2]
        thickness = np.interp(z_mm, [lt_z - 60.0, lt_z + 10.0], [5.5, 1.6])
        return (scale * thickness).astype(np.float32)
    return np.full_like(z_mm, 1.4 * scale)


def bone_fractions(bone: str, d: np.ndarray, z_mm: np.ndarray, frames: dict, scale: float = 1.0):
    """(occupancy, inner occupancy) of one bone: occupancy − inner is its cortical shell,
    ``scale`` times the usual thickness."""
    occ = sdf.occupancy(d, EDGE_MM)
    return occ, sdf.occupancy(d + cortical_thickness(bone, z_mm, frames, scale), EDGE_MM)


def compose_hu(
    p: SubjectParameters, anatomy: Anatomy, grid: Grid, scanner: Scanner, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The noiseless HU volume (z, y, x), the same without the bones, and where the
    phantom's rods lie."""
    # Structures along the whole z range (body, phantom, table) are computed on one
    # slice and broadcast; small ones only in a box around them.
    z = grid.points((slice(None), slice(0, 1), slice(0, 1)))[..., 2]  # (z, 1, 1)
    xy = grid.points((slice(0, 1), slice(None), slice(None)))  # (1, y, x, 3)
    hu = np.full(grid.shape_zyx, HU_AIR, dtype=np.float32)
    hu = _mix(hu, sdf.occupancy(anatomy.body, 1.0), scanner.hu(FAT_MG_CM3))
    hu = _mix(hu, sdf.occupancy(anatomy.body_inner, 1.0), scanner.hu(MUSCLE_MG_CM3))
    bladder = ([0.0, -38.0, -5.0], np.array([38.0, 28.0, 30.0]))
    gas = []
    for _ in range(3):  # bowel gas above the pelvic inlet
        c = [rng.uniform(-60, 60), rng.uniform(-60, 10), rng.uniform(60, 120)]
        gas.append((c, rng.uniform(6, 15, size=3)))
    for (centre, radii), value in [(bladder, scanner.hu(0)), *[(g, HU_AIR) for g in gas]]:
        d = sdf_in_box(
            lambda pts, c=centre, r=radii: sdf.ellipsoid(pts, c, r),
            grid,
            [np.asarray(centre) - radii, np.asarray(centre) + radii],
            10.0,
        )
        hu = _mix(hu, sdf.occupancy(d, 1.0), value)

    # What each voxel would hold without the bones: the truth's partial-volume reference.
    soft_tissue = hu.copy()
    frames = {"femur_left": femur_frame(p, "L"), "femur_right": femur_frame(p, "R")}
    for bone, d in {**anatomy.bones, **anatomy.unlabelled}.items():
        occ, occ_inner = bone_fractions(bone, d, z, frames, p.cortex_scale)
        if not np.any(occ > 1e-3):
            continue
        trab = trabecular_density(p, bone, z, anatomy.texture, frames)
        hu_marrow = scanner.hu(MARROW_MG_CM3)
        inner_hu = np.where(trab > 1.0, scanner.hu(trab), hu_marrow)
        if bone.startswith("femur"):  # marrow fills where trabeculae fade out
            w = np.clip(trab / (p.trabecular_mg_cm3 * 0.5), 0.0, 1.0)
            inner_hu = w * scanner.hu(trab) + (1 - w) * hu_marrow
        hu = (
            hu * (1 - occ)
            + (occ - occ_inner) * scanner.hu(p.cortical_mg_cm3)
            + occ_inner * inner_hu
        )

    # B-MAS200-like phantom under the hips, then the table under it.
    y0 = 5.0 + p.body_semi_axes_mm[1] + 3.0
    lo_z, hi_z = (
        grid.origin_mm[2] - 10,
        grid.origin_mm[2] + grid.spacing_mm[2] * grid.size_xyz[2] + 10,
    )
    base = _slab(xy, [-140, y0, lo_z], [140, y0 + 24, hi_z])
    hu = _mix(hu, sdf.occupancy(base, EDGE_MM), scanner.hu(PHANTOM_BASE_MG_CM3))
    rods = []
    for x, rho in zip(PHANTOM_ROD_X_MM, BMAS200_ROD_DENSITIES_MG_CM3, strict=True):
        centre = np.array([x, y0 + 12.0])
        d = np.linalg.norm(xy[..., :2] - centre, axis=-1) - PHANTOM_ROD_RADIUS_MM
        hu = _mix(hu, sdf.occupancy(d, EDGE_MM), scanner.hu(rho))
        rods.append(
            {
                "x_mm": x,
                "y_mm": float(centre[1]),
                "radius_mm": PHANTOM_ROD_RADIUS_MM,
                "density_mg_cm3": rho,
            }
        )
    table = _slab(xy, [-200, y0 + 27, lo_z], [200, y0 + 35, hi_z])
    hu = _mix(hu, sdf.occupancy(table, EDGE_MM), HU_TABLE)
    return (
        hu.astype(np.float32),
        soft_tissue.astype(np.float32),
        {
            "rods": rods,
            "base_y_mm": [y0, y0 + 24.0],
            "base_equivalent_mg_cm3": PHANTOM_BASE_MG_CM3,
        },
    )


def acquire_ct(hu_clean: np.ndarray, grid: Grid, scanner: Scanner, rng: np.random.Generator):
    """Blur by the scanner's PSF, add noise, quantise to int16 HU as a scanner stores it."""
    blurred = ndimage.gaussian_filter(hu_clean, sigma=scanner.psf_sigma_mm / grid.spacing_mm[::-1])
    noisy = blurred + rng.normal(0.0, scanner.noise_sd_hu, size=blurred.shape)
    return np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
