"""``python -m phantom``: generate synthetic subjects and the cohort manifest."""

from __future__ import annotations

import argparse
import sys

from conventions.errors import run_cli
from phantom.cohort import generate_subject, write_manifest
from phantom.radiographs import POSE_LABELS
from phantom.variants import VARIANTS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phantom", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subject", help="generate one subject's CT and ground truth")
    s.add_argument("--subject", required=True, help="S001, S002, …")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument(
        "--voxel-mm",
        type=float,
        nargs="+",
        default=[2.0],
        help="voxel size in mm: one value, or x y z",
    )
    s.add_argument("--out-dir", required=True)
    s.add_argument(
        "--ct-format",
        choices=["nifti", "dicom"],
        default="nifti",
        help="the CT as one NIfTI file or as a DICOM series folder",
    )
    s.add_argument(
        "--poses",
        nargs="*",
        default=list(POSE_LABELS),
        choices=POSE_LABELS,
        help="one radiograph per pose label (none: CT only)",
    )
    s.add_argument("--variant", choices=VARIANTS, default=None,
                   help="a hip a clinic sees (phantom.variants)")  # fmt: skip
    s.add_argument("--variant-side", choices=("L", "R"), default=None,
                   help="the variant's side, if it has one (default: the target side)")  # fmt: skip
    v = sub.add_parser("preview", help="PNG of one subject's CT slices and radiographs")
    v.add_argument("subject_dir", help="e.g. results/synthetic/S001")
    v.add_argument("--out", required=True, help="PNG to write")
    m = sub.add_parser("manifest", help="write subjects.tsv and radiographs.tsv")
    m.add_argument("--truth", nargs="+", required=True)
    m.add_argument("--out-subjects", required=True)
    m.add_argument("--out-radiographs", required=True)
    t = sub.add_parser("true-poses", help="a view's true poses as registration's pose files")
    t.add_argument("--view", nargs="+", required=True, help="truth/radiographs/<image>.json")
    t.add_argument("--side", choices=("L", "R"), required=True, help="the target femur's side")
    t.add_argument("--out-dir", default=None, help="writes IMAGE/pose_{pelvis,femur}.json")
    t.add_argument("--out-index", default=None, help="with --out-dir: its files' SHA-256")
    t.add_argument("--out-pelvis", default=None, help="with one view, no --out-dir")
    t.add_argument("--out-femur", default=None, help="with one view, no --out-dir")
    a = ap.parse_args(argv)

    def command() -> int:
        if a.command == "subject":
            if len(a.voxel_mm) not in (1, 3):
                ap.error("--voxel-mm takes one value or three (x y z)")
            voxel = a.voxel_mm[0] if len(a.voxel_mm) == 1 else tuple(a.voxel_mm)
            generate_subject(a.subject, a.seed, voxel, a.out_dir, tuple(a.poses),
                             ct_format=a.ct_format, variant=a.variant,
                             variant_side=a.variant_side)  # fmt: skip
        elif a.command == "preview":
            from phantom.preview import preview

            preview(a.subject_dir, a.out)
        elif a.command == "true-poses":
            from phantom.radiographs import write_true_poses

            if a.out_dir:
                for view in a.view:
                    write_true_poses(view, a.side, out_dir=a.out_dir)
                if a.out_index:
                    from conventions.files import write_folder_index

                    write_folder_index(a.out_dir, a.out_index)
            elif len(a.view) == 1 and a.out_pelvis and a.out_femur:
                write_true_poses(a.view[0], a.side, a.out_pelvis, a.out_femur)
            else:
                ap.error("give --out-dir, or --out-pelvis and --out-femur for one view")
        else:
            write_manifest(a.truth, a.out_subjects, a.out_radiographs)
        return 0

    return run_cli(command, getattr(a, "subject", None))


if __name__ == "__main__":
    sys.exit(main())
