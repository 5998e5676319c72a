"""``python -m segmentation``: bone labels for one subject's calibrated CT, and their QC record."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import SimpleITK as sitk

from conventions.ct import read_ct, write_volume
from conventions.errors import InputError, run_cli
from conventions.files import write_json
from conventions.labels import BONE_LABELS
from segmentation import metal as metal_mod
from segmentation import threshold
from segmentation.masks import LABEL_MAPS, parse_label_map, read_masks
from segmentation.record import field_of_view_warnings, label_volumes, missing_bones
from segmentation.space import VoxelSpace

METHODS = ("threshold", "masks", "totalsegmentator")


def segment(args: argparse.Namespace) -> tuple[np.ndarray, dict, sitk.Image]:
    """Labels (uint8 z, y, x, metal already out), the QC record, and the density image."""
    density = read_ct(args.density)
    method = args.method or ("masks" if args.masks else "threshold")
    record: dict = {"subject_id": args.subject, "method": method}
    warnings: list[str] = []
    if method == "masks":
        if not args.masks:
            raise InputError(None, "--method masks needs --masks FILE")
        label_map = parse_label_map(args.label_map)
        labels = read_masks(args.masks, density, label_map)
        record["label_map"] = label_map
    elif method == "totalsegmentator":
        if not args.ct:
            raise InputError(None, "--method totalsegmentator needs --ct (the CT in HU)")
        from segmentation.totalsegmentator import run_totalsegmentator

        labels = run_totalsegmentator(args.ct, read_ct(args.ct))
    else:
        result = threshold.segment_bones(density)
        if not result.heads:
            # Every bone is placed relative to the hip joints: without them there is
            # nothing to label, and an empty label image would only fail later.
            raise InputError(
                args.density,
                "cannot segment the bones: no femoral head in the field of view (cut above "
                "the hips?); give the bone masks instead (--masks)",
            )
        labels = result.labels
        warnings += result.warnings + field_of_view_warnings(result.heads, density)
        record["threshold"] = {
            "shell_mg_cm3": threshold.SHELL_MG_CM3,
            "surface_fraction": threshold.SURFACE_FRACTION,
            **result.record(),
        }
    values = sitk.GetArrayViewFromImage(density)
    space = VoxelSpace.of(density)
    metal = metal_mod.find_metal(values, space.spacing)
    record["metal"] = metal_mod.metal_record(metal, labels, values, space)
    excluded = int((metal & (labels > 0)).sum())
    record["metal"]["excluded_from_labels_voxels"] = excluded
    labels = np.where(metal, 0, labels).astype(np.uint8)
    if record["metal"]["present"]:
        where = record["metal"]["objects"][0]
        warnings.append(
            f"metal: {record['metal']['volume_cm3']} cm³ (largest object {where['relation']} "
            f"{where['bone'] or 'no bone'}), excluded from the bone labels"
        )
    volumes = label_volumes(labels, space.spacing)
    record["label_values"] = BONE_LABELS
    record["labels"] = volumes
    record["warnings"] = missing_bones(volumes) + warnings
    return labels, record, density


def segmentation_command(a: argparse.Namespace) -> int:
    labels, record, density = segment(a)
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(density)
    write_volume(a.out_labels, image)
    write_json(a.out_json, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m segmentation", description=__doc__)
    ap.add_argument("--subject", required=True)
    ap.add_argument("--density", required=True, help="the calibrated CT (mg/cm³ HA)")
    ap.add_argument("--ct", help="the CT in HU (needed by --method totalsegmentator)")
    ap.add_argument(
        "--masks", help="a label image, or a folder of per-bone masks, on the CT's grid"
    )
    ap.add_argument(
        "--label-map",
        default="totalsegmentator",
        help=f"values of --masks: {' | '.join(LABEL_MAPS)} | a JSON object such as "
        "'{\"femur_left\": 75, ...}' (default: totalsegmentator)",
    )
    ap.add_argument(
        "--method",
        choices=METHODS,
        help="default: masks when --masks is given, else threshold",
    )
    ap.add_argument("--out-labels", required=True)
    ap.add_argument("--out-json", required=True)
    a = ap.parse_args(argv)
    return run_cli(lambda: segmentation_command(a), a.subject)


if __name__ == "__main__":
    sys.exit(main())
