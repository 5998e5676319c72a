"""Generate synthetic subjects and the cohort manifest, with every true value recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conventions.ct import write_dicom_series, write_volume
from conventions.files import write_json, write_text
from conventions.geometry import read_json_object
from conventions.hip_regions import neck_roi_mask, pf_region_mask
from conventions.labels import BONE_LABELS
from conventions.landmarks import write_landmarks
from conventions.radiograph import write_dicom_dx
from phantom import variants
from phantom.acquisition import MUSCLE_MG_CM3, acquire_ct, compose_hu, draw_scanner
from phantom.anatomy import (
    build_anatomy,
    draw_subject,
    femur_frame,
    label_image,
    make_grid,
    pelvis_frame,
)
from phantom.density import (
    dxa_projected_area_cm2,
    solve_densities,
    spill_shell,
    true_landmarks,
)
from phantom.ids import CT_NAMES
from phantom.ids import target_side as synthetic_target_side
from phantom.radiographs import POSE_LABELS, Detector, draw_view, render_view, split_bodies

# DXA measures areal BMD with about 1-2 % precision and a few per cent of accuracy
# error between subjects (soft-tissue inhomogeneity); modelled as one relative error.
DXA_RELATIVE_ERROR_SD = 0.03


def subject_rng(seed: int, subject_id: str) -> np.random.Generator:
    """Each subject's own stream: the same subject comes out the same whatever n is."""
    return np.random.default_rng([seed, int(subject_id.lstrip("S"))])


def bmd_truth(
    density: np.ndarray,
    soft_tissue: np.ndarray,
    region: np.ndarray,
    labels: np.ndarray,
    grid,
    lm,
    shell: np.ndarray | None = None,
    area_cm2: float | None = None,
) -> dict[str, float]:
    """True BMC, QCT-BMD and areal BMD of a femur region (:mod:`conventions.hip_regions`).

    The region's mineral is its voxels' true density plus, in the thin shell around it,
    the bone's partial-volume excess over the soft tissue there (``soft_tissue``: the
    density the phantom put there before adding bones): the quantity the pipeline's
    spill-corrected measurement estimates (:func:`anatomy.bmd.mineral_content`). Areal
    BMD is that mineral over the area of the region's silhouette in the DXA view (g/cm²).
    ``shell`` and ``area_cm2``, when given, are the region's :func:`spill_shell` and
    :func:`dxa_projected_area_cm2` (computed once for the density solve).
    """
    if shell is None:
        shell = spill_shell(region, labels, lm.side, grid)
    if area_cm2 is None:
        area_cm2 = dxa_projected_area_cm2(region, grid, lm)
    voxel_cm3 = float(np.prod(grid.spacing_mm)) / 1000.0
    mass_mg = float(density[region].sum() + (density[shell] - soft_tissue[shell]).sum()) * voxel_cm3
    volume_cm3 = float(region.sum()) * voxel_cm3
    return {
        "qct_bmd_mg_cm3": mass_mg / volume_cm3,
        "areal_bmd_g_cm2": mass_mg / 1000.0 / area_cm2,
        "bmc_g": mass_mg / 1000.0,
        "volume_cm3": volume_cm3,
        "projected_area_cm2": area_cm2,
        "mask_mean_mg_cm3": float(density[region].mean()),
    }


