"""CT reading: every format lands in the same LPS physical space."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import IDENTIFIERS, write_dicom_ct_series
from conventions.ct import physical_points, read_ct, write_volume
from conventions.errors import InputError


def _markers(shape_zyx):
    """A volume of -1000 with three distinct marker voxels, and their (i, j, k) indices."""
    a = np.full(shape_zyx, -1000.0, dtype=np.float32)
    ijk = {500.0: (1, 2, 3), 800.0: (4, 0, 1), 1200.0: (2, 5, 4)}
    for v, (i, j, k) in ijk.items():
        a[k, j, i] = v
    return a, ijk


def _marker_points(image: sitk.Image) -> dict[float, np.ndarray]:
    a = sitk.GetArrayFromImage(image)
    out = {}
    for v in (500.0, 800.0, 1200.0):
        k, j, i = np.argwhere(np.isclose(a, v, atol=0.6))[0]
        out[v] = np.array(image.TransformIndexToPhysicalPoint((int(i), int(j), int(k))))
    return out


def test_nifti_and_mha_copies_read_to_the_same_lps_points(tmp_path):
    a, ijk = _markers((6, 7, 5))
    spacing = np.array([0.8, 0.9, 2.0])
    origin_lps = np.array([-12.0, 30.0, 95.0])
    rot = sitk.VersorTransform((0.2, -0.1, 0.9), 0.3).GetMatrix()  # oblique direction
    d_lps = np.array(rot).reshape(3, 3)

    mha = sitk.GetImageFromArray(a)
    mha.SetSpacing(spacing.tolist())
    mha.SetOrigin(origin_lps.tolist())
    mha.SetDirection(d_lps.ravel().tolist())
    sitk.WriteImage(mha, str(tmp_path / "ct.mha"))

    # The NIfTI is written by nibabel with a RAS affine built by hand, so the test does
    # not rely on SimpleITK agreeing with itself.
    flip = np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = flip @ d_lps @ np.diag(spacing)
    affine[:3, 3] = flip @ origin_lps
    nib.save(nib.Nifti1Image(np.transpose(a, (2, 1, 0)), affine), tmp_path / "ct.nii.gz")

    expected = {v: d_lps @ (np.array(idx) * spacing) + origin_lps for v, idx in ijk.items()}
    for name in ("ct.mha", "ct.nii.gz"):
        got = _marker_points(read_ct(tmp_path / name))
        for v in expected:
            assert got[v] == pytest.approx(expected[v], abs=1e-3), name


def test_dicom_series_reads_in_lps_with_rescale(tmp_path):
    rng = np.random.default_rng(3)
    hu = rng.integers(-1000, 1500, size=(5, 6, 7)).astype(np.float32)
    write_dicom_ct_series(
        tmp_path / "series", hu, spacing_xyz=(0.8, 0.7, 2.5), origin=(-100.0, -80.0, 40.0)
    )
    img = read_ct(tmp_path / "series")
    assert img.GetSize() == (7, 6, 5)
    assert img.GetSpacing() == pytest.approx((0.8, 0.7, 2.5))
    assert np.array_equal(sitk.GetArrayFromImage(img), hu)  # slices sorted by position
    # Voxel (i, j, k) = (2, 3, 4) lies at origin + (2·0.8, 3·0.7, 4·2.5) in LPS.
    assert physical_points(img, [2, 3, 4]) == pytest.approx([-98.4, -77.9, 50.0])


def test_written_volumes_carry_no_dicom_identifiers(tmp_path):
    hu = np.zeros((3, 4, 4), dtype=np.float32)
    write_dicom_ct_series(tmp_path / "series", hu)
    for name in ("ct.nii.gz", "ct.mha", "ct.nrrd"):
        out = tmp_path / name
        write_volume(out, read_ct(tmp_path / "series"), compress=False)
        data = out.read_bytes()
        for value in IDENTIFIERS.values():
            assert value.encode() not in data, (name, value)


def test_a_gzipped_nifti_reads_back_voxel_for_voxel_and_the_same_volume_gives_the_same_bytes(
    tmp_path,
):
    """write_volume gzips NIfTI itself (ITK's writer ignores the level it is given): the
    file is gzip, reads back with every voxel and the oblique geometry, writing it twice
    gives the same bytes, and no temporary file is left beside it."""
    rng = np.random.default_rng(5)
    values = rng.normal(0.0, 300.0, size=(9, 11, 13)).astype(np.float32)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-120.0, 30.5, 88.0))
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0))
    first, second = tmp_path / "a" / "ct.nii.gz", tmp_path / "b" / "ct.nii.gz"
    write_volume(first, image)
    write_volume(second, image)
    assert first.read_bytes()[:2] == b"\x1f\x8b"  # gzip's magic number
    assert first.read_bytes() == second.read_bytes()
    back = sitk.ReadImage(str(first))
    assert np.array_equal(sitk.GetArrayFromImage(back), values)
    assert back.GetSpacing() == pytest.approx(image.GetSpacing())
    assert back.GetOrigin() == pytest.approx(image.GetOrigin())
    assert back.GetDirection() == pytest.approx(image.GetDirection(), abs=1e-6)
    assert sorted(p.name for p in first.parent.iterdir()) == ["ct.nii.gz"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing.nii.gz", "not found"),
        (lambda p: (p / "ct.txt").write_text("x") and p / "ct.txt", "unknown CT format"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no DICOM series"),
    ],
)
def test_bad_ct_paths_name_the_file(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as e:
        read_ct(path)
    assert str(path) in str(e.value)


def test_nan_voxels_and_2d_images_are_rejected(tmp_path):
    a = np.zeros((4, 4, 4), dtype=np.float32)
    a[1, 2, 3] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(a), str(tmp_path / "nan.mha"))
    with pytest.raises(InputError, match="NaN"):
        read_ct(tmp_path / "nan.mha")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4), np.float32)), str(tmp_path / "2d.mha"))
    with pytest.raises(InputError, match="3D"):
        read_ct(tmp_path / "2d.mha")


def test_dicom_series_writer_round_trips_an_oblique_ct(tmp_path):
    from conventions.ct import write_dicom_series

    a, _ = _markers((6, 7, 5))
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.8, 0.9, 2.0))
    img.SetOrigin((-12.0, 30.0, 95.0))
    img.SetDirection(sitk.VersorTransform((0.2, -0.1, 0.9), 0.3).GetMatrix())
    write_dicom_series(tmp_path / "series", img, "S001", uid_entropy=["7", "S001"])
    back = read_ct(tmp_path / "series")
    assert np.array_equal(sitk.GetArrayFromImage(back), a)
    for v, p in _marker_points(img).items():
        assert _marker_points(back)[v] == pytest.approx(p, abs=1e-3)
    # Deterministic UIDs: writing again gives the same bytes.
    write_dicom_series(tmp_path / "again", img, "S001", uid_entropy=["7", "S001"])
    first = sorted((tmp_path / "series").iterdir())
    assert [f.read_bytes() for f in first] == [
        f.read_bytes() for f in sorted((tmp_path / "again").iterdir())
    ]


def _shift_slices(folder, shift_of_k):
    """Move each slice of a series by ``shift_of_k(k)`` (LPS mm), k in stacking order."""
    import pydicom

    files = sorted(folder.iterdir(), key=lambda f: int(pydicom.dcmread(f).InstanceNumber))
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        p = np.array([float(v) for v in ds.ImagePositionPatient]) + shift_of_k(k)
        ds.ImagePositionPatient = [f"{v:.4f}" for v in p]
        ds.save_as(f)
    return files


def test_gantry_tilt_is_resampled_so_a_ball_lands_where_it_is(tmp_path):
    """Slices acquired with a 20° gantry tilt are offset in plane by k·dz·tan(20°). A ball
    sampled on that sheared grid must come back centred where it physically is."""
    spacing = np.array([1.0, 1.0, 2.0])
    origin = np.array([-20.0, -30.0, 10.0])
    tilt = np.radians(20.0)
    step = np.array([0.0, spacing[2] * np.tan(tilt), spacing[2]])  # y shifts with k
    centre, radius = np.array([0.0, -5.0, 30.0]), 8.0
    k, j, i = np.meshgrid(np.arange(20), np.arange(40), np.arange(40), indexing="ij")
    points = (
        origin
        + np.stack([i * spacing[0], j * spacing[1], np.zeros_like(k)], -1)
        + (k[..., None] * step)
    )
    hu = np.where(np.linalg.norm(points - centre, axis=-1) <= radius, 1000.0, -1000.0)
    write_dicom_ct_series(tmp_path / "ct", hu, spacing_xyz=tuple(spacing), origin=tuple(origin))
    _shift_slices(tmp_path / "ct", lambda k: k * (step - [0, 0, spacing[2]]))

    notes: list[str] = []
    image = read_ct(tmp_path / "ct", notes)
    assert notes and "gantry tilt of 20.00 degrees" in notes[0]
    a = sitk.GetArrayFromImage(image)
    kji = np.argwhere(a > 0)
    found = physical_points(image, kji[:, ::-1]).mean(axis=0)
    assert np.linalg.norm(found - centre) < 0.3, found
    volume = len(kji) * np.prod(image.GetSpacing())
    assert volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.1)
    # Read as ITK does, ignoring the tilt, the ball would sit several mm off.
    plain = sitk.ReadImage(sorted(map(str, (tmp_path / "ct").iterdir())))
    assert plain.GetSize()[1] == 40 and image.GetSize()[1] > 40


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("drop", "missing slice(s): a gap of 5.00 mm where the series steps 2.50 mm"),
        ("uneven", "uneven slice spacing"),
        ("duplicate", "two slices at the same position"),
        ("rotate", "different ImageOrientationPatient"),
    ],
)
def test_broken_slice_stacks_are_refused_naming_the_gap(tmp_path, edit, message):
    import pydicom

    hu = np.full((8, 6, 5), -1000.0, dtype=np.float32)
    write_dicom_ct_series(tmp_path / "ct", hu)
    files = _shift_slices(tmp_path / "ct", lambda k: 0.0)
    if edit == "drop":
        files[4].unlink()
    else:
        ds = pydicom.dcmread(files[5])
        if edit == "rotate":
            ds.ImageOrientationPatient = ["1", "0", "0", "0", "0.8", "0.6"]
        else:
            p = [float(v) for v in ds.ImagePositionPatient]
            p[2] += 1.0 if edit == "uneven" else -2.5
            ds.ImagePositionPatient = [f"{v:.4f}" for v in p]
        ds.save_as(files[5])
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        read_ct(tmp_path / "ct")
    assert str(tmp_path / "ct") in str(e.value)


def test_nan_in_a_float_nifti_is_found_though_itk_reads_it_as_zero(tmp_path):
    from conventions.ct import check_nifti_values

    a = np.zeros((6, 10, 12), np.float32)
    a[1, 2, 3], a[4, 5, 6] = np.nan, np.inf
    nib.save(nib.Nifti1Image(a, np.eye(4)), tmp_path / "nan.nii.gz")
    assert np.all(np.isfinite(sitk.GetArrayViewFromImage(sitk.ReadImage(tmp_path / "nan.nii.gz"))))
    with pytest.raises(InputError, match="2 NaN or infinite"):
        check_nifti_values(tmp_path / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.nan_to_num(a, posinf=0), np.eye(4)), tmp_path / "ok.nii.gz")
    check_nifti_values(tmp_path / "ok.nii.gz")


def test_every_cli_reports_bad_input_as_one_line_naming_subject_and_file(capsys):
    """conventions.errors.run_cli: the project's error, a file the system cannot open and
    a value the libraries refuse all become ``error: subject X: <file>: <what>``, exit 2."""
    from conventions.errors import run_cli

    def raises(e):
        def command():
            raise e

        return command

    assert run_cli(lambda: None, "S001") == 0
    cases = [
        (InputError("ct.nii.gz", "too small"), "error: subject S001: ct.nii.gz: too small"),
        (InputError("a.dcm", "blank", subject="S002"), "error: subject S002: a.dcm: blank"),
        (FileNotFoundError(2, "No such file or directory", "g.json"),
         "error: subject S001: g.json: No such file or directory"),
        (ValueError("cannot fill 5 folds"), "error: subject S001: cannot fill 5 folds"),
    ]  # fmt: skip
    for error, line in cases:
        assert run_cli(raises(error), "S001") == 2
        assert capsys.readouterr().err.strip() == line
    with pytest.raises(KeyError):  # a bug is no input error: it keeps its traceback
        run_cli(raises(KeyError("x")), "S001")
