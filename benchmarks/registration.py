# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Registration of the synthetic cohort's radiographs, pelvis then target-side femur, from
the automatic start, against the true poses: success rate, errors, status and seconds.

    snakemake --cores all          # the demo cohort, once
    python benchmarks/registration.py [--results results] [--subjects S001 S002 …]
                                      [--sides target|both]

For every radiograph of each subject, :func:`registration.hip.register_hip` runs on the
workflow's own CT, labels and landmarks, exactly as the ``register`` rule does. Per
body: mean projection distance (mPD) and mean target registration error (mTRE) against
the true pose, on the femoral landmarks (head centre, head-neck junction, trochanters,
shaft point) of the target side for both bodies, plus the pelvic landmarks for the
pelvis. Success is mPD < 1 mm and mTRE < 3 mm (issue 6). Also reported: how well the
status separates successes from failures.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import json
import platform

import numpy as np
import SimpleITK as sitk
import torch

from conventions.hip_regions import POINT_NAMES as FEMORAL
from conventions.landmarks import read_landmarks
from conventions.radiograph import read_radiograph
from phantom.ids import target_side
from registration.bodies import hip_bodies
from registration.hip import register_hip
from registration.rigid import mean_projection_distance, target_registration_error

PELVIC = ("asis_L", "asis_R", "ischial_tuberosity_L", "ischial_tuberosity_R", "pubic_symphysis")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--subjects", nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=2023, help="the synthetic cohort's seed")
    ap.add_argument("--sides", choices=("target", "both"), default="target")
    ap.add_argument(
        "--device", default="cpu", help="cpu (numba), or cuda (the torch kernels on the GPU)"
    )
    a = ap.parse_args()
    root = Path(a.results)
    subjects = a.subjects or sorted(p.name for p in (root / "synthetic").glob("S*"))
    where = torch.cuda.get_device_name() if a.device == "cuda" else "CPU"
    cpu = platform.processor() or platform.machine()
    print(f"# {cpu}, {torch.get_num_threads()} threads, {where}")
    print("subject side image      body   init_mPD  mPD   mTRE   GC    margin status   s")
    rows = []
    for s in subjects:
        ct = sitk.ReadImage(str(root / "subjects" / s / "ct" / "ct_hu.nii.gz"), sitk.sitkFloat32)
        labels = sitk.GetArrayFromImage(
            sitk.ReadImage(str(root / "subjects" / s / "ct" / "labels.nii.gz"))
        )
        lm = read_landmarks(root / "subjects" / s / "ct" / "landmarks.json")
        heads = np.array([lm["head_center_L"], lm["head_center_R"]])
        truth = json.loads((root / "synthetic" / s / "truth" / "truth.json").read_text())
        tl = truth["landmarks_lps_mm"]
        sides = [target_side(a.seed, s)] if a.sides == "target" else ["L", "R"]
        for side in sides:
            bodies = hip_bodies(ct, labels, side)
            femoral = np.array([tl[f"{k}_{side}"] for k in FEMORAL])
            points = {"pelvis": np.vstack([femoral, [tl[k] for k in PELVIC]]), "femur": femoral}
            true_key = {"pelvis": "pelvis", "femur": "femur_left" if side == "L" else "femur_right"}
            for image in truth["radiographs"]:
                r = read_radiograph(root / "synthetic" / s / "radiographs" / f"{image}.dcm")
                view = json.loads(
                    (root / "synthetic" / s / "truth" / "radiographs" / f"{image}.json").read_text()
                )
                out = register_hip(
                    bodies,
                    r.pixels,
                    r.geometry,
                    lm[f"head_center_{side}"],
                    heads.mean(0),
                    side,
                    device=None if a.device == "cpu" else a.device,
                )
                for body, res in out.items():
                    true = np.array(view["camera_from_ct"][true_key[body]])
                    pose = res.result.camera_from_ct
                    row = {
                        "body": body,
                        "init": mean_projection_distance(
                            points[body], res.initial_camera_from_ct, true, r.geometry
                        ),
                        "mpd": mean_projection_distance(points[body], pose, true, r.geometry),
                        "mtre": target_registration_error(points[body], pose, true),
                        "gc": res.result.gc,
                        "margin": res.assessment["gc_margin"],
                        "status": res.assessment["status"],
                        "s": res.seconds,
                    }
                    rows.append(row)
                    print(
                        f"{s:8s} {side:4s} {image:10s} {body:6s} {row['init']:8.1f} "
                        f"{row['mpd']:5.2f} {row['mtre']:6.2f} {row['gc']:.3f} "
                        f"{row['margin']:6.3f} {row['status']:8s} {row['s']:5.1f}",
                        flush=True,
                    )
    for body in ("pelvis", "femur"):
        b = [r for r in rows if r["body"] == body]
        good = np.array([r["mpd"] < 1.0 and r["mtre"] < 3.0 for r in b])
        ok = np.array([r["status"] == "ok" for r in b])
        print(
            f"{body}: {good.mean():.0%} of {len(b)} within mPD < 1 mm and mTRE < 3 mm; median "
            f"mPD {np.median([r['mpd'] for r in b]):.2f} mm, mTRE "
            f"{np.median([r['mtre'] for r in b]):.2f} mm; {np.mean([r['s'] for r in b]):.1f} s; "
            f"status ok {ok.sum()}, of which wrong {(ok & ~good).sum()}; "
            f"not ok {(~ok).sum()}, of which right {(~ok & good).sum()}"
        )
    per_image = [rows[i]["s"] + rows[i + 1]["s"] for i in range(0, len(rows), 2)]
    print(f"both bodies: {np.mean(per_image):.1f} s per radiograph (max {np.max(per_image):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
