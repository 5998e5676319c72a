"""Image similarity for 2D-3D registration, on batches of images: NumPy arrays on the CPU
(registration's search, without importing torch) or torch tensors on any device (the
search on CUDA, and the decomposition networks' differentiable GC loss). One formula
serves both: only the Gaussian smoothing has an implementation per array library.

- :func:`gradient_correlation` (GC, Penney et al. 1998; the seed paper's measure): the
  mean of the normalised cross-correlations of the two images' horizontal and vertical
  gradients. Gradients make it blind to the soft tissue's smooth background and to any
  affine change of intensity, and edges are what a radiograph and a DRR share.
- :func:`normalized_cross_correlation` (NCC) of the intensities, a secondary measure.
- :func:`patchwise_gradient_correlation`: GC averaged over square patches, so one
  bright structure cannot dominate (local contrast differs across a radiograph).
- :func:`paired_gradient_correlation`: GC of image pairs, batched (the models' loss).

All take a fixed image (H, W), a batch of moving images (B, H, W) and an optional mask
(H, W) of pixels to use (collimation, burnt-out borders, text on the film are 0), and
return (B,) scores in [−1, 1], of the fixed image's kind (NumPy in, NumPy out). An
optional Gaussian smoothing (σ in pixels) before the gradients suppresses the
radiograph's noise.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-8
DIMS = (-2, -1)


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def smoothing_radius(sigma_px: float) -> int:
    """Pixels :func:`smooth` reaches on each side: ⌈3σ⌉, at least 1 (0: no smoothing)."""
    return max(1, math.ceil(3.0 * sigma_px)) if sigma_px > 0 else 0


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """Normalised 1D Gaussian, radius ⌈3σ⌉ (float32)."""
    radius = smoothing_radius(sigma_px)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    return (k / k.sum()).astype(np.float32)


def smooth(images, sigma_px: float):
    """Separable Gaussian blur of (B, H, W) images, edges replicated."""
    if sigma_px <= 0:
        return images
    k = gaussian_kernel(sigma_px)
    if not _is_tensor(images):
        from scipy import ndimage

        out = ndimage.correlate1d(images, k, axis=-1, mode="nearest")
        return ndimage.correlate1d(out, k, axis=-2, mode="nearest")
    import torch
    import torch.nn.functional as F

    kt = torch.from_numpy(k).to(images.device, images.dtype)
    r = (len(k) - 1) // 2
    x = images[:, None]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kt.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), kt.view(1, 1, -1, 1))
    return x[:, 0]


def gradients(images):
    """Central-difference gradients (d/dcol, d/drow) of (B, H, W) images on the interior
    (B, H-2, W-2): no border artefacts."""
    gx = (images[:, 1:-1, 2:] - images[:, 1:-1, :-2]) * 0.5
    gy = (images[:, 2:, 1:-1] - images[:, :-2, 1:-1]) * 0.5
    return gx, gy


def _centred(a, w):
    """a less its (weighted) mean over the last two dims, times the weights."""
    if w is None:
        return a - a.sum(axis=DIMS, keepdims=True) / (a.shape[-2] * a.shape[-1])
    n = w.sum(axis=DIMS, keepdims=True).clip(min=EPS)
    return (a - (a * w).sum(axis=DIMS, keepdims=True) / n) * w


def _correlation(da, db):
    """Correlation of centred images over the last two dims."""
    num = (da * db).sum(axis=DIMS)
    # Clamped before the root: at a flat image sqrt's derivative is infinite, and the
    # gradient through a clamp after it would be 0 · ∞ = NaN (a training-loss killer).
    den = ((da * da).sum(axis=DIMS) * (db * db).sum(axis=DIMS)).clip(min=EPS * EPS) ** 0.5
    return num / den


def _ncc(a, b, w):
    """NCC over the last two dims of a (1 or B, ...) and b (B, ...), weighted by w."""
    return _correlation(_centred(a, w), _centred(b, w))


def _prepare(fixed, moving, mask, sigma_px):
    if _is_tensor(fixed) or _is_tensor(moving):
        import torch

        fixed = torch.as_tensor(fixed, dtype=torch.float32)
        moving = torch.as_tensor(moving, dtype=torch.float32, device=fixed.device)
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.float32, device=fixed.device)
    else:
        fixed = np.asarray(fixed, np.float32)
        moving = np.asarray(moving, np.float32)
        mask = None if mask is None else np.asarray(mask, np.float32)
    if moving.ndim == 2:
        moving = moving[None]
    if tuple(fixed.shape) != tuple(moving.shape[1:]):
        raise ValueError(f"fixed {tuple(fixed.shape)} and moving {tuple(moving.shape[1:])} differ")
    return smooth(fixed[None], sigma_px), smooth(moving, sigma_px), mask


class GradientCorrelation:
    """GC against one fixed image, scoring batch after batch of moving images: the fixed
    image's smoothing, gradients and their centring are done once (a registration scores
    thousands of DRRs against the same radiograph)."""

    def __init__(self, fixed, mask=None, sigma_px: float = 0.0):
        f, _, w = _prepare(fixed, fixed[None], mask, 0.0)  # as arrays or tensors only
        f = smooth(f, sigma_px)
        self.sigma_px = sigma_px
        self.shape = tuple(f.shape[1:])
        self.weights = None if w is None else w[1:-1, 1:-1][None]
        self.fixed_gradients = [_centred(g, self.weights) for g in gradients(f)]

    def __call__(self, moving):
        """(B,) scores of the moving images (B, H, W), of the fixed image's kind."""
        if moving.ndim == 2:
            moving = moving[None]
        if tuple(moving.shape[1:]) != self.shape:
            raise ValueError(f"fixed {self.shape} and moving {tuple(moving.shape[1:])} differ")
        m = smooth(moving, self.sigma_px)
        dfx, dfy = self.fixed_gradients
        mx, my = (_centred(g, self.weights) for g in gradients(m))
        return 0.5 * (_correlation(dfx, mx) + _correlation(dfy, my))


