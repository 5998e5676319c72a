"""Where the search starts, without a click: the standard AP view, then a coarse search.

The pelvis starts from the AP view at the femoral heads' midpoint with the source
distance the DICOM gives (:func:`conventions.pose.ap_pose`); off-centre positioning
(tens of mm across the table) and a turned pelvis are then found by a grid over
in-plane translation and rotation on small images, every grid pose rendered in one
batch. The femur starts at the pelvis's pose (the CT's hip joint angles) and its grid
turns it in the image plane about the head centre: abduction and adduction are what
move a femur most between a CT and a radiograph.
"""

from __future__ import annotations

import itertools

import numpy as np

from conventions.pose import transform_points
from registration.rigid import Scene, corrections


def grid_search(
    scene: Scene,
    pose: np.ndarray,
    centre_ct: np.ndarray,
    grid: np.ndarray,
    batch: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """GC of ``pose`` corrected by each row of ``grid`` (rotvec°, mm; camera axes,
    about ``centre_ct``). Returns the poses (N, 4, 4) and their GC (N,), best first."""
    centre = transform_points(pose, centre_ct)
    poses = corrections(grid, centre) @ pose
    gc = np.concatenate([scene.gc(poses[i : i + batch]) for i in range(0, len(poses), batch)])
    order = np.argsort(-gc)
    return poses[order], gc[order]


def in_plane_grid(
    shift_mm: float = 45.0, shift_step_mm: float = 7.5, angles_deg=(-6.0, 0.0, 6.0)
) -> np.ndarray:
    """Corrections over in-plane translation (a square grid) and in-plane rotation."""
    shifts = np.arange(-shift_mm, shift_mm + 1e-9, shift_step_mm)
    return np.array(
        [[0.0, 0.0, a, dx, dy, 0.0] for a, dx, dy in itertools.product(angles_deg, shifts, shifts)]
    )


def rotation_grid(angles_deg) -> np.ndarray:
    """Corrections turning the body in the image plane about its centre."""
    return np.array([[0.0, 0.0, a, 0.0, 0.0, 0.0] for a in angles_deg])


def distinct_starts(poses: np.ndarray, points_ct: np.ndarray, n: int, apart_mm: float):
    """Up to ``n`` of ``poses`` (best first) that place ``points_ct`` at least ``apart_mm``
    (mean distance) from every pose already kept: runners-up that are not the winner
    again."""
    placed = [transform_points(p, points_ct) for p in poses]
    kept: list[int] = []
    for i, q in enumerate(placed):
        if all(np.mean(np.linalg.norm(q - placed[j], axis=1)) > apart_mm for j in kept):
            kept.append(i)
        if len(kept) == n:
            break
    return [poses[i] for i in kept]
