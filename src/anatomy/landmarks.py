"""Femoral landmarks from a femur label: head centre, neck axis, head-neck junction,
shaft axis, lesser and greater trochanter (LPS mm).

- Head: a least-squares sphere fitted to the femur's surface around its thickest point
  (the head is the thickest part of the proximal femur), leaving out the cone where the
  neck leaves it; the surface points are the centres of the faces between femur and
  non-femur voxels, so anisotropic voxels bias nothing.
- Neck axis: through the head centre and the centroid of the neck's narrowest cross-
  section, the clinical definition; the head-neck junction lies where a neck of that
  radius meets the head sphere.
- Shaft axis: a line through the centroids of the femur's axial sections more than
  ``SHAFT_BELOW_HEAD_MM`` below the head centre (below the trochanters).
- Lesser trochanter: going up the shaft, the first prominent peak of how far the femur
  reaches posteromedially from the shaft axis (the bump the iliopsoas pulls on).
- Greater trochanter: the most superior femur point lateral to the shaft.

A femur cut by the field of view (head or shaft missing) raises :class:`InputError`.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.ct import voxel_to_physical_matrix
from conventions.errors import InputError
from conventions.hip_regions import FemurLandmarks, voxel_points
from conventions.labels import SIDE_SIGN, femur_label

SHAFT_BELOW_HEAD_MM = 85.0  # below the lesser trochanter in adults (~50-75 mm)
MIN_SHAFT_LENGTH_MM = 15.0
HEAD_SEARCH_RADIUS_FACTOR = 1.3
HEAD_SEARCH_MM = 40.0  # from the femur's most medial point: a femoral head's breadth
NECK_EXCLUSION_DEG = 60.0  # the neck leaves the head within ~45° of its axis
LT_MIN_PROMINENCE_MM = 2.0


EXPERT_POINT_NAMES = (
    "head_center",
    "head_neck_junction",
    "lesser_trochanter",
    "greater_trochanter",
    "shaft_proximal",
    "shaft_distal",
)
MAX_EXPERT_DISTANCE_MM = 15.0  # from the femur: further is a wrong file


def with_expert_points(
    lm: FemurLandmarks, points: dict[str, np.ndarray], femur_points: np.ndarray, path, subject
) -> tuple[FemurLandmarks, list[str]]:
    """``lm`` with the points an expert placed (``<name>_<side>`` of
    :data:`EXPERT_POINT_NAMES`, LPS mm) put in, and the axes they imply recomputed.
    Returns the landmarks and the names used. A point far from this femur is an error:
    the usual cause is a file in RAS marked as LPS, or another patient's file."""
    side = lm.side
    given = {
        n: np.asarray(points[f"{n}_{side}"], float)
        for n in EXPERT_POINT_NAMES
        if f"{n}_{side}" in points
    }
    for n, p in given.items():
        d = float(np.min(np.linalg.norm(femur_points - p, axis=1)))
        if d > MAX_EXPERT_DISTANCE_MM:
            flipped = p * np.array([-1.0, -1.0, 1.0])
            hint = ""
            if np.min(np.linalg.norm(femur_points - flipped, axis=1)) <= MAX_EXPERT_DISTANCE_MM:
                hint = " (it would fit in the other of RAS/LPS: check the file's coordinate system)"
            raise InputError(
                path,
                f"landmark {n}_{side} lies {d:.0f} mm from the "
                f"{'left' if side == 'L' else 'right'} femur{hint}",
                subject,
            )
    out = FemurLandmarks(**lm.__dict__)
    if "head_center" in given:
        out.head_center = given["head_center"]
    if "head_neck_junction" in given:
        out.head_neck_junction = given["head_neck_junction"]
    if "head_center" in given or "head_neck_junction" in given:
        out.neck_axis = _unit(out.head_center - out.head_neck_junction)
    for n in ("lesser_trochanter", "greater_trochanter"):
        if n in given:
            setattr(out, n, given[n])
    if "shaft_proximal" in given and "shaft_distal" in given:
        out.shaft_point = given["shaft_distal"]
        out.shaft_axis = _unit(given["shaft_proximal"] - given["shaft_distal"])
    return out, sorted(given)


