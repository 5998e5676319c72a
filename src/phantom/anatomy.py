"""Hip anatomy of one synthetic subject: parameters, implicit bones, materials.

LPS millimetres throughout (+x patient left, +y posterior, +z superior); the femoral
head centres lie at z = 0, symmetric about x = 0. ``side`` s is +1 for the patient's
left and -1 for the right, so "lateral" is +s·x.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.labels import BONE_LABELS, SIDE_SIGN
from phantom import sdf

FEMALE_FRACTION = 0.8
# (intercept g/cm², slope g/cm² per year, residual SD g/cm²) of total-hip BMD vs age.
TOTAL_HIP_BMD_MODEL = {"F": (1.2218, -0.00719, 0.106), "M": (1.1533, -0.00389, 0.129)}


GREATER_TROCHANTER_RADII_MM = (14.0, 17.0, 22.0)
MIN_MUSCLE_OVER_TROCHANTER_MM = 15.0  # gluteus medius and tensor fasciae latae
MAX_BODY_SEMI_X_MM = 210.0  # inside the CT's field of view (make_grid: ±215 mm)


@dataclass
class FemurParameters:
    head_radius_mm: float
    neck_shaft_angle_deg: float
    anteversion_deg: float
    neck_length_mm: float
    neck_radius_mm: float
    shaft_radius_mm: float


@dataclass
class SubjectParameters:
    sex: str
    age_years: float
    target_areal_bmd_g_cm2: float  # drawn first; densities are then solved to reach it
    head_separation_mm: float  # between the femoral head centres
    joint_space_mm: float
    body_semi_axes_mm: tuple[float, float]  # (x, y) of the elliptic body outline
    fat_thickness_mm: float
    femur: dict[str, FemurParameters] = field(default_factory=dict)
    # Set by phantom.density.solve_densities once the anatomy is known.
    trabecular_mg_cm3: float = float("nan")
    cortical_mg_cm3: float = float("nan")
    # The cortex's thickness relative to the usual (phantom.variants: thin_cortex).
    cortex_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def draw_subject(rng: np.random.Generator) -> SubjectParameters:
    """Draw one adult's hip from published adult ranges (see docs/synthetic_cohort.md)."""
    sex = "F" if rng.random() < FEMALE_FRACTION else "M"
    male = sex == "M"
    age = float(rng.uniform(50, 90))
    # Total-hip DXA BMD by sex and age: a linear fit to the 969 adults of BoneQuality.csv
    # (Kim & Kim 2022) with its residual spread; 80 % women aged 50-90 then gives the
    # seed paper's cohort (mean 0.76 g/cm², SD 0.15).
    intercept, slope, residual_sd = TOTAL_HIP_BMD_MODEL[sex]
    target = float(np.clip(intercept + slope * age + rng.normal(0, residual_sd), 0.35, 1.4))
    scale = 1.07 if male else 1.0
    femur = {}
    nsa = rng.normal(130.0, 3.0)
    av = rng.normal(12.0, 5.0)
    head_r = rng.normal(23.0, 1.3) * scale
    for side in ("L", "R"):  # bilateral variation: small left-right differences
        femur[side] = FemurParameters(
            head_radius_mm=float(head_r + rng.normal(0, 0.3)),
            neck_shaft_angle_deg=float(np.clip(nsa + rng.normal(0, 1.5), 120, 140)),
            anteversion_deg=float(av + rng.normal(0, 2.0)),
            neck_length_mm=float(rng.normal(48.0, 3.0) * scale),
            neck_radius_mm=float(head_r * rng.normal(0.68, 0.03)),
            shaft_radius_mm=float(rng.normal(13.5, 1.0) * scale),
        )
    p = SubjectParameters(
        sex=sex,
        age_years=age,
        target_areal_bmd_g_cm2=target,
        head_separation_mm=float(rng.normal(172.0, 8.0) * scale),
        joint_space_mm=float(rng.uniform(3.0, 5.0)),
        body_semi_axes_mm=(float(rng.normal(165, 10)), float(rng.normal(115, 8))),
        fat_thickness_mm=float(np.clip(rng.normal(22 if not male else 16, 6), 6, 45)),
        femur=femur,
    )
    # The greater trochanter lies under the hip muscles and the fat, never through the
    # skin: widen a narrow body to keep them over it.
    trochanter_x = max(
        abs(femur_frame(p, side)["greater_trochanter"][0]) + GREATER_TROCHANTER_RADII_MM[0]
        for side in ("L", "R")
    )
    under_skin = trochanter_x + MIN_MUSCLE_OVER_TROCHANTER_MM
    p.fat_thickness_mm = float(min(p.fat_thickness_mm, MAX_BODY_SEMI_X_MM - under_skin))
    ax, ay = p.body_semi_axes_mm
    p.body_semi_axes_mm = (float(max(ax, under_skin + p.fat_thickness_mm)), ay)
    return p


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def femur_frame(p: SubjectParameters, side: str) -> dict[str, np.ndarray]:
    """Key points of one femur: head centre, neck base (on the shaft axis), trochanters."""
    s = SIDE_SIGN[side]
    f = p.femur[side]
    head = np.array([s * p.head_separation_mm / 2, 0.0, 0.0])
    a = np.deg2rad(f.neck_shaft_angle_deg)
    b = np.deg2rad(f.anteversion_deg)
    # Neck axis toward the head: medial and superior at the neck-shaft angle from the
    # distal shaft axis, turned anterior (-y) by the anteversion.
    toward_head = np.array([-s * np.sin(a) * np.cos(b), -np.sin(a) * np.sin(b), -np.cos(a)])
    base = head - f.neck_length_mm * toward_head
    return {
        "head_center": head,
        "neck_axis": toward_head,
        "neck_base": base,
        "shaft_top": base + np.array([s * 4.0, 0.0, 14.0]),
        "shaft_bottom": base + np.array([-s * 22.0, 0.0, -230.0]),
        "greater_trochanter": base + np.array([s * 17.0, 6.0, 12.0]),
        "lesser_trochanter": base + np.array([-s * 13.0, 10.0, -38.0]),
    }


