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
