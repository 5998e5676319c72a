"""A picture of one synthetic subject: CT slices and its radiographs, to judge realism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from conventions.ct import read_ct
from conventions.files import atomic_path
from conventions.radiograph import read_radiograph


def preview(subject_dir: str | Path, out_png: str | Path) -> None:
    """Axial and coronal CT slices through the femoral heads, and every radiograph."""
    subject_dir = Path(subject_dir)
    truth = json.loads((subject_dir / "truth" / "truth.json").read_text())
    ct = read_ct(subject_dir / truth.get("ct", "ct.nii.gz"))
    hu = sitk.GetArrayFromImage(ct)
    head = np.array(truth["landmarks_lps_mm"][f"head_center_{truth['target_side']}"])
    _, j, k = ct.TransformPhysicalPointToIndex(head.tolist())
    sx, sy, sz = ct.GetSpacing()
    views = truth.get("radiographs", [])
    fig = Figure(figsize=(4.2 * (2 + len(views)), 4.2))
    axes = fig.subplots(1, 2 + len(views))
    window = {"cmap": "gray", "vmin": -250, "vmax": 1250}
    # Radiological display: the patient's right on the image's left, anterior up.
    axes[0].imshow(hu[k], aspect=sy / sx, **window)
    axes[0].set_title(f"CT axial, z = {head[2]:.0f} mm")
    axes[1].imshow(hu[::-1, j, :], aspect=sz / sx, **window)
    axes[1].set_title("CT coronal through the head")
    for ax, pose in zip(axes[2:], views, strict=True):
        r = read_radiograph(subject_dir / "radiographs" / f"{pose}.dcm")
        ax.imshow(r.pixels, cmap="gray")
        ax.set_title(f"radiograph: {pose}")
    for ax in axes:
        ax.set(xticks=[], yticks=[])  # no tick layout either: it is most of the drawing
        ax.set_axis_off()
    p = truth["parameters"]
    fig.suptitle(
        f"{truth['subject_id']}: {p['sex']}, {p['age_years']:.0f} y, target side "
        f"{truth['target_side']}, areal BMD {truth['areal_bmd_g_cm2']:.2f} g/cm², "
        f"QCT-BMD {truth['qct_bmd_mg_cm3']:.0f} mg/cm³"
    )
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=70)
