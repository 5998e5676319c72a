"""``python -m qc``: quality-control figures.

``ct``            the per-subject CT montage (calibration, labels, landmarks, PF region,
                CT BMD).
``radiographs``  a subject's radiographs: each with the pelvis's and femur's DRR edges at
                their registered poses, GC and status; and its training pairs
                (radiograph, bone DRR, PF-DRR). One job per subject, the CT read once.
``dataset``       the dataset audit: PF-DRR mean against DXA/QCT-BMD, the summary page.
``training``      the models' training curves (loss terms per epoch, per fold and stage).
"""

from __future__ import annotations

import argparse
import sys

from conventions.errors import run_cli

# Each command imports its own figures' modules: a job pays only for what it draws.


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
    p = sub.add_parser("radiographs", help="a subject's registration overlays and pairs")
    for name in ("subject", "ct", "labels", "side", "out-registration", "out-pairs"):
        p.add_argument(f"--{name}", required=True)
    # One value per radiograph, in the same order in every list.
    for name in ("images", "xrays", "geometries", "poses-pelvis", "poses-femur", "records"):
        p.add_argument(f"--{name}", nargs="+", required=True)
    p = sub.add_parser("dataset", help="the dataset audit's figure, summary and checks")
    for name in ("dataset-a", "dataset-b", "excluded", "folds"):
        p.add_argument(f"--{name}", required=True)
    for name in ("out-scatter", "out-summary", "out-checks"):
        p.add_argument(f"--{name}", required=True)
    p = sub.add_parser("training", help="the models' training curves")
    p.add_argument("--histories", nargs="+", required=True)
    p.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    def command() -> int:
        if a.command == "training":
            from qc.training import training_curves

            training_curves(a.histories, a.out)
            return 0
        if a.command == "radiographs":
            lists = ("images", "xrays", "geometries", "poses_pelvis", "poses_femur", "records")
            lengths = {name: len(getattr(a, name)) for name in lists}
            if len(set(lengths.values())) != 1:
                ap.error(
                    f"subject {a.subject}: one value per radiograph in each list, got {lengths}"
                )
            radiographs = [
                {"image": i, "xray": x, "geometry": g, "pelvis": p, "femur": f}
                for i, x, g, p, f in zip(
                    a.images, a.xrays, a.geometries, a.poses_pelvis, a.poses_femur, strict=True
                )
            ]
            from qc.dataset import pairs_montage
            from qc.registration import registration_montage

            registration_montage(a.subject, a.side, a.ct, a.labels, radiographs, a.out_registration)
            pairs_montage(a.records, a.subject, a.out_pairs)
            return 0
        if a.command == "dataset":
            from qc.dataset import dataset_audit

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
        from qc.ct import ct_montage

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

    return run_cli(command, getattr(a, "subject", None))


if __name__ == "__main__":
    sys.exit(main())
