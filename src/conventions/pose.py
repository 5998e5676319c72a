"""Rigid poses (``pose.json``) and the projection of CT points to pixels.

``camera_from_ct`` is a 4×4 rigid homogeneous matrix (mm) mapping a CT physical point
p (LPS, as SimpleITK reports it) into the camera frame of :mod:`conventions.geometry`:
q = R p + t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conventions.errors import InputError
from conventions.files import write_json
from conventions.geometry import ProjectionGeometry, read_json_object

# Antero-posterior view of a supine patient, source in front, detector behind, seen as
# radiologists view it: camera x = patient left, camera y = inferior, camera z = posterior.
R_AP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Tolerance on RᵀR = I and det R = 1 for matrices read from files (float JSON round trips).
ORTHONORMAL_TOL = 1e-6


@dataclass
class Pose:
    """A CT-to-camera rigid transform plus whatever a stage recorded beside it."""

    camera_from_ct: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.camera_from_ct = np.asarray(self.camera_from_ct, dtype=np.float64)
        problem = rigid_matrix_problem(self.camera_from_ct)
        if problem:
            raise ValueError(f"camera_from_ct is not a rigid transform: {problem}")

    @property
    def rotation(self) -> np.ndarray:
        return self.camera_from_ct[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        return self.camera_from_ct[:3, 3]

    @property
    def source_position_ct(self) -> np.ndarray:
        """The X-ray source (camera origin) in CT coordinates: -Rᵀ t."""
        return -self.rotation.T @ self.translation

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "camera_from_ct": self.camera_from_ct.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> Pose:
        if "camera_from_ct" not in d:
            raise InputError(source, "pose lacks 'camera_from_ct'")
        try:
            m = np.array(d["camera_from_ct"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(source, "camera_from_ct must be a 4×4 array of numbers") from None
        extra = {k: v for k, v in d.items() if k != "camera_from_ct"}
        try:
            return cls(m, extra)
        except ValueError as e:
            raise InputError(source, str(e)) from None


def rigid_matrix_problem(m: np.ndarray) -> str | None:
    """Why ``m`` is not a 4×4 proper rigid transform, or None if it is."""
    if m.shape != (4, 4):
        return f"shape {m.shape}, expected (4, 4)"
    if not np.all(np.isfinite(m)):
        return "non-finite entries"
    if not np.allclose(m[3], [0, 0, 0, 1], atol=ORTHONORMAL_TOL):
        return f"last row {m[3].tolist()}, expected [0, 0, 0, 1]"
    r = m[:3, :3]
    if not np.allclose(r.T @ r, np.eye(3), atol=ORTHONORMAL_TOL):
        return "rotation part is not orthonormal"
    if np.linalg.det(r) < 0:
        return "rotation part is a reflection (det = -1)"
    return None


def read_pose(path: str | Path) -> Pose:
    """Read and validate a ``pose.json``; keys other than camera_from_ct are kept."""
    return Pose.from_dict(read_json_object(path), source=path)


def write_pose(path: str | Path, pose: Pose) -> None:
    write_json(path, pose.to_dict())


# The two rigid bodies registered per radiograph, and where a subject's registration
# folder keeps their poses: {folder}/{image}/pose_{body}.json (the README's results tree).
# One job registers all of a subject's radiographs into that folder (docs/performance.md).
HIP_BODIES = ("pelvis", "femur")


def pose_path(folder: str | Path, image: str, body: str) -> Path:
    """The pose file of ``body`` (pelvis or femur) for radiograph ``image`` in a subject's
    registration folder."""
    if body not in HIP_BODIES:
        raise ValueError(f"body {body!r} is not one of {HIP_BODIES}")
    return Path(folder) / image / f"pose_{body}.json"


def rigid_matrix(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4×4 homogeneous matrix from a 3×3 rotation and a translation (mm)."""
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return m


def rotation_matrix_about(center: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """4×4 rigid transform turning by the 3×3 ``rotation`` about a fixed ``center``
    point (x → R (x − c) + c); a stack of rotations (N, 3, 3) gives (N, 4, 4)."""
    r = np.asarray(rotation, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    out = np.zeros((*r.shape[:-2], 4, 4))
    out[..., :3, :3] = r
    out[..., :3, 3] = c - r @ c
    out[..., 3, 3] = 1.0
    return out


def rotation_from_rotvec(rotvec_rad: np.ndarray) -> np.ndarray:
    """3×3 rotation matrix of a rotation vector (axis × angle, radians); a stack (N, 3)
    gives (N, 3, 3). Rodrigues' formula, written out because importing scipy.spatial
    added about 0.08 s to every job that reads a pose (docs/performance.md)."""
    v = np.asarray(rotvec_rad, dtype=np.float64)
    theta2 = np.sum(v * v, axis=-1)[..., None, None]
    theta = np.sqrt(theta2)
    small = theta2 < 1e-8  # the series to θ⁴ is exact to float64 there
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0 + theta2**2 / 120.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0 + theta2**2 / 720.0, (1.0 - np.cos(safe)) / safe**2)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    k = np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)],
        -2,
    )
    return np.eye(3) + a * k + b * (k @ k)


def rotation_about(center: np.ndarray, rotvec_rad: np.ndarray) -> np.ndarray:
    """4×4 rotation by a rotation vector (radians) about a fixed ``center`` point."""
    return rotation_matrix_about(center, rotation_from_rotvec(rotvec_rad))


def ap_pose(isocenter_ct: np.ndarray, source_to_isocenter_mm: float) -> Pose:
    """The standard AP view with the isocenter on the principal ray.

    ``isocenter_ct`` (LPS mm, e.g. the midpoint of the femoral heads) lands at
    (0, 0, ``source_to_isocenter_mm``) in the camera frame.
    """
    iso = np.asarray(isocenter_ct, dtype=np.float64)
    t = np.array([0.0, 0.0, float(source_to_isocenter_mm)]) - R_AP @ iso
    return Pose(rigid_matrix(R_AP, t), {"initialisation": "standard AP"})


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4×4 homogeneous transform to points of shape (..., 3)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:3, :3].T + matrix[:3, 3]


def project_ct_points(
    points_ct: np.ndarray, camera_from_ct: np.ndarray, geometry: ProjectionGeometry
) -> np.ndarray:
    """Project CT points (..., 3) (LPS mm) to fractional (row, col) pixel indices."""
    return geometry.camera_to_pixel(transform_points(camera_from_ct, points_ct))
