"""CT volumes: read DICOM series, NIfTI or MHA into SimpleITK images in LPS.

SimpleITK reports physical points in LPS for every format (it converts NIfTI's RAS
on reading), so nothing here flips arrays by hand. Volumes written by the pipeline
carry only geometry and voxels: no DICOM header travels into results/.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from conventions.errors import InputError
from conventions.files import atomic_path

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_ct(path: str | Path, notes: list[str] | None = None) -> sitk.Image:
    """Read a CT as a 3D float32 SimpleITK image in HU (or whatever units the file has).

    ``path`` is a folder holding one DICOM series (the series with the most slices is
    taken when there are several) or a NIfTI / MHA / NRRD file. Errors name the file.
    What had to be corrected on the way (a gantry tilt resampled away) is appended to
    ``notes``, for the import's fingerprint and log.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "CT not found")
    if path.is_dir():
        image = _read_dicom_series(path, notes if notes is not None else [])
    elif _suffix(path) in VOLUME_SUFFIXES:
        if path.stat().st_size == 0:
            raise InputError(path, "empty file (0 bytes)")
        try:
            check_stored_layout(path)
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


def check_nifti_values(path: str | Path) -> None:
    """Raise InputError when a float NIfTI holds NaN or infinite voxels.

    ITK's NIfTI reader silently replaces them with 0 (HU of water), so they must be
    looked for in the file itself; read in slabs to keep memory flat.
    """
    import nibabel as nib

    path = Path(path)
    if _suffix(path) not in (".nii", ".nii.gz"):
        return
    try:
        img = nib.load(str(path))
    except Exception as e:  # nibabel raises many types for a broken header
        raise InputError(path, f"cannot read NIfTI header ({e})") from None
    if not np.issubdtype(img.get_data_dtype(), np.floating):
        return  # integer voxels cannot be NaN; scaling by a finite slope keeps them finite
    proxy = img.dataobj
    shape = proxy.shape
    if len(shape) < 3:
        return
    step = max(1, 2**24 // max(1, int(np.prod(shape[:2]))))
    for k in range(0, shape[2], step):
        slab = np.asarray(proxy[:, :, k : k + step])
        bad = ~np.isfinite(slab)
        if bad.any():
            raise InputError(
                path,
                f"volume holds {int(bad.sum())} NaN or infinite voxel value(s) "
                f"(first at slices {k}..{k + slab.shape[2] - 1}); ITK would read them as 0",
            )


def _read_dicom_series(folder: Path, notes: list[str]) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(folder, "no DICOM series found in this folder")
    files_by_series = {sid: reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids}
    files = max(files_by_series.values(), key=len)
    if len(files) < 2:
        raise InputError(folder, "the DICOM series has fewer than 2 slices")
    try:
        stack = slice_stack_geometry(folder, files)
    except InputError as e:
        # A file GDCM could not read drops out of the series and shows as a gap: say so.
        in_series = set(files)
        others = sorted(f.name for f in folder.iterdir() if f.is_file() and str(f) not in in_series)
        if not others:
            raise
        raise InputError(
            folder,
            f"{e.problem}; {len(others)} file(s) in the folder are not part of the series "
            f"(unreadable or another series), e.g. {others[0]}",
        ) from None
    check_stored_layout_dicom(files[stack.order[0]])
    reader.SetFileNames([files[i] for i in stack.order])
    reader.SetOutputPixelType(sitk.sitkFloat32)  # GDCM applies RescaleSlope/Intercept
    try:
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(folder, f"cannot read DICOM series ({_first_line(e)})") from None
    # ITK takes the spacing from the slice positions but assumes the slices are stacked
    # along their normal; set the geometry the headers state, then undo any tilt.
    image.SetOrigin(tuple(stack.origin))
    image.SetDirection(tuple(np.column_stack([stack.row, stack.col, stack.normal]).ravel()))
    image.SetSpacing((*image.GetSpacing()[:2], stack.step_mm))
    if stack.tilt_deg > MAX_UNCORRECTED_TILT_DEG:
        image = resample_sheared_stack(image, stack.step_vector)
        notes.append(
            f"gantry tilt of {stack.tilt_deg:.2f} degrees: resampled onto a grid "
            "orthogonal to the slices"
        )
    return image


# Slice positions must step evenly along the slice normal. Tolerances: DICOM stores
# positions as decimal strings of ~0.01 mm; a step off by more than this is a real gap.
SLICE_STEP_TOL = 0.02  # fraction of the median step
MAX_UNCORRECTED_TILT_DEG = 0.05  # below this the shear is under 0.001 voxel per slice


@dataclass
class SliceStack:
    """Geometry of a DICOM series from its slice headers (LPS mm)."""

    order: list[int]  # files sorted along the normal
    origin: np.ndarray  # ImagePositionPatient of the first slice
    row: np.ndarray  # direction of increasing column index (DICOM's row direction)
    col: np.ndarray
    normal: np.ndarray  # row × col
    step_vector: np.ndarray  # mean position step between neighbouring slices
    step_mm: float  # its component along the normal
    tilt_deg: float  # angle between the step and the normal (gantry tilt)


def slice_stack_geometry(folder: Path, files: list[str]) -> SliceStack:
    """Sort a series' slices along their normal and check they form one even stack.

    Raises InputError for missing slices, uneven spacing, mixed orientations or two
    slices at one position, which ITK would read into a silently wrong geometry.
    """
    import pydicom

    positions, orientations = [], []
    for f in files:
        try:
            ds = pydicom.dcmread(
                f, stop_before_pixels=True,
                specific_tags=["ImagePositionPatient", "ImageOrientationPatient"],
            )  # fmt: skip
            positions.append([float(v) for v in ds.ImagePositionPatient])
            orientations.append([float(v) for v in ds.ImageOrientationPatient])
        except (AttributeError, TypeError, ValueError, OSError) as e:
            raise InputError(
                folder,
                f"slice {Path(f).name} lacks a valid ImagePositionPatient (0020,0032) or "
                f"ImageOrientationPatient (0020,0037) ({e})",
            ) from None
    p = np.array(positions)
    o = np.array(orientations)
    if (
        p.shape[1] != 3
        or o.shape[1] != 6
        or not np.all(np.isfinite(p))
        or not np.all(np.isfinite(o))
    ):
        raise InputError(folder, "slice position or orientation is not 3 + 6 numbers")
    if np.abs(o - o[0]).max() > 1e-3:
        raise InputError(folder, "the slices have different ImageOrientationPatient values")
    row, col = o[0, :3], o[0, 3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(row @ col) > 1e-3
    ):
        raise InputError(folder, f"ImageOrientationPatient {o[0].tolist()} is not orthonormal")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = np.cross(row, col)
    along = p @ normal
    order = np.argsort(along, kind="stable")
    along, p = along[order], p[order]
    steps = np.diff(along)
    if np.any(steps < 1e-3):
        k = int(np.argmin(steps))
        raise InputError(
            folder,
            f"two slices at the same position ({along[k]:.2f} mm along the normal): "
            "several acquisitions in one series?",
        )
    step = float(np.median(steps))
    off = np.abs(steps - step) > SLICE_STEP_TOL * step
    if off.any():
        k = int(np.argmax(np.abs(steps - step)))
        gap = steps[k] / step
        what = (
            f"missing slice(s): a gap of {steps[k]:.2f} mm where the series steps "
            f"{step:.2f} mm (about {round(gap) - 1} slice(s) missing)"
            if abs(gap - round(gap)) < 0.1 and round(gap) >= 2
            else f"uneven slice spacing: steps from {steps.min():.2f} to {steps.max():.2f} mm"
        )
        raise InputError(
            folder, f"{what}, between slices at {along[k]:.2f} and {along[k + 1]:.2f} mm"
        )
    step_vector = (p[-1] - p[0]) / (len(p) - 1)
    # The in-plane part of each step must be the same too, or the stack is not one shear.
    inplane = np.diff(p, axis=0) - np.outer(steps, normal)
    if np.abs(inplane - (step_vector - step * normal)).max() > SLICE_STEP_TOL * step:
        raise InputError(folder, "slice positions do not lie on one straight line")
    tilt = float(np.degrees(np.arctan2(np.linalg.norm(step_vector - step * normal), step)))
    return SliceStack([int(i) for i in order], p[0], row, col, normal, step_vector, step, tilt)


def resample_sheared_stack(image: sitk.Image, step_vector: np.ndarray) -> sitk.Image:
    """Resample a stack whose slices are offset in plane (gantry tilt) onto a grid
    orthogonal to the slices, covering every voxel; linear, outside filled with the
    volume's minimum (air).

    ``image`` carries the slices' own row/column/normal directions and in-plane
    spacing; voxel (i, j, k) truly lies at origin + i·sx·row + j·sy·col + k·step_vector.
    """
    d = np.array(image.GetDirection()).reshape(3, 3)
    sx, sy, sz = image.GetSpacing()
    origin = np.array(image.GetOrigin())
    true = np.column_stack([sx * d[:, 0], sy * d[:, 1], step_vector])  # index -> mm
    stated = d @ np.diag([sx, sy, sz])  # what the image's header says
    # Output grid: the slices' own axes; bounds of every true voxel centre.
    size = np.array(image.GetSize())
    corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1)
                        for k in (0, size[2] - 1)], dtype=float)  # fmt: skip
    u = (corners @ true.T) @ d  # corner offsets in the slice axes, mm
    lo, hi = u.min(axis=0), u.max(axis=0)
    spacing = np.array([sx, sy, sz])
    out_size = np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1
    reference = sitk.Image([int(n) for n in out_size], sitk.sitkFloat32)
    reference.SetSpacing(tuple(spacing))
    reference.SetDirection(tuple(d.ravel()))
    reference.SetOrigin(tuple(origin + d @ lo))
    # A true point x sits at index true⁻¹(x - o); the header puts that index at
    # o + stated·index. The resampler maps output points to input points.
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple((stated @ np.linalg.inv(true)).ravel()))
    transform.SetCenter(tuple(origin))
    fill = float(sitk.GetArrayViewFromImage(image).min())
    return sitk.Resample(image, reference, transform, sitk.sitkLinear, fill, sitk.sitkFloat32)


