"""Phantom and internal (phantom-less) calibration against the synthetic cohort's true
scanner line, the order of fallbacks, and CTs that cannot be calibrated."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from realdata import real_ct_paths
from scipy import ndimage

from calibration import internal
from calibration.__main__ import calibrate
from calibration.fit import calibrate_with_rods, fit_line, fit_problems
from calibration.internal import internal_calibration
from calibration.rods import find_rods
from conventions.ct import read_ct
from conventions.errors import InputError
from phantom.acquisition import FAT_MG_CM3, MUSCLE_MG_CM3
from phantom.cohort import generate_subject


def calibrate_cli(subject: str, ct, out_dir, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "calibration",
            "--subject",
            subject,
            "--ct",
            str(ct),
            *options,
            "--out-density",
            str(out_dir / "density.nii.gz"),
            "--out-json",
            str(out_dir / "c.json"),
        ],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "S004"
    truth = generate_subject("S004", 5, (1.5, 1.5, 3.0), out, poses=())
    return out, truth


def test_rods_are_found_where_they_are(subject):
    out, truth = subject
    rods = find_rods(read_ct(out / "ct.nii.gz"), 5)
    assert len(rods) == 5
    true_rods = sorted(truth["calibration_phantom"]["rods"], key=lambda r: r["density_mg_cm3"])
    for found, true in zip(rods, true_rods, strict=True):
        assert (found.x_mm, found.y_mm) == pytest.approx((true["x_mm"], true["y_mm"]), abs=1.0)


def test_calibration_recovers_the_scanner_line(subject, tmp_path):
    out, truth = subject
    p = calibrate_cli("S004", out / "ct.nii.gz", tmp_path)
    assert p.returncode == 0, p.stderr
    record = json.loads((tmp_path / "c.json").read_text())
    scanner = truth["scanner"]
    assert record["method"] == "phantom"
    assert record["slope_hu_per_mg_cm3"] == pytest.approx(scanner["slope_hu_per_mg_cm3"], rel=0.01)
    assert record["intercept_hu"] == pytest.approx(scanner["intercept_hu"], abs=0.01 * 200 * 0.8)
    # At 200 mg/cm³ the calibrated density is within 3 mg/cm³ of the truth.
    hu200 = scanner["intercept_hu"] + 200 * scanner["slope_hu_per_mg_cm3"]
    rho = (hu200 - record["intercept_hu"]) / record["slope_hu_per_mg_cm3"]
    assert rho == pytest.approx(200.0, abs=3.0)
    assert record["r_squared"] > 0.999
    assert [r["density_mg_cm3"] for r in record["rods"]] == [0, 50, 100, 150, 200]
    # The density volume is the true density as the scanner saw it (through its PSF).
    density = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "density.nii.gz")))
    true_img = sitk.ReadImage(str(out / "truth" / "density_mg_cm3.nii.gz"))
    seen = ndimage.gaussian_filter(
        sitk.GetArrayFromImage(true_img),
        scanner["psf_sigma_mm"] / np.array(true_img.GetSpacing())[::-1],
    )
    region = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "pf_region.nii.gz"))) > 0
    assert density[region].mean() == pytest.approx(seen[region].mean(), rel=0.01)


def test_a_ct_without_phantom_is_a_clear_error(tmp_path):
    img = sitk.GetImageFromArray(
        np.random.default_rng(0).normal(40, 10, (8, 40, 40)).astype(np.float32)
    )
    sitk.WriteImage(img, str(tmp_path / "ct.nii.gz"))
    p = calibrate_cli("P9", tmp_path / "ct.nii.gz", tmp_path)
    assert p.returncode == 2
    assert "subject P9" in p.stderr and "no row of 5 calibration rods" in p.stderr
    assert "cannot calibrate" in p.stderr and "no air around the body" in p.stderr
    assert not (tmp_path / "density.nii.gz").exists()


def test_line_fit_is_exact_on_a_line():
    fit = fit_line([0, 50, 100], [-10.0, 30.0, 70.0])
    assert fit["slope_hu_per_mg_cm3"] == pytest.approx(0.8)
    assert fit["intercept_hu"] == pytest.approx(-10.0)
    assert fit["r_squared"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 rods for 5"):
        calibrate_with_rods([None] * 3, [0, 50, 100, 150, 200])


# ---- internal (phantom-less) calibration ----------------------------------------------


@pytest.fixture(scope="module")
def without_phantom(subject, tmp_path_factory):
    """The subject's CT cropped just behind the body: the phantom and table are gone."""
    out, truth = subject
    ct = read_ct(out / "ct.nii.gz")
    y0 = truth["calibration_phantom"]["base_y_mm"][0]
    iy = ct.TransformPhysicalPointToIndex((0.0, y0 - 2.0, 0.0))[1]
    cropped = ct[:, :iy, :]
    path = tmp_path_factory.mktemp("cropped") / "ct.nii.gz"
    sitk.WriteImage(cropped, str(path))
    return path, cropped


def _true_hu(truth, rho):
    return truth["scanner"]["intercept_hu"] + truth["scanner"]["slope_hu_per_mg_cm3"] * rho


