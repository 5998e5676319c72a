"""Register one rigid body: CMA-ES over its 6-DoF pose, maximising gradient correlation
between the radiograph and DRRs of the body.

The pose is searched as a correction to an initial ``camera_from_ct``: a rotation
(rotation vector, degrees) about the body's centre (e.g. the femoral head centre) and a
translation (mm), both along the camera's axes, so in-plane (x, y) and depth (z) get
their own scales and bounds; depth is what a single view constrains least. Each CMA-ES
generation is rendered as one batch of DRRs. Levels run coarse to fine: the images
binned to a level's pixel size and the volume to its voxel size, each level starting
where the last one ended. Another body's
DRR may be added to every moving image as a fixed background (the pelvis behind the
femur).
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from conventions.geometry import ProjectionGeometry
from conventions.pose import rotation_from_rotvec, rotation_matrix_about, transform_points
from conventions.similarity import GradientCorrelation, smoothing_radius
from drr.projector import project, project_tensor
from drr.volume import Volume, support_box
from registration.fused_gc import FusedGradientCorrelation


def _import_cma():
    """The ``cma`` package without the optional imports it falls back from: pyplot (for
    its plots) and scipy.stats (for its surrogate models), neither of which the search
    uses, and 0.5-1 s of every registration job's start-up. Modules another part of the
    process imported before are left alone, and nothing stays blocked afterwards."""
    blocked = [name for name in ("matplotlib", "scipy.stats") if name not in sys.modules]
    sys.modules.update(dict.fromkeys(blocked))  # None: an import of it raises ImportError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Could not import matplotlib.pyplot ..."
            return importlib.import_module("cma")
    finally:
        for name in blocked:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


cma = _import_cma()

# Search scales (1 SD of CMA-ES's first generation) and bounds of the correction, in the
# order of its parameters: rotation vector about camera x, y, z (degrees), translation
# along camera x, y, z (mm). Camera z is depth, which a single view constrains least.
RIGID_STEPS = (4.0, 4.0, 4.0, 6.0, 6.0, 15.0)
RIGID_BOUNDS = (30.0, 30.0, 30.0, 60.0, 60.0, 120.0)


@dataclass
class Level:
    """One level of the coarse-to-fine search, in the patient's millimetres rather than in
    pixels, so a clinical film of 0.14 mm pixels is searched at the same physical
    resolutions as the phantom's 0.8 mm ones (its factors are just larger)."""

    pixel_mm: float  # the detector pixel this level compares at (radiograph pixels binned)
    sigma_px: float = 1.0  # smoothing before the gradients, in this level's pixels
    max_evaluations: int = 1500
    # The largest binned voxel of the volume: it is binned by the largest factor that
    # keeps its voxels within this. None: binned by the image's factor. Binning a 3 mm CT
    # to 6 mm put the real CT's pelvis 3-4 mm off in depth.
    voxel_mm: float | None = None
    step_scale: float = 1.0  # CMA-ES's first spread, as a fraction of ``steps``
    integrator: str = "trilinear"  # the DRRs' line integrals (drr.projector)

    def image_factor(self, geometry: ProjectionGeometry) -> int:
        """Radiograph pixels binned per side: the nearest to ``pixel_mm``, at least 1."""
        spacing = min(geometry.row_spacing_mm, geometry.col_spacing_mm)
        return max(1, round(self.pixel_mm / spacing))

    def volume_factor(self, spacing_mm, image_factor: int) -> int:
        if self.voxel_mm is None:
            return image_factor
        return max(1, int((self.voxel_mm + 1e-6) // float(np.max(spacing_mm))))


# For a radiograph of 1.2 mm pixels: binned 4× then 2×.
DEFAULT_LEVELS = (Level(4.8, 1.0, 1200), Level(2.4, 1.0, 800, step_scale=1 / 3))


@dataclass
class Result:
    camera_from_ct: np.ndarray
    gc: float
    evaluations: int
    seconds: float
    levels: list[dict] = field(default_factory=list)  # per level: factor, gc, evaluations, pose


def correction(x: np.ndarray, centre_camera: np.ndarray) -> np.ndarray:
    """4×4 camera-frame correction for parameters x = (rotvec°, translation mm)."""
    return corrections(np.asarray(x, float)[None], centre_camera)[0]


def corrections(xs: np.ndarray, centre_camera: np.ndarray) -> np.ndarray:
    """(N, 4, 4) corrections for N parameter rows at once (a CMA-ES generation, a grid)."""
    xs = np.asarray(xs, float)
    out = rotation_matrix_about(centre_camera, rotation_from_rotvec(np.deg2rad(xs[:, :3])))
    out[:, :3, 3] += xs[:, 3:6]
    return out


def downsample_image(image: np.ndarray, f: int) -> np.ndarray:
    """f × f block means (rows and cols cut to multiples of f)."""
    image = np.asarray(image, np.float32)
    if f <= 1:
        return image
    r, c = image.shape[0] // f, image.shape[1] // f
    blocks = image[: r * f, : c * f].reshape(r, f, c, f)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def block_means(data: np.ndarray, f: int) -> np.ndarray:
    """Means of f × f × f blocks over the last three axes; a block the edge cuts is the
    mean of the voxels it holds."""
    lead, shape = data.shape[:-3], data.shape[-3:]
    out = [-(-n // f) for n in shape]
    padded = np.zeros((*lead, *(n * f for n in out)), np.float64)
    padded[(..., *(slice(0, n) for n in shape))] = data
    sums = padded.reshape(*lead, out[0], f, out[1], f, out[2], f).sum(axis=(-5, -3, -1))
    counts = [np.minimum(f, n - f * np.arange(m)) for n, m in zip(shape, out, strict=True)]
    n = counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]
    return (sums / n).astype(np.float32)


def downsample_volume(volume: Volume, f: int) -> Volume:
    """Block means of f³ voxels; the index affine follows (new index i ↔ old f·i + (f−1)/2)."""
    if f <= 1:
        return volume
    data = block_means(volume.data, f)
    scale = np.diag([f, f, f, 1.0])
    scale[:3, 3] = (f - 1) / 2.0
    return Volume(data, volume.ct_from_index @ scale, volume.channels)


class Scene:
    """One level's fixed image, mask, background and volume, and GC of a batch of poses.

    ``background`` (full-resolution line integrals, e.g. the pelvis's DRR when the femur
    is searched) is added to every DRR: line integrals add, so the moving image is the
    whole scene, and edges the body does not explain are not held against it.

    With ``device`` None images are NumPy arrays and DRRs come from the numba kernels
    (the CPU, no torch); with a torch device they are tensors there, rendered by the
    torch kernels on CUDA (numba's on "cpu"), and only the scores come back.
    """

    def __init__(
        self, volume, radiograph, geometry, level: Level, mask=None, background=None, device=None
    ):
        self.factor = f = level.image_factor(geometry)
        self.geometry = g = geometry.binned(f)  # the level's whole detector
        self.device = device
        mask = None if mask is None else downsample_image(mask, f)[: g.rows, : g.cols] > 0.99
        # Only the mask's box is rendered and compared, grown by what the smoothing and the
        # central differences reach: no pixel beyond it touches GC (the femur's half image).
        reach = smoothing_radius(level.sigma_px) + 1
        box = (slice(0, g.rows), slice(0, g.cols)) if mask is None else support_box(mask, reach)
        self.rendered = g.cropped(*box)
        self.fixed = self._array(downsample_image(radiograph, f)[: g.rows, : g.cols][box])
        self.mask = None if mask is None else self._array(mask[box])
        self.background = (
            None
            if background is None
            else self._array(downsample_image(background, f)[: g.rows, : g.cols][box])
        )
        self.volume = downsample_volume(volume, level.volume_factor(volume.spacing_mm, f))
        self.integrator = level.integrator
        if device is None:  # the DRR's channels and the background summed in GC's pass
            self.similarity = FusedGradientCorrelation(
                self.fixed, self.mask, level.sigma_px, self.background
            )
        else:
            self.similarity = GradientCorrelation(self.fixed, self.mask, level.sigma_px)

    def _array(self, a: np.ndarray):
        a = np.ascontiguousarray(a, np.float32)
        if self.device is None:
            return a
        import torch

        return torch.from_numpy(a).to(self.device)

    def gc(self, poses: np.ndarray) -> np.ndarray:
        """GC of the compared box (``rendered``) at each pose: the body's DRR plus the
        background against the fixed image."""
        if self.device is None:  # channels and background are summed in the fused pass
            drr = project(self.volume, self.rendered, poses, integrator=self.integrator)
            return self.similarity(drr)
        moving = project_tensor(
            self.volume, self.rendered, poses, integrator=self.integrator, device=self.device
        ).sum(dim=1)
        if self.background is not None:
            moving = moving + self.background
        return self.similarity(moving).cpu().numpy()


def cma_search(
    scene: Scene,
    base: np.ndarray,
    centre_ct: np.ndarray,
    x0: np.ndarray,
    stds,
    bounds,
    max_evaluations: int,
    seed: int,
) -> tuple[np.ndarray, float, int]:
    """CMA-ES from ``x0`` over the correction x of ``base`` about ``centre_ct`` (|x| ≤
    ``bounds``); each generation is one batch of DRRs. Returns the best x, its GC and
    the evaluations spent."""
    centre = transform_points(base, centre_ct)
    es = cma.CMAEvolutionStrategy(
        np.asarray(x0, float),
        1.0,
        {
            "CMA_stds": list(stds),
            "bounds": [[-b for b in bounds], list(bounds)],
            "seed": seed,
            "maxfevals": max_evaluations,
            "tolfun": 1e-5,
            "verbose": -9,
        },
    )
    while not es.stop():
        xs = es.ask()
        poses = corrections(np.array(xs), centre) @ base
        es.tell(xs, list(-scene.gc(poses)))
    return np.asarray(es.result.xbest), float(-es.result.fbest), int(es.result.evaluations)


def register_rigid(
    volume: Volume,
    radiograph: np.ndarray,
    geometry: ProjectionGeometry,
    initial_camera_from_ct: np.ndarray,
    centre_ct: np.ndarray,
    mask: np.ndarray | None = None,
    levels=DEFAULT_LEVELS,
    seed: int = 2023,
    steps=RIGID_STEPS,
    bounds=RIGID_BOUNDS,
    background: np.ndarray | None = None,
    starts: list[np.ndarray] | None = None,
    good_gc: float = 1.0,
    device: str | None = None,
) -> Result:
    """Maximise GC(radiograph, DRR of ``volume`` [+ ``background``]) over the body's pose.

    ``volume`` holds what the radiograph shows of the body (several channels are summed).
    ``mask`` (radiograph's shape) marks pixels to compare. ``steps`` and ``bounds`` (six
    values: rotation vector in degrees, translation in mm, camera axes) set the search's
    first spread and its limits about the start, over all levels: a femur hangs in its
    hip joint, so it turns about its head but hardly moves.

    Restarts: the first level runs from ``initial_camera_from_ct`` and then from each of
    ``starts`` (e.g. the coarse search's runners-up, with a new seed each) until one
    reaches ``good_gc``; the best goes on to the finer levels.
    """
    t0 = time.perf_counter()
    base = pose = np.asarray(initial_camera_from_ct, float)
    x = np.zeros(6)
    total, records, gc = 0, [], float("nan")
    for i, level in enumerate(levels):
        scene = Scene(volume, radiograph, geometry, level, mask, background, device)
        stds = [s * level.step_scale for s in steps]
        candidates = [(base, x)] + ([(s, np.zeros(6)) for s in starts or []] if i == 0 else [])
        best = None
        spent = 0
        for k, (b, x0) in enumerate(candidates):
            found = cma_search(
                scene, b, centre_ct, x0, stds, bounds, level.max_evaluations, seed + k
            )
            spent += found[2]
            if best is None or found[1] > best[2]:
                best = (b, found[0], found[1])
            if best[2] >= good_gc:
                break
        base, x, gc = best
        total += spent
        pose = correction(x, transform_points(base, centre_ct)) @ base
        records.append(
            {
                "factor": scene.factor,
                "gc": gc,
                "evaluations": spent,
                "camera_from_ct": pose.tolist(),
            }
        )
    return Result(pose, gc, total, time.perf_counter() - t0, records)


def mean_projection_distance(points_ct, pose_a, pose_b, geometry: ProjectionGeometry) -> float:
    """Mean distance (mm at the points' depth) between the points' projections under two
    poses: what a wrong pose moves on the radiograph, in the patient's millimetres."""
    qa = transform_points(pose_a, points_ct)
    qb = transform_points(pose_b, points_ct)
    pa = qa[:, :2] / qa[:, 2:3]
    pb = qb[:, :2] / qb[:, 2:3]
    return float(np.mean(np.linalg.norm(pa - pb, axis=1) * qa[:, 2]))


def target_registration_error(points_ct, pose_a, pose_b) -> float:
    """Mean 3D distance (mm) between the points placed by two poses."""
    d = transform_points(pose_a, points_ct) - transform_points(pose_b, points_ct)
    return float(np.mean(np.linalg.norm(d, axis=1)))
