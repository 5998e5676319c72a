"""DRR engine: closed-form line integrals, geometry, units, batching, backends, peers."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose, project_ct_points, rotation_about
from drr import Volume, project
from drr.projector import project_tensor
from drr.quantities import hu_of_cortical_bone, hu_to_linear_attenuation, integrand
from drr_phantoms import (
    affine,
    chord_cylinder,
    chord_ellipsoid,
    cylinder_inside,
    ellipsoid_inside,
    gaussian_density,
    gaussian_line_integral,
    ray_sources_and_directions,
    sample_on_grid,
    voxelise,
)

# An awkward setup on purpose: anisotropic voxels, oblique direction cosines, an
# off-centre object and principal point, a pose rotated about all three axes.
SPACING = np.array([1.1, 0.9, 1.6])
SHAPE = (60, 110, 80)  # (z, y, x)
A = affine(SPACING, [-44.0, -45.0, -48.0], [0.2, -0.15, 0.1])
CENTRE = A[:3, :3] @ (np.array(SHAPE[::-1]) / 2) + A[:3, 3] + [3.0, -2.0, 1.0]
SHAPE_ROT = Rotation.from_rotvec([0.4, 0.3, -0.2]).as_matrix()
GEOM = ProjectionGeometry(1000.0, 48, 40, (1.3, 1.5), principal_point_mm=(25.0, 40.0))
POSE = ap_pose(CENTRE + np.array([5.0, 0.0, -4.0]), 650).camera_from_ct @ rotation_about(
    CENTRE, [0.3, 0.5, -0.2]
)
BACKENDS = ["numba", "torch"]


def torch_device() -> str:
    """Where the torch kernels are tested: the GPU where there is one (what CUDA runs in
    the workflow), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def render(volume, geometry, pose, backend="numba", **options) -> np.ndarray:
    """A DRR from the numba kernels, or from the torch kernels on :func:`torch_device`."""
    if backend == "numba":
        return project(volume, geometry, pose, **options)
    drr = project_tensor(volume, geometry, pose, device=torch_device(), backend="torch", **options)
    return drr.cpu().numpy()


def _relative_errors(drr: np.ndarray, truth: np.ndarray, interior: float = 0.5):
    d = np.asarray(drr).ravel()
    inside = truth > interior * truth.max()
    assert inside.sum() > 200  # enough rays through the object to mean something
    return (d[inside] - truth[inside]) / truth[inside]


@pytest.mark.parametrize("backend", BACKENDS)
def test_smooth_object_matches_its_closed_form_line_integrals(backend):
    """A Gaussian blob (σ ≫ voxel) has an exact line integral; any geometric slip
    (half a voxel, a transposed axis, a wrong direction cosine) shows up at once."""
    sig = np.array([14.0, 10.0, 16.0])
    vol = sample_on_grid(lambda p: gaussian_density(p, CENTRE, sig, SHAPE_ROT), SHAPE, A)
    src, dirs = ray_sources_and_directions(GEOM, POSE)
    truth = gaussian_line_integral(src, dirs, CENTRE, sig, SHAPE_ROT)
    tri = _relative_errors(render(Volume(vol, A), GEOM, POSE, backend), truth)
    exact = _relative_errors(
        render(Volume(vol, A), GEOM, POSE, backend, integrator="siddon"), truth
    )
    joseph = _relative_errors(
        render(Volume(vol, A), GEOM, POSE, backend, integrator="joseph"), truth
    )
    assert np.abs(tri).max() < 0.005  # trilinear at the default step
    assert np.abs(exact).max() < 0.001  # exact integral of the voxelised volume
    assert np.abs(joseph).max() < 0.005  # the same interpolant, one sample per slice


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("turn", [(0, 0, 0), (0, 0, np.pi / 2), (np.pi / 2, 0, 0)])
def test_joseph_follows_each_dominant_axis(backend, turn):
    """Joseph's method steps along whichever index axis a ray runs most along: views
    along the CT's y (AP), x (lateral) and z (axial) each take another branch of the
    kernel, and each must give the blob's closed-form line integrals."""
    sig = np.array([14.0, 10.0, 16.0])
    vol = sample_on_grid(lambda p: gaussian_density(p, CENTRE, sig, SHAPE_ROT), SHAPE, A)
    pose = ap_pose(CENTRE, 650).camera_from_ct @ rotation_about(CENTRE, list(turn))
    src, dirs = ray_sources_and_directions(GEOM, pose)
    truth = gaussian_line_integral(src, dirs, CENTRE, sig, SHAPE_ROT)
    err = _relative_errors(render(Volume(vol, A), GEOM, pose, backend, integrator="joseph"), truth)
    assert np.abs(err).max() < 0.005


