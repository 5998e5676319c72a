"""The registration overlays of a subject: each radiograph with its DRRs' edges at the
registered poses.

Edges are what gradient correlation compares, so they are what a reader checks: the
pelvis's and the femur's DRR outlines (Canny edges of each body's DRR) drawn on the
radiograph, one colour per body, with GC and status beneath. A misregistered bone
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
from qc import PNG_OPTIONS
from registration.bodies import hip_bodies

COLOURS = {"pelvis": "#00d0ff", "femur": "#ffd000"}
STATUS_COLOURS = {"ok": "#2ca02c", "suspect": "#ff7f0e", "failed": "#d62728"}


def drr_edges(drr: np.ndarray, sigma_px: float = 1.5) -> np.ndarray:
    """Outline of a body's DRR: Canny edges on its support-relative intensity."""
    if not np.any(drr > 0):
        return np.zeros(drr.shape, bool)
    scaled = drr / float(np.percentile(drr[drr > 0], 99))
    return canny(scaled, sigma=sigma_px, low_threshold=0.05, high_threshold=0.15)


def registration_montage(
    subject: str,
    side: str,
    ct: str,
    labels: str,
    radiographs: list[dict[str, str | None]],
    out_png: str,
) -> None:
    """One row per radiograph of a subject: the radiograph, and the same with the bodies'
    DRR edges at their registered poses, GC and status beneath.

    ``radiographs``: per radiograph, its ``image`` ID, ``xray`` and ``geometry`` files and
    the ``pelvis`` and ``femur`` pose files. The CT is read and split into bodies once
    for all of them.
    """
    image = read_ct(ct)
    bodies = hip_bodies(image, sitk.GetArrayFromImage(read_ct(labels)), side)
    views = [read_radiograph(r["xray"], r["geometry"]) for r in radiographs]
    geometries = [v.require_geometry() for v in views]
    heights = [6.4 * g.rows / g.cols + 0.9 for g in geometries]
    fig = Figure(figsize=(2 * 6.4, sum(heights) + 0.4))
    grid = fig.add_gridspec(len(views), 2, height_ratios=heights)
    for row, (r, view, g) in enumerate(zip(radiographs, views, geometries, strict=True)):
        pix = view.pixels
        lo, hi = np.percentile(pix, [1, 99])
        axes = [fig.add_subplot(grid[row, col]) for col in range(2)]
        for ax in axes:
            ax.imshow(pix, cmap="gray", vmin=lo, vmax=hi)
            ax.set(xticks=[], yticks=[])  # no tick layout either: a third of the drawing
            ax.set_axis_off()
        axes[0].set_title(f"{r['image']}: radiograph", fontsize=9)
        axes[1].set_title("DRR edges: pelvis (cyan), femur (yellow)", fontsize=9)
        for i, body in enumerate(("pelvis", "femur")):
            pose = read_pose(r[body])
            drr = project(bodies[body], g, pose.camera_from_ct).sum(axis=1)[0]
            edges = ndimage.binary_dilation(drr_edges(drr))  # two pixels wide: visible at 80 dpi
            layer = np.zeros((*edges.shape, 4))
            layer[edges] = to_rgba(COLOURS[body])
            axes[1].imshow(layer, interpolation="nearest")
            status = pose.extra.get("status", "?")
            reasons = "; ".join(pose.extra.get("reasons", []))
            gc = pose.extra.get("gc")  # none for a true pose (registration.poses: true)
            text = f"{body}: GC {'n/a' if gc is None else f'{gc:.3f}'}, {status}"
            axes[1].text(
                0.0, -0.03 - 0.07 * i, text + (f" ({reasons})" if reasons else ""),
                transform=axes[1].transAxes, va="top", fontsize=8, family="monospace",
                color=STATUS_COLOURS.get(status, "black"),
            )  # fmt: skip
    fig.suptitle(f"{subject}: registration (target side {side})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.99))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png", pil_kwargs=PNG_OPTIONS)