def _assert_recovers_the_line(record, truth, rel=0.05):
    scanner = truth["scanner"]
    assert record["slope_hu_per_mg_cm3"] == pytest.approx(scanner["slope_hu_per_mg_cm3"], rel=rel)
    rho = (_true_hu(truth, 200.0) - record["intercept_hu"]) / record["slope_hu_per_mg_cm3"]
    assert rho == pytest.approx(200.0, rel=rel)


def test_reference_tissues_read_their_true_hu(without_phantom, subject):
    _, truth = subject
    record = internal_calibration(without_phantom[1])
    fat, muscle = record["references"]
    assert record["warnings"] == []
    assert record["air"]["hu"] == pytest.approx(-1000.0, abs=5.0)
    # The synthetic fat and muscle lie on the scanner line at their HA equivalents.
    assert fat["hu"] == pytest.approx(_true_hu(truth, FAT_MG_CM3), abs=2.0)
    assert muscle["hu"] == pytest.approx(_true_hu(truth, MUSCLE_MG_CM3), abs=2.0)
    assert fat["voxels"] > 10_000 and muscle["voxels"] > 10_000
    # The line goes through the references at the densities the caller gives.
    other = internal_calibration(without_phantom[1], fat_mg_cm3=-80.0, muscle_mg_cm3=50.0)
    assert other["slope_hu_per_mg_cm3"] == pytest.approx((muscle["hu"] - fat["hu"]) / 130.0)
    assert other["intercept_hu"] == pytest.approx(fat["hu"] + 80.0 * other["slope_hu_per_mg_cm3"])


def test_a_large_ct_is_measured_on_averaged_blocks(without_phantom, subject, monkeypatch):
    _, truth = subject
    ct = without_phantom[1]
    monkeypatch.setattr(internal, "MAX_VOXELS", np.prod(ct.GetSize()) // 3)
    record = internal_calibration(ct)
    _assert_recovers_the_line(record, truth)
    # 2 × 2 blocks: about a quarter of the voxels the full CT gives.
    assert record["references"][1]["voxels"] < np.prod(ct.GetSize()) / 4


def test_internal_calibration_when_no_phantom_is_found(without_phantom, subject, tmp_path):
    _, truth = subject
    p = calibrate_cli("S004", without_phantom[0], tmp_path)
    assert p.returncode == 0, p.stderr
    record = json.loads((tmp_path / "c.json").read_text())
    assert record["method"] == "internal" and record["method_requested"] == "auto"
    assert record["fallback_reason"].startswith("no row of 5 calibration rods found; ")
    assert "calibration.scanners" in record["fallback_reason"]
    assert [r["tissue"] for r in record["references"]] == ["fat", "muscle"]
    assert [r["density_mg_cm3"] for r in record["references"]] == [-100, 40]
    _assert_recovers_the_line(record, truth)
    density = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "density.nii.gz")))
    assert density.shape == sitk.GetArrayViewFromImage(without_phantom[1]).shape


def test_internal_calibration_when_the_manifest_says_no_phantom(subject, tmp_path):
    out, truth = subject
    p = calibrate_cli("S004", out / "ct.nii.gz", tmp_path, "--phantom", "absent")
    assert p.returncode == 0, p.stderr
    record = json.loads((tmp_path / "c.json").read_text())
    assert record["method"] == "internal"
    assert record["fallback_reason"].startswith("the manifest says no phantom")
    _assert_recovers_the_line(record, truth)


def _kw(**kw) -> dict:
    base = dict(
        ct_path="ct.nii.gz",
        method="auto",
        phantom_present=True,
        rod_densities_mg_cm3=(0, 50, 100, 150, 200),
        scanner_line=None,
        fat_mg_cm3=-100.0,
        muscle_mg_cm3=40.0,
    )
    return {**base, **kw}


def test_order_of_fallbacks(subject, without_phantom):
    out, _ = subject
    with_phantom, no_phantom = read_ct(out / "ct.nii.gz"), without_phantom[1]
    line = (0.9, -5.0)
    # The phantom first, even where the config has a line for the scanner.
    assert calibrate(with_phantom, **_kw(scanner_line=line))["method"] == "phantom"
    # Then the config's line: the user's explicit choice beats internal calibration.
    r = calibrate(no_phantom, **_kw(scanner_line=line))
    assert (r["method"], r["slope_hu_per_mg_cm3"], r["intercept_hu"]) == ("scanner", 0.9, -5.0)
    assert r["fallback_reason"] == "no row of 5 calibration rods found"
    # Then the subject's own tissue.
    assert calibrate(no_phantom, **_kw(phantom_present=False))["method"] == "internal"
    # Asked for one method, only that one.
    r = calibrate(with_phantom, **_kw(method="internal"))
    assert (r["method"], r["fallback_reason"]) == ("internal", None)
    with pytest.raises(InputError, match=r"cannot calibrate: the manifest says no phantom$"):
        calibrate(no_phantom, **_kw(method="phantom", phantom_present=False, scanner_line=line))
    with pytest.raises(InputError, match="cannot calibrate: the config gives no calibration line"):
        calibrate(with_phantom, **_kw(method="scanner"))


