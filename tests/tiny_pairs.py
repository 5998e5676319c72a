"""Tiny training pairs with known truth, for the models' tests.

Each "radiograph" is a femur-like ellipse of areal density ρ·thickness inside a body of
soft tissue (about the same thickness in every subject, air beside it), with noise; its
PF-DRR is the ellipse alone, so the PF-DRR mean is known, and the subject's BMD is a
line of ρ. Radiographs are standardised per image when loaded, so a network must read ρ
from the bone's contrast against the soft tissue and the air, as it must from a real
radiograph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from conventions.files import write_npz


def bone(shape, cy, cx, a):
    """An ellipse's thickness profile (a projected ellipsoid), peak 1."""
    r, c = np.mgrid[: shape[0], : shape[1]]
    q = ((r - cy) / (1.6 * a)) ** 2 + ((c - cx) / a) ** 2
    return np.sqrt(np.clip(1.0 - q, 0.0, None)).astype(np.float32)


def write_tiny_pairs(root: Path, n: int, seed: int = 0, shape=(64, 32), noise=0.05) -> Path:
    """``n`` pairs (one per subject) in ``root``; returns their dataset table (TSV)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    c = np.mgrid[: shape[0], : shape[1]][1]
    rows = []
    for i in range(n):
        rho = rng.uniform(0.5, 1.1)
        thickness = bone(shape, rng.uniform(24, 40), rng.uniform(12, 20), rng.uniform(6, 8))
        drr = (rho * thickness).astype(np.float32)
        tilt = rng.uniform(-0.1, 0.1)
        soft = rng.uniform(0.95, 1.05) + tilt * (c / shape[1] - 0.5)
        edge = rng.integers(3, 6)
        soft[:, :edge] = soft[:, shape[1] - edge :] = 0.0  # air beside the body
        xray = (drr + soft + rng.normal(0, noise, shape)).astype(np.float32)
        path = root / f"S{i:03d}.npz"
        mask = (thickness > 0).astype(np.uint8)
        write_npz(path, xray=xray, bone_drr_g_cm2=drr, pf_drr_g_cm2=drr, pf_mask=mask)
        mean = float(drr[mask > 0].mean())
        rows.append({
            "subject_id": f"S{i:03d}", "image": "ap", "pose": "supine", "pair": str(path),
            "pf_drr_mean_g_cm2": mean, "dxa_bmd_g_cm2": 0.2 + 0.9 * rho,
            "qct_bmd_mg_cm3": 40.0 + 300.0 * rho,
        })  # fmt: skip
    table = root / "table.tsv"
    pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
    return table
