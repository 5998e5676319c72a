"""The registration overlay: a radiograph with its DRRs' edges at the registered poses.

Edges are what gradient correlation compares, so they are what a reader checks: the
pelvis's and the femur's DRR outlines (Canny edges of each body's DRR) drawn on the
radiograph, one colour per body, with GC and status in the title. A misregistered bone
shows as an outline beside the bone.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from scipy import ndimage
from skimage.feature import canny

from conventions.ct import read_ct
from conventions.files import atomic_path
from conventions.pose import read_pose
from conventions.radiograph import read_radiograph
from drr.projector import project
from registration.bodies import hip_bodies

COLOURS = {"pelvis": "#00d0ff", "femur": "#ffd000"}
STATUS_COLOURS = {"ok": "#2ca02c", "suspect": "#ff7f0e", "failed": "#d62728"}


def drr_edges(drr: np.ndarray, sigma_px: float = 1.5) -> np.ndarray:
    """Outline of a body's DRR: Canny edges on its support-relative intensity."""
    if not np.any(drr > 0):
        return np.zeros(drr.shape, bool)
    scaled = drr / float(np.percentile(drr[drr > 0], 99))
    return canny(scaled, sigma=sigma_px, low_threshold=0.05, high_threshold=0.15)


def registration_overlay(
    xray: str,
    geometry: str | None,
    ct: str,
    labels: str,
    side: str,
    poses: dict[str, str],
    out_png: str,
    title: str,
) -> None:
    """Draw the bodies' DRR edges (``poses``: body → pose.json) on the radiograph."""
    r = read_radiograph(xray, geometry)
    g = r.require_geometry()
    image = read_ct(ct)
    bodies = hip_bodies(image, sitk.GetArrayFromImage(read_ct(labels)), side)
    pix = r.pixels
    lo, hi = np.percentile(pix, [1, 99])
    fig = Figure(figsize=(2 * 6.4, 6.4 * g.rows / g.cols + 0.8))
    axes = fig.subplots(1, 2)
    for ax in axes:
        ax.imshow(pix, cmap="gray", vmin=lo, vmax=hi)
        ax.set_axis_off()
    axes[0].set_title("radiograph", fontsize=9)
    lines = []
    for body, path in poses.items():
        pose = read_pose(path)
        drr = project(bodies[body], g, pose.camera_from_ct).sum(dim=1)[0].numpy()
        edges = ndimage.binary_dilation(drr_edges(drr))  # two pixels wide: visible at 80 dpi
        layer = np.zeros((*edges.shape, 4))
        layer[edges] = to_rgba(COLOURS[body])
        axes[1].imshow(layer, interpolation="nearest")
        status = pose.extra.get("status", "?")
        reasons = "; ".join(pose.extra.get("reasons", []))
        lines.append(
            (
                f"{body}: GC {pose.extra.get('gc', float('nan')):.3f}, {status}"
                + (f" ({reasons})" if reasons else ""),
                STATUS_COLOURS.get(status, "black"),
            )
        )
    axes[1].set_title("DRR edges: pelvis (cyan), femur (yellow)", fontsize=9)
    for i, (text, colour) in enumerate(lines):
        fig.text(0.01, 0.02 + 0.035 * i, text, fontsize=8, color=colour, family="monospace")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