def test_exact_integrator_is_exact_for_a_voxel_aligned_box():
    """A box whose faces are voxel boundaries is represented exactly by voxels, so the
    exact integrator must reproduce its chord lengths to float precision."""
    from drr.rays import clip_to_box

    occ = np.zeros(SHAPE, np.float32)
    occ[10:50, 20:70, 15:60] = 1.0
    lo, hi = np.array([15, 20, 10]) - 0.5, np.array([60, 70, 50]) - 0.5
    src, dirs = ray_sources_and_directions(GEOM, POSE)
    inv = np.linalg.inv(A)
    s_idx, d_idx = inv[:3, :3] @ src + inv[:3, 3], dirs @ inv[:3, :3].T * 1e4
    lam_in, lam_out = clip_to_box(np.broadcast_to(s_idx, d_idx.shape), d_idx, lo, hi)
    truth = np.maximum(lam_out - lam_in, 0) * 1e4
    for backend in BACKENDS:
        err = _relative_errors(
            render(Volume(occ, A), GEOM, POSE, backend, integrator="siddon"), truth
        )
        assert np.abs(err).max() < 1e-5


@pytest.mark.parametrize(
    ("name", "inside", "chord"),
    [
        (
            "ellipsoid",
            lambda p: ellipsoid_inside(p, CENTRE, np.array([30, 22, 36.0]), SHAPE_ROT),
            lambda s, d: chord_ellipsoid(s, d, CENTRE, np.array([30, 22, 36.0]), SHAPE_ROT),
        ),
        (
            "cylinder",
            lambda p: cylinder_inside(p, CENTRE, 20.0, 30.0, SHAPE_ROT),
            lambda s, d: chord_cylinder(s, d, CENTRE, 20.0, 30.0, SHAPE_ROT),
        ),
    ],
)
def test_homogeneous_shapes_match_closed_form_up_to_voxelisation(name, inside, chord):
    """Hard-edged shapes: a voxel grid cannot hold their surface exactly (partial-volume
    voxels), so a single ray may be off by up to about a voxel at each crossing; over
    the interior rays the errors must average out and stay within that bound."""
    occ = voxelise(inside, SHAPE, A)
    src, dirs = ray_sources_and_directions(GEOM, POSE)
    truth = chord(src, dirs)
    inside_rays = truth > 0.5 * truth.max()
    for integrator in ("trilinear", "siddon", "joseph"):
        drr = project(Volume(occ, A), GEOM, POSE, integrator=integrator)
        err = _relative_errors(drr, truth)
        assert abs(err.mean()) < 0.002, (name, integrator)
        err_mm = np.abs(drr.ravel() - truth)[inside_rays]
        assert err_mm.max() < 2 * SPACING.max(), (name, integrator)
        if integrator != "siddon":
            assert np.abs(err).mean() < 0.005, name


@pytest.mark.parametrize("integrator", ["trilinear", "siddon", "joseph"])
def test_single_voxel_lands_on_the_conventions_pixel(integrator):
    vol = np.zeros(SHAPE, np.float32)
    ijk = np.array([37, 61, 22])  # (x, y, z)
    vol[ijk[2], ijk[1], ijk[0]] = 1.0
    p = A[:3, :3] @ ijk + A[:3, 3]
    g = ProjectionGeometry(1000.0, 80, 90, (0.25, 0.25), principal_point_mm=(10.0, 12.0))
    pose = ap_pose(p + np.array([4.0, 3.0, -2.0]), 700.0).camera_from_ct @ rotation_about(
        p, [0.2, 0.1, 0.3]
    )
    img = project(Volume(vol, A), g, pose, integrator=integrator)[0, 0]
    row, col = project_ct_points(p, pose, g)
    rr, cc = np.indices(img.shape)
    centroid = (np.sum(rr * img) / img.sum(), np.sum(cc * img) / img.sum())
    assert centroid == pytest.approx((row, col), abs=0.15)  # pixels, at 1.5× magnification