# Grids agree when they differ by less than this: rounding in NIfTI's float32 header.
SPACING_RTOL = 1e-4
ORIGIN_TOL_VOXELS = 0.01
DIRECTION_TOL = 1e-4


def grid_mismatch(image: sitk.Image, ct: sitk.Image) -> str | None:
    """How ``image``'s voxel grid differs from ``ct``'s (size, spacing, direction,
    origin), or None when they agree: the one "same grid" check of every stage."""
    if image.GetDimension() != 3:
        return f"a {image.GetDimension()}D image, not 3D"
    if image.GetSize() != ct.GetSize():
        return f"size {image.GetSize()} differs from the CT's {ct.GetSize()}"
    if not np.allclose(image.GetSpacing(), ct.GetSpacing(), rtol=SPACING_RTOL, atol=0):
        return f"spacing {_mm(image.GetSpacing())} differs from the CT's {_mm(ct.GetSpacing())}"
    if not np.allclose(image.GetDirection(), ct.GetDirection(), rtol=0, atol=DIRECTION_TOL):
        return (
            f"direction {_mm(image.GetDirection())} differs from the CT's {_mm(ct.GetDirection())}"
        )
    shift = np.abs(np.subtract(image.GetOrigin(), ct.GetOrigin()))
    if np.any(shift > ORIGIN_TOL_VOXELS * np.asarray(ct.GetSpacing())):
        return f"origin {_mm(image.GetOrigin())} differs from the CT's {_mm(ct.GetOrigin())} mm"
    return None


