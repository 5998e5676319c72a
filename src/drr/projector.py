"""Project a volume: B poses × C channels of line integrals in one call.

``project`` computes the rays once (:mod:`drr.rays`, the conventions' geometry), then
integrates with one of two integrators:

- ``"trilinear"`` (default): midpoint samples of the trilinear interpolant, step at most
  ``step_mm`` (default half the smallest voxel spacing); the volume is taken as zero one
  voxel beyond its edge, where the interpolant falls off.
- ``"siddon"``: the exact integral of the voxelised (piecewise-constant) volume, voxel
  by voxel (Siddon 1985 / Jacobs 1998); the reference.

On CPU the integrators run as numba kernels (one thread per ray); on any other device,
or with ``backend="torch"``, as chunked torch ops (grid_sample; sorted plane crossings).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from conventions.geometry import ProjectionGeometry
from drr import kernels_torch
from drr.rays import rays_for_poses
from drr.volume import Volume

Integrator = Literal["trilinear", "siddon"]


def default_step_mm(volume: Volume) -> float:
    """Half the smallest voxel spacing: the sampling step that keeps errors below 0.5 %."""
    return 0.5 * float(volume.spacing_mm.min())


def clip_box(volume: Volume, integrator: Integrator) -> tuple[np.ndarray, np.ndarray]:
    """The index-space box outside which the integrand is zero."""
    n = np.array(volume.shape_xyz, dtype=np.float64)
    if integrator == "siddon":
        return np.full(3, -0.5), n - 0.5  # voxel boundaries
    # The trilinear interpolant's support [-1, N], shrunk by a hair so that every sample
    # has all eight neighbours inside the zero-padded volume (the kernel does not clamp).
    eps = 1e-6
    return np.full(3, -1.0 + eps), n - eps


def project(
    volume: Volume,
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    *,
    integrator: Integrator = "trilinear",
    step_mm: float | None = None,
    device: str | torch.device = "cpu",
    backend: Literal["auto", "numba", "torch"] = "auto",
) -> torch.Tensor:
    """Line integrals ∫ value dl (value × mm) for every pixel of every pose.

    ``camera_from_ct`` is one (4, 4) pose or a (B, 4, 4) batch. Returns a float32 tensor
    (B, C, rows, cols) on ``device``.
    """
    if integrator not in ("trilinear", "siddon"):
        raise ValueError(f"unknown integrator {integrator!r} (trilinear or siddon)")
    step = default_step_mm(volume) if step_mm is None else float(step_mm)
    if step <= 0:
        raise ValueError(f"step_mm must be positive, got {step}")
    poses = np.asarray(camera_from_ct, dtype=np.float64).reshape(-1, 4, 4)
    lo, hi = clip_box(volume, integrator)
    rays = rays_for_poses(geometry, poses, volume.index_from_ct, lo, hi)
    device = torch.device(device)
    use_numba = backend == "numba" or (backend == "auto" and device.type == "cpu")
    n_channels = volume.data.shape[0]

    if use_numba:
        from drr import kernels_numba

        out = np.zeros((len(rays), n_channels), dtype=np.float32)
        if integrator == "trilinear":
            padded = padded_volume(volume)
            kernels_numba.trilinear_march(
                padded,
                rays.origin,
                rays.direction,
                rays.mm_per_lambda,
                rays.lam_in,
                rays.lam_out,
                step,
                out,
            )
        else:
            kernels_numba.siddon(
                volume.data,
                rays.origin,
                rays.direction,
                rays.mm_per_lambda,
                rays.lam_in,
                rays.lam_out,
                out,
            )
        result = torch.from_numpy(out).to(device)
    else:
        vol = torch.from_numpy(volume.data).to(device)
        ray_dtype = torch.float64 if device.type == "cpu" else torch.float32
        t = {
            k: torch.from_numpy(getattr(rays, k)).to(device, ray_dtype)
            for k in ("origin", "direction", "mm_per_lambda", "lam_in", "lam_out")
        }
        if integrator == "trilinear":
            result = kernels_torch.trilinear_march(vol, **t, step_mm=step)
        else:
            result = kernels_torch.siddon(vol, **t)
    b = len(poses)
    return result.reshape(b, geometry.rows, geometry.cols, n_channels).permute(0, 3, 1, 2)


_PADDED_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def padded_volume(volume: Volume) -> np.ndarray:
    """The volume with one voxel of zeros around it, cached per volume (registration
    projects the same volume thousands of times)."""
    key = id(volume.data)
    hit = _PADDED_CACHE.get(key)
    if hit is not None and hit[0] is volume.data:
        return hit[1]
    padded = np.pad(volume.data, ((0, 0), (1, 1), (1, 1), (1, 1)))
    _PADDED_CACHE.clear()  # keep one: a volume can be hundreds of MB
    _PADDED_CACHE[key] = (volume.data, padded)
    return padded
