"""Rigid 2D-3D registration recovers a known pose from the perturbations the issue names."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose, transform_points
from drr.projector import project
from drr.quantities import hu_to_linear_attenuation
from drr.volume import Volume
from phantom.cohort import generate_subject
from registration.rigid import (
    correction,
    mean_projection_distance,
    register_rigid,
    target_registration_error,
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A coarse synthetic CT's attenuation, a view of it at a known pose with noise."""
    out = tmp_path_factory.mktemp("reg") / "S003"
    truth = generate_subject("S003", 2023, 3.0, out, poses=())
    ct = sitk.ReadImage(str(out / "ct.nii.gz"), sitk.sitkFloat32)
    hu = sitk.GetArrayFromImage(ct)
    volume = Volume.from_image(ct, value=hu_to_linear_attenuation(hu)).cropped_to_support()
    heads = np.array([truth["femurs"][s]["head_center"] for s in ("L", "R")])
    iso = heads.mean(axis=0)
    geometry = ProjectionGeometry(1100.0, 192, 256, (1.2, 1.2))
    ap = ap_pose(iso, 1000.0).camera_from_ct
    true = correction(np.array([2.0, -3.0, 4.0, 5.0, -4.0, 10.0]), transform_points(ap, iso)) @ ap
    fixed = project(volume, geometry, true).sum(axis=1)[0]
    fixed += np.random.default_rng(0).normal(0.0, 0.02 * fixed.std(), fixed.shape)
    targets = np.array(
        [v for k, v in truth["landmarks_lps_mm"].items() if k.split("_")[0] in ("head", "lesser")]
    )
    return volume, fixed, geometry, true, iso, targets


@pytest.mark.parametrize(
    "perturbation",
    [
        [0.0, 0.0, 10.0, 15.0, 0.0, 0.0],  # 10° in-plane rotation, 15 mm across
        [5.0, 5.0, 0.0, 0.0, 15.0, 30.0],  # out-of-plane tilts, 15 mm up, 30 mm in depth
        [-10.0, 0.0, 0.0, -15.0, 10.0, -30.0],
    ],
)
def test_registration_recovers_the_true_pose(scene, perturbation):
    volume, fixed, geometry, true, iso, targets = scene
    start = correction(np.array(perturbation), transform_points(true, iso)) @ true
    assert mean_projection_distance(targets, start, true, geometry) > 10.0
    result = register_rigid(volume, fixed, geometry, start, iso)
    assert mean_projection_distance(targets, result.camera_from_ct, true, geometry) < 1.0
    assert target_registration_error(targets, result.camera_from_ct, true) < 3.0
    assert result.gc > 0.85
    assert [lv["factor"] for lv in result.levels] == [4, 2]


def test_error_measures_are_zero_for_equal_poses_and_exact_for_a_shift(scene):
    _, _, geometry, true, _, targets = scene
    assert mean_projection_distance(targets, true, true, geometry) == 0.0
    shifted = true.copy()
    shifted[0, 3] += 2.0  # 2 mm across the beam, in the camera frame
    assert target_registration_error(targets, shifted, true) == pytest.approx(2.0)
    assert mean_projection_distance(targets, shifted, true, geometry) == pytest.approx(
        2.0, rel=1e-9
    )


def test_block_means_equal_torch_pooling_at_ragged_edges():
    """The volume's levels are block means; a block cut by the edge averages what it
    holds (torch's avg_pool3d with ceil_mode, which the levels were tuned with)."""
    import torch
    import torch.nn.functional as F

    from registration.rigid import block_means, downsample_image

    data = np.random.default_rng(4).random((2, 7, 10, 9), dtype=np.float32)
    for f in (2, 3, 4):
        expected = F.avg_pool3d(torch.from_numpy(data), f, ceil_mode=True).numpy()
        np.testing.assert_allclose(block_means(data, f), expected, rtol=1e-6, atol=1e-6)
        image = data[0, 0]
        expected = F.avg_pool2d(torch.from_numpy(image)[None, None], f)[0, 0].numpy()
        np.testing.assert_allclose(downsample_image(image, f), expected, rtol=1e-6)


def test_scores_on_a_torch_device_equal_the_numpy_ones(scene):
    """The search on CUDA (tensors, torch kernels) scores poses as the CPU's NumPy path
    does; run on the GPU where there is one, else on torch's CPU."""
    import torch

    from registration.rigid import Level, Scene

    volume, fixed, geometry, true, iso, _ = scene
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mask = np.ones(fixed.shape, np.float32)
    mask[:, :20] = 0
    poses = np.stack(
        [correction(np.array(x), transform_points(true, iso)) @ true for x in np.eye(6) * 2]
    )
    levels = (
        Level(4.8, 1.0, 0),
        Level(2.4, 1.5, 0, voxel_mm=3.0),
        Level(2.4, 1.0, 0, integrator="joseph"),  # the hip's searches
    )
    for level in levels:
        on_cpu = Scene(volume, fixed, geometry, level, mask, 0.1 * fixed).gc(poses)
        on_device = Scene(volume, fixed, geometry, level, mask, 0.1 * fixed, device).gc(poses)
        np.testing.assert_allclose(on_cpu, on_device, atol=2e-4)


def test_a_masked_scene_renders_only_the_masks_box_and_scores_as_the_whole_image(scene):
    """A scene with a mask renders and compares only the mask's box grown by the smoothing's
    and the gradients' reach; every pixel beyond it has no weight in GC, so the scores
    are those of the whole image (to float rounding), with the background added."""
    from conventions.similarity import GradientCorrelation
    from registration.rigid import Level, Scene, downsample_image

    volume, fixed, geometry, true, iso, _ = scene
    mask = np.zeros(fixed.shape, np.float32)
    mask[40:150, 30:120] = 1.0  # a box away from every edge of the image
    background = 0.1 * fixed
    poses = np.stack(
        [correction(np.array(x), transform_points(true, iso)) @ true for x in np.eye(6) * 2]
    )
    for level in (Level(2.4, 1.0, 0), Level(4.8, 1.5, 0, integrator="joseph")):
        cropped = Scene(volume, fixed, geometry, level, mask, background)
        g = cropped.geometry
        assert cropped.rendered.rows < g.rows and cropped.rendered.cols < g.cols
        f = cropped.factor
        whole = GradientCorrelation(
            downsample_image(fixed, f)[: g.rows, : g.cols],
            downsample_image(mask, f)[: g.rows, : g.cols] > 0.99,
            level.sigma_px,
        )
        drr = project(cropped.volume, g, poses, integrator=level.integrator).sum(axis=1)
        expected = whole(drr + downsample_image(background, f)[: g.rows, : g.cols])
        np.testing.assert_allclose(cropped.gc(poses), expected, atol=2e-6)
