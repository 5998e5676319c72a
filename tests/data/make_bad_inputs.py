"""Write the bad-input corpus, ``tests/data/bad/``: small files broken in the ways hospital
data arrives broken, each with the outcome the pipeline must give (``cases.tsv``).

    python tests/data/make_bad_inputs.py            # (re)write tests/data/bad/
    python tests/data/make_bad_inputs.py --out DIR  # elsewhere (the tests compare bytes)

Everything is deterministic (fixed UIDs, no time stamps), so running it again gives the
same bytes; ``tests/test_bad_inputs.py`` checks that the committed corpus is what this
script writes, and that every case has its outcome, reader by reader and through the
workflow. docs/robustness.md is the table of these cases for users.

cases.tsv columns: ``case`` (its file or folder under bad/), ``kind`` (ct, radiograph,
geometry, landmarks, manifest), ``stage`` (the workflow rule that decides), ``outcome``
(error: the job stops naming subject, file and reason; fallback: the input is used and
what was done is recorded in the fingerprint and the log; accepted: used as it is) and
``expect`` (a phrase of the error or of the recorded note).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))
from conventions.ct import write_dicom_series  # noqa: E402

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
GEOMETRY = {
    "ImagerPixelSpacing": ["0.5", "0.5"],
    "DistanceSourceToDetector": "1100",
    "DistanceSourceToPatient": "1000",
}

# case, kind, stage, outcome, expect
CASES = [
    ("ct_dicom_missing_slice", "ct", "import_ct", "error", "missing slice(s)"),
    ("ct_dicom_uneven_spacing", "ct", "import_ct", "error", "uneven slice spacing"),
    ("ct_dicom_gantry_tilt", "ct", "import_ct", "fallback", "gantry tilt of 15.00 degrees"),
    ("ct_dicom_truncated_slice", "ct", "import_ct", "error", "not part of the series"),
    ("ct_dicom_two_positions_one_slice", "ct", "import_ct", "error", "two slices at the same"),
    ("ct_singular_affine.nii", "ct", "import_ct", "error", "cannot read CT volume"),
    ("ct_nan_voxels.nii.gz", "ct", "import_ct", "error", "NaN or infinite voxel"),
    ("ct_empty.nii.gz", "ct", "import_ct", "error", "empty file (0 bytes)"),
    ("ct_one_slice.nii.gz", "ct", "import_ct", "error", "volume too small"),
    ("ct_not_a_volume.nii.gz", "ct", "import_ct", "error", "cannot read CT volume"),
    ("ct_chest_only.nii.gz", "ct", "segment", "error", "no femoral head in the field of view"),
    ("ct_ten_components.nii.gz", "ct", "import_ct", "error", "one value per voxel, got 10"),
    ("ct_4d.nii.gz", "ct", "import_ct", "error", "expected a 3D volume, got 4D"),
    ("ct_too_small.nii.gz", "ct", "import_ct", "error", "too small to hold a hip"),
    ("rad_truncated.dcm", "radiograph", "import_radiograph", "error", "cannot decode DICOM"),
    ("rad_corrupted_header.dcm", "radiograph", "import_radiograph", "error", "DICOM"),
    ("rad_not_dicom.dcm", "radiograph", "import_radiograph", "error", "not a readable DICOM"),
    ("rad_all_black.dcm", "radiograph", "import_radiograph", "error", "blank image"),
    ("rad_1x1.dcm", "radiograph", "import_radiograph", "error", "too small for a radiograph"),
    ("rad_rgb.dcm", "radiograph", "import_radiograph", "fallback", "reduced to its luminance"),
    ("rad_monochrome1.dcm", "radiograph", "import_radiograph", "fallback", "MONOCHROME1 inverted"),
    ("rad_12bit_junk_high_bits.dcm", "radiograph", "import_radiograph", "accepted", ""),
    ("rad_no_geometry.dcm", "radiograph", "import_radiograph", "error", "DistanceSourceToDetector"),
    ("geometry_not_json.json", "geometry", "import_radiograph", "error", "not valid JSON"),
    ("geometry_negative_sdd.json", "geometry", "import_radiograph", "error", "sdd_mm must be"),
    ("landmarks_no_system.fcsv", "landmarks", "landmarks", "error", "cannot tell RAS from LPS"),
    ("landmarks_ijk.mrk.json", "landmarks", "landmarks", "error", "unknown coordinate system"),
    ("manifest_latin1", "manifest", "validate", "error", "not UTF-8"),
    ("manifest_duplicate_ids", "manifest", "validate", "error", "duplicate"),
    ("manifest_path_outside", "manifest", "validate", "error", "outside the cohort's data roots"),
    ("manifest_bad_id", "manifest", "validate", "error", "does not match"),
    ("manifest_crlf", "manifest", "validate", "accepted", ""),
    ("manifest_bom", "manifest", "validate", "accepted", ""),
]


def _uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["xray-bmd bad-input corpus", *parts])


def write_dx(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2",
             bits_stored: int = 12, geometry: bool = True, tags: dict | None = None,
             ) -> None:  # fmt: skip
    """A single-frame DX radiograph with fixed UIDs (same inputs, same bytes); ``tags``
    are set as DICOM attributes last (the tests' identifiers, geometry…)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_STORAGE
    meta.MediaStorageSOPInstanceUID = _uid(path.name)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = DX_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "DX", "BAD-CORPUS"
    ds.Rows, ds.Columns = pixels.shape[:2]
    if pixels.ndim == 3:
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = pixels.astype(np.uint8).tobytes()
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    for k, v in {**(GEOMETRY if geometry else {}), **(tags or {})}.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)


