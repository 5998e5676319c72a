"""The femoral heads: where they are and where their joint space lies.

The head is the most spherical thing in a hip CT, so it is found by a gradient Hough
transform: every strong edge votes for the points 16-34 mm along its gradient (towards
the denser side), and the outer surface of a femoral head, whose gradients all point
at its centre, piles its votes there. The acetabulum's concave surface votes away from
the centre and a shaft or vertebral body spreads its votes along a line, so on each
side of the midline the strongest pile is the head. A pile is accepted as a head only if
the edges that voted for it cover a good part of the sphere's directions, and most of
them when no joint space is seen around it.

The joint space is then read off the radial density profile (median over the cone the
acetabulum covers: medial and up): from the head's cortex outwards the first clear dip
before the acetabulum's cortex. The ball inside that radius is femur and the shell just
outside it, in that cone, is hip bone, so the watershed that separates the bones only
has to place the joint's last millimetre or two. This works whatever the joint width,
as long as the dip is there; without it the head's Hough radius stands in and a warning
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from segmentation.space import VoxelSpace

HEAD_RADII_MM = np.arange(16.0, 34.1, 2.0)  # adult femoral heads are 18-30 mm in radius
EDGE_MG_CM3_PER_MM = 60.0  # bone edges: hundreds of mg/cm³ over a millimetre or two
EDGE_MIN_MG_CM3 = 100.0  # the edge's voxel must be denser than soft tissue
LATERAL_RANGE_MM = (35.0, 160.0)  # head centres from the midline; 75-110 in adults
MIN_COVERAGE = 0.3  # fraction of a sphere's directions its surface edges must cover
MIN_COVERAGE_WITHOUT_JOINT = 0.65
COVERED_CONE_DEG = 50.0  # the acetabulum covers the head medially and from above


@dataclass
class FemoralHead:
    side: str  # the patient's side, 'L' or 'R'
    centre_mm: np.ndarray  # LPS
    radius_mm: float  # the outer surface, from the votes
    joint_radius_mm: float  # centre to the middle of the joint space
    joint_found: bool  # False: no dip in the profile, joint_radius_mm is a guess
    coverage: float

    def to_dict(self) -> dict:
        return {
            "centre_mm": [round(float(v), 2) for v in self.centre_mm],
            "joint_radius_mm": round(self.joint_radius_mm, 2),
            "joint_space_found": self.joint_found,
            "surface_coverage": round(self.coverage, 2),
        }


def covered_direction(sign: float) -> np.ndarray:
    """Unit vector from a head's centre into its acetabular roof (medial, a little
    posterior, and up); ``sign`` is +1 for the left side (+x), -1 for the right."""
    v = np.array([-sign, 0.3, 1.0])
    return v / np.linalg.norm(v)


def edges(density: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strong bone edges: their numpy indices and unit gradient vectors (numpy axes, mm),
    from the density smoothed over 1 mm."""
    smooth = ndimage.gaussian_filter(density, 1.0 / spacing)
    grad = [ndimage.sobel(smooth, axis=a) / (8 * spacing[a]) for a in range(3)]
    # The components kept apart (no stacked copy of the box); summed in the order a
    # reduction over a stacked axis would, so the magnitudes are the same to the bit.
    magnitude = np.sqrt(grad[0] ** 2 + grad[1] ** 2 + grad[2] ** 2)
    strong = (magnitude > EDGE_MG_CM3_PER_MM) & (smooth > EDGE_MIN_MG_CM3)
    unit = np.stack([g[strong] for g in grad], axis=1) / magnitude[strong][:, None]
    return np.argwhere(strong), unit


