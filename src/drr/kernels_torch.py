"""Device-agnostic kernels in plain torch (CUDA, or CPU without numba).

Both take the rays of :mod:`drr.rays` as tensors and return (R, C) line integrals; rays
are processed in chunks so memory stays bounded whatever the image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def trilinear_march(
    volume: torch.Tensor,
    origin: torch.Tensor,
    direction: torch.Tensor,
    mm_per_lambda: torch.Tensor,
    lam_in: torch.Tensor,
    lam_out: torch.Tensor,
    step_mm: float,
    max_samples: int = 1 << 23,
) -> torch.Tensor:
    """Samples of the trilinear interpolant (grid_sample, zero outside) every step_mm on
    a lattice anchored at the source, as the numba kernel does."""
    dl = step_mm / mm_per_lambda
    k_first = torch.ceil(lam_in / dl - 0.5)
    n_per_ray = (torch.floor(lam_out / dl - 0.5) - k_first + 1).clamp(min=0)
    weight = torch.full_like(dl, step_mm)
    return _sample_sums(
        volume, origin, direction, (k_first + 0.5) * dl, dl, n_per_ray, weight, max_samples
    )


def joseph(
    volume: torch.Tensor,
    origin: torch.Tensor,
    direction: torch.Tensor,
    mm_per_lambda: torch.Tensor,
    lam_in: torch.Tensor,
    lam_out: torch.Tensor,
    max_samples: int = 1 << 23,
) -> torch.Tensor:
    """Joseph's method, as the numba kernel: the trilinear interpolant where each ray
    crosses the integer slices of its dominant axis, weighted by its length per slice."""
    dominant = direction.abs().argmax(dim=1, keepdim=True)
    om = origin.gather(1, dominant)[:, 0]
    dm = direction.gather(1, dominant)[:, 0]
    ma, mb = om + lam_in * dm, om + lam_out * dm
    m_first = torch.ceil(torch.minimum(ma, mb))
    n_per_ray = (torch.floor(torch.maximum(ma, mb)) - m_first + 1).clamp(min=0)
    m0 = torch.where(dm > 0, m_first, m_first + n_per_ray - 1)
    dlam = 1.0 / dm.abs()
    return _sample_sums(
        volume, origin, direction, (m0 - om) / dm, dlam, n_per_ray, mm_per_lambda * dlam,
        max_samples,
    )  # fmt: skip


def _sample_sums(volume, origin, direction, lam0, dlam, n_per_ray, weight, max_samples):
    """Σ_k f(origin + λ_k direction) · weight per ray, λ_k = lam0 + k·dlam for k < n, f the
    trilinear interpolant of ``volume`` (C, D, H, W; index space, zero outside)."""
    c, d, h, w = volume.shape
    vol = volume[None]  # (1, C, D, H, W)
    scale = torch.tensor(
        [2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1), 2.0 / max(d - 1, 1)],
        dtype=origin.dtype,
        device=origin.device,
    )
    out = torch.zeros(len(origin), c, dtype=volume.dtype, device=volume.device)
    hit = torch.nonzero(n_per_ray > 0).flatten()
    if len(hit) == 0:
        return out
    # Sort the rays that hit by sample count so each chunk wastes few padded samples; a
    # chunk is the longest run whose (rays × its largest sample count) fits max_samples.
    order = hit[torch.argsort(n_per_ray[hit])]
    n_sorted = n_per_ray[order]
    start = 0
    while start < len(order):
        run = torch.arange(1, len(order) - start + 1, device=n_sorted.device) * n_sorted[start:]
        rays_in_chunk = max(1, int((run <= max_samples).sum().item()))
        sel = order[start : start + rays_in_chunk]
        n = int(n_per_ray[sel].max().item())
        k = torch.arange(n, dtype=origin.dtype, device=origin.device)
        lam = lam0[sel, None] + k[None] * dlam[sel, None]  # (r, n)
        pos = origin[sel, None, :] + lam[..., None] * direction[sel, None, :]
        grid = (pos * scale - 1.0).to(volume.dtype)[None, None]  # (1, 1, r, n, 3)
        samples = F.grid_sample(
            vol, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )[0, :, 0]  # (C, r, n)
        used = (k[None] < n_per_ray[sel, None]).to(volume.dtype)
        sums = (samples * used[None]).sum(-1).T  # (r, C)
        out[sel] = sums * weight[sel, None].to(volume.dtype)
        start += rays_in_chunk
    return out


def siddon(
    volume: torch.Tensor,
    origin: torch.Tensor,
    direction: torch.Tensor,
    mm_per_lambda: torch.Tensor,
    lam_in: torch.Tensor,
    lam_out: torch.Tensor,
    max_elements: int = 1 << 23,
) -> torch.Tensor:
    """Exact integral of the voxelised volume: every plane crossing of every ray, sorted."""
    c, d, h, w = volume.shape
    sizes = (w, h, d)
    planes = [torch.arange(n + 1, dtype=origin.dtype, device=origin.device) - 0.5 for n in sizes]
    flat = volume.reshape(c, -1)
    m = sum(sizes) + 3 + 2
    out = torch.zeros(len(origin), c, dtype=volume.dtype, device=volume.device)
    chunk = max(1, max_elements // m)
    for s in range(0, len(origin), chunk):
        o, dvec = origin[s : s + chunk], direction[s : s + chunk]
        a, b = lam_in[s : s + chunk, None], lam_out[s : s + chunk, None]
        alphas = [a, b]
        for ax in range(3):
            al = (planes[ax][None] - o[:, ax, None]) / dvec[:, ax, None]
            alphas.append(
                torch.nan_to_num(al, nan=float("inf"), posinf=float("inf"), neginf=float("inf"))
            )
        al = torch.cat(alphas, dim=1)
        al = torch.minimum(torch.maximum(al, a), b.expand_as(al))
        al, _ = torch.sort(al, dim=1)
        seg = al[:, 1:] - al[:, :-1]
        mid = 0.5 * (al[:, 1:] + al[:, :-1])
        pos = o[:, None, :] + mid[..., None] * dvec[:, None, :]
        ijk = torch.floor(pos + 0.5).long()
        valid = seg > 0
        for ax in range(3):
            valid &= (ijk[..., ax] >= 0) & (ijk[..., ax] < sizes[ax])
        lin = (ijk[..., 2] * h + ijk[..., 1]) * w + ijk[..., 0]
        lin = torch.where(valid, lin, torch.zeros_like(lin))
        vals = flat[:, lin]  # (C, r, m-1)
        weights = torch.where(valid, seg, torch.zeros_like(seg)).to(volume.dtype)
        out[s : s + chunk] = (
            (vals * weights[None]).sum(-1) * mm_per_lambda[s : s + chunk].to(volume.dtype)
        ).T
    return out
