"""``python -m anatomy``: femoral landmarks, and the PF region's CT-derived BMD.

``landmarks``  both femurs' landmarks from the bone labels (overridden by an expert's
               3D Slicer file where given) → ``landmarks.json`` (LPS mm). The target
               side must succeed; the other side's failure is recorded as a warning. A
               femur that holds an implant (segmentation's metal record) is excluded:
               the target side then refuses the subject.
``ct-bmd``     the target femur's PF region and neck ROI, their spill-corrected BMC,
               QCT-BMD and areal BMD in the DXA view → ``ct_bmd.json``, the region mask,
               the PF areal-density image in the DXA view (g/cm²) and the region's
               spill-corrected mineral on the CT grid (what the datasets' PF-DRRs project).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import SimpleITK as sitk

from anatomy.implants import femur_implant
from anatomy.landmarks import femur_landmarks, with_expert_points
from conventions.ct import read_ct, require_same_grid, write_volume
from conventions.errors import InputError, run_cli
from conventions.files import write_json
from conventions.geometry import read_json_object
from conventions.hip_regions import (
    FemurLandmarks,
    voxel_points,
)
from conventions.labels import SIDES, femur_label
from conventions.landmarks import read_slicer_landmarks


def _labels(path: str) -> tuple[sitk.Image, np.ndarray]:
    image = read_ct(path)
    return image, sitk.GetArrayFromImage(image).astype(np.uint8)


def landmarks_command(a) -> int:
    image, labels = _labels(a.labels)
    expert = read_slicer_landmarks(a.slicer) if a.slicer else {}
    segmentation = read_json_object(a.segmentation) if a.segmentation else {}
    femurs, warnings, used, excluded = {}, [], {}, {}
    for side in SIDES:
        implant = femur_implant(segmentation, side)
        if implant:  # no landmarks where the bone is metal, and no BMD to measure
            if side == a.target_side:
                raise InputError(a.segmentation, f"target side {side}: {implant}", a.subject)
            excluded[side] = implant
            warnings.append(f"side {side} excluded: {implant}")
            continue
        try:
            lm = femur_landmarks(labels, image, side, a.subject, a.labels)
            if expert:
                femur = voxel_points(labels == femur_label(side), image)
                lm, used[side] = with_expert_points(lm, expert, femur, a.slicer, a.subject)
        except InputError as e:
            if side == a.target_side:
                raise
            warnings.append(f"side {side}: {e.problem}")
            continue
        femurs[side] = lm
    points = {k: v.tolist() for lm in femurs.values() for k, v in lm.points().items()}
    write_json(
        a.out,
        {
            "subject_id": a.subject,
            "coordinate_system": "LPS",
            "unit": "mm",
            "source": "computed from the femur labels"
            + (" and an expert's landmark file" if expert else ""),
            "expert_points": used,
            "landmarks": points,
            "femurs": {side: lm.to_dict() for side, lm in femurs.items()},
            "excluded_sides": excluded,
            "warnings": warnings,
        },
    )
    return 0


def read_femur_landmarks(path: str, side: str, subject: str) -> FemurLandmarks:
    doc = read_json_object(path)
    try:
        return FemurLandmarks.from_dict(doc["femurs"][side])
    except (KeyError, TypeError) as e:
        raise InputError(path, f"no landmarks of the {side} femur ({e})", subject) from None


def ct_bmd_command(a) -> int:
    # Only here: anatomy.bmd projects the DXA view (the projector, numba), which the
    # landmarks' job does not use.
    from anatomy.bmd import measure_regions

    image, labels = _labels(a.labels)
    density_image = read_ct(a.density)
    require_same_grid(image, density_image, a.labels, "the density volume's")
    density = sitk.GetArrayFromImage(density_image).astype(np.float32)
    lm = read_femur_landmarks(a.landmarks, a.side, a.subject)
    record, outputs = measure_regions(density, labels, image, lm)
    if record is None:
        raise InputError(a.landmarks, f"the {outputs} is empty: check the landmarks", a.subject)
    record = {"subject_id": a.subject, "side": a.side, **record}
    region, view, mineral = outputs["pf_region"]
    mask = sitk.GetImageFromArray(region.astype(np.uint8))
    mask.CopyInformation(image)
    write_volume(a.out_region, mask)
    if a.out_mineral:
        m_image = sitk.GetImageFromArray(mineral.astype(np.float32))
        m_image.CopyInformation(image)
        write_volume(a.out_mineral, m_image)
    drr = sitk.GetImageFromArray(view["areal_density_g_cm2"].astype(np.float32))
    spacing = (
        view["geometry"].col_spacing_mm
        * view["geometry"].source_to_patient_mm
        / view["geometry"].sdd_mm
    )
    drr.SetSpacing((spacing, spacing))
    write_volume(a.out_drr, drr)
    write_json(a.out_json, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m anatomy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("landmarks", help="femoral landmarks from the bone labels")
    p.add_argument("--subject", required=True)
    p.add_argument("--labels", required=True, help="bone labels on the CT grid")
    p.add_argument("--target-side", choices=SIDES, required=True)
    p.add_argument("--slicer", default=None, help="an expert's 3D Slicer landmark file")
    p.add_argument("--segmentation", default=None,
                   help="segmentation.json: a femur with an implant is excluded")  # fmt: skip
    p.add_argument("--out", required=True)
    p.set_defaults(run=landmarks_command)
    p = sub.add_parser("ct-bmd", help="PF region, QCT-BMD and areal BMD of the target femur")
    p.add_argument("--subject", required=True)
    p.add_argument("--density", required=True, help="calibrated density (mg/cm³)")
    p.add_argument("--labels", required=True)
    p.add_argument("--landmarks", required=True)
    p.add_argument("--side", choices=SIDES, required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-region", required=True, help="PF region mask on the CT grid")
    p.add_argument("--out-drr", required=True, help="PF areal density in the DXA view (g/cm²)")
    p.add_argument(
        "--out-mineral",
        default=None,
        help="the PF region's spill-corrected mineral (mg/cm³, CT grid): what its DRRs project",
    )
    p.set_defaults(run=ct_bmd_command)
    a = ap.parse_args(argv)
    return run_cli(lambda: a.run(a), a.subject)


if __name__ == "__main__":
    sys.exit(main())
