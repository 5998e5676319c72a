"""Signed distance functions (mm, negative inside) on a grid of LPS points.

Smooth implicit shapes rather than boxes: unions are blended with a polynomial
smooth-minimum so bones have fillets where parts meet (neck into trochanter, …).
"""

from __future__ import annotations

import numpy as np


def sphere(p: np.ndarray, center, radius: float) -> np.ndarray:
    return np.linalg.norm(p - np.asarray(center), axis=-1) - radius


def capsule(p: np.ndarray, a, b, radius: float) -> np.ndarray:
    """Distance to the segment a–b, minus radius: a cylinder with round ends."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) - radius


def ellipsoid(p: np.ndarray, center, radii, rotation: np.ndarray | None = None) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (exact on the axes; good near the surface)."""
    q = p - np.asarray(center)
    if rotation is not None:
        q = q @ rotation  # into the ellipsoid's own axes
    r = np.asarray(radii, float)
    k0 = np.linalg.norm(q / r, axis=-1)
    k1 = np.linalg.norm(q / (r * r), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = k0 * (k0 - 1.0) / k1
    return np.where(k1 > 0, d, -r.min())


def smooth_union(d1: np.ndarray, d2: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum with blend radius k (mm)."""
    h = np.clip(0.5 + 0.5 * (d2 - d1) / k, 0.0, 1.0)
    return d2 * (1 - h) + d1 * h - k * h * (1 - h)


def subtract(d: np.ndarray, cut: np.ndarray) -> np.ndarray:
    return np.maximum(d, -cut)


def occupancy(d: np.ndarray, softness_mm: float) -> np.ndarray:
    """Fraction of a voxel inside the surface, a smooth step of width ~softness_mm."""
    return 0.5 * (1.0 - np.tanh(d / softness_mm))
