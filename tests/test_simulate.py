"""Radiograph simulation: beam physics, noise, bone contrast, and the DICOM it writes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import IDENTIFIERS
from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose
from conventions.radiograph import read_radiograph, write_dicom_dx
from drr.simulate import (
    XraySettings,
    material_densities,
    simulate_radiograph,
    spectrum,
    transmission,
)


def test_spectrum_is_a_filtered_80_kvp_beam():
    e, f = spectrum(XraySettings())
    assert f.sum() == pytest.approx(1.0)
    assert e.max() < 80.0 and 35.0 < (e * f).sum() < 50.0
    _, f_hard = spectrum(XraySettings(filtration_mm_al=6.0))
    assert (e * f_hard).sum() > (e * f).sum()  # more filter, harder beam


def test_polychromatic_beam_hardens_in_water():
    # A monoenergetic beam has -ln T linear in thickness; a polychromatic one less than linear.
    s = XraySettings()
    p10 = -np.log(transmission({"water": np.array([10.0])}, s))[0]
    p20 = -np.log(transmission({"water": np.array([20.0])}, s))[0]
    assert p20 < 2 * p10 * 0.97
    mono = XraySettings(kvp=50.0, energy_bin_kev=0.5, filtration_mm_al=60.0)  # nearly mono
    m10 = -np.log(transmission({"water": np.array([10.0])}, mono))[0]
    m20 = -np.log(transmission({"water": np.array([20.0])}, mono))[0]
    assert m20 == pytest.approx(2 * m10, rel=0.02)


def test_material_split_follows_the_bilinear_model():
    water, bone = material_densities(np.array([-1000.0, -500.0, 0.0, 800.0]))
    assert water[:3] == pytest.approx([0.0, 0.5, 1.0])
    assert bone[:3] == pytest.approx([0.0, 0.0, 0.0])
    assert bone[3] > 0 and water[3] < 1.0


def _slab_ct(hu_inside: float = 0.0) -> sitk.Image:
    a = np.full((40, 60, 60), -1000.0, np.float32)
    a[:, 10:50, :] = hu_inside  # 80 mm of water along y at 2 mm voxels
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((2.0, 2.0, 2.0))
    img.SetOrigin((-59.0, -59.0, -39.0))
    return img


def test_quantum_noise_follows_poisson_statistics():
    g = ProjectionGeometry(1000.0, 40, 40, (1.0, 1.0))
    pose = ap_pose(np.zeros(3), 800.0).camera_from_ct
    quiet = XraySettings(scatter_to_primary=0.0, detector_blur_mm=1e-3, photons_per_mm2=2e4)
    out = simulate_radiograph(_slab_ct(), g, pose, quiet, np.random.default_rng(0))
    centre = np.s_[10:30, 10:30]
    t = out["primary"][centre]
    # Var(-ln N) ≈ 1 / E[N] for Poisson counts N.
    expected_sd = np.sqrt(1.0 / (quiet.photons_per_mm2 * t)).mean()
    residual = out["log"][centre] + np.log(t)
    assert residual.std() == pytest.approx(expected_sd, rel=0.1)


def test_bone_is_brighter_than_soft_tissue(tmp_path):
    from phantom.cohort import generate_subject

    truth = generate_subject("S001", seed=3, voxel_mm=4.0, out_dir=tmp_path)
    ct = sitk.ReadImage(str(tmp_path / "ct.nii.gz"), sitk.sitkFloat32)
    lm = truth["landmarks_lps_mm"]
    iso = (np.array(lm["head_center_L"]) + np.array(lm["head_center_R"])) / 2
    g = ProjectionGeometry(1150.0, 100, 120, (3.0, 3.0))
    pose = ap_pose(iso, 1000.0).camera_from_ct
    out = simulate_radiograph(ct, g, pose, rng=np.random.default_rng(1))
    water, bone = out["areal_water_g_cm2"], out["areal_bone_g_cm2"]
    body = water > 0.5 * water.max()
    design = np.stack([water[body], bone[body], np.ones(body.sum())], axis=1)

    def per_gram(image):  # attenuation per g/cm² of water and of bone, by least squares
        coef, *_ = np.linalg.lstsq(design, image[body], rcond=None)
        return coef[0], coef[1]

    # Per gram, bone attenuates more than water: μ/ρ ratio 2.5 at 40 keV (the tube's mean
    # energy), 1.5 at 65 keV; behind ~20 cm of tissue the hardened beam sits in between.
    a_water, a_bone = per_gram(-np.log(out["primary"]))
    assert 1.4 < a_bone / a_water < 2.5
    # Scatter, noise and processing keep bone brighter than its weight in water.
    _, bone_after = per_gram(out["log"])
    assert bone_after > 0
    assert per_gram(out["processed"].astype(float))[1] > 0
    assert out["processed"].dtype == np.uint16 and out["processed"].max() <= 4095


def test_dicom_dx_round_trips_through_the_reader(tmp_path):
    g = ProjectionGeometry(1150.0, 30, 20, (0.15, 0.15))
    px = np.random.default_rng(0).integers(0, 4096, size=(30, 20)).astype(np.uint16)
    write_dicom_dx(tmp_path / "ap.dcm", px, g, 1000.0, "S001", "ap")
    r = read_radiograph(tmp_path / "ap.dcm")
    assert r.missing == ()
    geom = r.require_geometry()
    assert (geom.sdd_mm, geom.pixel_spacing_mm, geom.source_to_patient_mm) == (
        1150.0,
        (0.15, 0.15),
        1000.0,
    )
    assert np.array_equal(r.pixels, px.astype(np.float32))
    data = (tmp_path / "ap.dcm").read_bytes()
    assert b"PatientName" not in data and all(v.encode() not in data for v in IDENTIFIERS.values())
