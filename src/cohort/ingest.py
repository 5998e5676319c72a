"""Import each input into the pipeline's canonical, header-free form, and fingerprint it.

A CT becomes one float32 NIfTI in HU (LPS geometry, no DICOM header: no identifier can
follow it into results/); a radiograph becomes a float32 MHA with bone bright plus its
``geometry.json``. Each import writes a small fingerprint record; the cohort fingerprint
gathers them, so later stages can plan (spacings, sizes, intensity ranges, detector
geometry) without opening every image again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from conventions.ct import check_nifti_values, read_ct, write_volume
from conventions.errors import InputError
from conventions.files import write_json, write_text
from conventions.geometry import read_json_object, write_geometry
from conventions.radiograph import read_radiograph, write_radiograph

PERCENTILES = (0.5, 5.0, 50.0, 95.0, 99.5)
BODY_HU_THRESHOLD = -500.0  # voxels above this are the patient, table or phantom, not air


def orientation_code(image: sitk.Image) -> str:
    """The three-letter code of the voxel axes, e.g. 'LPS' (i toward left, j posterior, …)."""
    return sitk.DICOMOrientImageFilter_GetOrientationFromDirectionCosines(image.GetDirection())


def ct_fingerprint(image: sitk.Image) -> dict[str, Any]:
    """Geometry and intensity statistics of a CT volume (no identifiers)."""
    hu = sitk.GetArrayViewFromImage(image)
    body = hu[hu > BODY_HU_THRESHOLD]
    size = image.GetSize()
    spacing = image.GetSpacing()
    return {
        "size_xyz": list(size),
        "spacing_mm_xyz": [float(s) for s in spacing],
        "origin_lps_mm": [float(o) for o in image.GetOrigin()],
        "direction": [float(d) for d in image.GetDirection()],
        "orientation": orientation_code(image),
        "extent_mm_xyz": [float(n * s) for n, s in zip(size, spacing, strict=True)],
        "hu_percentiles_all": dict(
            zip(map(str, PERCENTILES), np.percentile(hu, PERCENTILES).tolist(), strict=True)
        ),
        "hu_percentiles_body": dict(
            zip(map(str, PERCENTILES), np.percentile(body, PERCENTILES).tolist(), strict=True)
        )
        if body.size
        else None,
        "body_fraction": float(body.size / hu.size),
    }


# The smallest field that holds one hip: a femoral head is 40-55 mm across and the
# proximal femur's region (head, neck, trochanters) spans about 100 mm; a CT narrower
# than this on any axis cannot be segmented or measured as a hip.
MIN_HIP_EXTENT_MM = 60.0


def check_holds_a_hip(image: sitk.Image, path: str | Path) -> None:
    """Raise InputError when the CT's field is too small on some axis to hold a hip."""
    extent = np.array(image.GetSize()) * np.array(image.GetSpacing())
    if np.any(extent < MIN_HIP_EXTENT_MM):
        shown = " × ".join(f"{e:.0f}" for e in extent)
        raise InputError(
            path,
            f"the volume spans {shown} mm (x × y × z): too small to hold a hip "
            f"(at least {MIN_HIP_EXTENT_MM:.0f} mm on every axis)",
        )


def import_ct(
    subject: str,
    ct_path: str | Path,
    out_volume: str | Path,
    out_fingerprint: str | Path,
) -> dict[str, Any]:
    """Read a subject's CT, write it as canonical NIfTI and write its fingerprint."""
    notes: list[str] = []
    try:
        image = read_ct(ct_path, notes)
        check_nifti_values(ct_path)
        check_holds_a_hip(image, ct_path)
    except InputError as e:
        raise e.for_subject(subject) from None
    for note in notes:  # a recorded fallback: the job log says what was corrected
        print(f"subject {subject}: {ct_path}: {note}", file=sys.stderr)
    fingerprint = {"subject_id": subject, **ct_fingerprint(image), "import_notes": notes}
    write_volume(out_volume, image)
    write_json(out_fingerprint, fingerprint)
    return fingerprint


