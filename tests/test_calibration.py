"""Phantom calibration against the synthetic cohort's true scanner line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from calibration.fit import calibrate_with_rods, fit_line
from calibration.rods import find_rods
from conventions.ct import read_ct
from phantom.cohort import generate_subject


def calibrate_cli(subject: str, ct, out_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "calibration",
            "--subject",
            subject,
            "--ct",
            str(ct),
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
    assert "cannot calibrate" in p.stderr
    assert not (tmp_path / "density.nii.gz").exists()


def test_line_fit_is_exact_on_a_line():
    fit = fit_line([0, 50, 100], [-10.0, 30.0, 70.0])
    assert fit["slope_hu_per_mg_cm3"] == pytest.approx(0.8)
    assert fit["intercept_hu"] == pytest.approx(-10.0)
    assert fit["r_squared"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 rods for 5"):
        calibrate_with_rods([None] * 3, [0, 50, 100, 150, 200])