def femur_sdf(points: np.ndarray, p: SubjectParameters, side: str) -> np.ndarray:
    fr, f = femur_frame(p, side), p.femur[side]
    d = sdf.sphere(points, fr["head_center"], f.head_radius_mm)
    d = sdf.smooth_union(
        d, sdf.capsule(points, fr["head_center"], fr["neck_base"], f.neck_radius_mm), 6.0
    )
    d = sdf.smooth_union(
        d, sdf.capsule(points, fr["shaft_top"], fr["shaft_bottom"], f.shaft_radius_mm), 10.0
    )
    d = sdf.smooth_union(
        d, sdf.ellipsoid(points, fr["greater_trochanter"], GREATER_TROCHANTER_RADII_MM), 8.0
    )
    return sdf.smooth_union(d, sdf.sphere(points, fr["lesser_trochanter"], 8.5), 5.0)


WING_RADII_MM = (78.0, 58.0, 6.5)
SACRUM_CENTRE_MM = (0.0, 62.0, 52.0)  # iliac wing: along u (front to back), w (up), thickness


def pelvis_frame(p: SubjectParameters, side: str) -> dict[str, np.ndarray]:
    """Key points and axes of one hip bone, relative to the femoral head it holds."""
    s = SIDE_SIGN[side]
    c = femur_frame(p, side)["head_center"]

    def at(dx: float, dy: float, dz: float) -> np.ndarray:
        """A point offset from the head centre (dx toward the patient's left)."""
        return c + np.array([dx, dy, dz])

    u = _unit([-s * 0.55, 0.83, 0.0])  # wing: from the anterior-lateral spine backward-medial
    w = _unit([s * 0.3, 0.0, 1.0])  # and up, flaring laterally
    wing_centre = at(-s * 8, 10, 72)
    symphysis = np.array([s * 6.0, -42.0, -30.0])
    return {
        "acetabulum_centre": c,
        # The acetabulum faces lateral, anterior and down.
        "acetabulum_opening": _unit([s * 0.75, -0.35, -0.55]),
        "wing_centre": wing_centre,
        "wing_axes": np.stack([u, w, np.cross(u, w)], axis=1),
        # The anterior superior iliac spine: the front tip of the wing.
        "asis": wing_centre - WING_RADII_MM[0] * u,
        "pubic_symphysis": symphysis,
        "ischial_tuberosity": at(-s * 22, 22, -58),
        "inferior_ramus_end": symphysis + np.array([s * 8, 8, -12]),
        "ilium_body": np.stack([at(-s * 8, 6, 0), at(-s * 12, 14, 55)]),
        "pubis_root": at(-s * 16, -12, -6),
        "ischium_root": at(-s * 8, 12, -14),
    }


