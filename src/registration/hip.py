"""Register a hip CT to one radiograph: the pelvis, then the target-side femur.

The pelvis (both hip bones and the sacrum) is registered first, over all six degrees of
freedom. The femur's pose differs from the CT's (standing, abduction, adduction), but
its head stays in the acetabulum: it is searched as a rotation about the head centre
(from the landmarks stage) with a few millimetres of play, while the pelvis and the
other femur, rendered at the pelvis's pose, stand behind it as a fixed background. Its
comparison is limited to the target side of the image (split between the heads).

Every body's result is assessed (:mod:`registration.assess`) and carries a status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose, project_ct_points, transform_points
from conventions.radiograph import PATIENT_TO_DETECTOR_MM
from drr.projector import project
from drr.volume import Volume
from registration.assess import Thresholds, assess, body_points
from registration.initialise import distinct_starts, grid_search, in_plane_grid, rotation_grid
from registration.rigid import Level, Result, Scene, register_rigid


@dataclass
class BodySearch:
    """How one body is searched: coarse grid, then CMA-ES levels."""

    levels: tuple[Level, ...]
    steps: tuple[float, ...]
    bounds: tuple[float, ...]
    grid: Level  # the coarse grid's pixel and voxel sizes (its evaluations: the grid's)
    restarts: int = 2  # runners-up of the grid tried when the first start scores < good_gc
    good_gc: float = 0.35


# Joseph's method renders every DRR of the hip's searches: about 0.6 of the time of the
# trilinear integrator's ½-voxel step, and as accurate over the demo cohort's 32
# radiographs (pelvis 30, femur 27 within mPD 1 mm and mTRE 3 mm with either; a CT of
# 3 mm voxels likewise: docs/performance.md, round six). Not the default of ``Level``: on
# a whole CT binned to 6-12 mm voxels its rougher GC left CMA-ES short of the optimum.
JOSEPH = "joseph"
PELVIS_SEARCH = BodySearch(
    levels=(
        Level(6.4, 1.0, 1200, voxel_mm=16.0, integrator=JOSEPH),
        # Depth is read from the pelvis's size (magnification): 3 mm of depth scale it by
        # 0.3 %. A volume binned to 6-12 mm voxels blurs that away: the real CT (3 mm)
        # binned as its images are put its pelvis 3-4 mm off in depth (mTRE ~3 mm), so
        # the finer levels keep voxels of at most 6 and 4 mm.
        Level(3.2, 1.0, 800, voxel_mm=6.0, step_scale=1 / 3, integrator=JOSEPH),
        # 270 evaluations: as accurate as 400 over two seeds of the demo cohort (29-30 of
        # 32 pelves within mPD 1 mm, mTRE 3 mm), a third of the pelvis's time less.
        Level(1.6, 1.0, 270, voxel_mm=4.0, step_scale=1 / 6, integrator=JOSEPH),
    ),
    steps=(3.0, 3.0, 3.0, 3.0, 3.0, 15.0),
    bounds=(20.0, 20.0, 20.0, 30.0, 30.0, 120.0),
    grid=Level(6.4, 1.0, 0, voxel_mm=16.0, integrator=JOSEPH),
)
FEMUR_SEARCH = BodySearch(
    levels=(
        Level(3.2, 1.0, 600, voxel_mm=4.0, integrator=JOSEPH),
        Level(1.6, 1.0, 400, voxel_mm=4.0, step_scale=0.5, integrator=JOSEPH),
        # The last level at the CT's own voxels (binned only below 1 mm).
        Level(0.8, 1.0, 240, voxel_mm=1.0, step_scale=0.25, integrator=JOSEPH),
    ),
    # Out-of-plane turns (flexion, rotation about the shaft) are small and weakly seen;
    # the in-plane turn (ab/adduction) was set by the grid; the head barely translates.
    steps=(2.0, 2.0, 2.0, 0.3, 0.3, 0.3),
    bounds=(15.0, 15.0, 15.0, 2.0, 2.0, 2.0),
    grid=Level(3.2, 1.0, 0, voxel_mm=4.0, integrator=JOSEPH),
)
FEMUR_GRID_DEG = np.arange(-40.0, 40.0 + 1e-9, 2.0)


@dataclass
class BodyResult:
    name: str
    result: Result
    assessment: dict
    initial_camera_from_ct: np.ndarray
    centre_ct: np.ndarray
    seconds: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "body": self.name,
            "camera_from_ct": self.result.camera_from_ct.tolist(),
            "gc": self.result.gc,
            **self.assessment,
            "evaluations": self.result.evaluations,
            # No wall time here: the same inputs must give the same bytes (it is in the log).
            "centre_of_rotation_lps_mm": self.centre_ct.tolist(),
            "initial_camera_from_ct": self.initial_camera_from_ct.tolist(),
            "levels": self.result.levels,
            **self.extra,
        }


def standard_start(isocentre_ct: np.ndarray, geometry: ProjectionGeometry) -> np.ndarray:
    """AP view centred at ``isocentre_ct`` (the femoral heads' midpoint for the hip), at
    the DICOM's source distance."""
    sod = geometry.source_to_patient_mm
    if sod is None:
        sod = geometry.sdd_mm - PATIENT_TO_DETECTOR_MM
    return ap_pose(np.asarray(isocentre_ct, float), sod).camera_from_ct


def film_mask(pixels: np.ndarray) -> np.ndarray:
    """Pixels worth comparing: not saturated (burnt-out borders, collimator shadow, burnt-in
    text all sit at the image's extremes). 1 = use."""
    lo, hi = float(pixels.min()), float(pixels.max())
    span = hi - lo
    if span <= 0:
        return np.zeros(pixels.shape, np.float32)
    extreme = (pixels <= lo + 1e-3 * span) | (pixels >= hi - 1e-3 * span)
    return (~extreme).astype(np.float32)


def side_mask(
    geometry: ProjectionGeometry, pelvis_pose: np.ndarray, head_ct: np.ndarray, midline_ct
) -> np.ndarray:
    """The image half holding the femoral head ``head_ct``: split at the column of
    ``midline_ct`` (the heads' midpoint)."""
    head, mid = project_ct_points(np.array([head_ct, midline_ct]), pelvis_pose, geometry)[:, 1]
    split = round(float(mid))
    mask = np.zeros((geometry.rows, geometry.cols), np.float32)
    if head > mid:
        mask[:, max(split, 0) :] = 1.0
    else:
        mask[:, : max(split, 0)] = 1.0
    return mask


def femur_below_head_mm(femur: Volume, head_ct: np.ndarray) -> float:
    """How far (mm, along the body's inferior axis) the CT's femur reaches below the head
    centre: its shaft and lesser trochanter are what fix its turn about the head."""
    idx = np.argwhere(femur.data.sum(axis=0) > 0)[:, ::-1]  # (x, y, z) of the femur's voxels
    lowest = transform_points(femur.ct_from_index, idx.astype(float))[:, 2].min()
    return float(head_ct[2] - lowest)


def register_body(
    name: str,
    volume: Volume,
    pixels: np.ndarray,
    geometry: ProjectionGeometry,
    start: np.ndarray,
    centre_ct: np.ndarray,
    search: BodySearch,
    grid: np.ndarray | None,
    mask: np.ndarray | None,
    thresholds: Thresholds,
    background: np.ndarray | None = None,
    seed: int = 2023,
    device: str | None = None,
) -> BodyResult:
    """Grid (unless ``grid`` is None: an explicit start is used as is), CMA-ES, assessment.
    ``device``: None (NumPy and the numba kernels, no torch), or a torch device such as
    "cuda" (tensors there)."""
    t0 = time.perf_counter()
    points = body_points(volume)
    starts: list[np.ndarray] = []
    first = start
    if grid is not None:
        coarse = Scene(
            volume,
            pixels,
            geometry,
            search.grid,
            mask,
            background,
            device,
        )
        poses, _ = grid_search(coarse, start, centre_ct, grid)
        ranked = distinct_starts(poses, points, search.restarts + 1, apart_mm=5.0)
        first, starts = ranked[0], ranked[1:]
    result = register_rigid(
        volume,
        pixels,
        geometry,
        first,
        centre_ct,
        mask=mask,
        levels=search.levels,
        seed=seed,
        steps=search.steps,
        bounds=search.bounds,
        background=background,
        starts=starts,
        good_gc=search.good_gc,
        device=device,
    )
    finest = Scene(volume, pixels, geometry, search.levels[-1], mask, background, device)
    verdict = assess(result, finest, points, centre_ct, thresholds)
    return BodyResult(name, result, verdict, start, centre_ct, time.perf_counter() - t0)


def register_hip(
    bodies: dict[str, Volume],
    pixels: np.ndarray,
    geometry: ProjectionGeometry,
    head_ct: np.ndarray,
    midline_ct: np.ndarray,
    side: str,
    initial_pelvis: np.ndarray | None = None,
    initial_femur: np.ndarray | None = None,
    thresholds: Thresholds | None = None,
    seed: int = 2023,
    device: str | None = None,
) -> dict[str, BodyResult]:
    """Pelvis, then the ``side`` femur. ``bodies`` from :func:`registration.bodies.hip_bodies`;
    ``head_ct`` the target femur's head centre, ``midline_ct`` a point on the body's
    midline, the heads' midpoint (LPS mm): the pelvis's centre of rotation and start. An
    initial pose given for a body is used as is (no grid); otherwise the standard AP
    start and the grid. ``device``: where DRRs are rendered (None: the CPU's numba
    kernels; "cuda": the torch kernels on the GPU)."""
    thresholds = thresholds or Thresholds()
    head_ct = np.asarray(head_ct, float)
    midline_ct = np.asarray(midline_ct, float)
    usable = film_mask(pixels)
    if initial_pelvis is None:
        pelvis_start, pelvis_grid = standard_start(midline_ct, geometry), in_plane_grid()
    else:
        pelvis_start, pelvis_grid = np.asarray(initial_pelvis, float), None
    pelvis = register_body(
        "pelvis",
        bodies["pelvis"],
        pixels,
        geometry,
        pelvis_start,
        midline_ct,
        PELVIS_SEARCH,
        pelvis_grid,
        usable,
        thresholds,
        seed=seed,
        device=device,
    )
    pelvis_pose = pelvis.result.camera_from_ct
    # The pelvis and the other femur behind the target femur, at the pelvis's pose.
    behind = [project(bodies["pelvis"], geometry, pelvis_pose).sum(axis=1)[0]]
    if "femur_other" in bodies:
        behind.append(project(bodies["femur_other"], geometry, pelvis_pose).sum(axis=1)[0])
    background = np.sum(behind, axis=0)
    mask = usable * side_mask(geometry, pelvis_pose, head_ct, midline_ct)
    if initial_femur is None:
        femur_start, femur_grid = pelvis_pose, rotation_grid(FEMUR_GRID_DEG)
    else:
        femur_start, femur_grid = np.asarray(initial_femur, float), None
    femur = register_body(
        "femur",
        bodies["femur"],
        pixels,
        geometry,
        femur_start,
        head_ct,
        FEMUR_SEARCH,
        femur_grid,
        mask,
        thresholds,
        background=background,
        seed=seed,
        device=device,
    )
    femur.extra["side"] = side
    reach = femur_below_head_mm(bodies["femur"], head_ct)
    femur.extra["femur_below_head_mm"] = round(reach, 1)
    if reach < thresholds.femur_below_head_mm:
        if femur.assessment["status"] == "ok":
            femur.assessment["status"] = "suspect"
        femur.assessment["reasons"].append(
            f"the CT holds {reach:.0f} mm of femur below the head centre (< "
            f"{thresholds.femur_below_head_mm:.0f} mm): its turn about the head is not seen"
        )
    if pelvis.assessment["status"] == "failed" and femur.assessment["status"] != "failed":
        femur.assessment["status"] = "suspect"
        femur.assessment["reasons"].append("the pelvis it was placed against failed")
    return {"pelvis": pelvis, "femur": femur}