def generate_subject(
    subject_id: str,
    seed: int,
    voxel_mm: float | tuple[float, float, float],
    out_dir: str | Path,
    poses: tuple[str, ...] = POSE_LABELS,
    detector: Detector | None = None,
    ct_format: str = "nifti",
    variant: str | None = None,
    variant_side: str | None = None,
) -> dict[str, Any]:
    """Write one subject: ``ct.nii.gz`` (int16 HU), ``radiographs/{pose}.dcm`` and
    ``truth/`` (density, labels, PF region, ``truth.json`` with every true value, and
    ``radiographs/{pose}.json`` with each view's true poses). With ``ct_format="dicom"``
    the CT is a DICOM series in ``ct_dicom/`` instead. ``variant`` (phantom.variants:
    hip_replacement, osteoarthritis, thin_cortex) makes the subject a hip a clinic sees,
    on ``variant_side`` where it has one (default: the target side). Returns the truth
    record."""
    variants.check_variant(variant, variant_side)
    out = Path(out_dir)
    detector = Detector() if detector is None else detector
    rng = subject_rng(seed, subject_id)
    params = draw_subject(rng)
    scanner = draw_scanner(rng)
    target_side = synthetic_target_side(seed, subject_id)
    variant_side = variant_side or target_side
    variants.adjust_parameters(params, variant)
    grid = make_grid(voxel_mm)
    anatomy = build_anatomy(params, grid, rng)
    variants.adjust_anatomy(anatomy, params, grid, variant)
    labels = label_image(anatomy)
    frames = {"femur_left": femur_frame(params, "L"), "femur_right": femur_frame(params, "R")}
    # The PF region of the true landmarks, its spill shell and its DXA area: the density
    # solve and the truth use the same ones (the area alone is ~1 s a subject).
    true_lm = {side: true_landmarks(params, side) for side in ("L", "R")}
    lm = true_lm[target_side]
    labels_image = grid.image(labels)
    region = pf_region_mask(labels, labels_image, lm)
    shell = spill_shell(region, labels, target_side, grid)
    area_cm2 = dxa_projected_area_cm2(region, grid, lm)
    density_level = solve_densities(
        params, anatomy, grid, target_side, frames, region, shell, area_cm2
    )
    hu_clean, hu_soft, phantom_layout = compose_hu(params, anatomy, grid, scanner, rng)
    hu_clean = variants.adjust_hu(hu_clean, params, grid, variant, variant_side)
    ct = acquire_ct(hu_clean, grid, scanner, rng)
    density = ((hu_clean - scanner.intercept_hu) / scanner.slope_hu_per_mg_cm3).astype(np.float32)
    soft = (hu_soft - scanner.intercept_hu) / scanner.slope_hu_per_mg_cm3
    del hu_soft
    pf = bmd_truth(density, soft, region, labels, grid, lm, shell, area_cm2)
    neck = bmd_truth(density, soft, neck_roi_mask(labels, labels_image, lm), labels, grid, lm)
    del soft
    dxa = pf["areal_bmd_g_cm2"] * (1.0 + rng.normal(0.0, DXA_RELATIVE_ERROR_SD))

    if ct_format == "dicom":
        write_dicom_series(
            out / CT_NAMES["dicom"],
            grid.image(ct),
            subject_id,
            uid_entropy=[str(seed), subject_id],
        )
    elif ct_format == "nifti":
        write_volume(out / CT_NAMES["nifti"], grid.image(ct))
    else:
        raise ValueError(f"ct_format must be nifti or dicom, got {ct_format!r}")
    write_volume(out / "truth" / "density_mg_cm3.nii.gz", grid.image(density))
    write_volume(out / "truth" / "labels.nii.gz", labels_image)
    write_volume(out / "truth" / "pf_region.nii.gz", grid.image(region.astype(np.uint8)))
    landmarks = {k: v.tolist() for side in ("L", "R") for k, v in true_lm[side].points().items()}
    for side in ("L", "R"):
        pelvis = pelvis_frame(params, side)
        landmarks[f"asis_{side}"] = pelvis["asis"].tolist()
        landmarks[f"ischial_tuberosity_{side}"] = pelvis["ischial_tuberosity"].tolist()
    landmarks["pubic_symphysis"] = pelvis_frame(params, "L")["pubic_symphysis"].tolist()
    landmarks["pubic_symphysis"][0] = 0.0  # the two pubic bones meet at the midline
    write_landmarks(
        out / "truth" / "landmarks.json", {k: np.array(v) for k, v in landmarks.items()}
    )
    truth = {
        "subject_id": subject_id,
        "seed": [seed, int(subject_id.lstrip("S"))],
        "target_side": target_side,
        "variant": {"name": variant, "side": variant_side} if variant else None,
        "ct": CT_NAMES[ct_format],
        "dxa_bmd_g_cm2": float(dxa),
        "qct_bmd_mg_cm3": pf["qct_bmd_mg_cm3"],
        "areal_bmd_g_cm2": pf["areal_bmd_g_cm2"],
        "pf_region": pf,
        "neck_roi": neck,
        "density_level_z": density_level,
        "parameters": params.to_dict(),
        "scanner": scanner.to_dict(),
        "calibration_phantom": phantom_layout,
        "landmarks_lps_mm": landmarks,
        "femurs": {side: true_lm[side].to_dict() for side in ("L", "R")},
        "labels": BONE_LABELS,
        "voxel_mm": grid.spacing_mm.tolist(),
    }
    # Radiographs draw from their own stream: changing them never changes the CT.
    view_rng = np.random.default_rng([seed, int(subject_id.lstrip("S")), 1])
    heads = {
        side: frames[f"femur_{'left' if side == 'L' else 'right'}"]["head_center"]
        for side in ("L", "R")
    }
    body, femurs = split_bodies(hu_clean, labels, grid.image(hu_clean), scanner.hu(MUSCLE_MG_CM3))
    truth["radiographs"] = []
    for label in poses:
        view = draw_view(label, view_rng, (heads["L"] + heads["R"]) / 2)
        image, geometry, view_poses = render_view(body, femurs, heads, view, detector, view_rng)
        write_dicom_dx(
            out / "radiographs" / f"{label}.dcm",
            image["processed"],
            geometry,
            view["source_to_patient_mm"],
            subject_id,
            label,
            uid_entropy=[str(seed), subject_id, label],
        )
        record = {
            "image_id": label,
            "pose": label,
            "geometry": geometry.to_dict(),
            "camera_from_ct": {k: v.tolist() for k, v in view_poses.items()},
            **{k: v for k, v in view.items() if k != "label"},
        }
        write_json(out / "truth" / "radiographs" / f"{label}.json", record)
        truth["radiographs"].append(label)
    write_json(out / "truth" / "truth.json", truth)
    return truth


def write_manifest(
    truth_files: list[str | Path], out_subjects: str | Path, out_radiographs: str | Path
) -> None:
    """subjects.tsv and radiographs.tsv of the synthetic cohort, in exactly the format a
    user gives (paths relative to the tables; the radiographs' geometry in their DICOM)."""
    out_subjects = Path(out_subjects)
    rows, images = [], []
    for f in truth_files:
        t = read_json_object(f)
        subject_dir = Path(f).parent.parent
        rows.append(
            {
                "subject_id": t["subject_id"],
                "ct": str((subject_dir / t["ct"]).relative_to(out_subjects.parent)),
                "target_side": t["target_side"],
                "dxa_bmd_g_cm2": round(t["dxa_bmd_g_cm2"], 4),
                "phantom": "present",
                "ct_scanner": t["scanner"]["name"],
            }
        )
        for image_id in t.get("radiographs", []):
            images.append(
                {
                    "subject_id": t["subject_id"],
                    "image_id": image_id,
                    "path": str(
                        (subject_dir / "radiographs" / f"{image_id}.dcm").relative_to(
                            out_subjects.parent
                        )
                    ),
                    "pose": image_id,
                }
            )
    write_text(out_subjects, pd.DataFrame(rows).to_csv(sep="\t", index=False))
    columns = ["subject_id", "image_id", "path", "pose"]
    write_text(out_radiographs, pd.DataFrame(images, columns=columns).to_csv(sep="\t", index=False))
