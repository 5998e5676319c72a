"""Did a registration succeed? Three signs, one status.

- ``gc``: the final gradient correlation. A DRR that matches nothing scores near zero.
- ``gc_margin``: how far GC falls when the body is moved 5 mm across the image (mean of
  four moves, at the finest level). A true match is a sharp peak; a pose that lines up
  with nothing sits on a plateau.
- ``level_shift_mm``: how far the body's points moved (mean projection distance) from the
  second-finest level's answer to the final one. A search that was still travelling at the
  end had not settled near a clear optimum.

- ``visible_fraction``: the share of the body's projected attenuation (its bone over
  soft tissue, for the hip's bodies; all of it for a whole CT) that lands on the
  detector. What a radiograph can show of the body,
  whatever the CT's extent: a CT that reaches the chest, registered right to a hip
  radiograph, shows its pelvis and femurs; registered off the film, nothing.

``status`` is ``failed`` when GC is below ``gc_failed`` or less than ``visible_min`` of
the body's projected bone lands on the image; ``suspect`` when GC is below ``gc_ok``, the
margin below ``margin_ok`` or the levels disagree by more than ``level_shift_mm``; else
``ok``. ``reasons`` says why.
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
    # Below this share of its projected bone on the detector, a body is not on the image.
    visible_min: float = 0.10


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


# Enough voxels to weigh the projected bone to a percent, few enough to stay cheap.
VISIBLE_SAMPLE = 20_000


def visible_fraction(volume: Volume, pose: np.ndarray, geometry) -> float:
    """The share of ``volume``'s attenuation (all channels, weighted by value) whose voxel
    centres project inside the detector at ``pose`` (in front of the source): the part
    of the body the radiograph shows. 0 for an empty body."""
    weight = volume.data.sum(axis=0)
    idx = np.flatnonzero(weight > 0)
    if idx.size == 0:
        return 0.0
    if idx.size > VISIBLE_SAMPLE:  # an even subsample, the same every time
        idx = idx[np.linspace(0, idx.size - 1, VISIBLE_SAMPLE).astype(int)]
    zyx = np.stack(np.unravel_index(idx, weight.shape), axis=1)
    camera = transform_points(pose @ volume.ct_from_index, zyx[:, ::-1].astype(float))
    w = weight.ravel()[idx].astype(np.float64)
    in_front = camera[:, 2] > 0
    rc = np.full((len(camera), 2), -1.0)
    rc[in_front] = geometry.camera_to_pixel(camera[in_front])
    inside = (
        in_front
        & (rc[:, 0] >= -0.5) & (rc[:, 0] < geometry.rows - 0.5)
        & (rc[:, 1] >= -0.5) & (rc[:, 1] < geometry.cols - 0.5)
    )  # fmt: skip
    return float(w[inside].sum() / w.sum())


def assess(
    result: Result, scene: Scene, points_ct: np.ndarray, centre_ct: np.ndarray, t: Thresholds
) -> dict:
    pose = result.camera_from_ct
    margin = gc_margin(scene, pose, centre_ct)
    # The last two levels: a coarse level's answer is allowed its own bias.
    first = np.array(result.levels[-2]["camera_from_ct"]) if len(result.levels) > 1 else pose
    shift = mean_projection_distance(points_ct, first, pose, scene.geometry)
    reasons = []
    visible = visible_fraction(scene.volume, pose, scene.geometry)
    if visible < t.visible_min:
        reasons.append(
            f"{visible:.0%} of the body's projection lands on the image (< {t.visible_min:.0%})"
        )
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
        "visible_fraction": round(visible, 3),
        "level_shift_mm": round(shift, 3),
    }
