"""The per-subject CT quality-control montage (one PNG for the Snakemake report).

Panels: the calibration (phantom rods circled on an axial slice, or the reference
tissues, and the fitted HU line), the bone labels over axial and coronal slices through
the target femoral head with the landmarks and the proximal-femur (PF) region's outline,
the PF region's areal density in the DXA view, and the numbers a reviewer checks.
Density is shown in mg/cm³ HA; the patient's right is on the image's left (radiological).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from matplotlib.patches import Circle

from conventions.ct import read_ct
from conventions.files import atomic_path
from conventions.geometry import read_json_object
from conventions.labels import BONE_LABELS

WINDOW_MG_CM3 = (-200.0, 1200.0)
LABEL_COLOURS = {
    "hip_left": "#1f77b4",
    "hip_right": "#17becf",
    "femur_left": "#d62728",
    "femur_right": "#ff7f0e",
    "sacrum": "#2ca02c",
}
LANDMARK_STYLE = {
    "head_center": ("+", "yellow"),
    "head_neck_junction_superior": ("x", "cyan"),
    "head_neck_junction_inferior": ("x", "cyan"),
    "lesser_trochanter": ("o", "magenta"),
    "greater_trochanter": ("s", "lime"),
}


def _label_cmap() -> ListedColormap:
    colours = ["#00000000"] * (max(BONE_LABELS.values()) + 1)
    for name, value in BONE_LABELS.items():
        colours[value] = LABEL_COLOURS[name]
    return ListedColormap(colours)


def _labels_over_density(ax, density, labels, aspect: float, alpha: float) -> None:
    cmap = _label_cmap()
    ax.imshow(density, cmap="gray", vmin=WINDOW_MG_CM3[0], vmax=WINDOW_MG_CM3[1], aspect=aspect)
    ax.imshow(
        np.ma.masked_equal(labels, 0),
        cmap=cmap,
        vmin=0,
        vmax=cmap.N - 1,
        alpha=alpha,
        aspect=aspect,
        interpolation="nearest",
    )


def _lps(image: sitk.Image) -> sitk.Image:
    """The image with its axes in LPS order, so array slices are axial/coronal as drawn."""
    return sitk.DICOMOrient(image, "LPS")


def _calibration_panels(ax_slice, ax_line, density: np.ndarray, image, calibration: dict):
    method = calibration.get("method", "?")
    slope, intercept = calibration["slope_hu_per_mg_cm3"], calibration["intercept_hu"]
    rods = calibration.get("rods") or []
    if rods:  # the slice through the middle of the scan, rods circled
        k = density.shape[0] // 2
        ax_slice.imshow(density[k], cmap="gray", vmin=-200, vmax=400)
        for rod in rods:
            i, j, _ = image.TransformPhysicalPointToContinuousIndex((rod["x_mm"], rod["y_mm"], 0.0))
            r = rod["radius_mm"] / image.GetSpacing()[0]
            ax_slice.add_patch(Circle((i, j), r, fill=False, color="yellow", lw=1))
            ax_slice.annotate(
                f"{rod.get('density_mg_cm3', 0):g}",
                (i, j + 2.2 * r),
                color="yellow",
                ha="center",
                fontsize=7,
            )
        ax_slice.set_title("phantom rods (mg/cm³ HA)")
        x = [r["density_mg_cm3"] for r in rods]
        y = [r["hu"] for r in rods]
        ax_line.plot(x, y, "o", label="rods")
    else:
        refs = calibration.get("references") or {}
        x, y = [], []
        for name, ref in refs.items():
            if isinstance(ref, dict) and "hu" in ref and ref.get("density_mg_cm3") is not None:
                x.append(ref["density_mg_cm3"])
                y.append(ref["hu"])
                ax_line.annotate(name, (x[-1], y[-1]), fontsize=7)
        if x:
            ax_line.plot(x, y, "o", label="reference tissues")
        k = density.shape[0] // 2
        ax_slice.imshow(density[k], cmap="gray", vmin=-200, vmax=400)
        ax_slice.set_title(f"no phantom used ({method})")
    xs = np.linspace(min([*x, -100.0]), max([*x, 250.0]), 50)
    ax_line.plot(
        xs, intercept + slope * xs, "-", color="k", label=f"HU = {intercept:.1f} + {slope:.3f}·ρ"
    )
    r2 = calibration.get("r_squared")
    ax_line.set_title(f"calibration: {method}" + (f", R² = {r2:.4f}" if r2 else ""))
    ax_line.set_xlabel("density (mg/cm³ HA)")
    ax_line.set_ylabel("HU")
    ax_line.legend(fontsize=7)


def ct_montage(
    density_path,
    calibration_path,
    labels_path,
    segmentation_path,
    landmarks_path,
    ct_bmd_path,
    region_path,
    drr_path,
    subject: str,
    out_png,
) -> None:
    image = _lps(read_ct(density_path))
    density = sitk.GetArrayFromImage(image)
    labels = sitk.GetArrayFromImage(_lps(read_ct(labels_path))).astype(np.uint8)
    region = sitk.GetArrayFromImage(_lps(read_ct(region_path))) > 0
    drr = sitk.GetArrayFromImage(sitk.ReadImage(str(drr_path)))
    calibration = read_json_object(calibration_path)
    segmentation = read_json_object(segmentation_path)
    landmarks = read_json_object(landmarks_path)
    bmd = read_json_object(ct_bmd_path)
    side = bmd["side"]
    head = np.asarray(landmarks["landmarks"][f"head_center_{side}"])
    _, j, k = image.TransformPhysicalPointToIndex(head.tolist())
    sx, sy, sz = image.GetSpacing()

    fig = Figure(figsize=(15, 9.5))
    axes = fig.subplots(2, 3)
    _calibration_panels(axes[0, 0], axes[0, 1], density, image, calibration)
    # Axial through the target head: labels over density.
    ax = axes[0, 2]
    _labels_over_density(ax, density[k], labels[k], sy / sx, alpha=0.45)
    ax.set_title(f"labels, axial through the {side} femoral head")
    # Coronal through the target head: labels, PF region outline, landmarks.
    ax = axes[1, 0]
    _labels_over_density(ax, density[::-1, j, :], labels[::-1, j, :], sz / sx, alpha=0.35)
    if region[:, j, :].any():
        ax.contour(region[::-1, j, :].astype(float), levels=[0.5], colors="white", linewidths=1.0)
    nz = density.shape[0]
    for name, (marker, colour) in LANDMARK_STYLE.items():
        p = landmarks["landmarks"].get(f"{name}_{side}")
        if p is None:
            continue
        ci, _, ck = image.TransformPhysicalPointToContinuousIndex(tuple(p))
        ax.plot(ci, nz - 1 - ck, marker, color=colour, ms=6, label=name.replace("_", " "))
    ax.legend(fontsize=6, loc="lower left")
    ax.set_title("coronal: labels, PF region (white), landmarks")
    # The PF region's areal density in the DXA view.
    ax = axes[1, 1]
    shown = ax.imshow(np.ma.masked_less_equal(drr, 0.0), cmap="magma")
    fig.colorbar(shown, ax=ax, label="g/cm²", shrink=0.8)
    ax.set_title("PF region, areal density in the DXA view")
    # The numbers.
    ax = axes[1, 2]
    pf, neck = bmd["pf_region"], bmd["neck_roi"]
    volumes = segmentation.get("volumes_cm3") or {
        n: v.get("volume_cm3")
        for n, v in segmentation.get("labels", {}).items()
        if isinstance(v, dict)
    }
    lines = [
        f"subject {subject}, target side {side}",
        f"calibration: {calibration.get('method')}"
        + (f" ({calibration['fallback_reason']})" if calibration.get("fallback_reason") else ""),
        f"segmentation: {segmentation.get('method', '?')}",
        *[f"  {n}: {v:.0f} cm³" for n, v in volumes.items() if v is not None],
        f"metal: {'PRESENT' if (segmentation.get('metal') or {}).get('present') else 'none'}",
        "",
        f"PF region: QCT-BMD {pf['qct_bmd_mg_cm3']:.0f} mg/cm³, "
        f"aBMD {pf['areal_bmd_g_cm2']:.3f} g/cm²",
        f"  BMC {pf['bmc_g']:.1f} g, {pf['volume_cm3']:.0f} cm³, "
        f"{pf['projected_area_cm2']:.1f} cm² (plain mean {pf['mask_mean_mg_cm3']:.0f})",
        f"neck ROI: QCT-BMD {neck['qct_bmd_mg_cm3']:.0f} mg/cm³, "
        f"aBMD {neck['areal_bmd_g_cm2']:.3f} g/cm²",
        "",
        *[
            f"warning: {w}"
            for w in [
                *segmentation.get("warnings", []),
                *landmarks.get("warnings", []),
                *bmd.get("warnings", []),
            ]
        ],
    ]
    ax.text(
        0.0,
        1.0,
        "\n".join(lines),
        va="top",
        ha="left",
        fontsize=8,
        family="monospace",
        transform=ax.transAxes,
        wrap=True,
    )
    for ax in axes.ravel():
        if ax is not axes[0, 1]:
            ax.set(xticks=[], yticks=[])  # no tick layout either: a third of the drawing
            ax.set_axis_off()
    fig.suptitle(f"{subject}: CT stages")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=72, format="png")