def test_ap_view_shows_the_patients_right_on_the_image_left(tmp_path):
    from conventions.labels import BONE_LABELS
    from phantom.cohort import generate_subject

    truth = generate_subject("S001", seed=5, voxel_mm=4.0, out_dir=tmp_path)
    labels_img = sitk.ReadImage(str(tmp_path / "truth" / "labels.nii.gz"))
    lab = sitk.GetArrayFromImage(labels_img)
    masks = {n: lab == BONE_LABELS[n] for n in ("femur_right", "femur_left", "sacrum")}
    volume = Volume.from_image(labels_img, masks=masks, value=np.ones(lab.shape, np.float32))
    heads = truth["landmarks_lps_mm"]
    iso = (np.array(heads["head_center_L"]) + np.array(heads["head_center_R"])) / 2
    g = ProjectionGeometry(1100.0, 120, 120, (3.0, 3.0))
    img = project(volume, g, ap_pose(iso, 1000.0).camera_from_ct)[0]
    rr, cc = np.indices(img.shape[1:])
    col = {n: (cc * img[i]).sum() / img[i].sum() for i, n in enumerate(masks)}
    row = {n: (rr * img[i]).sum() / img[i].sum() for i, n in enumerate(masks)}
    assert col["femur_right"] < img.shape[2] / 2 < col["femur_left"]
    assert row["sacrum"] < row["femur_left"]  # superior is up


def test_areal_density_of_a_uniform_slab_reads_one_g_cm2():
    # 1000 mg/cm³, 10 mm thick along y (AP), wide in x and z; 1 mm voxels.
    vol = np.zeros((40, 30, 40), np.float32)
    vol[:, 10:20, :] = 1000.0
    a = affine([1.0, 1.0, 1.0], [-19.5, -14.5, -19.5], [0, 0, 0])
    g = ProjectionGeometry(1000.0, 9, 9, (0.5, 0.5))
    values = integrand(vol, "areal-density")
    for integrator in ("siddon", "trilinear", "joseph"):
        img = project(
            Volume(values, a), g, ap_pose(np.zeros(3), 800.0).camera_from_ct, integrator=integrator
        )[0, 0]
        # Exact for voxels; the trilinear ramps at the faces cost at most 0.1 %.
        tol = 1e-5 if integrator == "siddon" else 1e-3
        assert img[4, 4] == pytest.approx(1.0, rel=tol), integrator
        # Off-axis rays cross the slab obliquely: 1/cos of their angle, by geometry.
        q = g.pixel_centres()[0, 0]
        assert img[0, 0] == pytest.approx(np.linalg.norm(q) / q[2], rel=tol)


