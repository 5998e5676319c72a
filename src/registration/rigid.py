"""Register one rigid body: CMA-ES over its 6-DoF pose, maximising gradient correlation
between the radiograph and DRRs of the body.

The pose is searched as a correction to an initial ``camera_from_ct``: a rotation
(rotation vector, degrees) about the body's centre (e.g. the femoral head centre) and a
translation (mm), both along the camera's axes, so in-plane (x, y) and depth (z) get
their own scales and bounds; depth is what a single view constrains least. Each CMA-ES
generation is rendered as one batch of DRRs. Levels run coarse to fine: the images
binned by ``factor`` and the volume by ``volume_factor`` (the same by default), each
level starting where the last one ended. Binned images bias depth by millimetres (GC
favours a slightly magnified DRR there), so a precise result needs a last level at full
image resolution; its volume may stay coarse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cma
import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from conventions.geometry import ProjectionGeometry
from conventions.pose import rigid_matrix, transform_points
from drr.projector import project
from drr.volume import Volume
from registration.similarity import gradient_correlation

# Search scales (1 SD of CMA-ES's first generation) and bounds of the correction.
STEP_DEG, STEP_INPLANE_MM, STEP_DEPTH_MM = 4.0, 6.0, 15.0
BOUND_DEG, BOUND_INPLANE_MM, BOUND_DEPTH_MM = 30.0, 60.0, 120.0


@dataclass
class Level:
    factor: int  # image downsampling (pixels binned factor × factor)
    sigma_px: float = 1.0  # smoothing before the gradients
    max_evaluations: int = 1500
    volume_factor: int | None = None  # volume downsampling; None: as the image

    @property
    def volume_downsampling(self) -> int:
        return self.factor if self.volume_factor is None else self.volume_factor


DEFAULT_LEVELS = (Level(4, 1.0, 1200), Level(2, 1.0, 800))


@dataclass
class Result:
    camera_from_ct: np.ndarray
    gc: float
    evaluations: int
    seconds: float
    levels: list[dict] = field(default_factory=list)


def correction(x: np.ndarray, centre_camera: np.ndarray) -> np.ndarray:
    """4×4 camera-frame correction for parameters x = (rotvec°, translation mm)."""
    r = Rotation.from_rotvec(np.deg2rad(x[:3])).as_matrix()
    c = np.asarray(centre_camera, float)
    return rigid_matrix(r, c - r @ c + x[3:6])


def downsample_geometry(g: ProjectionGeometry, f: int) -> ProjectionGeometry:
    """The same detector with f × f pixels binned (rows and cols cut to multiples of f)."""
    cx, cy = g.principal_point
    return ProjectionGeometry(
        sdd_mm=g.sdd_mm,
        rows=g.rows // f,
        cols=g.cols // f,
        pixel_spacing_mm=(g.row_spacing_mm * f, g.col_spacing_mm * f),
        principal_point_mm=(cx, cy),
        source_to_patient_mm=g.source_to_patient_mm,
    )


def downsample_image(image: np.ndarray, f: int) -> np.ndarray:
    t = torch.as_tensor(np.asarray(image, np.float32))[None, None]
    return F.avg_pool2d(t, f)[0, 0].numpy() if f > 1 else np.asarray(image, np.float32)


def downsample_volume(volume: Volume, f: int) -> Volume:
    """Block means of f³ voxels; the index affine follows (new index i ↔ old f·i + (f−1)/2)."""
    if f <= 1:
        return volume
    data = F.avg_pool3d(torch.from_numpy(volume.data)[None], f, ceil_mode=True)[0].numpy()
    scale = np.diag([f, f, f, 1.0])
    scale[:3, 3] = (f - 1) / 2.0
    return Volume(data, volume.ct_from_index @ scale, volume.channels)


def register_rigid(
    volume: Volume,
    radiograph: np.ndarray,
    geometry: ProjectionGeometry,
    initial_camera_from_ct: np.ndarray,
    centre_ct: np.ndarray,
    mask: np.ndarray | None = None,
    levels=DEFAULT_LEVELS,
    seed: int = 2023,
    steps: tuple[float, float, float] = (STEP_DEG, STEP_INPLANE_MM, STEP_DEPTH_MM),
    bounds: tuple[float, float, float] = (BOUND_DEG, BOUND_INPLANE_MM, BOUND_DEPTH_MM),
) -> Result:
    """Maximise GC(radiograph, DRR of ``volume``) over the body's pose.

    ``volume`` holds what the radiograph shows of the body (e.g. attenuation, one
    channel; several channels are summed). ``mask`` (radiograph's shape) marks pixels
    to compare. ``steps`` and ``bounds`` (degrees, in-plane mm, depth mm) set the
    search's first spread and limits: a femur hangs in its hip joint, so it turns freely
    about its head but hardly moves.
    """
    start = time.perf_counter()
    pose = np.asarray(initial_camera_from_ct, float)
    total, records, gc = 0, [], float("nan")
    for level in levels:
        g = downsample_geometry(geometry, level.factor)
        fixed = downsample_image(radiograph, level.factor)[: g.rows, : g.cols]
        m = (
            None
            if mask is None
            else downsample_image(mask, level.factor)[: g.rows, : g.cols] > 0.99
        )
        vol = downsample_volume(volume, level.volume_downsampling)
        centre = transform_points(pose, centre_ct)
        fixed_t = torch.from_numpy(fixed)

        def score(
            xs: list[np.ndarray],
            pose=pose,
            centre=centre,
            g=g,
            vol=vol,
            fixed_t=fixed_t,
            m=m,
            level=level,
        ) -> np.ndarray:
            poses = np.stack([correction(x, centre) @ pose for x in xs])
            drr = project(vol, g, poses, integrator="trilinear").sum(dim=1)
            return gradient_correlation(fixed_t, drr, mask=m, sigma_px=level.sigma_px).numpy()

        stds = [steps[0]] * 3 + [steps[1]] * 2 + [steps[2]]
        limits = [bounds[0]] * 3 + [bounds[1]] * 2 + [bounds[2]]
        if records:  # finer levels start near the answer: search closer
            stds = [s / 3.0 for s in stds]
        es = cma.CMAEvolutionStrategy(
            np.zeros(6),
            1.0,
            {
                "CMA_stds": stds,
                "bounds": [[-b for b in limits], limits],
                "seed": seed,
                "maxfevals": level.max_evaluations,
                "tolfun": 1e-5,
                "verbose": -9,
            },
        )
        while not es.stop():
            xs = es.ask()
            es.tell(xs, list(-score(xs)))
        best = es.result.xbest
        pose = correction(best, centre) @ pose
        gc = float(-es.result.fbest)
        total += es.result.evaluations
        records.append({"factor": level.factor, "gc": gc, "evaluations": es.result.evaluations})
    return Result(pose, gc, total, time.perf_counter() - start, records)


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
