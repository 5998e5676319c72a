"""CPU kernels compiled with numba: one thread per ray, no temporaries per sample.

Plain tensor ops (torch.grid_sample) pay for a gathered coordinate grid per sample and
for cache-unfriendly access; marching each ray in a compiled loop is several times
faster on CPU (benchmarks/drr.py). The rays come from :mod:`drr.rays`, the one geometry
definition every kernel shares.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(inline="always", boundscheck=False, fastmath=True)
def _trilinear(v, x, y, z):
    """Trilinear interpolation of one channel ``v`` (D+2, H+2, W+2) at padded (x, y, z)."""
    # The clip box keeps padded coordinates within [0, N + 1) on every axis, so int() is
    # floor() and the upper neighbour always exists: no clamping per sample.
    i = int(x)
    j = int(y)
    k = int(z)
    fx = x - i
    fy = y - j
    fz = z - k
    c00 = v[k, j, i] + (v[k, j, i + 1] - v[k, j, i]) * fx
    c01 = v[k, j + 1, i] + (v[k, j + 1, i + 1] - v[k, j + 1, i]) * fx
    c10 = v[k + 1, j, i] + (v[k + 1, j, i + 1] - v[k + 1, j, i]) * fx
    c11 = v[k + 1, j + 1, i] + (v[k + 1, j + 1, i + 1] - v[k + 1, j + 1, i]) * fx
    c0 = c00 + (c01 - c00) * fy
    c1 = c10 + (c11 - c10) * fy
    return c0 + (c1 - c0) * fz


@numba.njit(inline="always")
def _ray(frames_pixels, frames_to_index, b, p):
    """Direction (index space) of pixel p's ray in pose b: pixels[p] @ to_index[b]."""
    qx = frames_pixels[p, 0]
    qy = frames_pixels[p, 1]
    qz = frames_pixels[p, 2]
    m = frames_to_index[b]
    return (
        qx * m[0, 0] + qy * m[1, 0] + qz * m[2, 0],
        qx * m[0, 1] + qy * m[1, 1] + qz * m[2, 1],
        qx * m[0, 2] + qy * m[1, 2] + qz * m[2, 2],
    )


@numba.njit(inline="always")
def _clip(o, d, lo, hi, near, far):
    """Narrow [near, far] to where o + λd lies within [lo, hi] on one axis (slab method)."""
    if d == 0.0:
        if o < lo or o > hi:
            return 1.0, 0.0
        return near, far
    t0 = (lo - o) / d
    t1 = (hi - o) / d
    return max(near, min(t0, t1)), min(far, max(t0, t1))


@numba.njit(inline="always")
def _clip_ray(ox, oy, oz, dx, dy, dz, lo, hi):
    """Entry and exit λ of the ray in the box [lo, hi], within [0, 1] (λ = 1: the pixel)."""
    a, b = _clip(ox, dx, lo[0], hi[0], 0.0, 1.0)
    a, b = _clip(oy, dy, lo[1], hi[1], a, b)
    return _clip(oz, dz, lo[2], hi[2], a, b)


@numba.njit(inline="always")
def _expand_ray(r, pixels, source, to_index, lo, hi):
    """Ray r of a (pose, pixel)-major batch (:class:`drr.rays.PoseFrames`): its pixel,
    source and direction in index space, and its entry and exit λ in the box [lo, hi]."""
    n_pixels = pixels.shape[0]
    b = r // n_pixels
    p = r - b * n_pixels
    dx, dy, dz = _ray(pixels, to_index, b, p)
    ox, oy, oz = source[b, 0], source[b, 1], source[b, 2]
    lam_in, lam_out = _clip_ray(ox, oy, oz, dx, dy, dz, lo, hi)
    return p, ox, oy, oz, dx, dy, dz, lam_in, lam_out


# Empty-space skipping: the padded volume is cut into bricks of BRICK³ voxels, and a brick
# none of whose samples can read a non-zero voxel is crossed in one jump. A sample at
# padded x reads voxels int(x) and int(x) + 1, so brick b (samples with int(x) in
# [bB, bB + B)) is occupied when any voxel in [bB, bB + B + 1] is non-zero (one voxel of
# slack more, for rounding at its faces). Bone-only volumes are mostly empty boxes: on
# the registration's levels about 40 % of the bricks hold bone.
BRICK = 8