def boundary_points(mask: np.ndarray, image: sitk.Image) -> np.ndarray:
    """LPS centres of the faces between mask and non-mask voxels, (N, 3)."""
    m = voxel_to_physical_matrix(image)
    out = []
    for axis in range(3):  # array axes (z, y, x)
        change = np.diff(mask.astype(np.int8), axis=axis) != 0
        idx = np.argwhere(change).astype(np.float64)
        idx[:, axis] += 0.5
        out.append(idx[:, ::-1])  # → (x, y, z) index order
    ijk = np.concatenate(out)
    return ijk @ m[:3, :3].T + m[:3, 3]


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere (centre, radius, rms distance residual) through ``points``:
    the algebraic fit |p|² = 2 c·p + (r² − |c|²), linear in its unknowns."""
    p = np.asarray(points, float)
    a = np.column_stack([2 * p, np.ones(len(p))])
    b = (p**2).sum(axis=1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    c = sol[:3]
    r = float(np.sqrt(sol[3] + c @ c))
    rms = float(np.sqrt(np.mean((np.linalg.norm(p - c, axis=1) - r) ** 2)))
    return c, r, rms


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _cross_section(points: np.ndarray, origin, direction, t, half_width, max_radius):
    """Femur voxels in the slab |(p − origin)·d − t| ≤ half_width within ``max_radius``
    of the axis: (count, centroid)."""
    rel = points - origin
    along = rel @ direction
    radial = np.linalg.norm(rel - np.outer(along, direction), axis=1)
    sel = (np.abs(along - t) <= half_width) & (radial <= max_radius)
    if not sel.any():
        return 0, None
    return int(sel.sum()), points[sel].mean(axis=0)


def _in_lps_order(mask: np.ndarray, image: sitk.Image) -> tuple[np.ndarray, sitk.Image]:
    """The mask and its grid with the axes permuted and flipped to LPS order."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.CopyInformation(image)
    img = sitk.DICOMOrient(img, "LPS")
    return sitk.GetArrayFromImage(img).astype(bool), img


def depth_inside(mask: np.ndarray, spacing_zyx) -> np.ndarray:
    """Each mask voxel's distance (mm) to the nearest voxel outside it: scipy's exact
    Euclidean distance transform, run on the mask's bounding box grown by one voxel
    (every voxel of that margin lies outside the mask, and nothing beyond it is nearer),
    so the same distances for a fraction of the CT's volume."""
    depth = np.zeros(mask.shape)
    if not mask.any():
        return depth
    box = tuple(
        slice(max(int(i.min()) - 1, 0), int(i.max()) + 2)
        for i in (np.nonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != k)))[0]
                  for k in range(mask.ndim))
    )  # fmt: skip
    depth[box] = ndimage.distance_transform_edt(mask[box], sampling=spacing_zyx)
    return depth


