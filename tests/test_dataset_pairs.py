"""The pair transform: invertible, content moves with the points, sides mirror consistently."""

from __future__ import annotations

import numpy as np
import pytest

from conventions.pairs import PairTransform, half_of_side, pair_transform


def blob(shape, centre_rc, sigma=3.0) -> np.ndarray:
    r, c = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((r - centre_rc[0]) ** 2 + (c - centre_rc[1]) ** 2) / (2 * sigma**2))


def centroid(image: np.ndarray) -> np.ndarray:
    r, c = np.mgrid[: image.shape[0], : image.shape[1]]
    w = image / image.sum()
    return np.array([(r * w).sum(), (c * w).sum()])


@pytest.mark.parametrize("shape", [(384, 480), (2000, 1700), (301, 481)])
@pytest.mark.parametrize("side", ["L", "R"])
def test_points_go_forward_and_back_exactly(shape, side):
    t = pair_transform(shape, side)
    rng = np.random.default_rng(0)
    points = rng.uniform([0, 0], shape, size=(50, 2))
    assert np.allclose(t.to_radiograph(t.to_pair(points)), points, atol=1e-9)
    assert PairTransform.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("shape", [(384, 480), (1200, 1000)])  # up- and downscaled
@pytest.mark.parametrize("side", ["L", "R"])
def test_image_content_lands_where_its_point_maps_within_half_a_pixel(shape, side):
    """A landmark drawn as a blob on the radiograph is found, after the transform, where
    the landmark's coordinates map to."""
    t = pair_transform(shape, side)
    # A point in the side's half, well inside the crop.
    half = half_of_side(side)
    col = shape[1] * (0.3 if half == "left" else 0.7)
    point = np.array([shape[0] * 0.45, col])
    sigma = 4.0 / min(t.scale, 1.0)  # a blob still a few pixels wide in the pair
    moved = t.apply(blob(shape, point, sigma))
    assert np.linalg.norm(centroid(moved) - t.to_pair(point)) < 0.5


def test_the_target_half_fills_the_pair_and_the_other_half_is_left_out():
    shape = (384, 480)
    image = np.zeros(shape, np.float32)
    image[:, :240] = 1.0  # the image's left half: the patient's right hip
    right, left = pair_transform(shape, "R"), pair_transform(shape, "L")
    assert right.apply(image).min() == pytest.approx(1.0)
    assert left.apply(image).max() == pytest.approx(0.0)
    assert right.apply(image).shape == (512, 256)


@pytest.mark.parametrize("shape", [(384, 480), (384, 481)])
def test_a_left_hip_pair_equals_the_right_hip_pair_of_the_mirrored_image(shape):
    """Mirroring the radiograph swaps the hips: the left hip's pair of an image is the
    right hip's pair of its mirror image, pixel for pixel."""
    rng = np.random.default_rng(1)
    image = rng.normal(size=shape).astype(np.float32)
    left = pair_transform(shape, "L").apply(image)
    right_of_mirror = pair_transform(shape, "R").apply(image[:, ::-1].copy())
    assert np.allclose(left, right_of_mirror, atol=1e-5)


def test_masks_stay_binary_and_downscaling_is_smoothed_against_aliasing():
    shape = (2048, 2048)  # downscaled to the pair: 0.25 of the half's width
    t = pair_transform(shape, "R")
    mask = np.zeros(shape, np.float32)
    mask[800:1200, 200:700] = 1.0
    assert set(np.unique(t.apply(mask, order=0))) <= {0.0, 1.0}
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (shape[0], shape[1] // 2))  # Nyquist
    resampled = t.apply(stripes)
    inner = resampled[50:-50, 20:-20]
    assert inner.std() < 0.05 and inner.mean() == pytest.approx(0.5, abs=0.02)


def test_bad_shapes_are_refused():
    t = pair_transform((384, 480), "L")
    with pytest.raises(ValueError, match="radiograph"):
        t.apply(np.zeros((100, 100)))
    with pytest.raises(ValueError, match="side"):
        half_of_side("X")


def test_pairs_are_written_byte_identically(tmp_path):
    """Determinism: the same arrays give the same file, read back exactly."""
    from conventions.files import write_npz

    arrays = {
        "xray": np.arange(12, dtype=np.float32).reshape(3, 4),
        "pf_mask": np.eye(3, dtype=np.uint8),
    }
    write_npz(tmp_path / "a.npz", **arrays)
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as back:
        for k, v in arrays.items():
            assert np.array_equal(back[k], v) and back[k].dtype == v.dtype