def hip_like_radiograph(rows: int = 48, cols: int = 40) -> np.ndarray:
    """A 12-bit image with some structure (a bright disc on a ramp)."""
    r, c = np.mgrid[0:rows, 0:cols]
    disc = ((r - rows / 2) ** 2 + (c - cols / 3) ** 2) < (rows / 5) ** 2
    return (400 + 20 * c + 2000 * disc).astype(np.uint16)


# Coarse voxels: few bytes, yet a field of 80 × 80 × 64 mm, as big as a hip needs
# (cohort.ingest.MIN_HIP_EXTENT_MM), so each case fails for its own fault only.
CT_SPACING = (5.0, 5.0, 8.0)


def _ct_image(shape_zyx=(8, 16, 16), spacing=CT_SPACING) -> sitk.Image:
    hu = np.full(shape_zyx, -1000.0, dtype=np.float32)
    hu[:, 4:12, 4:12] = 40.0
    hu[:, 7:9, 7:9] = 700.0
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(spacing)
    image.SetOrigin((-40.0, -40.0, 0.0))
    return image


def _series(folder: Path, name: str) -> list[Path]:
    """A small valid CT series; its slice files in stacking order."""
    write_dicom_series(folder, _ct_image(), "BAD-CORPUS", uid_entropy=[name])
    return sorted(folder.iterdir())  # slice_0000.dcm … in stacking order