def hip_bone_sdf(points: np.ndarray, p: SubjectParameters, side: str) -> np.ndarray:
    """One os coxae: acetabular cup, ilium (body and wing), pubis and ischium."""
    fr = pelvis_frame(p, side)
    c = fr["acetabulum_centre"]
    r_in = p.femur[side].head_radius_mm + p.joint_space_mm
    cup = np.maximum(sdf.sphere(points, c, r_in + 6.0), -sdf.sphere(points, c, r_in))
    d = np.maximum(cup, (points - c) @ fr["acetabulum_opening"] - 0.3 * r_in)
    body_lo, body_hi = fr["ilium_body"]
    ilium_body = sdf.capsule(points, body_lo + np.array([0, 0, r_in + 4]), body_hi, 17)
    d = sdf.smooth_union(d, ilium_body, 8)
    wing = sdf.ellipsoid(points, fr["wing_centre"], WING_RADII_MM, fr["wing_axes"])
    d = sdf.smooth_union(d, wing, 10)
    symphysis, tuberosity = fr["pubic_symphysis"], fr["ischial_tuberosity"]
    d = sdf.smooth_union(d, sdf.capsule(points, fr["pubis_root"], symphysis, 8.5), 6)
    d = sdf.smooth_union(d, sdf.capsule(points, fr["ischium_root"], tuberosity, 11), 6)
    d = sdf.smooth_union(d, sdf.capsule(points, tuberosity, fr["inferior_ramus_end"], 6.5), 5)
    # Keep the joint space open: nothing of the hip bone inside the head's shell.
    return sdf.subtract(d, sdf.sphere(points, c, r_in - 0.5))


SACRAL_TILT_DEG = 35.0  # the sacrum leans with its top forward


def _sacral_axes() -> np.ndarray:
    t = np.deg2rad(SACRAL_TILT_DEG)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


def sacrum_sdf(points: np.ndarray, p: SubjectParameters) -> np.ndarray:
    """A wedge: wide at its base (S1, between the ilia), narrowing to the coccyx below."""
    half_height = 58.0
    base_half_width = 0.33 * p.head_separation_mm / 2 + 22
    q = (points - np.asarray(SACRUM_CENTRE_MM, dtype=np.float32)) @ _sacral_axes()
    # Width falls from the base (top) to 40 % of it at the apex; scaling x this way keeps
    # the surface smooth and the signed distance close to true near it.
    taper = np.clip(0.7 + 0.3 * q[..., 2] / half_height, 0.4, 1.0).astype(np.float32)
    q = np.stack([q[..., 0] / taper, q[..., 1], q[..., 2]], axis=-1)
    return sdf.ellipsoid(q, [0.0, 0.0, 0.0], (base_half_width, 22, half_height))


def sacral_base(p: SubjectParameters) -> np.ndarray:
    """Centre of the sacrum's upper end plate (S1), on which L5 sits."""
    return np.asarray(SACRUM_CENTRE_MM) + _sacral_axes() @ np.array([0.0, 0.0, 58.0])


def lumbar_vertebrae(p: SubjectParameters) -> dict[str, dict[str, np.ndarray]]:
    """L5 and L4: cylindrical bodies on 8 mm discs above the sacrum, each with a neural
    arch and spinous process behind it."""
    scale = (p.head_separation_mm / 172.0) ** 0.5
    out, top = {}, sacral_base(p)
    for name in ("L5", "L4"):
        radius, height = 22.0 * scale, 27.0 * scale
        centre = top + np.array([0.0, 4.0, 8.0 + height / 2])
        out[name] = {
            "centre": centre,
            "radius": radius,
            "height": height,
            "spinous_tip": centre + np.array([0.0, 55.0 * scale, -8.0]),
        }
        top = centre + np.array([0.0, 0.0, height / 2])
    return out


