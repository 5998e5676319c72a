"""Did a registration succeed? Three signs, one status.

- ``gc``: the final gradient correlation. A DRR that matches nothing scores near zero.
- ``gc_margin``: how far GC falls when the body is moved 5 mm across the image (mean of
  four moves, at the finest level). A true match is a sharp peak; a pose that lines up
  with nothing sits on a plateau.
- ``level_shift_mm``: how far the body's points moved (mean projection distance) from the
  second-finest level's answer to the final one. A search that was still travelling at the
  end had not settled near a clear optimum.

``status`` is ``failed`` when GC is below ``gc_failed`` or the body is not on the
image; ``suspect`` when GC is below ``gc_ok``, the margin below ``margin_ok`` or the
levels disagree by more than ``level_shift_mm``; else ``ok``. ``reasons`` says why.
Thresholds come from the workflow's config (``registration.status``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conventions.pose import transform_points
from drr.volume import Volume
from registration.rigid import Result, Scene, correction, mean_projection_distance

MARGIN_SHIFT_MM = 5.0


@dataclass
class Thresholds:
    gc_failed: float = 0.10
    gc_ok: float = 0.25
    margin_ok: float = 0.07
    level_shift_mm: float = 5.0
    # A femur seen only as its head (a sphere) and neck has no visible rotation about the
    # head: the CT must hold the femur down to below the lesser trochanter.
    femur_below_head_mm: float = 60.0


def body_points(volume: Volume) -> np.ndarray:
    """Eight corners of the body's box and its centre (LPS mm): where error is measured."""
    n = np.array(volume.shape_xyz, float) - 1.0
    corners = np.array([[x, y, z] for x in (0, n[0]) for y in (0, n[1]) for z in (0, n[2])])
    idx = np.vstack([corners, n / 2.0])
    return transform_points(volume.ct_from_index, idx)


def gc_margin(scene: Scene, pose: np.ndarray, centre_ct: np.ndarray) -> float:
    """GC at ``pose`` less the mean GC with the body moved ±5 mm along camera x and y."""
    centre = transform_points(pose, centre_ct)
    d = MARGIN_SHIFT_MM
    moves = [(d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d)]
    poses = [pose] + [correction(np.array([0, 0, 0, x, y, 0.0]), centre) @ pose for x, y in moves]
    gc = scene.gc(np.stack(poses))
    return float(gc[0] - gc[1:].mean())


def on_image(scene: Scene, pose: np.ndarray, centre_ct: np.ndarray) -> bool:
    """Whether the body's centre of rotation projects inside the detector."""
    q = transform_points(pose, centre_ct)
    if q[2] <= 0:
        return False
    r, c = scene.geometry.camera_to_pixel(q[None])[0]
    return 0 <= r < scene.geometry.rows and 0 <= c < scene.geometry.cols


def assess(
    result: Result, scene: Scene, points_ct: np.ndarray, centre_ct: np.ndarray, t: Thresholds
) -> dict:
    pose = result.camera_from_ct
    margin = gc_margin(scene, pose, centre_ct)
    # The last two levels: a coarse level's answer is allowed its own bias.
    first = np.array(result.levels[-2]["camera_from_ct"]) if len(result.levels) > 1 else pose
    shift = mean_projection_distance(points_ct, first, pose, scene.geometry)
    reasons = []
    if not on_image(scene, pose, centre_ct):
        reasons.append("the body's centre projects outside the image")
    if result.gc < t.gc_failed:
        reasons.append(f"GC {result.gc:.3f} < {t.gc_failed} (nothing lines up)")
    status = "failed" if reasons else "ok"
    if status == "ok":
        if result.gc < t.gc_ok:
            reasons.append(f"GC {result.gc:.3f} < {t.gc_ok}")
        if margin < t.margin_ok:
            reasons.append(f"GC margin {margin:.3f} < {t.margin_ok} (a flat optimum)")
        if shift > t.level_shift_mm:
            reasons.append(f"levels disagree by {shift:.1f} mm > {t.level_shift_mm} mm")
        status = "suspect" if reasons else "ok"
    return {
        "status": status,
        "reasons": reasons,
        "gc_margin": round(margin, 4),
        "level_shift_mm": round(shift, 3),
    }
