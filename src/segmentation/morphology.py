"""Binary and grey-level morphology the bone segmentation is built from.

Bones are found as a bright cortical shell, and their marrow as what the shell encloses.
A shell read from a CT is imperfect: thin cortex falls below threshold between voxels
(partial volume), a horizontal end plate can slip between 3 mm slices, and a bone is cut
open where it leaves the field of view. Hence holes are filled both slice by slice (an
axial ring is usually closed even where the 3D surface is not) and in 3D with the
volume's ends capped, after a small closing that bridges gaps of a voxel or so. A hole
that holds another bone is never filled: an acetabulum's ring around the femoral head
must not swallow the head.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

# Gaps in a cortical ring up to about this size are bridged before filling; at least the
# eight in-plane neighbours at coarse voxels.
CLOSING_RADIUS_MM = 2.5


def ball(radius_mm: float, spacing: np.ndarray) -> np.ndarray:
    """Boolean ellipsoidal footprint of ``radius_mm`` for voxels of ``spacing`` (z, y, x)."""
    r = np.floor(radius_mm / np.asarray(spacing)).astype(int)
    grids = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return sum((g * s) ** 2 for g, s in zip(grids, spacing, strict=True)) <= radius_mm**2 + 1e-9


def largest_component(mask: np.ndarray) -> np.ndarray:
    cc, n = ndimage.label(mask)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(cc.ravel())
    sizes[0] = 0
    return cc == np.argmax(sizes)


def drop_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """``mask`` without its connected components of fewer than ``min_voxels`` voxels."""
    cc, _ = ndimage.label(mask)
    keep = np.bincount(cc.ravel()) >= min_voxels
    keep[0] = False
    return keep[cc]


def _without_forbidden(holes: np.ndarray, forbidden: np.ndarray | None) -> np.ndarray:
    if forbidden is None or not holes.any():
        return holes
    cc, n = ndimage.label(holes)
    ok = np.ones(n + 1, bool)
    ok[np.unique(cc[forbidden])] = False
    ok[0] = False
    return ok[cc]


def fill_slices(mask: np.ndarray, axis: int, forbidden: np.ndarray | None = None) -> np.ndarray:
    """Fill holes in each slice along ``axis``, leaving open the holes that hold any
    ``forbidden`` voxel."""
    out = mask.copy()
    for k in np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))):
        at = tuple(k if a == axis else slice(None) for a in range(3))
        ring = mask[at]
        holes = ndimage.binary_fill_holes(ring) & ~ring
        out[at] |= _without_forbidden(holes, None if forbidden is None else forbidden[at])
    return out


def fill_capped(mask: np.ndarray, axis: int, forbidden: np.ndarray | None = None) -> np.ndarray:
    """3D hole filling with both ends of the volume along ``axis`` closed, so that a bone
    cut by the field of view (a femoral shaft) is filled too; holes that hold any
    ``forbidden`` voxel stay open."""
    pad = [(1, 1) if a == axis else (0, 0) for a in range(3)]
    filled = ndimage.binary_fill_holes(np.pad(mask, pad, constant_values=True))
    filled = filled[tuple(slice(1, -1) if a == axis else slice(None) for a in range(3))]
    return mask | _without_forbidden(filled & ~mask, forbidden)


def closing_slices(
    mask: np.ndarray, axis: int, spacing: np.ndarray, radius_mm: float
) -> np.ndarray:
    """Binary closing in each slice along ``axis`` with a disc of ``radius_mm`` (at least
    the eight neighbours)."""
    sp = np.delete(np.asarray(spacing, dtype=float), axis)
    disc = np.expand_dims(ball(max(radius_mm, 1.5 * sp.max()), sp), axis)
    # Pad so that the closing does not see the volume's edge as foreground.
    pad = [(n // 2, n // 2) for n in disc.shape]
    closed = ndimage.binary_closing(np.pad(mask, pad), structure=disc)
    return closed[tuple(slice(a, n - b) for (a, b), n in zip(pad, closed.shape, strict=True))]


def solid(shell: np.ndarray, axis: int, spacing: np.ndarray, forbidden=None) -> np.ndarray:
    """The shell with everything it encloses.

    Small gaps in the shell are closed first (in-slice); a voxel is also inside when the
    slices on either side of it are, which catches a slice whose ring has a gap the
    closing missed. The closing also fills concavities of the outer surface, which the
    caller trims (:func:`segmentation.threshold.trim_surface`).
    """
    closed = closing_slices(shell, axis, spacing, CLOSING_RADIUS_MM)
    inside = fill_slices(closed, axis, forbidden) | fill_capped(closed, axis, forbidden)
    along = np.zeros((3, 3, 3), bool)
    along[tuple(slice(None) if a == axis else 1 for a in range(3))] = True
    between = ndimage.binary_closing(inside, structure=along)
    if forbidden is not None:
        between &= ~forbidden
    return shell | inside | between


def gap_depth(density: np.ndarray, spacing: np.ndarray, radius_mm: float) -> np.ndarray:
    """How far each voxel lies below the bright walls around it within ``radius_mm`` (a
    black top-hat): high in a joint space between two cortices, zero in cortex and in
    marrow wider than the ball."""
    image = sitk.GetImageFromArray(density.astype(np.float32))
    radius = [max(1, round(radius_mm / s)) for s in np.asarray(spacing)[::-1]]
    closed = sitk.GetArrayFromImage(
        sitk.GrayscaleMorphologicalClosing(image, radius, sitk.sitkBall)
    )
    return np.maximum(closed - density, 0.0)