def brick_occupancy(padded: np.ndarray, brick: int = BRICK) -> np.ndarray:
    """(nz, ny, nx) uint8: 1 where a brick's samples may read a non-zero voxel of any
    channel of the padded volume (C, D, H, W)."""
    from scipy import ndimage

    # Each voxel grown toward lower indices by 2 (window [i, i + 2]: the reads above a
    # brick's last sample and the slack), then any() per brick.
    grown = ndimage.maximum_filter(np.any(padded != 0, axis=0), size=3, origin=-1, mode="constant")
    shape = [-(-n // brick) * brick for n in grown.shape]
    full = np.zeros(shape, bool)
    full[: grown.shape[0], : grown.shape[1], : grown.shape[2]] = grown
    nz, ny, nx = (n // brick for n in shape)
    return full.reshape(nz, brick, ny, brick, nx, brick).any(axis=(1, 3, 5)).astype(np.uint8)


@numba.njit(inline="always")
def _samples_to_exit(x, inv_sx, brick_index, brick):
    """Samples (fractional) from position x, moving 1/inv_sx per sample, to the brick's
    far face along one axis (inv_sx = 0: parallel to it, never)."""
    if inv_sx > 0.0:
        return ((brick_index + 1) * brick - x) * inv_sx
    if inv_sx < 0.0:
        return (brick_index * brick - x) * inv_sx
    return np.inf


@numba.njit(inline="always")
def _inverse(s):
    return 1.0 / s if s != 0.0 else 0.0


@numba.njit(inline="always", boundscheck=False, fastmath=True)
def _march_ray(padded, occupancy, ox, oy, oz, dx, dy, dz, length, a, b, step_mm, out, r):
    """One ray of :func:`trilinear_march` into out[r]."""
    if b <= a:
        return
    dl = step_mm / length
    k_first = math.ceil(a / dl - 0.5)
    n = math.floor(b / dl - 0.5) - k_first + 1
    if n <= 0:
        return
    lam0 = (k_first + 0.5) * dl
    # +1: the padding shifts every index.
    x0 = ox + 1.0 + lam0 * dx
    y0 = oy + 1.0 + lam0 * dy
    z0 = oz + 1.0 + lam0 * dz
    sx = dl * dx
    sy = dl * dy
    sz = dl * dz
    ix, iy, iz = _inverse(sx), _inverse(sy), _inverse(sz)
    for c in range(padded.shape[0]):
        v = padded[c]
        acc = 0.0
        i = 0
        while i < n:
            # Brick by brick: the samples up to the brick's far face are read, or jumped
            # over when the brick is empty.
            x = x0 + i * sx
            y = y0 + i * sy
            z = z0 + i * sz
            bi = int(x) // BRICK
            bj = int(y) // BRICK
            bk = int(z) // BRICK
            t = min(
                _samples_to_exit(x, ix, bi, BRICK),
                _samples_to_exit(y, iy, bj, BRICK),
                _samples_to_exit(z, iz, bk, BRICK),
            )
            end = min(n, i + max(1, math.ceil(t)))
            if occupancy[bk, bj, bi]:
                while i < end:
                    acc += _trilinear(v, x, y, z)
                    x += sx
                    y += sy
                    z += sz
                    i += 1
            else:
                i = end
        out[r, c] = acc * step_mm


@numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
def trilinear_march(
    padded, occupancy, pixels, mm_per_lambda, source, to_index, lo, hi, step_mm, out
):
    """∫ f dl by sampling the trilinear interpolant every ``step_mm`` along each ray of
    every pose (:class:`drr.rays.PoseFrames`), clipped to the index box [lo, hi]; out
    (B·P, C), pose-major.

    Samples sit on a lattice anchored at the source (λ = (k + ½)·step / length), not
    fitted to the clip box, so cropping the volume or changing its box moves no sample.
    ``padded`` is the volume (C, D+2, H+2, W+2) with one voxel of zeros on every side,
    so the interpolant falls to zero one voxel outside the data and every sample reads
    in bounds; ray coordinates are in unpadded index space. Channels share the ray's
    sample positions; each channel keeps its sum in a register. ``occupancy`` is
    :func:`brick_occupancy` of ``padded``: samples in empty bricks, which would add
    exact zeros, are skipped.
    """
    for r in numba.prange(source.shape[0] * pixels.shape[0]):
        p, ox, oy, oz, dx, dy, dz, a, b = _expand_ray(r, pixels, source, to_index, lo, hi)
        _march_ray(
            padded, occupancy, ox, oy, oz, dx, dy, dz, mm_per_lambda[p], a, b, step_mm, out, r
        )


@numba.njit(inline="always", boundscheck=False, fastmath=True)
def _bilinear_on_slice(v, axis, m, u, w):
    """The trilinear interpolant of ``v`` (padded) on the integer slice ``m`` of ``axis``
    (0: x, 1: y, 2: z), at the other two padded coordinates (u, w) in x, y, z order: a
    bilinear interpolation, four reads."""
    iu = int(u)
    iw = int(w)
    fu = u - iu
    fw = w - iw
    if axis == 0:  # v[z, y, x]: u = y, w = z
        a0 = v[iw, iu, m] + (v[iw, iu + 1, m] - v[iw, iu, m]) * fu
        a1 = v[iw + 1, iu, m] + (v[iw + 1, iu + 1, m] - v[iw + 1, iu, m]) * fu
    elif axis == 1:  # u = x, w = z
        a0 = v[iw, m, iu] + (v[iw, m, iu + 1] - v[iw, m, iu]) * fu
        a1 = v[iw + 1, m, iu] + (v[iw + 1, m, iu + 1] - v[iw + 1, m, iu]) * fu
    else:  # u = x, w = y
        a0 = v[m, iw, iu] + (v[m, iw, iu + 1] - v[m, iw, iu]) * fu
        a1 = v[m, iw + 1, iu] + (v[m, iw + 1, iu + 1] - v[m, iw + 1, iu]) * fu
    return a0 + (a1 - a0) * fw


@numba.njit(inline="always", boundscheck=False, fastmath=True)
def _joseph_ray(padded, occupancy, ox, oy, oz, dx, dy, dz, length, a, b, out, r):
    """One ray of :func:`joseph` into out[r]."""
    if b <= a:
        return
    # The dominant axis m (largest index-space step) and the other two, u and w.
    if abs(dx) >= abs(dy) and abs(dx) >= abs(dz):
        axis, om, dm, ou, du, ow, dw = 0, ox, dx, oy, dy, oz, dz
    elif abs(dy) >= abs(dz):
        axis, om, dm, ou, du, ow, dw = 1, oy, dy, ox, dx, oz, dz
    else:
        axis, om, dm, ou, du, ow, dw = 2, oz, dz, ox, dx, oy, dy
    # The integer slices of m the clipped ray crosses, in the order it crosses them.
    ma = om + a * dm
    mb = om + b * dm
    m_first = math.ceil(min(ma, mb))
    n = math.floor(max(ma, mb)) - m_first + 1
    if n <= 0:
        return
    sm = 1 if dm > 0 else -1
    m0 = m_first if dm > 0 else m_first + n - 1
    dlam = 1.0 / abs(dm)  # λ per slice
    lam0 = (m0 - om) / dm
    u0 = ou + 1.0 + lam0 * du  # +1: the padding
    w0 = ow + 1.0 + lam0 * dw
    su = dlam * du
    sw = dlam * dw
    iu, iw = _inverse(su), _inverse(sw)
    for c in range(padded.shape[0]):
        v = padded[c]
        acc = 0.0
        i = 0
        while i < n:
            m = m0 + 1 + sm * i
            u = u0 + i * su
            w = w0 + i * sw
            bm = m // BRICK
            bu = int(u) // BRICK
            bw = int(w) // BRICK
            t = min(
                _samples_to_exit(float(m), float(sm), bm, BRICK),
                _samples_to_exit(u, iu, bu, BRICK),
                _samples_to_exit(w, iw, bw, BRICK),
            )
            end = min(n, i + max(1, math.ceil(t)))
            if axis == 0:
                occupied = occupancy[bw, bu, bm]
            elif axis == 1:
                occupied = occupancy[bw, bm, bu]
            else:
                occupied = occupancy[bm, bw, bu]
            if occupied:
                while i < end:
                    acc += _bilinear_on_slice(v, axis, m, u, w)
                    m += sm
                    u += su
                    w += sw
                    i += 1
            else:
                i = end
        out[r, c] = acc * length * dlam


@numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
def joseph(padded, occupancy, pixels, mm_per_lambda, source, to_index, lo, hi, out):
    """∫ f dl of the trilinear interpolant by Joseph's method (1982): each ray samples the
    volume where it crosses the integer slices of its dominant axis, a bilinear read of
    four voxels per slice, weighted by the ray's length per slice. About one sample per
    voxel, each half the reads of a trilinear sample; the samples move continuously
    with the pose. Arguments as :func:`trilinear_march` (no step: the slices set it)."""
    for r in numba.prange(source.shape[0] * pixels.shape[0]):
        p, ox, oy, oz, dx, dy, dz, a, b = _expand_ray(r, pixels, source, to_index, lo, hi)
        _joseph_ray(padded, occupancy, ox, oy, oz, dx, dy, dz, mm_per_lambda[p], a, b, out, r)


@numba.njit(inline="always")
def _first_crossing(o, d, i):
    """λ of the first voxel face crossed from voxel i along one axis, and λ per voxel."""
    if d > 0:
        return (i + 0.5 - o) / d, 1.0 / d, 1
    if d < 0:
        return (i - 0.5 - o) / d, -1.0 / d, -1
    return np.inf, np.inf, 0


@numba.njit(inline="always", boundscheck=False)
def _siddon_ray(volume, ox, oy, oz, dx, dy, dz, length, a, b, out, r):
    """One ray of :func:`siddon` into out[r]. All state is scalar (no allocation per
    ray: short rays through small volumes are dominated by per-ray overhead otherwise)."""
    if b <= a:
        return
    n_channels, nz, ny, nx = volume.shape
    # The first voxel: where the ray is just after entering (ties broken by direction).
    start = a + 1e-7 * (b - a)
    i = min(max(math.floor(ox + start * dx + 0.5), 0), nx - 1)
    j = min(max(math.floor(oy + start * dy + 0.5), 0), ny - 1)
    k = min(max(math.floor(oz + start * dz + 0.5), 0), nz - 1)
    next_x, step_x, di = _first_crossing(ox, dx, i)
    next_y, step_y, dj = _first_crossing(oy, dy, j)
    next_z, step_z, dk = _first_crossing(oz, dz, k)
    for c in range(n_channels):
        v = volume[c]
        acc = 0.0
        cur = a
        ii, jj, kk = i, j, k
        nxt_x, nxt_y, nxt_z = next_x, next_y, next_z
        while True:
            if nxt_x <= nxt_y and nxt_x <= nxt_z:
                nxt = nxt_x
            elif nxt_y <= nxt_z:
                nxt = nxt_y
            else:
                nxt = nxt_z
            if nxt >= b:
                acc += (b - cur) * v[kk, jj, ii]
                break
            acc += (nxt - cur) * v[kk, jj, ii]
            cur = nxt
            if nxt == nxt_x:
                ii += di
                nxt_x += step_x
                if ii < 0 or ii >= nx:
                    break
            elif nxt == nxt_y:
                jj += dj
                nxt_y += step_y
                if jj < 0 or jj >= ny:
                    break
            else:
                kk += dk
                nxt_z += step_z
                if kk < 0 or kk >= nz:
                    break
        out[r, c] = acc * length


@numba.njit(parallel=True, cache=True, boundscheck=False)
def siddon(volume, pixels, mm_per_lambda, source, to_index, lo, hi, out):
    """Exact ∫ f dl of the voxelised (piecewise constant) volume, voxel by voxel (Jacobs),
    along each ray of every pose (:class:`drr.rays.PoseFrames`), clipped to the voxel
    boundary box [lo, hi] = [-0.5, N - 0.5]; out (B·P, C), pose-major."""
    for r in numba.prange(source.shape[0] * pixels.shape[0]):
        p, ox, oy, oz, dx, dy, dz, a, b = _expand_ray(r, pixels, source, to_index, lo, hi)
        _siddon_ray(volume, ox, oy, oz, dx, dy, dz, mm_per_lambda[p], a, b, out, r)