def sphere_votes(shape, spacing: np.ndarray, index: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Hough accumulator of sphere centres: each edge votes at every head radius along its
    gradient; smoothed over 2 mm."""
    votes = np.zeros(shape, np.float32)
    for r in HEAD_RADII_MM:
        centre = np.round(index + r * unit / spacing).astype(int)
        inside = np.all((centre >= 0) & (centre < shape), axis=1)
        np.add.at(votes, tuple(centre[inside].T), 1.0)
    return ndimage.gaussian_filter(votes, 2.0 / spacing)


def find_femoral_heads(
    density: np.ndarray, space: VoxelSpace, x_mid: float
) -> tuple[dict[str, FemoralHead], list[str]]:
    """The femoral heads found on each side of the midplane x = ``x_mid`` (LPS mm), and
    warnings for what could not be found."""
    index, unit = edges(density, space.spacing)
    votes = sphere_votes(density.shape, space.spacing, index, unit)
    edge_mm = space.points(index)
    edge_dir = space.vectors(unit)
    candidates = np.argwhere(votes > 0)
    candidate_mm = space.points(candidates)
    strength = votes[votes > 0]
    heads, warnings = {}, []
    for side, sign in (("L", 1.0), ("R", -1.0)):
        lateral = sign * (candidate_mm[:, 0] - x_mid)
        ok = (lateral > LATERAL_RANGE_MM[0]) & (lateral < LATERAL_RANGE_MM[1])
        name = "femur_left" if side == "L" else "femur_right"
        if not ok.any():
            warnings.append(f"{name}: no femoral head found in the field of view")
            continue
        centre = candidate_mm[np.flatnonzero(ok)[np.argmax(strength[ok])]]
        radius, coverage = _surface(centre, edge_mm, edge_dir)
        if coverage < MIN_COVERAGE:
            warnings.append(
                f"{name}: no femoral head found in the field of view (best sphere covers "
                f"{coverage:.0%} of its surface)"
            )
            continue
        joint = joint_radius(density, space, centre, sign)
        if joint is None and coverage < MIN_COVERAGE_WITHOUT_JOINT:
            # Round bits of ilium or sacrum pile votes too; without a joint space around
            # them only a nearly whole sphere passes for a head.
            warnings.append(
                f"{name}: no femoral head found in the field of view (best sphere covers "
                f"{coverage:.0%} of its surface and has no joint space around it)"
            )
            continue
        if joint is None:
            warnings.append(
                f"{name}: no joint space seen around the femoral head; the femur-hip "
                "boundary there is a guess"
            )
        heads[side] = FemoralHead(
            side,
            centre,
            radius,
            radius + 1.5 if joint is None else joint,
            joint is not None,
            coverage,
        )
    return heads, warnings


def _surface(centre: np.ndarray, edge_mm: np.ndarray, edge_dir: np.ndarray) -> tuple[float, float]:
    """The radius most inward-pointing edges lie at, and the fraction of directions from
    the centre those edges cover (equal-area bins: 8 in cos θ by 16 in φ)."""
    d = edge_mm - centre
    dist = np.linalg.norm(d, axis=1)
    towards = np.einsum("ij,ij->i", -d, edge_dir) > 0.9 * dist
    near = towards & (dist > HEAD_RADII_MM[0] - 2) & (dist < HEAD_RADII_MM[-1] + 2)
    if not near.any():
        return float(HEAD_RADII_MM.mean()), 0.0
    counts, bin_edges = np.histogram(dist[near], bins=np.arange(14.0, 37.0, 1.0))
    # The head's own surface is the innermost strong shell of inward edges; the
    # acetabulum's cortices lie outside it.
    strong = np.flatnonzero(counts >= 0.5 * counts.max())
    radius = float(bin_edges[strong[0]] + 0.5)
    shell = near & (np.abs(dist - radius) <= 3.0)
    u = d[shell] / dist[shell, None]
    cos_bin = np.clip(((u[:, 2] + 1) / 2 * 8).astype(int), 0, 7)
    phi = np.arctan2(u[:, 1], u[:, 0])
    phi_bin = np.clip(((phi + np.pi) / (2 * np.pi) * 16).astype(int), 0, 15)
    return radius, len(set(zip(cos_bin.tolist(), phi_bin.tolist(), strict=True))) / 128.0


def joint_radius(density: np.ndarray, space: VoxelSpace, centre: np.ndarray, sign: float):
    """Distance (mm) from the head's centre to the middle of its joint space: the first
    clear dip of the radial density profile in the covered cone; None without one."""
    c = np.round(space.index(centre)).astype(int)
    half = np.ceil(40.0 / space.spacing).astype(int)
    lo = np.maximum(c - half, 0)
    hi = np.minimum(c + half + 1, density.shape)
    box = density[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    d = space.box(lo).points(np.argwhere(np.ones(box.shape, bool))) - centre
    dist = np.linalg.norm(d, axis=1)
    cone = (d @ covered_direction(sign)) >= np.cos(np.deg2rad(COVERED_CONE_DEG)) * dist
    sel = cone & (dist < 40.0)
    bins = np.arange(8.0, 40.5, 1.0)
    which = np.digitize(dist[sel], bins)
    values = box.ravel()[sel]
    profile = np.full(len(bins) - 1, np.nan)
    for i in range(1, len(bins)):
        v = values[which == i]
        if v.size > 3:
            profile[i - 1] = np.median(v)
    radius = bins[:-1] + 0.5
    for i in np.flatnonzero(radius >= 15.0):
        here = profile[i]
        if not np.isfinite(here) or here > np.nanmin(profile[max(0, i - 1) : i + 2]):
            continue  # not a local minimum
        inner, outer = profile[max(0, i - 8) : i], profile[i + 1 : i + 7]
        if not (np.isfinite(inner).any() and np.isfinite(outer).any()):
            continue
        # A dip between the head's cortex and the acetabulum's, clearly deeper than the
        # flicker of marrow (or of a screw in it): at least 60 mg/cm³ and a quarter of
        # the inner peak when darker than the head's marrow, half the peak otherwise.
        inner_peak = np.nanmax(inner)
        depth = min(inner_peak, np.nanmax(outer)) - here
        marrow = np.nanmedian(profile[: max(1, i - 3)])
        needed = 0.25 if here < 0.8 * marrow else 0.5
        if depth >= max(60.0, needed * inner_peak):
            return float(radius[i])
    return None