def gradient_correlation(fixed, moving, mask=None, sigma_px: float = 0.0):
    """GC of each moving image (B, H, W) with the fixed image (H, W): (B,) in [−1, 1]."""
    f, m, w = _prepare(fixed, moving, mask, 0.0)  # as arrays or tensors only
    return GradientCorrelation(f[0], w, sigma_px)(m)


def paired_gradient_correlation(a, b):
    """GC of each image of a batch (B, H, W) with its partner in another (B, H, W): (B,).
    Differentiable on tensors; the decomposition networks' GC loss."""
    ax, ay = gradients(a)
    bx, by = gradients(b)
    return 0.5 * (_ncc(ax, bx, None) + _ncc(ay, by, None))


def normalized_cross_correlation(fixed, moving, mask=None, sigma_px: float = 0.0):
    f, m, w = _prepare(fixed, moving, mask, sigma_px)
    return _ncc(f, m, None if w is None else w[None])


def patchwise_gradient_correlation(
    fixed, moving, patch_px: int = 32, mask=None, sigma_px: float = 0.0
):
    """GC computed in non-overlapping patch_px × patch_px patches, averaged over the
    patches with gradient content in the fixed image (flat patches carry no edge)."""
    f, m, w = _prepare(fixed, moving, mask, sigma_px)
    fx, fy = gradients(f)
    mx, my = gradients(m)
    h, wd = fx.shape[-2:]
    ph, pw = h // patch_px, wd // patch_px
    if ph == 0 or pw == 0:
        raise ValueError(f"images of {h}×{wd} gradient pixels hold no {patch_px}-pixel patch")

    def patches(t):  # (B, H, W) → (B, P, patch, patch)
        t = t[..., : ph * patch_px, : pw * patch_px]
        t = t.reshape(t.shape[0], ph, patch_px, pw, patch_px).swapaxes(2, 3)
        return t.reshape(t.shape[0], ph * pw, patch_px, patch_px)

    wi = None if w is None else patches(w[1:-1, 1:-1][None])
    score = 0.5 * (
        _ncc(patches(fx), patches(mx), wi) + _ncc(patches(fy), patches(my), wi)
    )  # (B, P)
    energy = (patches(fx) ** 2 + patches(fy) ** 2).mean(axis=DIMS)[0]  # (P,)
    keep = energy > 0.05 * energy.max()
    return score[:, keep].mean(axis=1)
