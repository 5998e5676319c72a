"""Radiographs as PACS systems export them: every common DICOM transfer syntax decodes
to the pixels that were encoded (lossless ones exactly, baseline JPEG within its
quantisation), with the decoders pyproject.toml declares. Each file is made here, from
one 12-bit (8-bit for baseline JPEG) image, by pydicom's own encoders, Pillow's, or
libjpeg-turbo's through imagecodecs (JPEG lossless and extended, which nothing else in
Python writes)."""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
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
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
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


def _encapsulated(path, pixels, bits, syntax, codestream: bytes) -> Path:
    ds = _plain(path.with_suffix(".plain.dcm"), pixels, bits)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(("syntax", "predictor"), [(JPEGLosslessSV1, 1), (JPEGLossless, 6)])
def test_jpeg_lossless_decodes_to_the_encoded_pixels(tmp_path, syntax, predictor):
    """Process 14, first-order prediction (SV1, the usual PACS one) and another
    predictor: 12 bits, every pixel back."""
    pixels = _image(12)
    stream = imagecodecs.jpeg8_encode(pixels, lossless=True, predictor=predictor,
                                      bitspersample=12)  # fmt: skip
    path = _encapsulated(tmp_path / "lossless.dcm", pixels, 12, syntax, stream)
    np.testing.assert_array_equal(read_radiograph(path).pixels, pixels)


def test_jpeg_extended_12_bit_decodes_within_its_quantisation(tmp_path):
    pixels = _image(12)
    stream = imagecodecs.jpeg8_encode(pixels, level=95, bitspersample=12)
    path = _encapsulated(tmp_path / "extended.dcm", pixels, 12, JPEGExtended12Bit, stream)
    decoded = read_radiograph(path).pixels.astype(float)
    assert np.abs(decoded - pixels).mean() < 0.005 * 4095  # quality 95, of 12 bits


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGLosslessSV1])
def test_compressed_ct_series_read_as_the_uncompressed_one(tmp_path, syntax):
    """A CT series whose slices a PACS stored compressed reads to the same HU, on the
    same grid, as the uncompressed series (GDCM decodes them for SimpleITK)."""
    import SimpleITK as sitk

    from conventions.ct import read_ct, write_dicom_series

    hu = np.full((4, 64, 64), -1000.0, np.float32)  # JPEG 2000's levels need 64 pixels
    hu[:, 16:48, 12:40] = 40.0
    hu[:, 24:36, 18:28] = 900.0
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((1.5, 1.5, 3.0))
    image.SetOrigin((-20.0, -30.0, 10.0))
    plain = tmp_path / "plain"
    write_dicom_series(plain, image, "PSEUDO")
    packed = tmp_path / "packed"
    packed.mkdir()
    for f in sorted(plain.iterdir()):
        ds = pydicom.dcmread(f)
        if syntax == JPEGLosslessSV1:
            stream = imagecodecs.jpeg8_encode(ds.pixel_array, lossless=True, predictor=1,
                                              bitspersample=16)  # fmt: skip
            ds.PixelData = encapsulate([stream])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax)
        ds.save_as(packed / f.name, enforce_file_format=True)
    assert pydicom.dcmread(next(packed.iterdir())).file_meta.TransferSyntaxUID == syntax
    a, b = read_ct(plain), read_ct(packed)
    assert b.GetSpacing() == a.GetSpacing() and b.GetOrigin() == a.GetOrigin()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(b), sitk.GetArrayFromImage(a))