def require_same_grid(image: sitk.Image, reference: sitk.Image, path, what: str) -> None:
    """Raise InputError naming ``path`` when ``image`` is not on ``reference``'s grid
    (``what``: the reference's name in the message, e.g. "the CT's")."""
    problem = grid_mismatch(image, reference)
    if problem:
        raise InputError(path, f"not on {what} grid: {problem}")


def _mm(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def check_stored_layout_dicom(path: str | Path) -> None:
    """Raise InputError when a slice of a DICOM series holds more than one value per pixel
    (an RGB secondary capture is no CT)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            path,
            f"expected one value per pixel, got {reader.GetNumberOfComponents()} "
            "(an RGB or multi-channel image is no CT)",
        )


def check_stored_layout(path: str | Path) -> None:
    """Raise InputError when the file does not store a 3D volume of one value per voxel.

    Read from the header, before the pixels: reading with a scalar output type makes ITK
    fold a 4D series into its first volumes and a vector or RGB image into one channel,
    which then pass for a CT."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = reader.GetSize()
    if reader.GetDimension() != 3:
        raise InputError(path, f"expected a 3D volume, got {reader.GetDimension()}D of size {size}")
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            path,
            f"expected one value per voxel, got {reader.GetNumberOfComponents()} "
            "(a vector, RGB or multi-channel image is no CT)",
        )


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


# ITK's NIfTI writer gzips at zlib's default level whatever level it is asked for: 1.5-2 s
# for the demo's 27 MB float CT, most of a calibration or import job. Level 1 writes it in
# a fifth of that for 11 % more bytes; the file and every voxel read back are the same.
NIFTI_GZIP_LEVEL = 1


def write_volume(path: str | Path, image: sitk.Image, compress: bool = True) -> None:
    """Write a volume atomically, carrying no metadata beyond its geometry."""
    with atomic_path(path) as tmp:
        if not (compress and tmp.name.endswith(".nii.gz")):
            sitk.WriteImage(clean_copy(image), str(tmp), useCompression=compress)
            return
        # ITK writes the plain .nii under a temporary name of its own; gzip compresses it
        # into ``tmp``. No time and no (temporary) file name in the gzip header: the same
        # volume gives the same bytes.
        scratch = tmp.with_name(tmp.name[: -len(".gz")])
        with atomic_path(scratch) as raw:
            sitk.WriteImage(clean_copy(image), str(raw), useCompression=False)
            with (
                raw.open("rb") as src,
                tmp.open("wb") as dst,
                gzip.GzipFile(
                    filename="", fileobj=dst, mode="wb", compresslevel=NIFTI_GZIP_LEVEL, mtime=0
                ) as gz,
            ):
                shutil.copyfileobj(src, gz, 1 << 20)
        scratch.unlink()


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
