"""``python -m qc``: quality-control figures.

``ct``  the per-subject CT montage (calibration, labels, landmarks, PF region, CT BMD).
"""

from __future__ import annotations

import argparse
import sys

from qc.ct import ct_montage


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
    a = ap.parse_args(argv)
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
