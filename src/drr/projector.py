"""Project a volume: B poses × C channels of line integrals in one call.

Rays follow from the conventions' geometry in one place (:mod:`drr.rays`); the numba
kernels expand each ray from its pose and pixel as they go, the torch kernels take them
as arrays. Two integrators:

- ``"trilinear"`` (default): midpoint samples of the trilinear interpolant, step at most
  ``step_mm`` (default half the smallest voxel spacing); the volume is taken as zero one
  voxel beyond its edge, where the interpolant falls off.
- ``"siddon"``: the exact integral of the voxelised (piecewise-constant) volume, voxel
  by voxel (Siddon 1985 / Jacobs 1998); the reference.
- ``"joseph"``: the trilinear interpolant sampled where each ray crosses the slices of
  its dominant axis (Joseph 1982): a bilinear read per slice, about a quarter of the
  trilinear default's reads. Registration's levels use it (their DRRs are binned).

:func:`project` runs the numba kernels on the CPU and returns a NumPy array: every CPU
stage uses it, and none of them pays for importing torch (about 2 s a process).
:func:`project_tensor` returns a torch tensor on a device: on CUDA (or with
``backend="torch"``) it runs the chunked torch kernels (grid_sample; sorted plane
crossings), on the CPU the numba ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from conventions.geometry import ProjectionGeometry
from drr.rays import Rays, pose_frames, rays_for_poses
from drr.volume import Volume

if TYPE_CHECKING:  # torch is imported only where tensors are made
    import torch

Integrator = Literal["trilinear", "siddon", "joseph"]
INTEGRATORS: tuple[str, ...] = ("trilinear", "siddon", "joseph")


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


def _checked_step(volume: Volume, integrator: str, step_mm: float | None) -> float:
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r} (one of {', '.join(INTEGRATORS)})")
    step = default_step_mm(volume) if step_mm is None else float(step_mm)
    if step <= 0:
        raise ValueError(f"step_mm must be positive, got {step}")
    return step


def _rays(volume, geometry, camera_from_ct, integrator, step_mm) -> tuple[Rays, float, int]:
    """The clipped rays of every pose, the step and the number of poses."""
    step = _checked_step(volume, integrator, step_mm)
    poses = np.asarray(camera_from_ct, dtype=np.float64).reshape(-1, 4, 4)
    lo, hi = clip_box(volume, integrator)
    return rays_for_poses(geometry, poses, volume.index_from_ct, lo, hi), step, len(poses)


def project(
    volume: Volume,
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    *,
    integrator: Integrator = "trilinear",
    step_mm: float | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Line integrals ∫ value dl (value × mm) for every pixel of every pose, as NumPy.

    ``camera_from_ct`` is one (4, 4) pose or a (B, 4, 4) batch. Returns a float32 array
    (B, C, rows, cols). Rendered by the numba kernels on the CPU (no torch), or on another
    ``device`` (e.g. "cuda") by :func:`project_tensor` and brought back.
    """
    if device != "cpu":
        drr = project_tensor(
            volume, geometry, camera_from_ct, integrator=integrator, step_mm=step_mm, device=device
        )
        return drr.cpu().numpy()
    from drr import kernels_numba  # compiled once per machine: numba's cache

    step = _checked_step(volume, integrator, step_mm)
    f = pose_frames(geometry, camera_from_ct, volume.index_from_ct)
    lo, hi = clip_box(volume, integrator)
    b = len(f.source)
    out = np.zeros((b * len(f.pixels), volume.data.shape[0]), dtype=np.float32)
    frames = (f.pixels, f.mm_per_lambda, f.source, f.to_index, lo, hi)
    if integrator == "trilinear":
        padded, occupancy = padded_volume(volume)
        kernels_numba.trilinear_march(padded, occupancy, *frames, step, out)
    elif integrator == "joseph":
        padded, occupancy = padded_volume(volume)
        kernels_numba.joseph(padded, occupancy, *frames, out)
    else:
        kernels_numba.siddon(volume.data, *frames, out)
    return out.reshape(b, geometry.rows, geometry.cols, -1).transpose(0, 3, 1, 2)


def project_tensor(
    volume: Volume,
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    *,
    integrator: Integrator = "trilinear",
    step_mm: float | None = None,
    device: str | torch.device = "cpu",
    backend: Literal["auto", "numba", "torch"] = "auto",
) -> torch.Tensor:
    """:func:`project` as a float32 tensor (B, C, rows, cols) on ``device``: the torch
    kernels on any device but the CPU (or with ``backend="torch"``), else numba's."""
    import torch

    device = torch.device(device)
    if backend == "numba" or (backend == "auto" and device.type == "cpu"):
        drr = project(volume, geometry, camera_from_ct, integrator=integrator, step_mm=step_mm)
        return torch.from_numpy(np.ascontiguousarray(drr)).to(device)
    from drr import kernels_torch

    rays, step, b = _rays(volume, geometry, camera_from_ct, integrator, step_mm)
    vol = device_volume(volume, device)
    ray_dtype = torch.float64 if device.type == "cpu" else torch.float32
    t = {
        k: torch.from_numpy(getattr(rays, k)).to(device, ray_dtype)
        for k in ("origin", "direction", "mm_per_lambda", "lam_in", "lam_out")
    }
    if integrator == "trilinear":
        result = kernels_torch.trilinear_march(vol, **t, step_mm=step)
    elif integrator == "joseph":
        result = kernels_torch.joseph(vol, **t)
    else:
        result = kernels_torch.siddon(vol, **t)
    return result.reshape(b, geometry.rows, geometry.cols, -1).permute(0, 3, 1, 2)


# One entry each: a volume can be hundreds of MB. Keyed by the array's identity, checked
# against the array itself (an id can be reused once an array is freed).
_PADDED_CACHE: dict[int, tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]] = {}
_DEVICE_CACHE: dict[tuple[int, str], tuple[np.ndarray, object]] = {}


def padded_volume(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The volume with one voxel of zeros around it and its bricks' occupancy (the
    trilinear kernel's empty-space skipping), cached per volume: registration projects
    the same volume thousands of times."""
    from drr.kernels_numba import brick_occupancy

    key = id(volume.data)
    hit = _PADDED_CACHE.get(key)
    if hit is not None and hit[0] is volume.data:
        return hit[1]
    padded = np.pad(volume.data, ((0, 0), (1, 1), (1, 1), (1, 1)))
    entry = (padded, brick_occupancy(padded))
    _PADDED_CACHE.clear()  # keep one: a volume can be hundreds of MB
    _PADDED_CACHE[key] = (volume.data, entry)
    return entry


def device_volume(volume: Volume, device) -> torch.Tensor:
    """The volume's data on ``device``, uploaded once per volume (not once per render)."""
    import torch

    key = (id(volume.data), str(device))
    hit = _DEVICE_CACHE.get(key)
    if hit is not None and hit[0] is volume.data:
        return hit[1]
    tensor = torch.from_numpy(volume.data).to(device)
    if len(_DEVICE_CACHE) >= 4:  # registration alternates a few bodies and levels
        _DEVICE_CACHE.pop(next(iter(_DEVICE_CACHE)))
    _DEVICE_CACHE[key] = (volume.data, tensor)
    return tensor
