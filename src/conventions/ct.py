"""CT volumes: read DICOM series, NIfTI or MHA into SimpleITK images in LPS.

SimpleITK reports physical points in LPS for every format (it converts NIfTI's RAS
on reading), so nothing here flips arrays by hand. Volumes written by the pipeline
carry only geometry and voxels: no DICOM header travels into results/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from conventions.errors import InputError
from conventions.files import atomic_path

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_ct(path: str | Path) -> sitk.Image:
    """Read a CT as a 3D float32 SimpleITK image in HU (or whatever units the file has).

    ``path`` is a folder holding one DICOM series (the series with the most slices is
    taken when there are several) or a NIfTI / MHA / NRRD file. Errors name the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "CT not found")
    if path.is_dir():
        image = _read_dicom_series(path)
    elif _suffix(path) in VOLUME_SUFFIXES:
        try:
            image = sitk.ReadImage(str(path), sitk.sitkFloat32)
        except RuntimeError as e:
            raise InputError(path, f"cannot read CT volume ({_first_line(e)})") from None
    else:
        raise InputError(
            path,
            f"unknown CT format {_suffix(path)!r}: give a DICOM series folder or one of "
            + ", ".join(VOLUME_SUFFIXES),
        )
    check_volume(image, path)
    return image


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(folder, "no DICOM series found in this folder")
    files_by_series = {sid: reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids}
    files = max(files_by_series.values(), key=len)
    if len(files) < 2:
        raise InputError(folder, "the DICOM series has fewer than 2 slices")
    reader.SetFileNames(files)
    reader.SetOutputPixelType(sitk.sitkFloat32)  # GDCM applies RescaleSlope/Intercept
    try:
        return reader.Execute()
    except RuntimeError as e:
        raise InputError(folder, f"cannot read DICOM series ({_first_line(e)})") from None


def check_volume(image: sitk.Image, path: str | Path | None = None) -> None:
    """Raise InputError when ``image`` is not a usable 3D scalar volume."""
    if image.GetDimension() != 3:
        raise InputError(path, f"expected a 3D volume, got {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "expected a scalar volume, got a multi-component image")
    if min(image.GetSize()) < 2:
        raise InputError(path, f"volume too small: size {image.GetSize()}")
    spacing = np.array(image.GetSpacing())
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(path, f"invalid voxel spacing {tuple(spacing)}")
    direction = np.array(image.GetDirection()).reshape(3, 3)
    if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
        raise InputError(path, "singular or invalid direction cosines")
    values = sitk.GetArrayViewFromImage(image)
    if not np.all(np.isfinite(values)):
        raise InputError(path, "volume holds NaN or infinite voxel values")


def clean_copy(image: sitk.Image) -> sitk.Image:
    """Voxels and geometry only: drops every metadata entry (DICOM header, comments)."""
    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(image), isVector=False)
    out.SetOrigin(image.GetOrigin())
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    return out


def write_volume(path: str | Path, image: sitk.Image, compress: bool = True) -> None:
    """Write a volume atomically, carrying no metadata beyond its geometry."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(clean_copy(image), str(tmp), useCompression=compress)


def voxel_to_physical_matrix(image: sitk.Image) -> np.ndarray:
    """4×4 matrix taking continuous voxel indices (i, j, k) = (x, y, z) to LPS mm."""
    d = np.array(image.GetDirection()).reshape(3, 3)
    s = np.diag(image.GetSpacing())
    m = np.eye(4)
    m[:3, :3] = d @ s
    m[:3, 3] = image.GetOrigin()
    return m


def physical_points(image: sitk.Image, indices_xyz: np.ndarray) -> np.ndarray:
    """LPS mm of voxel indices (..., 3) given in SimpleITK's (x, y, z) order."""
    m = voxel_to_physical_matrix(image)
    return np.asarray(indices_xyz, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def write_dicom_series(
    folder: str | Path,
    image: sitk.Image,
    patient_id: str,
    uid_entropy: list[str] | None = None,
    extra_tags: dict | None = None,
    rescale: tuple[float, float] = (1.0, -1024.0),
) -> None:
    """Write a CT (HU) as a DICOM series, one file per slice, into a new ``folder``.

    Geometry goes into ImagePositionPatient / ImageOrientationPatient / PixelSpacing
    (LPS, as DICOM defines them); values are stored as unsigned 16-bit through
    RescaleSlope/RescaleIntercept (``rescale``). ``patient_id`` should be a pseudonym;
    nothing else identifying is written unless ``extra_tags`` says so. With
    ``uid_entropy`` the UIDs derive from it (same inputs, same bytes). The folder appears
    whole or not at all.
    """
    import os
    import shutil

    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    def uid(kind: str) -> str:
        return generate_uid(entropy_srcs=[*uid_entropy, kind]) if uid_entropy else generate_uid()

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hu = sitk.GetArrayFromImage(image)
    d = np.array(image.GetDirection()).reshape(3, 3)
    sx, sy, sz = image.GetSpacing()
    slope, intercept = rescale
    stored = np.clip(np.rint((hu - intercept) / slope), 0, 65535).astype(np.uint16)
    study, series, frame = uid("study"), uid("series"), uid("frame")
    for k in range(hu.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid(f"slice {k}")
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(tmp / f"slice_{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientID, ds.InstanceNumber = "CT", patient_id, k + 1
        ds.ImagePositionPatient = [
            f"{v:.4f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))
        ]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [f"{sy:.6g}", f"{sx:.6g}"]  # DICOM: row spacing, then column
        ds.SliceThickness = f"{sz:.6g}"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.6g}", f"{intercept:.6g}"
        for key, value in (extra_tags or {}).items():
            setattr(ds, key, value)
        ds.PixelData = stored[k].tobytes()
        pydicom.dcmwrite(tmp / f"slice_{k:04d}.dcm", ds, enforce_file_format=True)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
