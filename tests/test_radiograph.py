"""Radiograph reading: real DICOMs, photometric handling, geometry and what is missing."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import IDENTIFIERS, write_dicom_radiograph
from conventions.errors import InputError
from conventions.radiograph import read_radiograph, to_grey


@pytest.mark.realdata
def test_real_ddh_dicoms_read_and_report_missing_geometry(ddh_files):
    for f in ddh_files:
        ds = pydicom.dcmread(f)
        r = read_radiograph(f)
        assert r.pixels.shape == (ds.Rows, ds.Columns) == (331, 331)
        assert r.pixels.dtype == np.float32
        # RGB J2K files whose channels are equal: grey is any channel, exactly.
        rgb = ds.pixel_array
        assert np.array_equal(r.pixels, rgb[..., 0].astype(np.float32))
        assert r.info["transfer_syntax"] == "JPEG 2000 Image Compression"
        assert r.info["photometric_interpretation"] == "RGB"
        # PixelSpacing = 1.0 is a placeholder and must not be taken as detector spacing.
        assert r.geometry is None
        assert r.missing == (
            "pixel_spacing_mm (ImagerPixelSpacing (0018,1164))",
            "sdd_mm (DistanceSourceToDetector (0018,1110))",
            "source_to_patient_mm (DistanceSourceToPatient (0018,1111))",
        )
        with pytest.raises(InputError) as e:
            r.require_geometry()
        msg = str(e.value)
        assert str(f) in msg and "ImagerPixelSpacing" in msg and "DistanceSourceToDetector" in msg
        # Nothing identifying is carried along.
        assert str(ds.PatientName) not in json.dumps(r.info)


@pytest.mark.realdata
def test_geometry_json_completes_a_real_dicom(ddh_files, tmp_path):
    g = tmp_path / "geometry.json"
    g.write_text(json.dumps({"sdd_mm": 1000.0, "pixel_spacing_mm": [0.5, 0.5]}))
    r = read_radiograph(ddh_files[0], g)
    geom = r.require_geometry()
    assert (geom.rows, geom.cols, geom.sdd_mm) == (331, 331, 1000.0)
    assert r.missing == ()  # the source-to-patient distance is assumed, and says so:
    assert r.info["geometry_sources"] == {
        "sdd_mm": "geometry override",
        "pixel_spacing_mm": "geometry override",
        "source_to_patient_mm": "assumed: SDD - 160 mm (table, grid, detector housing)",
    }
    assert r.info["geometry_assumed"] == ["source_to_patient_mm"]
    assert geom.source_to_patient_mm == 840.0
    # A geometry file for a different image size is an error naming it.
    g.write_text(json.dumps({"sdd_mm": 1000.0, "pixel_spacing_mm": [0.5, 0.5], "rows": 512}))
    with pytest.raises(InputError, match="rows=512") as e:
        read_radiograph(ddh_files[0], g)
    assert str(g) in str(e.value)


def test_monochrome1_is_inverted_over_the_stored_range(tmp_path):
    stored = np.tile(np.array([[0, 100, 4095], [2000, 7, 300]], dtype=np.uint16), (8, 6))
    write_dicom_radiograph(
        tmp_path / "m1.dcm",
        stored,
        photometric="MONOCHROME1",
        bits_stored=12,
        ImagerPixelSpacing=[0.15, 0.14],
        DistanceSourceToDetector="1150",
        DistanceSourceToPatient="1000",
    )
    r = read_radiograph(tmp_path / "m1.dcm")
    assert np.array_equal(r.pixels, 4095.0 - stored)
    g = r.require_geometry()
    assert (g.row_spacing_mm, g.col_spacing_mm, g.sdd_mm) == (0.15, 0.14, 1150.0)
    assert g.source_to_patient_mm == 1000.0
    assert r.missing == ()
    assert not set(IDENTIFIERS.values()) & set(map(str, r.info.values()))


def test_monochrome2_with_rescale_keeps_bone_bright(tmp_path):
    stored = np.tile(np.array([[10, 20], [30, 40]], dtype=np.uint16), (8, 8))
    write_dicom_radiograph(tmp_path / "m2.dcm", stored, RescaleSlope="2", RescaleIntercept="-5")
    r = read_radiograph(tmp_path / "m2.dcm")
    assert np.array_equal(r.pixels, stored * 2.0 - 5.0)


def test_rgb_to_grey_uses_luma_weights_when_channels_differ():
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 0] = (100, 100, 100)
    rgb[0, 1] = (255, 0, 0)
    grey = to_grey(rgb)
    assert grey[0, 1] == pytest.approx(0.299 * 255, rel=1e-6)
    assert grey[0, 0] == pytest.approx(100 * (0.299 + 0.587 + 0.114), rel=1e-6)


def test_mha_spacing_is_used_and_png_spacing_is_not(tmp_path):
    px = np.arange(16 * 20, dtype=np.float32).reshape(16, 20) % 200
    img = sitk.GetImageFromArray(px)
    img.SetSpacing((0.2, 0.3))  # (x = column, y = row)
    sitk.WriteImage(img, str(tmp_path / "r.mha"))
    r = read_radiograph(tmp_path / "r.mha", {"sdd_mm": 1000.0})
    assert r.require_geometry().pixel_spacing_mm == (0.3, 0.2)
    assert np.array_equal(r.pixels, px)

    sitk.WriteImage(sitk.GetImageFromArray(px.astype(np.uint8)), str(tmp_path / "r.png"))
    r = read_radiograph(tmp_path / "r.png", {"sdd_mm": 1000.0})
    assert r.missing[0] == "pixel_spacing_mm"
    assert r.geometry is None


@pytest.mark.parametrize("content", [b"", b"DICM" * 10, b"\x00" * 300])
def test_unreadable_files_raise_input_errors_naming_them(tmp_path, content):
    f = tmp_path / "broken.dcm"
    f.write_bytes(content)
    with pytest.raises(InputError) as e:
        read_radiograph(f)
    assert str(f) in str(e.value)