def femoral_head(
    femur: np.ndarray, image: sitk.Image, side: str, voxels=None, subject=None, path=None
) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Sphere fit to a femoral head: centre (LPS mm), radius, rms residual, and the unit
    direction from the head toward the neck. ``femur`` is the femur's mask on ``image``'s
    grid in LPS order (see ``femur_landmarks``); ``voxels`` its voxel points if already
    computed. Works on a femur cut below the trochanters: only head and neck are used."""
    s = SIDE_SIGN[side]
    name = f"{'left' if side == 'L' else 'right'} femur"
    spacing = np.array(image.GetSpacing())  # (x, y, z)
    m = voxel_to_physical_matrix(image)
    # Thickest point, then a sphere fit to the surface around it.
    depth = depth_inside(femur, spacing[::-1])
    zs = np.nonzero(femur.any(axis=(1, 2)))[0]
    upper = np.zeros_like(femur)
    upper[(zs[0] + zs[-1]) // 2 :] = True  # the head is in the femur's upper half
    # ... and it is the femur's most medial part: look for its centre within a head's
    # breadth of the most medial femur voxel, not at the trochanters (a crack in a
    # segmented head can make them deeper).
    medial_x = -s * (np.arange(femur.shape[2]) * m[0, 0] + m[0, 3])  # larger = more medial
    cols = np.nonzero((femur & upper).any(axis=(0, 1)))[0]
    most_medial = cols[np.argmax(medial_x[cols])]
    near_medial = np.abs(np.arange(femur.shape[2]) - most_medial) * spacing[0] <= HEAD_SEARCH_MM
    upper &= near_medial[None, None, :]
    k = np.unravel_index(np.argmax(np.where(upper, depth, 0)), femur.shape)
    c0 = (np.array(k[::-1], float) @ m[:3, :3].T) + m[:3, 3]
    r0 = float(depth[k])
    if femur[-1].any() and femur[-1].sum() * spacing[0] * spacing[1] > 0.2 * np.pi * r0**2:
        raise InputError(
            path,
            f"the field of view cuts the {name}'s head (the femur reaches the top slice); "
            "the CT must cover the whole femoral head",
            subject,
        )
    if voxels is None:
        voxels = voxel_points(femur, image)
    surface = boundary_points(femur, image)
    centre, radius = c0, r0 * 1.1
    neck_dir = None
    for _ in range(4):
        dist = np.linalg.norm(voxels - centre, axis=1)
        shell = voxels[(dist > 1.15 * radius) & (dist < 2.0 * radius)]
        if len(shell) == 0:
            raise InputError(path, f"the {name} has no neck beside its head", subject)
        neck_dir = _unit(shell.mean(axis=0) - centre)  # from the head toward the neck
        rel = surface - centre
        d = np.linalg.norm(rel, axis=1)
        cos = (rel @ neck_dir) / np.maximum(d, 1e-9)
        sel = (d < HEAD_SEARCH_RADIUS_FACTOR * radius) & (
            cos < np.cos(np.deg2rad(NECK_EXCLUSION_DEG))
        )
        sel &= np.abs(d - radius) < max(3.0, 0.25 * radius)
        if sel.sum() < 30:
            raise InputError(path, f"too little of the {name}'s head surface to fit", subject)
        centre, radius, rms = fit_sphere(surface[sel])
    return centre, radius, rms, neck_dir


def femur_landmarks(labels: np.ndarray, image: sitk.Image, side: str, subject=None, path=None):
    """Landmarks of the femur on ``side`` of a label image (array (z, y, x) on ``image``'s
    grid). ``subject`` and ``path`` name the input in errors."""
    s = SIDE_SIGN[side]
    femur = labels == femur_label(side)
    name = f"{'left' if side == 'L' else 'right'} femur"
    if femur.sum() < 100:
        raise InputError(path, f"no {name} in the label image", subject)
    # Work on the grid turned to LPS order (x left, y posterior, z superior): slices are
    # then axial and go up with z whatever order the CT stored its axes in.
    femur, image = _in_lps_order(femur, image)
    spacing = np.array(image.GetSpacing())  # (x, y, z)
    voxel_volume = float(np.prod(spacing))
    m = voxel_to_physical_matrix(image)
    if not np.allclose(m[:3, :3] / spacing, np.eye(3), atol=1e-3):
        raise InputError(
            path, "landmarks need a CT with axis-aligned (not oblique) voxels", subject
        )

    voxels = voxel_points(femur, image)
    centre, radius, rms, neck_dir = femoral_head(femur, image, side, voxels, subject, path)

    # --- neck: narrowest cross-section perpendicular to the axis --------------------
    half = 0.5 * float(spacing.max())
    for _ in range(2):
        ts = np.arange(0.5 * radius, radius + 30.0, 1.0)
        sections = [_cross_section(voxels, centre, neck_dir, t, half, 1.1 * radius) for t in ts]
        counts = np.array([n for n, _ in sections], float)
        valid = counts > 0
        if not valid.any():
            raise InputError(path, f"the {name}'s neck was not found", subject)
        i = int(np.argmin(np.where(valid, counts, np.inf)))
        neck_dir = _unit(sections[i][1] - centre)
    area = counts[i] * voxel_volume / (2 * half)
    neck_radius = float(np.sqrt(area / np.pi))
    neck_axis = -neck_dir  # toward the head
    t_junction = float(np.sqrt(max(radius**2 - neck_radius**2, 0.0)))
    junction = centre - t_junction * neck_axis
    up = np.array([0.0, 0.0, 1.0])
    e_sup = _unit(up - (up @ neck_axis) * neck_axis)

    # --- shaft axis: centroids of the axial sections well below the head ------------
    zs = np.nonzero(femur.any(axis=(1, 2)))[0]
    z_world = m[2, 2] * np.arange(femur.shape[0]) + m[2, 3]
    shaft_slices = np.nonzero((z_world < centre[2] - SHAFT_BELOW_HEAD_MM) & femur.any(axis=(1, 2)))[
        0
    ]
    if len(shaft_slices) * spacing[2] < MIN_SHAFT_LENGTH_MM:
        raise InputError(
            path,
            f"the field of view ends {centre[2] - z_world[zs[0]]:.0f} mm below the {name}'s "
            f"head centre; the shaft axis and the proximal-femur region need the femur down "
            f"to at least {SHAFT_BELOW_HEAD_MM + MIN_SHAFT_LENGTH_MM:.0f} mm below it",
            subject,
        )
    cents = []
    for kz in shaft_slices:
        comps, n = ndimage.label(femur[kz])
        if n > 1:  # keep the shaft's section, not a stray island
            sizes = ndimage.sum(np.ones_like(comps), comps, range(1, n + 1))
            sl = comps == 1 + int(np.argmax(sizes))
        else:
            sl = comps == 1
        yx = np.argwhere(sl).mean(axis=0)
        cents.append(np.array([yx[1], yx[0], kz], float) @ m[:3, :3].T + m[:3, 3])
    cents = np.array(cents)
    shaft_point = cents.mean(axis=0)
    _, _, vt = np.linalg.svd(cents - shaft_point)
    shaft_axis = vt[0] if vt[0][2] > 0 else -vt[0]

    # --- lesser trochanter: first posteromedial peak above the shaft ----------------
    posteromedial = _unit([-s, 1.0, 0.0])
    levels, reach, tips = [], [], []
    neck_low = junction[2] - radius  # below the neck's lowest reach of the head
    # ``voxels`` run slice by slice (argwhere's order): each slice is one contiguous run.
    slice_start = np.searchsorted(voxels[:, 2], z_world - 0.5 * spacing[2])
    slice_end = np.searchsorted(voxels[:, 2], z_world + 0.5 * spacing[2])
    for kz in np.nonzero(femur.any(axis=(1, 2)))[0]:
        z = z_world[kz]
        if not (centre[2] - SHAFT_BELOW_HEAD_MM - 20 <= z <= neck_low):
            continue
        pts = voxels[slice_start[kz] : slice_end[kz]]
        axis_pt = shaft_point + shaft_axis * ((z - shaft_point[2]) / shaft_axis[2])
        proj = (pts - axis_pt) @ posteromedial
        j = int(np.argmax(proj))
        levels.append(z)
        reach.append(proj[j])
        tips.append(pts[j])
    if len(reach) < 5:
        raise InputError(
            path, f"the {name}'s lesser trochanter is out of the field of view", subject
        )
    reach = np.array(reach)
    from scipy.signal import find_peaks  # scipy.signal costs 0.3 s to import: only here

    peaks, _ = find_peaks(reach, prominence=LT_MIN_PROMINENCE_MM)
    if len(peaks) == 0:
        raise InputError(path, f"the {name}'s lesser trochanter was not found", subject)
    i = int(peaks[0])  # the first peak going up from the shaft
    lesser = np.array(tips[i], float)
    if 0 < i < len(reach) - 1:  # the peak's level between slices, by a parabola
        curvature = reach[i - 1] - 2 * reach[i] + reach[i + 1]
        if curvature < 0:
            offset = 0.5 * (reach[i - 1] - reach[i + 1]) / curvature
            lesser[2] += float(np.clip(offset, -0.5, 0.5)) * (levels[i + 1] - levels[i])

    # --- greater trochanter: the highest point lateral to the shaft -----------------
    lateral = (voxels - shaft_point) @ np.array([s, 0.0, 0.0])
    top_lateral = voxels[lateral > 0.0]
    greater = top_lateral[int(np.argmax(top_lateral[:, 2]))]

    return FemurLandmarks(
        side=side,
        head_center=centre,
        head_radius_mm=float(radius),
        head_fit_rms_mm=float(rms),
        neck_axis=neck_axis,
        neck_radius_mm=neck_radius,
        head_neck_junction=junction,
        head_neck_junction_superior=junction + neck_radius * e_sup,
        head_neck_junction_inferior=junction - neck_radius * e_sup,
        shaft_point=shaft_point,
        shaft_axis=shaft_axis,
        lesser_trochanter=np.asarray(lesser, float),
        greater_trochanter=np.asarray(greater, float),
    )