def _move_slice(f: Path, dz: float = 0.0, dy: float = 0.0) -> None:
    ds = pydicom.dcmread(f)
    x, y, z = (float(v) for v in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [f"{x:.4f}", f"{y + dy:.4f}", f"{z + dz:.4f}"]
    ds.save_as(f, enforce_file_format=True)


def _nifti_bytes(img: nib.Nifti1Image) -> bytes:
    """NIfTI bytes, gzipped without a time stamp (nibabel's gzip stamps the time)."""
    raw = img.to_bytes()
    return gzip.compress(raw, mtime=0)


def chest_only_ct() -> nib.Nifti1Image:
    """A CT of the chest: soft tissue, two lungs, a spine and a sternum, no pelvis or
    femur (4 mm voxels, int16 HU)."""
    nz, ny, nx = 30, 60, 80
    _, y, x = np.mgrid[0:nz, 0:ny, 0:nx].astype(np.float32)
    body = ((x - 40) / 36) ** 2 + ((y - 30) / 24) ** 2 <= 1
    fat = body & (((x - 40) / 32) ** 2 + ((y - 30) / 20) ** 2 > 1)
    lungs = ((((x - 25) / 10) ** 2 + ((y - 28) / 12) ** 2) <= 1) | (
        (((x - 55) / 10) ** 2 + ((y - 28) / 12) ** 2) <= 1
    )
    spine = ((x - 40) ** 2 + (y - 44) ** 2) <= 16
    sternum = (np.abs(x - 40) <= 2) & (np.abs(y - 10) <= 1)
    hu = np.full((nz, ny, nx), -1000, dtype=np.int16)
    hu[body] = 45
    hu[fat] = -100
    hu[lungs] = -850
    hu[spine | sternum] = 600
    # nibabel's axes are (i, j, k) = (x, y, z); RAS affine with 4 mm voxels
    data = np.ascontiguousarray(np.transpose(hu, (2, 1, 0)))
    img = nib.Nifti1Image(data, np.diag([-4.0, -4.0, 4.0, 1.0]))
    img.header.set_xyzt_units("mm")
    return img


def write_corpus(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # --- CT: DICOM series broken in their slice stacks
    files = _series(out / "ct_dicom_missing_slice", "missing")
    files[4].unlink()
    files = _series(out / "ct_dicom_uneven_spacing", "uneven")
    for f in files[5:]:
        _move_slice(f, dz=3.0)
    files = _series(out / "ct_dicom_gantry_tilt", "tilt")
    for k, f in enumerate(files):  # each slice offset in plane by k·dz·tan(15°)
        _move_slice(f, dy=k * CT_SPACING[2] * np.tan(np.radians(15.0)))
        ds = pydicom.dcmread(f)
        ds.GantryDetectorTilt = "15"
        ds.save_as(f, enforce_file_format=True)
    files = _series(out / "ct_dicom_truncated_slice", "truncated")
    files[3].write_bytes(files[3].read_bytes()[:-300])
    files = _series(out / "ct_dicom_two_positions_one_slice", "two positions")
    _move_slice(files[6], dz=-CT_SPACING[2])

    # --- CT: volumes
    data = np.asarray(sitk.GetArrayFromImage(_ct_image()).transpose(2, 1, 0), dtype=np.float32)
    header = nib.Nifti1Header()
    header.set_qform(None, code=0)
    header.set_sform(np.diag([5.0, 5.0, 0.0, 1.0]), code=1)  # a zero column: singular
    header.set_data_dtype(np.float32)
    singular = nib.Nifti1Image(data, None, header)
    singular.header["srow_z"] = [0.0, 0.0, 0.0, 0.0]
    (out / "ct_singular_affine.nii").write_bytes(singular.to_bytes())
    nan = data.copy()
    nan[3, 4, 5], nan[8, 8, 2] = np.nan, np.inf
    (out / "ct_nan_voxels.nii.gz").write_bytes(_nifti_bytes(nib.Nifti1Image(nan, np.eye(4))))
    (out / "ct_empty.nii.gz").write_bytes(b"")
    flat = nib.Nifti1Image(data[:, :, :1].copy(), np.eye(4))
    (out / "ct_one_slice.nii.gz").write_bytes(_nifti_bytes(flat))
    (out / "ct_not_a_volume.nii.gz").write_bytes(gzip.compress(b"subject,ct\nP01,x\n", mtime=0))
    (out / "ct_chest_only.nii.gz").write_bytes(_nifti_bytes(chest_only_ct()))
    # ITK reads these as scalar 3D volumes when asked for float voxels (a 4D series
    # folded, one channel of ten kept): only the header tells them from a CT.
    ten = np.zeros((10, 10, 2, 1, 10), np.float32)  # x, y, z, t, components (NIfTI)
    vector = nib.Nifti1Image(ten, np.eye(4))
    vector.header.set_intent("vector")  # the fifth axis holds each voxel's components
    (out / "ct_ten_components.nii.gz").write_bytes(_nifti_bytes(vector))
    four = np.zeros((16, 16, 8, 3), np.float32)
    series = nib.Nifti1Image(four, np.diag([5.0, 5.0, 5.0, 1.0]))
    (out / "ct_4d.nii.gz").write_bytes(_nifti_bytes(series))
    small = np.full((20, 20, 20), 40.0, np.float32)  # 2 cm a side: no hip fits
    (out / "ct_too_small.nii.gz").write_bytes(_nifti_bytes(nib.Nifti1Image(small, np.eye(4))))

    # --- radiographs
    px = hip_like_radiograph()
    write_dx(out / "rad_ok.dcm", px)
    ok = (out / "rad_ok.dcm").read_bytes()
    (out / "rad_truncated.dcm").write_bytes(ok[: len(ok) - 1000])
    bad = bytearray(ok)
    rng = np.random.default_rng(11)
    for i in rng.integers(132, 400, 60):  # scramble the header after the preamble
        bad[i] = int(rng.integers(0, 256))
    (out / "rad_corrupted_header.dcm").write_bytes(bytes(bad))
    (out / "rad_not_dicom.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    write_dx(out / "rad_all_black.dcm", np.zeros_like(px))
    write_dx(out / "rad_1x1.dcm", np.full((1, 1), 1000, np.uint16))
    rgb = np.stack([px // 16, px // 20, px // 24], axis=-1).astype(np.uint8)
    write_dx(out / "rad_rgb.dcm", rgb)
    write_dx(out / "rad_monochrome1.dcm", 4095 - px, photometric="MONOCHROME1")
    write_dx(out / "rad_12bit_junk_high_bits.dcm", px | 0xA000)  # bits 13..16 hold junk
    write_dx(out / "rad_no_geometry.dcm", px, geometry=False)
    (out / "geometry_not_json.json").write_text('{"sdd_mm": 1100, pixel_spacing_mm: [0.5]\n')
    (out / "geometry_negative_sdd.json").write_text(
        json.dumps({"sdd_mm": -1100, "pixel_spacing_mm": [0.5, 0.5]}) + "\n"
    )

    # --- landmarks: files that do not say which frame they are in
    (out / "landmarks_no_system.fcsv").write_text(
        "# Markups fiducial file version = 4.11\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
        "vtkMRMLMarkupsFiducialNode_0,-90,-20,60,0,0,0,1,1,1,0,head_center_L,,\n"
    )
    (out / "landmarks_ijk.mrk.json").write_text(json.dumps({
        "markups": [{"type": "Fiducial", "coordinateSystem": "IJK", "controlPoints": [
            {"label": "head_center_L", "position": [40, 30, 12]}]}]}, indent=1) + "\n")  # fmt: skip

    # --- manifests: each folder a subjects.tsv with its own files
    def manifest(name: str, text: bytes, ct: str = "ct.nii.gz") -> Path:
        d = out / name
        d.mkdir()
        (d / "subjects.tsv").write_bytes(text)
        if ct:
            (d / ct).write_bytes(_nifti_bytes(nib.Nifti1Image(data, np.eye(4))))
        return d

    head = "subject_id\tct\ttarget_side\tphantom\tct_scanner\n"
    manifest("manifest_latin1", (head + "P01\tct.nii.gz\tL\tabsent\tSiemens Définition\n")
             .encode("latin-1"))  # fmt: skip
    manifest("manifest_duplicate_ids", (head + "P01\tct.nii.gz\tL\tabsent\t\n"
                                        "P01\tct.nii.gz\tR\tabsent\t\n").encode())  # fmt: skip
    outside = "P01\t../ct_empty.nii.gz\tL\tabsent\t\nP02\t/etc/hostname\tL\tabsent\t\n"
    manifest("manifest_path_outside", (head + outside).encode())
    manifest("manifest_bad_id", (head + "P01; rm -rf ~\tct.nii.gz\tL\tabsent\t\n").encode())
    manifest("manifest_crlf", (head + "P01\tct.nii.gz\tL\tabsent\tScanner X\n")
             .replace("\n", "\r\n").encode())  # fmt: skip
    manifest("manifest_bom", b"\xef\xbb\xbf" + (head + "P01\tct.nii.gz\tL\tabsent\t\n").encode())

    lines = ["case\tkind\tstage\toutcome\texpect"]
    lines += ["\t".join(c) for c in CASES]
    (out / "cases.tsv").write_text("\n".join(lines) + "\n")
    missing = [c[0] for c in CASES if not (out / c[0]).exists()]
    if missing:
        raise SystemExit(f"cases without files: {missing}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "bad")
    write_corpus(ap.parse_args().out)


if __name__ == "__main__":
    main()
