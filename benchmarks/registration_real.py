# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Registration of radiographs simulated from a real CT at known poses, pelvis then femur,
from the automatic start: success rate, errors, status and seconds (issue 6).

    python benchmarks/registration_real.py [--draws 3] [--sides both|R|L] [--seed 6]

The CT is TotalSegmentator's example (3 mm, HU; :mod:`cohort.example_data`), with its own
bone labels mapped onto ours. It ends ~3 cm below the femoral heads, so the landmarks
stage cannot run on it (no shaft): each head centre is the landmarks stage's own head
fit, :func:`anatomy.landmarks.femoral_head`, which needs only head and neck. Radiographs
are rendered as the synthetic cohort's are (:mod:`phantom.radiographs`: the pelvis with
the soft tissue and each femur as separate bodies, random pose, geometry and exposure
per pose label; polychromatic beam, scatter, noise, processing), ``--draws`` of each of
the four pose labels. Each femur turns about the fitted head centre, which registration
is given too.

Target points (LPS mm), all defined on the labels of this short CT:

- femur (of the side registered): head centre; greater trochanter tip (most superior
  femur point more than 1.5 head radii lateral to the head centre: beyond the neck); the
  femur's most lateral point (the trochanter's lateral face); the centroid of its lowest
  section (where the field of view cuts the proximal shaft).
- pelvis: the same femoral points (the head stays in the acetabulum), the other head's
  centre, and per hip bone its most superior (iliac crest), most lateral (iliac wing) and
  most anterior (anterior superior iliac spine) points.

An extreme point is the mean of the voxels within one voxel of the extreme, so a single
voxel does not decide it. Success is mPD < 1 mm and mTRE < 3 mm against the true pose.
Both sides can be registered; the left femur holds metal screws (the segmentation test
records them), so the right is the clean target.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import platform

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from anatomy.landmarks import femoral_head
from cohort.example_data import totalsegmentator_example_in_lps
from conventions.hip_regions import voxel_points
from conventions.labels import SIDE_SIGN, femur_label, hip_label
from phantom.radiographs import POSE_LABELS, Detector, draw_view, render_view, split_bodies
from registration.bodies import hip_bodies
from registration.hip import register_hip
from registration.rigid import mean_projection_distance, target_registration_error


def extreme(points: np.ndarray, direction, within_mm: float = 3.0) -> np.ndarray:
    """Mean of the points within ``within_mm`` of the furthest along ``direction``."""
    reach = points @ np.asarray(direction, float)
    return points[reach >= reach.max() - within_mm].mean(axis=0)


def target_points(
    labels: np.ndarray, ct: sitk.Image, heads: dict, radii: dict, side: str
) -> dict[str, np.ndarray]:
    """Femoral and pelvic target points (see the module's docstring), (N, 3) each."""
    s = SIDE_SIGN[side]
    femur = voxel_points(labels == femur_label(side), ct)
    lateral = s * (femur[:, 0] - heads[side][0]) > 1.5 * radii[side]  # beyond the neck
    lowest = femur[femur[:, 2] <= femur[:, 2].min() + 1e-3]
    femoral = np.array(
        [
            heads[side],
            extreme(femur[lateral], [0.0, 0.0, 1.0]),
            extreme(femur, [s, 0.0, 0.0]),
            lowest.mean(axis=0),
        ]
    )
    pelvic = [heads["R" if side == "L" else "L"]]
    for hip_side in ("L", "R"):
        hip = voxel_points(labels == hip_label(hip_side), ct)
        for direction in ([0.0, 0.0, 1.0], [SIDE_SIGN[hip_side], 0.0, 0.0], [0.0, -1.0, 0.0]):
            pelvic.append(extreme(hip, direction))
    return {"femur": femoral, "pelvis": np.vstack([femoral, pelvic])}


