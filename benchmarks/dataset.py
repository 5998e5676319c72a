# ruff: noqa: E402  (imports follow the sys.path fix below)
"""The PF-DRR mean against the synthetic cohort's true areal BMD, at the true and at the
registered poses (issue 7: within 2 % and 3 %), with the seconds per projection.

    python benchmarks/dataset.py [--results results]

Run after the demo (`snakemake --cores all`): it reads the workflow's density, labels,
PF mineral and pairs, and renders the PF-DRR again at each radiograph's true poses (the
phantom's truth) to separate what registration costs from what the projection does.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import json
import time

import numpy as np
import SimpleITK as sitk

from conventions.geometry import read_geometry
from dataset.project import decomposition_drrs, pf_drr_mean, touches_border


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    a = ap.parse_args()
    root = Path(a.results)
    print("subject image      true_aBMD  at_true  err%   at_reg  err%  status     cut  s")
    rows = []
    for truth_path in sorted((root / "synthetic").glob("S*/truth/truth.json")):
        truth = json.loads(truth_path.read_text())
        s, side = truth["subject_id"], truth["target_side"]
        ct = root / "subjects" / s / "ct"
        if not (ct / "pf_mineral_mg_cm3.nii.gz").is_file():
            continue
        density = sitk.ReadImage(str(ct / "density_mg_cm3.nii.gz"), sitk.sitkFloat32)
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(ct / "labels.nii.gz")))
        region = sitk.GetArrayFromImage(sitk.ReadImage(str(ct / "pf_region.nii.gz"))) > 0
        mineral = sitk.GetArrayFromImage(sitk.ReadImage(str(ct / "pf_mineral_mg_cm3.nii.gz")))
        for image in truth["radiographs"]:
            record_path = root / "subjects" / s / "dataset" / image / "pair.json"
            if not record_path.is_file():
                continue
            record = json.loads(record_path.read_text())
            view = json.loads((truth_path.parent / "radiographs" / f"{image}.json").read_text())
            geometry = read_geometry(
                root / "subjects" / s / "radiographs" / image / "geometry.json"
            )
            poses = view["camera_from_ct"]
            femur = np.array(poses["femur_left" if side == "L" else "femur_right"])
            t0 = time.perf_counter()
            drrs = decomposition_drrs(
                density, labels, mineral, region, side, geometry, np.array(poses["pelvis"]), femur
            )
            seconds = time.perf_counter() - t0
            at_true = pf_drr_mean(drrs["pf_drr_g_cm2"], drrs["pf_silhouette"])
            cut = touches_border(drrs["pf_silhouette"]) or record["pf_cut"]["by_radiograph_edge"]
            row = {
                "truth": truth["areal_bmd_g_cm2"],
                "true": at_true,
                "reg": record["pf_drr_mean_g_cm2"],
                "status": record["registration"]["femur"]["status"],
                "cut": cut,
            }
            rows.append(row)
            e_true = 100 * (at_true / row["truth"] - 1)
            e_reg = 100 * (row["reg"] / row["truth"] - 1)
            print(
                f"{s:7s} {image:10s} {row['truth']:.4f}    {at_true:.4f} {e_true:+5.1f}  "
                f"{row['reg']:.4f} {e_reg:+5.1f}  {row['status']:9s} {'yes' if cut else 'no':4s}"
                f" {seconds:.1f}",
                flush=True,
            )
    usable = [r for r in rows if not r["cut"]]
    for key, limit in (("true", 2.0), ("reg", 3.0)):
        err = np.array([100 * abs(r[key] / r["truth"] - 1) for r in usable])
        if len(err):
            pose = "true" if key == "true" else "registered"
            print(
                f"at the {pose} pose: {np.mean(err < limit):.0%} "
                f"of {len(err)} uncut within {limit:.0f} %; |error| median {np.median(err):.2f} %, "
                f"max {err.max():.2f} %"
            )
    print(f"{len(rows) - len(usable)} of {len(rows)} radiographs cut the PF region at an edge")
    return 0


if __name__ == "__main__":
    sys.exit(main())