def import_radiograph(
    subject: str,
    image_id: str,
    path: str | Path,
    out_image: str | Path,
    out_geometry: str | Path,
    out_fingerprint: str | Path,
    geometry_json: str | Path | None = None,
    pose_label: str = "other",
    site_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read a radiograph, check its geometry is complete, write MHA + geometry.json. The
    site's defaults (config ``radiographs.site_defaults``) fill only what the file and
    ``geometry_json`` lack; the fingerprint says which values were assumed."""
    try:
        radiograph = read_radiograph(path, geometry_json, site_defaults)
        geometry = radiograph.require_geometry()
    except InputError as e:
        raise e.for_subject(subject) from None
    for note in radiograph.info.get("import_notes", []):
        print(f"subject {subject}: {path}: {note}", file=sys.stderr)
    px = radiograph.pixels
    fingerprint = {
        "subject_id": subject,
        "image_id": image_id,
        "pose": pose_label,
        "rows": geometry.rows,
        "cols": geometry.cols,
        "pixel_spacing_mm": [geometry.row_spacing_mm, geometry.col_spacing_mm],
        "sdd_mm": geometry.sdd_mm,
        "source_to_patient_mm": geometry.source_to_patient_mm,
        "intensity_percentiles": dict(
            zip(map(str, PERCENTILES), np.percentile(px, PERCENTILES).tolist(), strict=True)
        ),
        **radiograph.info,
    }
    write_radiograph(out_image, px, geometry)
    write_geometry(out_geometry, geometry)
    write_json(out_fingerprint, fingerprint)
    return fingerprint


def cohort_fingerprint(
    subjects_tsv: str | Path,
    ct_fingerprints: list[str | Path],
    radiograph_fingerprints: list[str | Path],
    out_json: str | Path,
    out_tsv: str | Path,
) -> dict[str, Any]:
    """Summarise per-image fingerprints into the cohort's (median spacing, ranges, counts).

    Scanner and phantom presence come from the manifest (``subjects_tsv``).
    """
    import pandas as pd  # the cohort's step only: the per-file imports start without it

    from cohort.manifest import read_cohort

    manifest = read_cohort(subjects_tsv, None, check_files=False).subjects
    cts = [read_json_object(p) for p in ct_fingerprints]
    for c in cts:
        row = manifest.loc[c["subject_id"]]
        c["ct_scanner"] = row["ct_scanner"] or ""
        c["phantom"] = row["phantom"]
    rads = [read_json_object(p) for p in radiograph_fingerprints]
    spacing = np.array([c["spacing_mm_xyz"] for c in cts]) if cts else np.zeros((0, 3))
    size = np.array([c["size_xyz"] for c in cts]) if cts else np.zeros((0, 3))

    def stats(a: np.ndarray) -> dict[str, list[float]] | None:
        if a.size == 0:
            return None
        return {
            "median": np.median(a, axis=0).tolist(),
            "min": a.min(axis=0).tolist(),
            "max": a.max(axis=0).tolist(),
        }

    summary: dict[str, Any] = {
        "n_subjects": len(cts),
        "n_radiographs": len(rads),
        "ct": {
            "spacing_mm_xyz": stats(spacing),
            "size_xyz": stats(size),
            "orientations": sorted({c["orientation"] for c in cts}),
            "scanners": sorted({c["ct_scanner"] for c in cts if c["ct_scanner"]}),
            "with_phantom": sum(c["phantom"] == "present" for c in cts),
            "body_hu_median_of_medians": float(
                np.median([c["hu_percentiles_body"]["50.0"] for c in cts])
            )
            if cts and all(c["hu_percentiles_body"] for c in cts)
            else None,
        },
        "radiographs": {
            "pixel_spacing_mm": stats(np.array([r["pixel_spacing_mm"] for r in rads])),
            "sdd_mm": stats(np.array([[r["sdd_mm"]] for r in rads])),
            "size_rows_cols": stats(np.array([[r["rows"], r["cols"]] for r in rads])),
            "poses": pd.Series([r["pose"] for r in rads], dtype=str).value_counts().to_dict(),
            "formats": sorted({r["format"] for r in rads}),
        },
    }
    rows = [
        {
            "subject_id": c["subject_id"],
            "ct_scanner": c["ct_scanner"],
            "phantom": c["phantom"],
            "ct_orientation": c["orientation"],
            "ct_size_xyz": "x".join(map(str, c["size_xyz"])),
            "ct_spacing_mm_xyz": "x".join(f"{s:.3g}" for s in c["spacing_mm_xyz"]),
            "n_radiographs": sum(r["subject_id"] == c["subject_id"] for r in rads),
        }
        for c in cts
    ]
    write_json(out_json, summary)
    write_text(out_tsv, pd.DataFrame(rows).to_csv(sep="\t", index=False))
    return summary
