"""The rays of one or more poses, expressed in the volume's continuous voxel index space.

Each ray runs from the X-ray source (λ = 0) to a pixel centre on the detector (λ = 1):
x(λ) = origin + λ·direction in index coordinates (x, y, z), ``mm_per_lambda`` being the
ray's physical length. Rays are clipped to a box in index space (slab method), so no
sample is spent in the air outside the volume.
"""

from __future__ import annotations

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


def rays_for_poses(
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    index_from_ct: np.ndarray,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
) -> Rays:
    """Rays of every pixel of every pose (B, 4, 4), pose-major then row-major order."""
    poses = np.asarray(camera_from_ct, dtype=np.float64).reshape(-1, 4, 4)
    pixels = geometry.pixel_centres().reshape(-1, 3)  # camera frame, (P, 3)
    length = np.linalg.norm(pixels, axis=1)
    m_idx, t_idx = index_from_ct[:3, :3], index_from_ct[:3, 3]
    origins, directions = [], []
    for pose in poses:
        r, t = pose[:3, :3], pose[:3, 3]
        # CT point of a camera point q: Rᵀ(q − t); the source is q = 0.
        source_ct = -r.T @ t
        pixel_ct = (pixels - t) @ r  # rows are Rᵀ(q − t)
        source_idx = m_idx @ source_ct + t_idx
        origins.append(np.broadcast_to(source_idx, pixels.shape))
        directions.append((pixel_ct - source_ct) @ m_idx.T)
    origin = np.concatenate(origins)
    direction = np.concatenate(directions)
    lam_in, lam_out = clip_to_box(origin, direction, np.asarray(box_lo), np.asarray(box_hi))
    return Rays(origin, direction, np.tile(length, len(poses)), lam_in, lam_out)


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