def vertebra_sdf(points: np.ndarray, v: dict) -> np.ndarray:
    q = points - np.asarray(v["centre"], dtype=np.float32)
    body = np.maximum(
        np.linalg.norm(q[..., :2], axis=-1) - v["radius"], np.abs(q[..., 2]) - v["height"] / 2
    )
    arch = sdf.capsule(
        points, v["centre"] + np.array([0.0, v["radius"], 0.0]), v["spinous_tip"], 7.0
    )
    return sdf.smooth_union(body - 1.5, arch, 4.0)


@dataclass
class Grid:
    """An axis-aligned LPS grid: identity direction, origin at voxel (0, 0, 0)."""

    origin_mm: np.ndarray
    spacing_mm: np.ndarray
    size_xyz: tuple[int, int, int]

    def points(self, box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """LPS points of the voxels (of ``box``, (z, y, x) slices), shape (z, y, x, 3)."""
        axes = [
            self.origin_mm[i] + self.spacing_mm[i] * np.arange(self.size_xyz[i], dtype=np.float32)
            for i in range(3)
        ]
        if box is not None:
            axes = [axes[0][box[2]], axes[1][box[1]], axes[2][box[0]]]
        z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        return np.stack([x, y, z], axis=-1).astype(np.float32)

    def image(self, array: np.ndarray) -> sitk.Image:
        """``array`` (z, y, x) as a SimpleITK image on this grid."""
        img = sitk.GetImageFromArray(array)
        img.SetOrigin(tuple(float(v) for v in self.origin_mm))
        img.SetSpacing(tuple(float(v) for v in self.spacing_mm))
        return img

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return self.size_xyz[::-1]

    def box(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice]:
        """(z, y, x) slices of the voxels inside the LPS box [lo_mm, hi_mm]."""
        lo = np.floor((np.asarray(lo_mm) - self.origin_mm) / self.spacing_mm).astype(int)
        hi = np.ceil((np.asarray(hi_mm) - self.origin_mm) / self.spacing_mm).astype(int) + 1
        lo = np.clip(lo, 0, self.size_xyz)
        hi = np.clip(hi, 0, self.size_xyz)
        return slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0])


# Signed distance given to voxels far from a bone, outside the box it is evaluated in.
FAR_MM = 1000.0


def sdf_in_box(func, grid: Grid, key_points: np.ndarray, margin_mm: float) -> np.ndarray:
    """Evaluate a bone's signed distance only in the box around its key points (± margin);
    everywhere else it is FAR_MM. Bones fill a tenth of the grid, so this is most of the
    phantom's speed."""
    pts = np.asarray(key_points, dtype=float).reshape(-1, 3)
    box = grid.box(pts.min(axis=0) - margin_mm, pts.max(axis=0) + margin_mm)
    out = np.full(grid.shape_zyx, FAR_MM, dtype=np.float32)
    out[box] = func(grid.points(box))
    return out


def make_grid(voxel_mm, extent_lo=(-215, -130, -206), extent_hi=(215, 176, 196)) -> Grid:
    """The CT grid over the hips; ``voxel_mm`` is one size or (x, y, z) sizes in mm.

    It reaches 206 mm below and 196 mm above the femoral heads: beyond where the
    radiographs' field of view (the phantom's 35 × 43 cm detector, magnified about 1.15,
    positioned ± 10 mm) meets the body, so no radiograph shows the CT's cut ends."""
    lo, hi = np.asarray(extent_lo, float), np.asarray(extent_hi, float)
    spacing = np.broadcast_to(np.asarray(voxel_mm, dtype=float), (3,)).copy()
    size = tuple(int(v) for v in np.round((hi - lo) / spacing).astype(int) + 1)
    return Grid(lo, spacing, size)


