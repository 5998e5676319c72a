"""Analytic test objects for the DRR: voxelised shapes and their exact line integrals."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from drr.volume import Volume


def affine(spacing, origin, rotvec) -> np.ndarray:
    """ct_from_index for a grid with direction cosines from a rotation vector."""
    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix() @ np.diag(spacing)
    m[:3, 3] = origin
    return m


def ellipsoid_inside(p: np.ndarray, centre, radii, rot: np.ndarray) -> np.ndarray:
    q = (p - centre) @ rot / radii
    return (q**2).sum(-1) <= 1.0


def cylinder_inside(p: np.ndarray, centre, radius, half_length, rot: np.ndarray) -> np.ndarray:
    q = (p - centre) @ rot  # cylinder axis = rot[:, 2]
    return (q[..., 0] ** 2 + q[..., 1] ** 2 <= radius**2) & (np.abs(q[..., 2]) <= half_length)


def voxelise(inside, shape_zyx, ct_from_index, supersample: int = 6) -> np.ndarray:
    """Partial-volume occupancy: the fraction of each voxel's sub-samples inside.

    Only voxels near the surface are supersampled (the rest are wholly in or out).
    """
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape_zyx), indexing="ij")
    idx = np.stack([i, j, k], -1)
    pts = idx @ ct_from_index[:3, :3].T + ct_from_index[:3, 3]
    occ = inside(pts).astype(np.float32)
    # A voxel whose 3×3×3 neighbourhood is uniform lies wholly on one side.
    from scipy import ndimage

    edge = ndimage.maximum_filter(occ, 3) != ndimage.minimum_filter(occ, 3)
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    offsets = np.stack(np.meshgrid(sub, sub, sub, indexing="ij"), -1).reshape(-1, 3)
    e_idx = idx[edge]
    frac = np.zeros(len(e_idx))
    for off in offsets:
        frac += inside((e_idx + off) @ ct_from_index[:3, :3].T + ct_from_index[:3, 3])
    occ[edge] = frac / len(offsets)
    return occ


def chord_ellipsoid(source, dirs, centre, radii, rot) -> np.ndarray:
    """Length (mm) of each ray source + t·dir (dir unit) inside the ellipsoid."""
    q0 = (source - centre) @ rot / radii
    w = dirs @ rot / radii
    a = (w**2).sum(-1)
    b = (q0 * w).sum(-1)
    c = (q0**2).sum(-1) - 1.0
    disc = b**2 - a * c
    return np.where(disc > 0, 2.0 * np.sqrt(np.maximum(disc, 0)) / a, 0.0)


def chord_cylinder(source, dirs, centre, radius, half_length, rot) -> np.ndarray:
    """Length of each ray inside a finite cylinder (axis rot[:, 2])."""
    q0 = (source - centre) @ rot
    w = dirs @ rot
    a = w[..., 0] ** 2 + w[..., 1] ** 2
    b = q0[..., 0] * w[..., 0] + q0[..., 1] * w[..., 1]
    c = q0[..., 0] ** 2 + q0[..., 1] ** 2 - radius**2
    disc = b**2 - a * c
    sq = np.sqrt(np.maximum(disc, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (-b - sq) / a, (-b + sq) / a
        z0 = (-half_length - q0[..., 2]) / w[..., 2]
        z1 = (half_length - q0[..., 2]) / w[..., 2]
    lo = np.maximum(t0, np.minimum(z0, z1))
    hi = np.minimum(t1, np.maximum(z0, z1))
    return np.where((disc > 0) & (hi > lo), hi - lo, 0.0)


def ray_sources_and_directions(geometry, camera_from_ct):
    """Source point and unit directions (CT frame) of every pixel's ray."""
    r, t = camera_from_ct[:3, :3], camera_from_ct[:3, 3]
    src = -r.T @ t
    pix = (geometry.pixel_centres().reshape(-1, 3) - t) @ r
    d = pix - src
    return src, d / np.linalg.norm(d, axis=1, keepdims=True)


def volume_of(occ: np.ndarray, ct_from_index: np.ndarray, value: float = 1.0) -> Volume:
    return Volume((occ * value)[None], ct_from_index)


def gaussian_density(p: np.ndarray, centre, sigmas, rot: np.ndarray) -> np.ndarray:
    q = (p - centre) @ rot / sigmas
    return np.exp(-0.5 * (q**2).sum(-1))


def gaussian_line_integral(source, dirs, centre, sigmas, rot) -> np.ndarray:
    """∫ exp(-½ (p-c)ᵀ Σ⁻¹ (p-c)) dl along each whole line source + t·dir (dir unit)."""
    q0 = (source - centre) @ rot / sigmas
    w = dirs @ rot / sigmas
    a = (w**2).sum(-1)
    b = (q0 * w).sum(-1)
    c = (q0**2).sum(-1)
    return np.sqrt(2 * np.pi / a) * np.exp(-0.5 * (c - b**2 / a))


def sample_on_grid(func, shape_zyx, ct_from_index) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape_zyx), indexing="ij")
    pts = np.stack([i, j, k], -1) @ ct_from_index[:3, :3].T + ct_from_index[:3, 3]
    return func(pts).astype(np.float32)
