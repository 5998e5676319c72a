"""Radiographs: pixels as float32 with bone bright (MONOCHROME2), plus their geometry.

Formats: DICOM (any transfer syntax pydicom can decode with the declared decoders:
JPEG baseline, extended and lossless, JPEG-LS, JPEG 2000, RLE, deflate), MHA/MHD/NRRD,
PNG/TIFF; :func:`write_dicom_dx` writes the DX files the phantom and the simulator make,
beside the reader that reads them back. Geometry comes from the DICOM tags that describe
the detector — ImagerPixelSpacing (0018,1164), DistanceSourceToDetector (0018,1110),
DistanceSourceToPatient (0018,1111) — and a geometry.json may supply or override any
value. PixelSpacing (0028,0030) is deliberately not used: it is often a placeholder
(1.0) or calibrated at the patient, not at the detector.

Only non-identifying header values are kept (see docs/conventions.md, Privacy).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from conventions.errors import InputError
from conventions.files import atomic_path
from conventions.geometry import ProjectionGeometry, read_json_object

# Geometry values a radiograph needs, and the DICOM tag each comes from.
DICOM_GEOMETRY_TAGS = {
    "pixel_spacing_mm": "ImagerPixelSpacing (0018,1164)",
    "sdd_mm": "DistanceSourceToDetector (0018,1110)",
    "source_to_patient_mm": "DistanceSourceToPatient (0018,1111)",
}
REQUIRED_GEOMETRY = ("pixel_spacing_mm", "sdd_mm")
# Source-to-patient distance when neither the file nor the site gives it: the detector
# distance less the table, grid and detector housing behind the patient (a typical
# bucky). Recorded as assumed wherever it is used.
PATIENT_TO_DETECTOR_MM = 160.0
ASSUMED_SOD = f"assumed: SDD - {PATIENT_TO_DETECTOR_MM:.0f} mm (table, grid, detector housing)"
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as DICOM YBR uses
RASTER_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd")
# The smallest radiograph worth registering: a clinical hip film is ~2,000 pixels a side,
# our synthetic ones ~100; anything under this is a thumbnail or a broken file.
MIN_RADIOGRAPH_PIXELS = 16


@dataclass
class Radiograph:
    """One radiograph, its geometry when known, and which geometry values are missing."""

    pixels: np.ndarray  # float32 (rows, cols); larger = more attenuation
    geometry: ProjectionGeometry | None
    missing: tuple[str, ...]  # geometry values neither the file nor an override gave
    info: dict[str, Any] = field(default_factory=dict)  # non-identifying provenance
    path: str | None = None

    def require_geometry(self) -> ProjectionGeometry:
        """The geometry, or an InputError saying exactly which values are missing."""
        required_missing = [m for m in self.missing if m.split(" ")[0] in REQUIRED_GEOMETRY]
        if self.geometry is None or required_missing:
            raise InputError(
                self.path,
                "radiograph geometry incomplete, missing "
                + ", ".join(required_missing or self.missing)
                + "; supply them in a geometry JSON (manifest column 'geometry')",
            )
        return self.geometry


def read_radiograph(
    path: str | Path,
    geometry_override: dict[str, Any] | str | Path | None = None,
    site_defaults: dict[str, Any] | None = None,
) -> Radiograph:
    """Read a radiograph and whatever geometry it and ``geometry_override`` give.

    ``geometry_override`` is a geometry.json path or mapping; its values take precedence
    over the file's tags. rows/cols in it, if given, must match the image.
    ``site_defaults`` (``pixel_spacing_mm``, ``sdd_mm``, ``source_to_patient_mm``: the
    site's usual acquisition, from the config) fill only what neither gives. A missing
    source-to-patient distance is then assumed as SDD less 160 mm. Where each value came
    from is ``info["geometry_sources"]``; the filled ones are also listed in
    ``info["geometry_assumed"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "radiograph not found")
    suffix = path.suffix.lower()
    if suffix in ITK_SUFFIXES or suffix in RASTER_SUFFIXES:
        pixels, values, info = _read_with_sitk(path, trust_spacing=suffix in ITK_SUFFIXES)
    else:  # DICOM files often have no suffix at all
        pixels, values, info = _read_dicom(path)
    check_radiograph_pixels(pixels, path)

    override: dict[str, Any] = {}
    override_source = None
    if geometry_override is not None:
        if not isinstance(geometry_override, dict):
            override_source = geometry_override
            geometry_override = read_json_object(geometry_override)
        override = dict(geometry_override)
        for key in ("rows", "cols"):
            if key in override and override[key] != pixels.shape[0 if key == "rows" else 1]:
                raise InputError(
                    override_source or path,
                    f"geometry says {key}={override[key]} but the image has "
                    f"{pixels.shape[0]} rows × {pixels.shape[1]} cols",
                )
    sources = {k: info["format"] + " header" for k, v in values.items() if v is not None}
    for k, v in override.items():
        if k not in ("rows", "cols") and v is not None:
            values[k] = v
            sources[k] = "geometry override"

    assumed = []
    for k, v in (site_defaults or {}).items():
        if k not in DICOM_GEOMETRY_TAGS:
            raise InputError(
                None, f"unknown site default {k!r}: one of {list(DICOM_GEOMETRY_TAGS)}"
            )
        if v is not None and values.get(k) is None:
            if k == "pixel_spacing_mm" and np.ndim(v) == 0:
                v = [float(v), float(v)]  # square pixels, as detectors have
            values[k] = v
            sources[k] = "site default (config)"
            assumed.append(k)
    if values.get("source_to_patient_mm") is None and values.get("sdd_mm") is not None:
        sdd = values["sdd_mm"]
        values["source_to_patient_mm"] = float(sdd) - PATIENT_TO_DETECTOR_MM
        sources["source_to_patient_mm"] = ASSUMED_SOD
        assumed.append("source_to_patient_mm")
    info["geometry_sources"] = sources
    info["geometry_assumed"] = assumed
    # What is still missing once the site and the assumption have filled what they can.
    missing = tuple(
        f"{k} ({DICOM_GEOMETRY_TAGS[k]})" if info["format"] == "DICOM" else k
        for k in DICOM_GEOMETRY_TAGS
        if values.get(k) is None
    )
    geometry = None
    if all(values.get(k) is not None for k in REQUIRED_GEOMETRY):
        d = {
            **{k: v for k, v in values.items() if v is not None},
            "rows": int(pixels.shape[0]),
            "cols": int(pixels.shape[1]),
        }
        geometry = ProjectionGeometry.from_dict(d, source=override_source or path)
    return Radiograph(pixels, geometry, missing, info, str(path))


def check_radiograph_pixels(pixels: np.ndarray, path: str | Path | None = None) -> None:
    """Raise InputError when ``pixels`` cannot be a radiograph: too small, non-finite, blank."""
    rows, cols = pixels.shape
    if min(rows, cols) < MIN_RADIOGRAPH_PIXELS:
        raise InputError(
            path, f"image of {rows} × {cols} pixels is too small for a radiograph "
            f"(at least {MIN_RADIOGRAPH_PIXELS} a side)",
        )  # fmt: skip
    finite = np.isfinite(pixels)
    if not finite.all():
        raise InputError(path, f"{int((~finite).sum())} NaN or infinite pixel value(s)")
    lo, hi = float(pixels.min()), float(pixels.max())
    if lo == hi:
        raise InputError(path, f"blank image: every pixel is {lo:g}")


def _read_dicom(path: Path) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    # pydicom parses lazily and its decoders raise many types on corrupt bytes (struct
    # errors, BytesLengthException, IndexError…): whatever a broken file raises becomes
    # an InputError naming it.
    try:
        return _read_dicom_file(path)
    except InputError:
        raise
    except Exception as e:
        raise InputError(path, f"corrupt DICOM file ({type(e).__name__}: {e})") from None


def _read_dicom_file(path: Path) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as e:
        raise InputError(path, f"not a readable DICOM file ({e})") from None
    if "PixelData" not in ds:
        raise InputError(path, "DICOM file holds no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as e:  # decoders raise many types; the message is what matters
        raise InputError(path, f"cannot decode DICOM pixel data ({e})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError(path, f"multi-frame DICOM ({frames} frames); expected one radiograph")

    notes = []
    if photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, photometric, "RGB")
        notes.append(f"{photometric} converted to RGB")
        photometric = "RGB"
    if arr.ndim == 3:
        pixels = to_grey(arr)
        notes.append("colour image reduced to its luminance")
    elif arr.ndim == 2:
        pixels = arr.astype(np.float32)
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        pixels = pixels * np.float32(slope) + np.float32(intercept)
        if photometric == "MONOCHROME1":
            # Invert about the stored value range so the result does not depend on content.
            bits = int(ds.get("BitsStored", 16))
            signed = int(ds.get("PixelRepresentation", 0)) == 1
            lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
            lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
            pixels = np.float32(lo + hi) - pixels
            notes.append(f"MONOCHROME1 inverted about its {bits}-bit range")
    else:
        raise InputError(path, f"unexpected pixel array shape {arr.shape}")

    values: dict[str, Any] = {
        "pixel_spacing_mm": _dicom_pair(ds.get("ImagerPixelSpacing")),
        "sdd_mm": _dicom_positive(ds.get("DistanceSourceToDetector")),
        "source_to_patient_mm": _dicom_positive(ds.get("DistanceSourceToPatient")),
    }
    info = {
        "format": "DICOM",
        "modality": str(ds.get("Modality", "")),
        "photometric_interpretation": photometric,
        "bits_stored": int(ds.get("BitsStored", 0) or 0),
        "transfer_syntax": _transfer_syntax_name(ds),
        "view_position": str(ds.get("ViewPosition", "")),
        "body_part": str(ds.get("BodyPartExamined", "")),
        "import_notes": notes,
    }
    return np.ascontiguousarray(pixels, dtype=np.float32), values, info


def _transfer_syntax_name(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return uid.name if uid is not None else ""


def _read_with_sitk(
    path: Path, trust_spacing: bool
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise InputError(path, f"cannot read image ({str(e).strip().splitlines()[-1]})") from None
    arr = sitk.GetArrayFromImage(image)
    vector = image.GetNumberOfComponentsPerPixel() > 1
    if image.GetDimension() == 3 and image.GetSize()[2] == 1:
        arr = arr[0]
    if arr.ndim - int(vector) != 2:
        raise InputError(path, f"expected a 2D image, got size {image.GetSize()}")
    pixels = to_grey(arr) if vector else arr.astype(np.float32)
    notes = ["colour image reduced to its luminance"] if vector else []
    spacing = image.GetSpacing()
    values: dict[str, Any] = {
        # Raster formats have no real spacing (always 1), ITK formats do.
        "pixel_spacing_mm": [float(spacing[1]), float(spacing[0])] if trust_spacing else None,
        "sdd_mm": None,
        "source_to_patient_mm": None,
    }
    info = {"format": path.suffix.lower().lstrip(".").upper(), "import_notes": notes}
    return np.ascontiguousarray(pixels, dtype=np.float32), values, info


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Luminance of an (rows, cols, 3 or 4) colour image; exact when R = G = B."""
    if rgb.shape[-1] not in (3, 4):
        raise ValueError(f"expected 3 or 4 colour channels, got {rgb.shape[-1]}")
    c = rgb[..., :3].astype(np.float32)
    if np.array_equal(c[..., 0], c[..., 1]) and np.array_equal(c[..., 1], c[..., 2]):
        return c[..., 0].copy()
    return (c @ LUMA_WEIGHTS.astype(np.float32)).astype(np.float32)


def _dicom_pair(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        pair = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return pair if len(pair) == 2 and all(v > 0 for v in pair) else None


def _dicom_positive(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def write_radiograph(path: str | Path, pixels: np.ndarray, geometry: ProjectionGeometry) -> None:
    """Write float32 pixels as MHA with the detector pixel spacing and no other metadata."""
    image = sitk.GetImageFromArray(np.asarray(pixels, dtype=np.float32))
    image.SetSpacing((geometry.col_spacing_mm, geometry.row_spacing_mm))
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def write_dicom_dx(
    path,
    pixels: np.ndarray,
    geometry: ProjectionGeometry,
    source_to_patient_mm: float,
    subject_id: str,
    image_id: str,
    bits_stored: int = 12,
    uid_entropy: list[str] | None = None,
) -> None:
    """A DX DICOM file (MONOCHROME2) with the detector geometry tags, keyed by pseudonyms
    only: no name, birth date or institution is ever written. With ``uid_entropy`` the
    UIDs derive from it, so the same inputs give the same bytes."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=[*uid_entropy, kind]) if uid_entropy else generate_uid()

    dx_storage = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage – Presentation
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dx_storage
    meta.MediaStorageSOPInstanceUID = uid("instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = dx_storage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid(f"series {image_id}")
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "AP", "HIP"
    ds.PatientID, ds.SeriesDescription = subject_id, f"synthetic {image_id}"
    ds.ContentDate = datetime.date(2000, 1, 1).strftime("%Y%m%d")  # fixed: no real dates
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        16,
        bits_stored,
        bits_stored - 1,
        0,
    )
    ds.ImagerPixelSpacing = [f"{geometry.row_spacing_mm:.6g}", f"{geometry.col_spacing_mm:.6g}"]
    ds.DistanceSourceToDetector = f"{geometry.sdd_mm:.6g}"
    ds.DistanceSourceToPatient = f"{source_to_patient_mm:.6g}"
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    with atomic_path(path) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