@dataclass
class Anatomy:
    """Signed distances of each structure on the grid, and the trabecular texture."""

    bones: dict[str, np.ndarray]  # label name -> sdf (z, y, x)
    body: np.ndarray
    body_inner: np.ndarray  # the muscle compartment inside the fat layer
    texture: np.ndarray  # zero-mean, unit-SD trabecular modulation
    # Bones in the CT that carry no label (lumbar vertebrae): rendered, never segmented.
    unlabelled: dict[str, np.ndarray] = field(default_factory=dict)


def build_anatomy(p: SubjectParameters, grid: Grid, rng: np.random.Generator) -> Anatomy:
    def femur(side):
        fr = femur_frame(p, side)
        keys = [
            fr[k]
            for k in (
                "head_center",
                "neck_base",
                "shaft_top",
                "shaft_bottom",
                "greater_trochanter",
                "lesser_trochanter",
            )
        ]
        return sdf_in_box(lambda pts: femur_sdf(pts, p, side), grid, keys, 40.0)

    def hip(side):
        fr = pelvis_frame(p, side)
        wing = fr["wing_centre"] + np.array(
            [[sx, sy, sz] for sx in (-85, 85) for sy in (-85, 85) for sz in (-85, 85)]
        )
        keys = [
            fr["acetabulum_centre"],
            fr["asis"],
            fr["pubic_symphysis"],
            fr["ischial_tuberosity"],
            fr["inferior_ramus_end"],
            *wing,
        ]
        return sdf_in_box(lambda pts: hip_bone_sdf(pts, p, side), grid, keys, 40.0)

    sacrum_centre = np.array(SACRUM_CENTRE_MM)
    bones = {
        "femur_left": femur("L"),
        "femur_right": femur("R"),
        "sacrum": sdf_in_box(lambda pts: sacrum_sdf(pts, p), grid, [sacrum_centre], 100.0),
    }
    for side, name in (("L", "hip_left"), ("R", "hip_right")):
        bones[name] = sdf.subtract(hip(side), bones["sacrum"] - 2.0)  # sacroiliac joint gap
    # The body is an elliptic cylinder along z: one slice, broadcast over the others.
    ax, ay = p.body_semi_axes_mm
    xy = grid.points((slice(0, 1), slice(None), slice(None)))[..., :2] - np.float32([0.0, 5.0])
    flat = np.concatenate([xy, np.zeros_like(xy[..., :1])], -1)
    fat = p.fat_thickness_mm
    body = np.broadcast_to(sdf.ellipsoid(flat, [0, 0, 0], (ax, ay, 1e6)), grid.shape_zyx)
    body_inner = np.broadcast_to(
        sdf.ellipsoid(flat, [0, 0, 0], (ax - fat, ay - fat, 1e6)), grid.shape_zyx
    )
    noise = rng.standard_normal(grid.shape_zyx).astype(np.float32)
    # Trabecular texture ~1.2 mm across, whatever the voxel size (sigma per axis z, y, x).
    texture = ndimage.gaussian_filter(noise, sigma=1.2 / grid.spacing_mm[::-1] + 0.6)
    texture /= texture.std() + 1e-12
    vertebrae = {
        name: sdf_in_box(
            lambda pts, v=v: vertebra_sdf(pts, v), grid, [v["centre"], v["spinous_tip"]], 40.0
        )
        for name, v in lumbar_vertebrae(p).items()
    }
    return Anatomy({k: bones[k] for k in BONE_LABELS}, body, body_inner, texture, vertebrae)


def label_image(anatomy: Anatomy) -> np.ndarray:
    """uint8 labels (conventions.labels.BONE_LABELS): the structure whose surface is deepest."""
    names = list(BONE_LABELS)
    stack = np.stack([anatomy.bones[n] for n in names])
    idx = np.argmin(stack, axis=0)
    inside = np.take_along_axis(stack, idx[None], 0)[0] < 0
    values = np.array([BONE_LABELS[n] for n in names], dtype=np.uint8)
    return np.where(inside, values[idx], 0).astype(np.uint8)
