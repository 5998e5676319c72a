"""The rays of one or more poses, expressed in the volume's continuous voxel index space.

Each ray runs from the X-ray source (λ = 0) to a pixel centre on the detector (λ = 1):
x(λ) = origin + λ·direction in index coordinates (x, y, z), ``mm_per_lambda`` being the
ray's physical length. Rays are clipped to a box in index space (slab method), so no
sample is spent in the air outside the volume.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from conventions.geometry import ProjectionGeometry


@dataclass
class Rays:
    origin: np.ndarray  # (R, 3) source in index space
    direction: np.ndarray  # (R, 3) source → pixel centre, index space
    mm_per_lambda: np.ndarray  # (R,) physical source-to-pixel distance
    lam_in: np.ndarray  # (R,) entry into the clip box (≥ 0)
    lam_out: np.ndarray  # (R,) exit (≤ 1); lam_out ≤ lam_in: the ray misses

    def __len__(self) -> int:
        return len(self.mm_per_lambda)

    def chord_mm(self) -> np.ndarray:
        return np.maximum(self.lam_out - self.lam_in, 0.0) * self.mm_per_lambda


@dataclass
class PoseFrames:
    """Rays of every pose, factored: pixel p of pose b runs from ``source[b]`` along
    ``pixels[p] @ to_index[b]`` (index space). The kernels expand it one ray at a time,
    so a batch of poses costs no (B × P, 3) temporaries."""

    pixels: np.ndarray  # (P, 3) pixel centres, camera frame (mm)
    mm_per_lambda: np.ndarray  # (P,) source-to-pixel distance (mm)
    source: np.ndarray  # (B, 3) the source in index space
    to_index: np.ndarray  # (B, 3, 3) camera direction (row) → index direction (row)


def pose_frames(
    geometry: ProjectionGeometry, camera_from_ct: np.ndarray, index_from_ct: np.ndarray
) -> PoseFrames:
    """A camera point q is the CT point Rᵀ(q − t); the source is q = 0. The ray from the
    source to pixel q is therefore Rᵀq in CT space and M·Rᵀq in index space (M the
    linear part of ``index_from_ct``): as a row, q·(R Mᵀ)."""
    poses = np.asarray(camera_from_ct, dtype=np.float64).reshape(-1, 4, 4)
    pixels, length = _pixel_centres(geometry)
    m_idx, t_idx = index_from_ct[:3, :3], index_from_ct[:3, 3]
    r, t = poses[:, :3, :3], poses[:, :3, 3]
    source = np.einsum("bkj,bk->bj", r, -t) @ m_idx.T + t_idx  # M(−Rᵀt) + t_idx
    return PoseFrames(pixels, length, np.ascontiguousarray(source), r @ m_idx.T)


def rays_for_poses(
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    index_from_ct: np.ndarray,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
) -> Rays:
    """Rays of every pixel of every pose (B, 4, 4), pose-major then row-major order
    (:class:`PoseFrames` expanded), clipped to the index-space box [box_lo, box_hi]."""
    f = pose_frames(geometry, camera_from_ct, index_from_ct)
    n_pixels = len(f.pixels)
    direction = np.matmul(f.pixels[None], f.to_index).reshape(-1, 3)
    origin = np.repeat(f.source, n_pixels, axis=0)
    lam_in, lam_out = clip_to_box(origin, direction, np.asarray(box_lo), np.asarray(box_hi))
    return Rays(origin, direction, np.tile(f.mm_per_lambda, len(f.source)), lam_in, lam_out)


@functools.lru_cache(maxsize=8)
def _pixel_centres(geometry: ProjectionGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (P, 3) in the camera frame and their distances from the source."""
    pixels = geometry.pixel_centres().reshape(-1, 3)
    length = np.linalg.norm(pixels, axis=1)
    pixels.setflags(write=False)  # shared by every caller of the cache
    length.setflags(write=False)
    return pixels, length


def clip_to_box(
    origin: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit λ of rays through the box [lo, hi] (slab method), within [0, 1].

    A ray parallel to a slab is inside it for every λ or for none. Compiled: vectorised
    numpy needs a dozen (R, 3) temporaries and dominated small renders.
    """
    lam_in = np.empty(len(origin))
    lam_out = np.empty(len(origin))
    _clip(
        np.ascontiguousarray(origin, dtype=np.float64),
        np.ascontiguousarray(direction, dtype=np.float64),
        np.asarray(lo, dtype=np.float64),
        np.asarray(hi, dtype=np.float64),
        lam_in,
        lam_out,
    )
    return lam_in, lam_out


@numba.njit(parallel=True, cache=True)
def _clip(origin, direction, lo, hi, lam_in, lam_out):
    for r in numba.prange(origin.shape[0]):
        near, far = 0.0, 1.0
        for ax in range(3):
            o, d = origin[r, ax], direction[r, ax]
            if d == 0.0:
                if o < lo[ax] or o > hi[ax]:
                    near, far = 1.0, 0.0
                continue
            t0 = (lo[ax] - o) / d
            t1 = (hi[ax] - o) / d
            near = max(near, min(t0, t1))
            far = min(far, max(t0, t1))
        lam_in[r] = near
        lam_out[r] = far
