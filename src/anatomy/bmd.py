"""CT-derived BMD of a region: QCT-BMD (mg/cm³) and areal BMD in the DXA view (g/cm²).

The CT's blur (its point-spread function and voxel size) carries some of a bone's
mineral across its surface into the soft tissue around it; a plain mask mean loses that
mineral, by several per cent for the thin-walled proximal femur. Blur moves mass but
conserves it, so the bone mineral content (BMC) is measured in the region plus a shell
``SPILL_MARGIN_MM`` (at least one voxel) wide around it, less the soft tissue the shell
would hold without the bone (the local mean of the soft tissue just beyond it): a
mass-preserving partial-volume correction. The shell grows only into non-bone voxels, so
a neighbouring bone's mineral is not counted, and not across the region's cut planes
(mineral crosses those both ways).

QCT-BMD = BMC / region volume. Areal BMD = BMC / projected area, DXA's own definition,
with the area that of the region's silhouette in the DXA view
(:func:`conventions.hip_regions.dxa_rotation`), computed with the DRR engine: an exact (Siddon)
projection of the region mask on a 0.5 mm grid with a near-parallel beam, as DXA's
fan-beam scan is. The same projection of the corrected density gives the region's
areal-density image (the PF-DRR in the DXA view) for quality control; it sums to BMC.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from conventions.ct import voxel_to_physical_matrix
from conventions.geometry import ProjectionGeometry
from conventions.hip_regions import (
    box_around,
    distal_border_point,
    distance_from,
    dxa_rotation,
    neck_roi_mask,
    pf_region_mask,
    spill_margin_mm,
    spill_shell,
)
from conventions.labels import femur_label
from conventions.pose import ap_pose, rotation_matrix_about, transform_points
from conventions.units import G_CM2_PER_MG_CM3_MM, MIN_PATH_MM, MM_PER_CM
from drr.projector import project
from drr.volume import cropped_volume

BACKGROUND_SHELL_MM = (1.0, 5.0)  # soft tissue measured beyond the spill margin
BACKGROUND_SIGMA_MM = 6.0  # how far along the surface the soft tissue is averaged
DXA_PIXEL_MM = 0.5
DXA_SDD_MM = 1.0e5  # a source 100 m away: rays parallel to 0.05 % across the femur


def mineral_content(
    density: np.ndarray, region: np.ndarray, bone: np.ndarray, cut: np.ndarray, spacing_zyx
) -> dict:
    """BMC of ``region`` with the spill-out correction.

    ``bone`` marks every bone voxel (the shell grows only outside bone); ``cut`` marks
    the femur beyond the region's cut planes, which the shell must not enter either.
    The soft tissue a shell voxel would hold without the bone is the local mean of the
    soft tissue just beyond the shell (fat and muscle both touch the femur, so one
    global value would not do). Returns BMC (g), volume (cm³), the corrected mean and
    the plain mask mean (mg/cm³), the background and the spill shell (a mask) used.
    """
    spacing = np.asarray(spacing_zyx, float)
    spill = spill_margin_mm(spacing)
    far_lo, far_hi = spill + BACKGROUND_SHELL_MM[0], spill + BACKGROUND_SHELL_MM[1]
    box = box_around(region, np.ceil((far_hi + 3 * BACKGROUND_SIGMA_MM) / spacing).astype(int))
    reg, bon, cu, dens = region[box], bone[box], cut[box], density[box]  # near the region
    shell, dist = spill_shell(reg, bon, cu, spacing)
    far = (dist > far_lo) & (dist <= far_hi) & ~bon
    far &= distance_from(bon & ~reg, spacing) > spill  # clear of other bone
    if far.sum() < 20:
        raise ValueError("no soft tissue around the region to measure its background")
    sigma = BACKGROUND_SIGMA_MM / spacing
    weight = ndimage.gaussian_filter(far.astype(np.float32), sigma)
    local = ndimage.gaussian_filter(np.where(far, dens, 0).astype(np.float32), sigma)
    global_background = float(np.median(dens[far]))
    w = weight[shell]
    background = np.where(w > 1e-3, local[shell] / np.maximum(w, 1e-6), global_background)
    voxel_cm3 = float(np.prod(spacing)) / 1000.0
    mass_mg = (dens[reg].sum() + (dens[shell] - background).sum()) * voxel_cm3
    volume = int(reg.sum()) * voxel_cm3
    mineral = np.zeros(region.shape, dtype=np.float32)  # what the region's DRR projects
    mineral[box][reg] = dens[reg]
    mineral[box][shell] = dens[shell] - background
    return {
        "bmc_g": mass_mg / 1000.0,
        "volume_cm3": volume,
        "qct_bmd_mg_cm3": mass_mg / volume,
        "mask_mean_mg_cm3": float(dens[reg].mean()),
        "background_mg_cm3": global_background,
        "mineral": mineral,
    }


def dxa_view(
    image: sitk.Image, channels: dict[str, np.ndarray], head_center: np.ndarray, rotation
) -> tuple[np.ndarray, ProjectionGeometry, np.ndarray]:
    """Exact line integrals (value × mm) of volumes (name → (z, y, x) array on ``image``'s
    grid) in the DXA view, on a ``DXA_PIXEL_MM`` grid at the femur.

    ``rotation`` (rows x′, y′, z′) turns the femur about ``head_center`` to neutral.
    Returns (images (C, rows, cols), geometry, camera_from_ct).
    """
    volume = cropped_volume(channels, voxel_to_physical_matrix(image))
    neutral_from_ct = rotation_matrix_about(head_center, rotation)
    # The support's corners in the neutral frame set the detector's extent.
    w, h, d = volume.shape_xyz
    corners = np.array([[i, j, k] for i in (-1, w) for j in (-1, h) for k in (-1, d)], float)
    corners = transform_points(neutral_from_ct @ volume.ct_from_index, corners)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    iso = (lo + hi) / 2.0
    sod = DXA_SDD_MM - (hi[1] - lo[1])  # the detector just behind the femur
    magnification = DXA_SDD_MM / sod
    cols = int(np.ceil((hi[0] - lo[0]) / DXA_PIXEL_MM)) + 2
    rows = int(np.ceil((hi[2] - lo[2]) / DXA_PIXEL_MM)) + 2
    geometry = ProjectionGeometry(
        sdd_mm=DXA_SDD_MM,
        rows=rows,
        cols=cols,
        pixel_spacing_mm=(DXA_PIXEL_MM * magnification, DXA_PIXEL_MM * magnification),
        source_to_patient_mm=sod,
    )
    camera_from_ct = ap_pose(iso, sod).camera_from_ct @ neutral_from_ct
    images = project(volume, geometry, camera_from_ct, integrator="siddon")[0]
    return images, geometry, camera_from_ct


def areal_bmd(image: sitk.Image, region: np.ndarray, mineral: np.ndarray, lm) -> dict:
    """Areal BMD (g/cm²) of the region in the DXA view: BMC / silhouette area.

    ``mineral`` is :func:`mineral_content`'s. Also returns the region's areal-density
    image (g/cm²) and its silhouette, with the view's geometry and pose.
    """
    images, geometry, camera_from_ct = dxa_view(
        image,
        {"region": region.astype(np.float32), "mineral": mineral},
        lm.head_center,
        dxa_rotation(lm),
    )
    silhouette = images[0] > MIN_PATH_MM
    areal = images[1] * G_CM2_PER_MG_CM3_MM  # g/cm²
    pixel_cm2 = (DXA_PIXEL_MM / MM_PER_CM) ** 2
    area_cm2 = float(silhouette.sum() * pixel_cm2)
    bmc_g = float(areal.sum() * pixel_cm2)
    return {
        "areal_bmd_g_cm2": bmc_g / area_cm2,
        "projected_area_cm2": area_cm2,
        "bmc_projected_g": bmc_g,
        "areal_density_g_cm2": areal,
        "silhouette": silhouette,
        "geometry": geometry,
        "camera_from_ct": camera_from_ct,
    }


# Up to a 2 mm cube's volume the PF region's CT BMD is good to about 1 %; beyond it
# partial volume dominates (docs/ct_stages.md: 3 mm voxels read QCT-BMD 6-7 % low).
MAX_ACCURATE_VOXEL_MM3 = 8.0


def coarse_voxel_warnings(spacing_zyx) -> list[str]:
    volume = float(np.prod(spacing_zyx))
    if volume <= MAX_ACCURATE_VOXEL_MM3:
        return []
    size = " × ".join(f"{v:g}" for v in spacing_zyx[::-1])
    return [
        f"CT voxels {size} mm ({volume:.0f} mm³) are coarser than a 2 mm cube: the PF "
        "region's BMD is good to several per cent there, not 1 % (docs/ct_stages.md)"
    ]


def measure_regions(density: np.ndarray, labels: np.ndarray, image: sitk.Image, lm):
    """The target femur's PF region and neck ROI measured: (record, outputs), outputs
    per region (mask, DXA view, spill-corrected mineral); or (None, name) when a region
    is empty (landmarks that do not fit the labels)."""
    femur = labels == femur_label(lm.side)
    spacing_zyx = np.array(image.GetSpacing())[::-1]
    record, outputs = {}, {}
    for name, make in (("pf_region", pf_region_mask), ("neck_roi", neck_roi_mask)):
        region = make(labels, image, lm)
        if region.sum() < 10:
            return None, name
        m = mineral_content(density, region, labels > 0, femur & ~region, spacing_zyx)
        mineral = m.pop("mineral")
        view = areal_bmd(image, region, mineral, lm)
        record[name] = {
            "qct_bmd_mg_cm3": m["qct_bmd_mg_cm3"],
            "areal_bmd_g_cm2": view["areal_bmd_g_cm2"],
            "bmc_g": m["bmc_g"],
            "volume_cm3": m["volume_cm3"],
            "projected_area_cm2": view["projected_area_cm2"],
            "mask_mean_mg_cm3": m["mask_mean_mg_cm3"],
            "background_mg_cm3": m["background_mg_cm3"],
        }
        outputs[name] = (region, view, mineral)
    record["warnings"] = coarse_voxel_warnings(spacing_zyx)
    record["qct_bmd_mg_cm3"] = record["pf_region"]["qct_bmd_mg_cm3"]
    record["areal_bmd_g_cm2"] = record["pf_region"]["areal_bmd_g_cm2"]
    record["distal_border_point"] = distal_border_point(lm).tolist()
    view = outputs["pf_region"][1]
    record["dxa_view"] = {
        "geometry": view["geometry"].to_dict(),
        "camera_from_ct": view["camera_from_ct"].tolist(),
    }
    return record, outputs
