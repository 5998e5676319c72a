"""Phantom-less (internal) calibration from the subject's own tissue, as in QCT.

Without a phantom, a CT can still be calibrated against tissues every patient has:
subcutaneous and visceral fat, and skeletal muscle. Each reads a characteristic HU on a
given scanner and kVp, and each has an HA-equivalent density (what a phantom
calibration reads in it; ``calibration.internal`` in the config, to be set per site and
kVp). The line through the two references is the scanner's HU = intercept + slope·ρ.

Air outside the body is measured too, but only as a check that the CT is in HU at all
(air is −1000 HU by the scale's definition): its HA equivalent depends on the very slope
being estimated, so it cannot serve as a point on the line.

Each tissue is found without a region of interest, on the CT smoothed a little: inside
the body (the largest connected region above −500 HU, holes filled slice by slice),
away from bone (and the marrow it encloses) and gas, fat is the soft tissue below
−30 HU and muscle the soft tissue above. Each class is eroded 3 mm from its boundaries
(partial volume with air, bone and the other tissue) and keeps the voxels within a few
peak widths of its histogram mode, which leaves out other tissues of the class (the
bladder's water, whose peak lies apart from muscle's). A tissue's HU is the
interquartile mean of the raw voxels left.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from calibration.fit import fit_line
from conventions.errors import InputError
from conventions.units import HU_AIR

BODY_THRESHOLD_HU = -500.0  # tissue vs. air, half way between them
SMOOTHING_MM = 1.5  # Gaussian σ: brings the noise down so the tissue peaks separate
TISSUE_MARGIN_MM = 3.0  # from the class boundary: partial volume of the PSF and smoothing
BONE_THRESHOLD_HU = 150.0  # above any soft tissue; trabecular bone and cortex
BONE_MARGIN_MM = 3.0
GAS_MARGIN_MM = 3.0  # gas/tissue boundaries pass through fat's HU
# Each tissue's class (HU of the smoothed CT) and where its peak is looked for. Fat reads
# −150…−50 HU and muscle +10…+70 HU on clinical scanners: −30 HU parts them on any
# scanner in HU.
FAT_WINDOW_HU = (-250.0, -30.0)
MUSCLE_WINDOW_HU = (-30.0, 150.0)
PEAK_WIDTHS = 3.0  # voxels within 3 half-widths of the mode belong to the tissue
MIN_TISSUE_VOXELS = 500
MIN_CONFIDENT_CM3 = 10.0  # less than this of a tissue earns a warning
MIN_AIR_VOXELS = 1000
AIR_WARNING_HU = 30.0  # a calibrated scanner keeps air within a few tens of HU
AIR_TOLERANCE_HU = 150.0  # beyond this the volume is not in HU
# Clinical CT's HA slopes lie within about 0.5-2 HU per mg/cm³ (80-140 kVp).
SLOPE_RANGE_HU_PER_MG_CM3 = (0.4, 2.5)
FAT_MG_CM3, MUSCLE_MG_CM3 = -100.0, 40.0  # defaults; the config's calibration.internal
MAX_VOXELS = 40_000_000  # about 1.6 GB of working memory


def _ball(radius_mm: float, spacing_zyx) -> np.ndarray:
    """A boolean ellipsoid structuring element of the given radius in mm, reaching at
    least the adjacent voxel along each axis (partial volume spans a voxel at least)."""
    semi = [max(radius_mm, s) for s in spacing_zyx]
    half = [int(a // s) for a, s in zip(semi, spacing_zyx, strict=True)]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g * s / a) ** 2 for g, s, a in zip(grids, spacing_zyx, semi, strict=True)) <= 1.0


# Connectivity within an axial slice only: fills holes slice by slice.
_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def _body_mask(smooth: np.ndarray, spacing_zyx) -> np.ndarray:
    """The patient: the largest connected region above −500 HU, holes (gas) filled."""
    tissue = smooth > BODY_THRESHOLD_HU
    # An opening breaks thin bridges to the table, cushions or a phantom underneath.
    opened = ndimage.binary_opening(tissue, structure=_ball(4.0, spacing_zyx))
    labels, n = ndimage.label(opened)
    if n == 0:
        return np.zeros_like(tissue)
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == 1 + int(np.argmax(sizes))
    return ndimage.binary_fill_holes(body, structure=_IN_PLANE)


def _robust(values: np.ndarray) -> dict[str, float | int]:
    """Interquartile mean (robust like the median, but not rounded to the integer HU a
    CT is stored in) and interquartile range."""
    p25, p75 = np.percentile(values, [25, 75])
    central = values[(values >= p25) & (values <= p75)]
    return {"hu": float(central.mean()), "voxels": int(values.size), "spread_hu": float(p75 - p25)}


def _peak(smooth_values: np.ndarray, window) -> tuple[float, float] | None:
    """The mode of the values inside ``window`` and its half width at half maximum, or
    None if the histogram has no peak inside the window (only a tail reaching in)."""
    lo, hi = window
    inside = smooth_values[(smooth_values > lo - 50) & (smooth_values < hi + 50)]
    counts, edges = np.histogram(inside, bins=np.arange(lo - 50, hi + 51, 1.0))
    counts = ndimage.gaussian_filter1d(counts.astype(float), 2.0)
    centres = (edges[:-1] + edges[1:]) / 2
    in_window = (centres >= lo) & (centres <= hi)
    k = int(np.flatnonzero(in_window)[np.argmax(counts[in_window])])
    if centres[k] <= lo + 1 or centres[k] >= hi - 1 or counts[k] <= 0:
        return None
    half = counts[k] / 2
    left = k - int(np.argmax(counts[k::-1] < half))
    right = k + int(np.argmax(counts[k:] < half))
    return float(centres[k]), float(max(1.0, (right - left) / 2))


def measure_reference_tissues(ct: sitk.Image) -> dict:
    """Air outside the body, fat and muscle inside it: each one's HU (interquartile mean
    of its raw voxels), voxel count and spread (interquartile range, HU), plus
    ``problems`` (what makes the CT unusable) and ``warnings``. Fat or muscle is None
    when not found."""
    if np.prod(ct.GetSize(), dtype=float) > MAX_VOXELS:
        # Tissue references are large: averaging in-plane blocks keeps memory and time
        # bounded for a fine CT and leaves each tissue's mean HU unchanged.
        f = int(np.ceil(np.sqrt(np.prod(ct.GetSize(), dtype=float) / MAX_VOXELS)))
        ct = sitk.BinShrink(ct, [f, f, 1])
    hu = sitk.GetArrayViewFromImage(ct).astype(np.float32, copy=False)
    spacing = np.array(ct.GetSpacing()[::-1], dtype=float)
    smooth = ndimage.gaussian_filter(hu, sigma=SMOOTHING_MM / spacing)
    body = _body_mask(smooth, spacing)
    result: dict = {"air": None, "fat": None, "muscle": None, "problems": [], "warnings": []}

    # Air: clear of the body, excluding padding outside the reconstructed field of view
    # (stored far below −1024).
    near_body = ndimage.binary_dilation(body, structure=_ball(5.0, spacing))
    air = ~near_body & (smooth < BODY_THRESHOLD_HU) & (hu > HU_AIR - 500.0)
    if air.sum() < MIN_AIR_VOXELS:
        low = float(np.percentile(hu, 1))
        result["problems"].append(
            f"no air around the body ({int(air.sum())} voxels; 1st percentile of the CT "
            f"{low:.0f}): the CT is cropped to the inside of the body, or not in HU"
        )
        return result
    result["air"] = _robust(hu[air])
    offset = result["air"]["hu"] - HU_AIR
    if abs(offset) > AIR_TOLERANCE_HU:
        result["problems"].append(
            f"air outside the body reads {result['air']['hu']:.0f}, not about -1000: the CT "
            "is not in HU (stored values without the rescale slope and intercept?)"
        )
        return result
    if abs(offset) > AIR_WARNING_HU:
        result["warnings"].append(
            f"air reads {result['air']['hu']:.0f} HU ({offset:+.0f} from -1000): check the "
            "scanner's air calibration"
        )

    bone = ndimage.binary_fill_holes(smooth > BONE_THRESHOLD_HU, structure=_IN_PLANE)
    bone = ndimage.binary_dilation(bone, structure=_ball(BONE_MARGIN_MM, spacing))
    gas = smooth < BODY_THRESHOLD_HU
    gas = ndimage.binary_dilation(gas, structure=_ball(GAS_MARGIN_MM, spacing))
    soft = body & ~bone & ~gas
    core = _ball(TISSUE_MARGIN_MM, spacing)
    for tissue, window in (("fat", FAT_WINDOW_HU), ("muscle", MUSCLE_WINDOW_HU)):
        # The tissue's class, its boundaries (with air, the other tissue, gas, bone)
        # eroded away: what is left reads the tissue itself, not a partial volume.
        region = ndimage.binary_erosion(soft & (smooth > window[0]) & (smooth <= window[1]), core)
        values = smooth[region]
        peak = _peak(values, window) if values.size >= MIN_TISSUE_VOXELS else None
        if peak is None:
            result["problems"].append(
                f"no {tissue} found (no peak of soft tissue between {window[0]:.0f} and "
                f"{window[1]:.0f} HU at least {TISSUE_MARGIN_MM:g} mm from other tissue; "
                "a layer thinner than about 8-9 mm reads only as partial volume)"
            )
            continue
        # Other tissues in the same class (the bladder's water next to muscle) read
        # differently: only voxels near the tissue's own peak count.
        mode, half_width = peak
        member = region & (np.abs(smooth - mode) <= PEAK_WIDTHS * half_width)
        if member.sum() < MIN_TISSUE_VOXELS:
            result["problems"].append(
                f"too little {tissue} ({int(member.sum())} voxels, at least "
                f"{MIN_TISSUE_VOXELS} needed)"
            )
            continue
        volume_cm3 = float(member.sum() * np.prod(spacing) / 1000.0)
        result[tissue] = {**_robust(hu[member]), "volume_cm3": volume_cm3, "mode_hu": mode}
        if volume_cm3 < MIN_CONFIDENT_CM3:
            result["warnings"].append(
                f"only {volume_cm3:.1f} cm³ of {tissue} at least {TISSUE_MARGIN_MM:g} mm from "
                "other tissue (a thin layer?): its HU may carry some partial volume"
            )
    return result


def internal_calibration(
    ct: sitk.Image, fat_mg_cm3: float = FAT_MG_CM3, muscle_mg_cm3: float = MUSCLE_MG_CM3
) -> dict:
    """The scanner line through the subject's fat and muscle at their HA-equivalent
    densities, with every measurement recorded. Raises :class:`InputError` (no file, no
    subject: the caller adds them) saying why when the CT has no usable references."""
    refs = measure_reference_tissues(ct)
    if refs["problems"]:
        raise InputError(None, "; ".join(refs["problems"]))
    fat, muscle = refs["fat"], refs["muscle"]
    fit = fit_line([fat_mg_cm3, muscle_mg_cm3], [fat["hu"], muscle["hu"]])
    slope = fit["slope_hu_per_mg_cm3"]
    lo, hi = SLOPE_RANGE_HU_PER_MG_CM3
    if not lo <= slope <= hi:
        raise InputError(
            None,
            f"fat ({fat['hu']:.0f} HU) and muscle ({muscle['hu']:.0f} HU) give a slope of "
            f"{slope:.2f} HU per mg/cm³, outside {lo}-{hi}: not fat and muscle, or "
            "calibration.internal's reference densities do not suit this scanner",
        )
    return {
        "method": "internal",
        "slope_hu_per_mg_cm3": slope,
        "intercept_hu": fit["intercept_hu"],
        "references": [
            {"tissue": "fat", "density_mg_cm3": float(fat_mg_cm3), **fat},
            {"tissue": "muscle", "density_mg_cm3": float(muscle_mg_cm3), **muscle},
        ],
        "air": refs["air"],
        "warnings": refs["warnings"],
    }
