"""Radiographs as PACS systems export them: every common DICOM transfer syntax decodes
to the pixels that were encoded (lossless ones exactly, baseline JPEG within its
quantisation), with the decoders pyproject.toml declares. Each file is made here, from
one 12-bit (8-bit for baseline JPEG) image, by pydicom's own encoders or Pillow's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from conftest import write_dicom_radiograph
from conventions.radiograph import read_radiograph

GEOMETRY = {"ImagerPixelSpacing": [0.2, 0.2], "DistanceSourceToDetector": "1100",
            "DistanceSourceToPatient": "1000"}  # fmt: skip


def _image(bits: int) -> np.ndarray:
    """A hip-like test image: a bright disc on a ramp, every value within ``bits``."""
    rows, cols = 64, 48
    y, x = np.mgrid[:rows, :cols]
    image = 0.3 + 0.4 * x / cols + 0.3 * (np.hypot(y - 30, x - 20) < 12)
    return np.round(image / image.max() * (2**bits - 1)).astype(np.uint16)


def _plain(path: Path, pixels: np.ndarray, bits: int) -> pydicom.Dataset:
    write_dicom_radiograph(path, pixels, bits_stored=bits, **GEOMETRY)
    return pydicom.dcmread(path)


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless]
)
def test_lossless_syntaxes_decode_to_the_encoded_pixels(tmp_path, syntax):
    pixels = _image(12)
    ds = _plain(tmp_path / "plain.dcm", pixels, 12)
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)  # pydicom's RLE, pyjpegls, pylibjpeg-openjpeg
    path = tmp_path / "encoded.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    r = read_radiograph(path)
    np.testing.assert_array_equal(r.pixels, pixels)
    assert r.require_geometry().sdd_mm == 1100.0


def test_deflated_files_decode(tmp_path):
    pixels = _image(12)
    ds = _plain(tmp_path / "plain.dcm", pixels, 12)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    np.testing.assert_array_equal(read_radiograph(path).pixels, pixels)


def test_baseline_jpeg_decodes_within_its_quantisation(tmp_path):
    pixels = _image(8)
    ds = _plain(tmp_path / "plain.dcm", pixels, 8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=95)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    path = tmp_path / "baseline.dcm"
    ds.save_as(path, enforce_file_format=True)
    decoded = read_radiograph(path).pixels.astype(float)
    assert np.abs(decoded - pixels).mean() < 2.0  # of 255: quality 95
