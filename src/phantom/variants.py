"""Hips a clinic sees: variants of a synthetic subject that the CT stages must either
measure or refuse with a reason (docs/synthetic_cohort.md, "Clinical variants").

- ``hip_replacement``: a total hip arthroplasty on one side. The femoral head is replaced
  by a metal head on a stem down the neck and the proximal shaft, with a metal cup in
  the acetabulum. Cobalt-chromium and titanium read far above a scanner's range, so
  the implant's voxels are the largest HU a scanner stores (3071).
- ``osteoarthritis``: severe osteoarthritis of both hips: no joint space (the head
  touches the acetabulum) and a ring of osteophytes at the head-neck junction.
- ``thin_cortex``: an osteoporotic femur: the cortex a third of its usual thickness and
  a low BMD (areal 0.55 g/cm²), meant for coarse (3 mm) CT voxels, where partial volume
  matters most.

Each variant changes the subject in one of three places, so the truth (density, labels,
BMD) stays what the CT holds: its parameters before the anatomy is built, the anatomy
before the labels are drawn, or the HU volume before the scanner acquires it.
"""

from __future__ import annotations

import numpy as np

from conventions.labels import SIDES
from phantom import sdf
from phantom.anatomy import Anatomy, Grid, SubjectParameters, femur_frame, pelvis_frame

VARIANTS = ("hip_replacement", "osteoarthritis", "thin_cortex")
IMPLANT_HU = 3071.0  # the top of the int16 HU range scanners store
CUP_THICKNESS_MM = 3.0
STEM_LENGTH_MM = 130.0
OA_JOINT_SPACE_MM = 0.5  # the acetabulum then touches the head (anatomy.hip_bone_sdf)
OSTEOPHYTES = 10
OSTEOPHYTE_RADIUS_MM = 3.5
THIN_CORTEX_SCALE = 1.0 / 3.0
OSTEOPOROTIC_AREAL_BMD_G_CM2 = 0.55


def check_variant(variant: str | None, side: str | None) -> None:
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")
    if side is not None and side not in SIDES:
        raise ValueError(f"variant side must be one of {SIDES}, got {side!r}")


def adjust_parameters(p: SubjectParameters, variant: str | None) -> None:
    """What the variant changes before the anatomy is built (in place)."""
    if variant == "osteoarthritis":
        p.joint_space_mm = OA_JOINT_SPACE_MM
    elif variant == "thin_cortex":
        p.cortex_scale = THIN_CORTEX_SCALE
        p.target_areal_bmd_g_cm2 = OSTEOPOROTIC_AREAL_BMD_G_CM2


def adjust_anatomy(anatomy: Anatomy, p: SubjectParameters, grid: Grid, variant: str | None) -> None:
    """What the variant adds to the bones before the labels are drawn (in place):
    osteophytes, bone of the femur like any other."""
    if variant != "osteoarthritis":
        return
    for side, name in (("L", "femur_left"), ("R", "femur_right")):
        fr, radius = femur_frame(p, side), p.femur[side].head_radius_mm
        axis = fr["neck_axis"]  # toward the head
        # A ring about the neck axis where the head's surface meets the neck.
        centre = fr["head_center"] - 0.55 * radius * axis
        u = np.cross(axis, [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)
        ring = 0.8 * radius
        box = grid.box(centre - ring - 10.0, centre + ring + 10.0)
        points = grid.points(box)
        d = anatomy.bones[name][box]
        for k in range(OSTEOPHYTES):
            t = 2 * np.pi * k / OSTEOPHYTES
            spur = centre + ring * (np.cos(t) * u + np.sin(t) * v)
            d = sdf.smooth_union(d, sdf.sphere(points, spur, OSTEOPHYTE_RADIUS_MM), 2.0)
        anatomy.bones[name][box] = d


def implant_mask(p: SubjectParameters, grid: Grid, side: str) -> np.ndarray:
    """Boolean (z, y, x) mask of a total hip replacement's metal on ``side``: head, neck
    and stem in the femur, cup in the acetabulum."""
    fr, f = femur_frame(p, side), p.femur[side]
    shaft = fr["shaft_bottom"] - fr["shaft_top"]
    stem_end = fr["shaft_top"] + STEM_LENGTH_MM * shaft / np.linalg.norm(shaft)
    pelvis = pelvis_frame(p, side)
    cup_centre = pelvis["acetabulum_centre"]
    r_cup = f.head_radius_mm + p.joint_space_mm
    keys = np.array([fr["head_center"], fr["neck_base"], stem_end, cup_centre])
    box = grid.box(keys.min(0) - 40.0, keys.max(0) + 40.0)
    points = grid.points(box)
    d = sdf.sphere(points, fr["head_center"], f.head_radius_mm)
    d = np.minimum(
        d, sdf.capsule(points, fr["head_center"], fr["neck_base"], 0.3 * f.head_radius_mm)
    )
    d = np.minimum(d, sdf.capsule(points, fr["neck_base"], stem_end, 0.6 * f.shaft_radius_mm))
    shell = np.maximum(
        sdf.sphere(points, cup_centre, r_cup + CUP_THICKNESS_MM),
        -sdf.sphere(points, cup_centre, r_cup),
    )
    # A hemisphere: the half of the shell on the acetabulum's side, away from its opening.
    shell = np.maximum(shell, (points - cup_centre) @ pelvis["acetabulum_opening"])
    mask = np.zeros(grid.shape_zyx, bool)
    mask[box] = np.minimum(d, shell) <= 0.0
    return mask


def adjust_hu(
    hu: np.ndarray, p: SubjectParameters, grid: Grid, variant: str | None, side: str
) -> np.ndarray:
    """What the variant puts into the noiseless HU volume (a copy): the implant's metal."""
    if variant != "hip_replacement":
        return hu
    out = hu.copy()
    out[implant_mask(p, grid, side)] = IMPLANT_HU
    return out