def test_batches_of_poses_and_channels_equal_single_renders():
    rng = np.random.default_rng(0)
    vol = rng.random(SHAPE, dtype=np.float32)
    masks = {"a": vol > 0.5, "b": vol < 0.2}
    volume = Volume(np.stack([np.where(m, vol, 0) for m in masks.values()]), A, tuple(masks))
    poses = np.stack(
        [
            POSE,
            rotation_about(CENTRE, [0, 0.2, 0]) @ POSE,
            POSE @ rotation_about(CENTRE, [0.1, 0, 0]),
        ]
    )
    batch = project(volume, GEOM, poses)
    assert batch.shape == (3, 2, GEOM.rows, GEOM.cols)
    for b in range(3):
        for c, m in enumerate(masks.values()):
            single = project(Volume(np.where(m, vol, 0), A), GEOM, poses[b])
            np.testing.assert_allclose(batch[b, c], single[0, 0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("integrator", ["trilinear", "siddon", "joseph"])
def test_numba_and_torch_backends_agree(integrator):
    vol = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    a = render(Volume(vol, A), GEOM, POSE, "numba", integrator=integrator)
    b = render(Volume(vol, A), GEOM, POSE, "torch", integrator=integrator)
    # float32 rays on CUDA (float64 on the CPU): a few ulps more than the CPU's float64
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-3 if torch_device() == "cuda" else 1e-3)


def test_cropping_to_the_support_changes_nothing():
    vol = np.zeros(SHAPE, np.float32)
    vol[20:30, 40:70, 30:50] = np.random.default_rng(2).random((10, 30, 20))
    full = Volume(vol, A)
    crop = full.cropped_to_support()
    assert crop.data.shape == (1, 12, 32, 22)
    for integrator in ("trilinear", "siddon", "joseph"):
        np.testing.assert_allclose(
            project(full, GEOM, POSE, integrator=integrator),
            project(crop, GEOM, POSE, integrator=integrator),
            atol=1e-4,
        )


def test_a_volume_cropped_channel_by_channel_is_the_stacked_volume_cropped():
    """drr.volume.cropped_volume cuts each channel to the channels' common support before
    stacking: the same data and affine as stacking the whole grids and cropping, also
    when one channel (or every one) is empty, or a channel touches the grid's edge."""
    from drr.volume import cropped_volume

    rng = np.random.default_rng(4)
    a = np.zeros(SHAPE, np.float32)
    b = np.zeros(SHAPE, np.float32)
    a[20:30, 40:70, 30:50] = rng.random((10, 30, 20))
    b[0:5, 60:90, 45:60] = rng.random((5, 30, 15))  # at the grid's first slice
    empty = np.zeros(SHAPE, np.float32)
    for channels in ({"a": a, "b": b}, {"a": a, "empty": empty}, {"e1": empty, "e2": empty}):
        expected = Volume(np.stack(list(channels.values())), A, tuple(channels))
        expected = expected.cropped_to_support()
        got = cropped_volume(channels, A)
        assert got.channels == tuple(channels)
        np.testing.assert_array_equal(got.data, expected.data)
        np.testing.assert_array_equal(got.ct_from_index, expected.ct_from_index)
    assert cropped_volume({"a": a, "b": b}, A).data.shape == (2, 31, 52, 32)


def test_attenuation_model_anchors():
    mu = hu_to_linear_attenuation(
        np.array([-1000.0, -2000.0, 0.0, hu_of_cortical_bone()]), energy_kev=60.0
    )
    assert mu[0] == 0.0 and mu[1] == 0.0  # air, and below-air clipped
    assert mu[2] == pytest.approx(0.2059 / 10, rel=1e-4)  # water, NIST, 1/mm
    assert mu[3] == pytest.approx(0.3148 * 1.92 / 10, rel=1e-3)  # cortical bone
    hu = np.linspace(-1000, 3000, 50)
    assert np.all(np.diff(hu_to_linear_attenuation(hu)) > 0)


def test_empty_space_skipping_changes_no_line_integral():
    """The trilinear and Joseph kernels jump over bricks of voxels that are all zero; a
    sparse volume (bone in an empty box, at every offset against the bricks) must project
    as the same volume with every brick marked occupied, i.e. as marching sample by
    sample, in views along each of the CT's axes."""
    from drr import kernels_numba
    from drr.projector import clip_box, padded_volume
    from drr.rays import pose_frames

    rng = np.random.default_rng(5)
    vol = np.zeros(SHAPE, np.float32)
    for _ in range(80):  # small blobs and single voxels scattered through the box
        z, y, x = (rng.integers(0, n - 3) for n in SHAPE)
        size = rng.integers(1, 4)
        vol[z : z + size, y : y + size, x : x + size] = rng.random((size, size, size))
    volume = Volume(vol, A)
    padded, occupancy = padded_volume(volume)
    assert 0.02 < occupancy.mean() < 0.8  # something to skip, something to read
    # Views along each of the CT's axes (each the rays' dominant axis for Joseph's method).
    poses = np.stack(
        [POSE, rotation_about(CENTRE, [0.3, -0.2, 0.5]) @ POSE]
        + [rotation_about(CENTRE, turn) @ POSE for turn in ([0, 0, np.pi / 2], [np.pi / 2, 0, 0])]
    )
    f = pose_frames(GEOM, poses, volume.index_from_ct)
    lo, hi = clip_box(volume, "trilinear")
    kernels = {
        f"trilinear, step {step}": lambda occ, out, step=step: kernels_numba.trilinear_march(
            padded, occ, f.pixels, f.mm_per_lambda, f.source, f.to_index, lo, hi, step, out
        )
        for step in (0.45, 1.3)
    }
    kernels["joseph"] = lambda occ, out: kernels_numba.joseph(
        padded, occ, f.pixels, f.mm_per_lambda, f.source, f.to_index, lo, hi, out
    )
    for name, kernel in kernels.items():
        out = {}
        for mode, occ in (("skipping", occupancy), ("every sample", np.ones_like(occupancy))):
            out[mode] = np.zeros((len(poses) * len(f.pixels), 1), np.float32)
            kernel(occ, out[mode])
        assert out["every sample"].max() > 0, name
        assert (out["skipping"] == 0).mean() > 0.05, name  # rays that cross no bone
        np.testing.assert_array_equal(out["skipping"], out["every sample"], err_msg=name)