def test_a_ct_not_in_hu_is_a_clear_error(without_phantom, tmp_path):
    _, ct = without_phantom
    # Stored values without the rescale intercept: air at about 0.
    stored = tmp_path / "stored.nii.gz"
    sitk.WriteImage(ct + 1024.0, str(stored))
    p = calibrate_cli("P7", stored, tmp_path, "--phantom", "absent")
    assert p.returncode == 2
    assert f"subject P7: {stored}: cannot calibrate: the manifest says no phantom" in p.stderr
    assert "no air around the body" in p.stderr and "not in HU" in p.stderr
    assert not (tmp_path / "c.json").exists()
    # A wrong rescale intercept: air is there but reads −700.
    with pytest.raises(InputError, match=r"air outside the body reads -70[0-9], not about -1000"):
        internal_calibration(ct + 300.0)


def test_a_ct_cropped_inside_the_body_is_a_clear_error(without_phantom, subject, tmp_path):
    _, truth = subject
    ct = without_phantom[1]
    # A box well inside the elliptic body outline: no air around it.
    ax, ay = truth["parameters"]["body_semi_axes_mm"]
    lo = ct.TransformPhysicalPointToIndex((-0.6 * ax, -0.6 * ay, 0.0))
    hi = ct.TransformPhysicalPointToIndex((0.6 * ax, 0.6 * ay, 0.0))
    inside = tmp_path / "inside.nii.gz"
    sitk.WriteImage(ct[lo[0] : hi[0], lo[1] : hi[1], :], str(inside))
    p = calibrate_cli("P8", inside, tmp_path, "--phantom", "absent")
    assert p.returncode == 2
    assert "subject P8" in p.stderr and str(inside) in p.stderr
    assert "no air around the body" in p.stderr and "cropped to the inside of the body" in p.stderr


def test_internal_calibration_of_a_real_hip_ct():
    """TotalSegmentator's example CT (no phantom): fat reads about −100 HU, its soft
    tissue (muscle, some of it fatty, with bowel and bladder) +20…+50 HU."""
    paths = real_ct_paths()
    record = internal_calibration(read_ct(paths["ct"]))
    fat, muscle = record["references"]
    assert record["air"]["hu"] == pytest.approx(-1000.0, abs=30.0)
    assert -120.0 < fat["hu"] < -85.0
    assert 15.0 < muscle["hu"] < 55.0
    assert 0.8 < record["slope_hu_per_mg_cm3"] < 1.2
    assert record["warnings"] == []


@pytest.mark.parametrize("offset_hu", [400.0, -150.0])
def test_a_phantom_fit_that_fails_its_quality_gate_falls_back_with_the_reason(subject, offset_hu):
    """One rod overlaid by metal's streaks (+400 HU) or at the edge of the reconstructed
    field, where truncation darkens it (−150 HU): the rods are still found, but the fit is
    no density scale. It falls back to the scanner's line (then the subject's tissue),
    the reason naming the gate."""
    out, _ = subject
    ct = read_ct(out / "ct.nii.gz")
    clean = calibrate(ct, **_kw())
    assert clean["method"] == "phantom" and clean["fallback_reason"] is None
    assert fit_problems(clean) == []
    rod = find_rods(ct, 5)[2]  # the 100 mg/cm³ rod
    hu = sitk.GetArrayFromImage(ct)
    col, row, _ = ct.TransformPhysicalPointToContinuousIndex(
        (rod.x_mm, rod.y_mm, ct.GetOrigin()[2])
    )
    yy, xx = np.mgrid[: hu.shape[1], : hu.shape[2]]
    sx, sy, _ = ct.GetSpacing()
    disc = np.hypot((xx - col) * sx, (yy - row) * sy) <= rod.radius_mm + 1.0
    hu[:, disc] += offset_hu
    spoiled = sitk.GetImageFromArray(hu)
    spoiled.CopyInformation(ct)
    found = find_rods(spoiled, 5)
    assert len(found) == 5  # still a row of five: only the fit can tell
    r = calibrate(spoiled, **_kw(scanner_line=(0.9, -5.0)))
    assert r["method"] == "scanner"
    assert r["fallback_reason"].startswith("the phantom fit fails its quality gate: ")
    assert "HU off the line" in r["fallback_reason"]
    # Without a line for the scanner, the subject's own tissue.
    assert calibrate(spoiled, **_kw())["method"] == "internal"


def test_the_quality_gate_names_each_problem():
    good = fit_line([0, 50, 100, 150, 200], [-3.0, 47.0, 98.0, 148.0, 197.0])
    assert fit_problems(good) == []
    bent = fit_line([0, 50, 100, 150, 200], [0.0, 50.0, 160.0, 150.0, 200.0])
    problems = "; ".join(fit_problems(bent))
    assert "R²" in problems and "rod 3 of 5" in problems
    steep = fit_line([0, 50, 100, 150, 200], [300.0, 450.0, 600.0, 750.0, 900.0])
    problems = "; ".join(fit_problems(steep))
    assert "slope 3.000" in problems and "intercept 300.0" in problems
