"""Simulated radiographs: what a detector behind the patient records, then processed.

The CT is split into two materials by the same bilinear model as
:func:`drr.quantities.hu_to_linear_attenuation`: below 0 HU water diluted with air,
above 0 HU water mixed with cortical bone in the proportion HU / HU_bone. Both are
projected in one pass (two channels, g/cm²). A polychromatic beam (Kramers' spectrum
of a tungsten tube, filtered by aluminium) is attenuated energy by energy with the NIST
coefficients of each material, so the image shows beam hardening. Then, in order:
scatter as a broad blur of where the object scatters (primary × (1 − primary): nothing in
air, little where the beam is absorbed) scaled to a scatter-to-primary ratio, Poisson
quantum noise, detector blur, the log transform, and the processing a radiograph gets
before reading (unsharp masking, windowing to 12 bits, bone bright).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.ct import voxel_to_physical_matrix
from conventions.geometry import ProjectionGeometry
from conventions.units import HU_AIR, MM_PER_CM
from drr.attenuation import DENSITY_G_CM3, mass_attenuation
from drr.projector import project
from drr.quantities import CT_EFFECTIVE_KEV, hu_of_cortical_bone
from drr.volume import Volume


@dataclass(frozen=True)
class XraySettings:
    """Acquisition and processing of a simulated hip radiograph."""

    kvp: float = 80.0
    filtration_mm_al: float = 2.5
    photons_per_mm2: float = 3.0e5  # unattenuated fluence at the detector, whole spectrum
    scatter_to_primary: float = 0.5  # behind a pelvis, with an anti-scatter grid
    scatter_sigma_mm: float = 40.0
    detector_blur_mm: float = 0.3
    unsharp_sigma_mm: float = 25.0
    unsharp_amount: float = 2.0
    bits_stored: int = 12
    energy_bin_kev: float = 2.0


def spectrum(settings: XraySettings) -> tuple[np.ndarray, np.ndarray]:
    """Energies (keV) and relative photon fluence of the filtered tube output (sums to 1).

    Kramers' law for the bremsstrahlung photon count, ∝ (kVp − E) / E, hardened by the
    aluminium filter; energies below 15 keV carry nothing after filtration.
    """
    e = np.arange(15.0 + settings.energy_bin_kev / 2, settings.kvp, settings.energy_bin_kev)
    fluence = (settings.kvp - e) / e
    fluence *= np.exp(
        -mass_attenuation("aluminium", e)
        * DENSITY_G_CM3["aluminium"]
        * settings.filtration_mm_al
        / MM_PER_CM
    )
    return e, fluence / fluence.sum()


def material_densities(hu: np.ndarray, ct_energy_kev: float = CT_EFFECTIVE_KEV):
    """(water, cortical bone) partial densities in g/cm³ of each voxel."""
    hu = np.asarray(hu, dtype=np.float32)
    bone_fraction = np.clip(hu / np.float32(hu_of_cortical_bone(ct_energy_kev)), 0.0, 1.0)
    water = np.where(
        hu <= 0, 1.0 + np.maximum(hu, np.float32(HU_AIR)) / 1000.0, 1.0 - bone_fraction
    )
    bone = bone_fraction * np.float32(DENSITY_G_CM3["cortical_bone"])
    return water.astype(np.float32), bone.astype(np.float32)


def transmission(areal_g_cm2: dict[str, np.ndarray], settings: XraySettings) -> np.ndarray:
    """Energy-integrated transmission (0-1) through the given material thicknesses."""
    e, fluence = spectrum(settings)
    weights = fluence * e  # an energy-integrating detector
    weights /= weights.sum()
    out = np.zeros_like(next(iter(areal_g_cm2.values())), dtype=np.float64)
    for energy, w in zip(e, weights, strict=True):
        exponent = sum(mass_attenuation(m, energy) * a for m, a in areal_g_cm2.items())
        out += w * np.exp(-exponent)
    return out


def material_volume(ct_hu: sitk.Image, hu: np.ndarray | None = None) -> Volume:
    """Two channels, water and cortical bone (g/cm³), of a CT (or of ``hu`` on its grid)."""
    water, bone = material_densities(sitk.GetArrayViewFromImage(ct_hu) if hu is None else hu)
    return Volume(np.stack([water, bone]), voxel_to_physical_matrix(ct_hu), ("water", "bone"))


def project_materials(
    bodies: list[tuple[Volume, np.ndarray]], geometry: ProjectionGeometry
) -> np.ndarray:
    """Areal densities (2, rows, cols) in g/cm² of water and bone through every body, each
    at its own pose: line integrals add, so bodies that move apart render as a sum."""
    total = np.zeros((2, geometry.rows, geometry.cols))
    for volume, camera_from_ct in bodies:
        areal = project(volume.cropped_to_support(), geometry, camera_from_ct)[0]
        total += areal.astype(np.float64) / MM_PER_CM  # g/cm³ × mm → g/cm²
    return total


def simulate_radiograph(
    ct_hu: sitk.Image,
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    settings: XraySettings = XraySettings(),
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Render a radiograph of ``ct_hu`` at a pose (see :func:`expose` for what it returns)."""
    areal = project_materials([(material_volume(ct_hu), camera_from_ct)], geometry)
    return expose(areal, geometry, settings, rng)