def soft_tissue_hu(hu: np.ndarray, labels: np.ndarray) -> float:
    """Median HU of the soft tissue just around the femurs (what fills the space a moved
    femur leaves); fat and bone are left out."""
    femurs = np.isin(labels, [femur_label("L"), femur_label("R")])
    shell = ndimage.binary_dilation(femurs, iterations=3) & ~ndimage.binary_dilation(femurs)
    values = hu[shell & (labels == 0)]
    return float(np.median(values[(values > -100) & (values < 200)]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=3, help="radiographs per pose label")
    ap.add_argument("--sides", choices=("both", "L", "R"), default="both")
    ap.add_argument("--seed", type=int, default=6)
    a = ap.parse_args()
    ct, labels = totalsegmentator_example_in_lps()
    hu = sitk.GetArrayFromImage(ct)
    fits = {side: femoral_head(labels == femur_label(side), ct, side)[:3] for side in ("L", "R")}
    heads = {side: f[0] for side, f in fits.items()}
    radii = {side: f[1] for side, f in fits.items()}
    midline = (heads["L"] + heads["R"]) / 2
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    for side, (c, r, rms) in fits.items():
        print(f"# head {side}: centre {np.round(c, 1).tolist()} mm, r {r:.1f} mm, rms {rms:.2f}")
    muscle = soft_tissue_hu(hu, labels)
    body, femurs = split_bodies(hu, labels, ct, muscle)
    rng = np.random.default_rng(a.seed)
    views = [
        (f"{label}{i + 1}", draw_view(label, rng, midline))
        for label in POSE_LABELS
        for i in range(a.draws)
    ]
    sides = ["L", "R"] if a.sides == "both" else [a.sides]
    bodies = {side: hip_bodies(ct, labels, side) for side in sides}
    points = {side: target_points(labels, ct, heads, radii, side) for side in sides}
    print(f"# soft tissue {muscle:.0f} HU; {len(views)} radiographs; sides {' '.join(sides)}")
    print("side image       body   init_mPD  mPD   mTRE   GC    margin status   s")
    rows = []
    for name, view in views:
        image, geometry, poses = render_view(body, femurs, heads, view, Detector(), rng)
        pixels = image["processed"].astype(np.float32)
        for side in sides:
            out = register_hip(bodies[side], pixels, geometry, heads[side], midline, side)
            true_key = {"pelvis": "pelvis", "femur": "femur_left" if side == "L" else "femur_right"}
            for b, res in out.items():
                true, pose, pts = poses[true_key[b]], res.result.camera_from_ct, points[side][b]
                row = {
                    "side": side,
                    "body": b,
                    "init": mean_projection_distance(
                        pts, res.initial_camera_from_ct, true, geometry
                    ),
                    "mpd": mean_projection_distance(pts, pose, true, geometry),
                    "mtre": target_registration_error(pts, pose, true),
                    "gc": res.result.gc,
                    "margin": res.assessment["gc_margin"],
                    "status": res.assessment["status"],
                    "s": res.seconds,
                }
                rows.append(row)
                print(
                    f"{side:4s} {name:11s} {b:6s} {row['init']:8.1f} {row['mpd']:5.2f} "
                    f"{row['mtre']:6.2f} {row['gc']:.3f} {row['margin']:6.3f} "
                    f"{row['status']:8s} {row['s']:5.1f}",
                    flush=True,
                )
    for side in sides:
        for body_name in ("pelvis", "femur"):
            b = [r for r in rows if r["body"] == body_name and r["side"] == side]
            good = np.array([r["mpd"] < 1.0 and r["mtre"] < 3.0 for r in b])
            ok = np.array([r["status"] == "ok" for r in b])
            print(
                f"{side} {body_name}: {good.mean():.0%} of {len(b)} within mPD < 1 mm and mTRE "
                f"< 3 mm; median mPD {np.median([r['mpd'] for r in b]):.2f} mm, mTRE "
                f"{np.median([r['mtre'] for r in b]):.2f} mm; {np.mean([r['s'] for r in b]):.1f} "
                f"s; status ok {ok.sum()}, of which wrong {(ok & ~good).sum()}; not ok "
                f"{(~ok).sum()}, of which right {(~ok & good).sum()}"
            )
    per_image = [rows[i]["s"] + rows[i + 1]["s"] for i in range(0, len(rows), 2)]
    print(f"both bodies: {np.mean(per_image):.1f} s per radiograph (max {np.max(per_image):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
