"""Gradient correlation of a batch of DRRs against one radiograph, in one compiled pass
per DRR: the search's GC on the CPU.

:class:`conventions.similarity.GradientCorrelation` states GC once for NumPy and torch,
as array operations: smoothing, central differences, weighted centring, products and
sums, each a pass over the batch and a temporary array. On the CPU those passes cost
about a fifth of a registration (the DRRs the rest). Here the moving image's side is
fused: its channels and the background are summed, smoothed, differenced and reduced to
four sums per gradient direction, in float64, without temporaries of the batch's size;
the fixed image's side is GradientCorrelation's own. GC follows from the sums in closed
form (the weighted centring expanded), equal to the array formula to float rounding
(tests/test_similarity.py).
"""

from __future__ import annotations

import numba
import numpy as np

from conventions.similarity import EPS, GradientCorrelation, gaussian_kernel


@numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
def _moving_sums(moving, background, kernel, fixed_x, fixed_y, w, w2, out):
    """Per image b of ``moving`` (B, C, H, W): m = Σ_c moving[b, c] + background,
    smoothed by the separable ``kernel`` (edges replicated, rows then columns as
    scipy.ndimage.correlate1d), central differences (mx, my) on the interior, and
    out[b] = (Σ w·mx, Σ w²·mx, Σ w²·mx², Σ fixed_x·mx, and the same four of my)."""
    nb, nc, h, wd = moving.shape
    nk = kernel.shape[0]
    r = (nk - 1) // 2
    for b in numba.prange(nb):
        padded = np.empty(wd + 2 * r, np.float64)  # one row, edges replicated
        acc = np.empty(wd, np.float64)
        across = np.empty((h, wd), np.float32)  # smoothed along each row
        smooth = np.empty((h, wd), np.float32)  # and then along each column
        for i in range(h):
            for j in range(wd):
                v = np.float64(background[i, j])
                for c in range(nc):
                    v += moving[b, c, i, j]
                padded[r + j] = np.float32(v)  # the moving image is float32, as rendered
            for j in range(r):
                padded[j] = padded[r]
                padded[r + wd + j] = padded[r + wd - 1]
            acc[:] = 0.0
            for k in range(nk):
                for j in range(wd):
                    acc[j] += kernel[k] * padded[j + k]
            for j in range(wd):
                across[i, j] = acc[j]
        for i in range(h):
            acc[:] = 0.0
            for k in range(nk):
                src = min(max(i + k - r, 0), h - 1)
                for j in range(wd):
                    acc[j] += kernel[k] * across[src, j]
            for j in range(wd):
                smooth[i, j] = acc[j]
        sums = np.zeros(8, np.float64)
        for i in range(1, h - 1):
            for j in range(1, wd - 1):
                gx = 0.5 * (np.float64(smooth[i, j + 1]) - smooth[i, j - 1])
                gy = 0.5 * (np.float64(smooth[i + 1, j]) - smooth[i - 1, j])
                a = w[i - 1, j - 1]
                a2 = w2[i - 1, j - 1]
                sums[0] += a * gx
                sums[1] += a2 * gx
                sums[2] += a2 * gx * gx
                sums[3] += fixed_x[i - 1, j - 1] * gx
                sums[4] += a * gy
                sums[5] += a2 * gy
                sums[6] += a2 * gy * gy
                sums[7] += fixed_y[i - 1, j - 1] * gy
        for k in range(8):
            out[b, k] = sums[k]


class FusedGradientCorrelation:
    """GC of batches of moving images (B, C, H, W), their C channels summed and a fixed
    ``background`` (H, W) added, against one fixed image (H, W) under an optional mask:
    the scores of ``GradientCorrelation(fixed, mask, sigma_px)(moving.sum(1) +
    background)``, NumPy only."""

    def __init__(self, fixed, mask=None, sigma_px: float = 0.0, background=None):
        reference = GradientCorrelation(np.asarray(fixed, np.float32), mask, sigma_px)
        self.shape = reference.shape
        h, w = self.shape
        weights = (
            np.ones((h - 2, w - 2), np.float64)
            if reference.weights is None
            else np.asarray(reference.weights[0], np.float64)
        )
        self.w = weights
        self.w2 = weights * weights
        self.n = float(weights.sum())  # Σw: the weighted mean's denominator
        self.n2 = float(self.w2.sum())
        # The fixed image's centred gradients, once more times the weights: the moving
        # image's centred gradient carries one factor of them (conventions.similarity).
        fixed_gradients = [np.asarray(g[0], np.float64) for g in reference.fixed_gradients]
        self.fixed_w = [g * weights for g in fixed_gradients]
        self.fixed_w_sums = [float(g.sum()) for g in self.fixed_w]
        self.fixed_energy = [float((g * g).sum()) for g in fixed_gradients]
        self.kernel = gaussian_kernel(sigma_px).astype(np.float64) if sigma_px > 0 else np.ones(1)
        self.background = (
            np.zeros((h, w), np.float32)
            if background is None
            else np.ascontiguousarray(background, np.float32)
        )
        if self.background.shape != self.shape:
            raise ValueError(f"fixed {self.shape} and background {self.background.shape} differ")

    def __call__(self, moving: np.ndarray) -> np.ndarray:
        """(B,) scores of the moving images (B, C, H, W) or (B, H, W)."""
        moving = np.ascontiguousarray(moving, np.float32)
        if moving.ndim == 3:
            moving = moving[:, None]
        if tuple(moving.shape[2:]) != self.shape:
            raise ValueError(f"fixed {self.shape} and moving {tuple(moving.shape[2:])} differ")
        sums = np.empty((moving.shape[0], 8), np.float64)
        fx, fy = self.fixed_w
        _moving_sums(moving, self.background, self.kernel, fx, fy, self.w, self.w2, sums)
        score = np.zeros(moving.shape[0])
        for d in range(2):  # x, y
            p, q, r, s = sums[:, 4 * d : 4 * d + 4].T
            mean = p / max(self.n, EPS)
            num = s - mean * self.fixed_w_sums[d]
            energy = r - 2.0 * mean * q + mean * mean * self.n2
            den = np.sqrt(np.maximum(self.fixed_energy[d] * energy, EPS * EPS))
            score += 0.5 * num / den
        return score.astype(np.float32)