def expose(
    areal: np.ndarray,
    geometry: ProjectionGeometry,
    settings: XraySettings = XraySettings(),
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Acquire and process a radiograph from water and bone areal densities (2, rows, cols).

    Returns the stages: ``areal_water_g_cm2``, ``areal_bone_g_cm2``, ``primary`` (the
    noiseless transmission), ``detected`` (with scatter, noise, blur), ``log`` (−ln of the
    detected over the unattenuated signal) and ``processed`` (uint16, what is stored).
    """
    rng = np.random.default_rng() if rng is None else rng
    primary = transmission({"water": areal[0], "cortical_bone": areal[1]}, settings)

    px_mm = np.array([geometry.row_spacing_mm, geometry.col_spacing_mm])
    scatter = ndimage.gaussian_filter(
        primary * (1.0 - primary), settings.scatter_sigma_mm / px_mm, mode="nearest"
    )
    behind_patient = primary < 0.5
    if behind_patient.any():  # scale to the scatter-to-primary ratio behind the patient
        ratio = np.median(scatter[behind_patient] / primary[behind_patient])
        scatter *= settings.scatter_to_primary / max(ratio, 1e-12)
    photons = settings.photons_per_mm2 * geometry.row_spacing_mm * geometry.col_spacing_mm
    counts = rng.poisson(photons * (primary + scatter)).astype(np.float64)
    counts = ndimage.gaussian_filter(counts, settings.detector_blur_mm / px_mm, mode="nearest")
    log = -np.log(np.maximum(counts, 0.5) / photons)

    # Processing: boost local contrast (unsharp mask), then window to the stored range.
    smooth = ndimage.gaussian_filter(log, settings.unsharp_sigma_mm / px_mm, mode="nearest")
    enhanced = log + settings.unsharp_amount * (log - smooth)
    # The window is set on the anatomy, as a reader's display would (not on open field).
    anatomy = log > 1.0
    lo, hi = np.percentile(enhanced[anatomy] if anatomy.any() else enhanced, [0.5, 99.5])
    top = 2**settings.bits_stored - 1
    processed = np.clip((enhanced - lo) / max(hi - lo, 1e-6) * top, 0, top).astype(np.uint16)
    return {
        "areal_water_g_cm2": areal[0],
        "areal_bone_g_cm2": areal[1],
        "primary": primary,
        "detected": counts,
        "log": log,
        "processed": processed,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m drr.simulate``: simulate a radiograph of a CT at a pose."""
    import argparse
    import sys

    from conventions.ct import read_ct
    from conventions.errors import InputError
    from conventions.geometry import read_geometry
    from conventions.pose import read_pose
    from conventions.radiograph import write_dicom_dx, write_radiograph

    ap = argparse.ArgumentParser(
        prog="python -m drr.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ct", required=True, help="CT in HU")
    ap.add_argument("--geometry", required=True)
    ap.add_argument("--pose", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subject", default="synthetic", help="pseudonymous ID for the DICOM")
    ap.add_argument("--image", default="ap")
    ap.add_argument("--out-dicom")
    ap.add_argument("--out-mha")
    a = ap.parse_args(argv)
    try:
        geometry = read_geometry(a.geometry)
        pose = read_pose(a.pose)
        ct = read_ct(a.ct)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = simulate_radiograph(ct, geometry, pose.camera_from_ct, rng=np.random.default_rng(a.seed))
    # DistanceSourceToPatient: the geometry's, else the depth of the CT's centre.
    sod = geometry.source_to_patient_mm
    if sod is None:
        centre = ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()])
        sod = float((pose.camera_from_ct[:3, :3] @ centre + pose.camera_from_ct[:3, 3])[2])
    if a.out_dicom:
        write_dicom_dx(a.out_dicom, out["processed"], geometry, sod, a.subject, a.image)
    if a.out_mha:
        write_radiograph(a.out_mha, out["processed"].astype(np.float32), geometry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
