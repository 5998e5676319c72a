"""``python -m qc``: quality-control figures.

``ct``            the per-subject CT montage (calibration, labels, landmarks, PF region,
                CT BMD).
``registration``  a radiograph with the pelvis's and femur's DRR edges at their
                registered poses, GC and status.
``pairs``         a subject's training pairs (radiograph, bone DRR, PF-DRR).
``dataset``       the dataset audit: PF-DRR mean against DXA/QCT-BMD, the summary page.
``training``      the models' training curves (loss terms per epoch, per fold and stage).
"""

from __future__ import annotations

import argparse
import sys

from qc.ct import ct_montage
from qc.dataset import dataset_audit, pairs_montage
from qc.registration import registration_overlay
from qc.training import training_curves


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qc", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ct", help="the per-subject CT montage")
    for name in (
        "subject",
        "density",
        "calibration",
        "labels",
        "segmentation",
        "landmarks",
        "ct-bmd",
        "region",
        "drr",
        "out",
    ):
        p.add_argument(f"--{name}", required=True)
    p = sub.add_parser("registration", help="DRR edges at the registered poses")
    for name in ("subject", "image", "xray", "ct", "labels", "side", "pose-pelvis"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--pose-femur", required=True)
    p.add_argument("--geometry", default=None)
    p.add_argument("--out", required=True)
    p = sub.add_parser("pairs", help="a subject's training pairs")
    p.add_argument("--subject", required=True)
    p.add_argument("--records", nargs="+", required=True, help="the subject's pair.json files")
    p.add_argument("--out", required=True)
    p = sub.add_parser("dataset", help="the dataset audit's figure, summary and checks")
    for name in ("dataset-a", "dataset-b", "excluded", "folds"):
        p.add_argument(f"--{name}", required=True)
    for name in ("out-scatter", "out-summary", "out-checks"):
        p.add_argument(f"--{name}", required=True)
    p = sub.add_parser("training", help="the models' training curves")
    p.add_argument("--histories", nargs="+", required=True)
    p.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.command == "training":
        training_curves(a.histories, a.out)
        return 0
    if a.command == "pairs":
        pairs_montage(a.records, a.subject, a.out)
        return 0
    if a.command == "dataset":
        checks = dataset_audit(
            a.dataset_a,
            a.dataset_b,
            a.excluded,
            a.folds,
            a.out_scatter,
            a.out_summary,
            a.out_checks,
        )
        print({k: v["pcc"] for k, v in checks.items()})
        return 0
    if a.command == "registration":
        registration_overlay(
            a.xray,
            a.geometry,
            a.ct,
            a.labels,
            a.side,
            {"pelvis": a.pose_pelvis, "femur": a.pose_femur},
            a.out,
            f"{a.subject} {a.image}: registration (target side {a.side})",
        )
        return 0
    ct_montage(
        a.density,
        a.calibration,
        a.labels,
        a.segmentation,
        a.landmarks,
        a.ct_bmd,
        a.region,
        a.drr,
        a.subject,
        a.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
