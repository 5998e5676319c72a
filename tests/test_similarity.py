"""Gradient correlation and NCC: the properties registration relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conventions.similarity import (
    gradient_correlation,
    normalized_cross_correlation,
    patchwise_gradient_correlation,
)


@pytest.fixture
def image() -> torch.Tensor:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128]
    img = np.exp(-((x - 60) ** 2 + (y - 40) ** 2) / 300.0) + (x > 80) * 0.5
    return torch.tensor(img + 0.01 * rng.normal(size=img.shape), dtype=torch.float32)


def test_gc_is_one_for_itself_and_blind_to_affine_intensity(image):
    batch = torch.stack([image, 3.0 * image + 7.0, -image])
    gc = gradient_correlation(image, batch)
    assert gc[:2] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert gc[2] == pytest.approx(-1.0, abs=1e-5)  # inverted contrast
    # A smooth background (soft tissue) added to the moving image barely matters to GC,
    # while it lowers NCC.
    y, x = np.mgrid[0:96, 0:128]
    ramp = torch.tensor(0.004 * x + 0.002 * y, dtype=torch.float32)
    assert gradient_correlation(image, image + ramp)[0] > 0.95
    assert normalized_cross_correlation(image, image + 5 * ramp)[0] < 0.9


def test_gc_falls_as_the_image_shifts(image):
    shifted = torch.stack([torch.roll(image, s, dims=1) for s in (0, 1, 3, 8)])
    gc = gradient_correlation(image, shifted, sigma_px=1.0)
    assert torch.all(gc[:-1] > gc[1:])  # strictly decreasing with the shift


def test_mask_ignores_what_is_outside_it(image):
    corrupted = image.clone()
    corrupted[:, :20] = torch.rand(96, 20)  # a text label burnt onto the film
    mask = torch.ones_like(image)
    mask[:, :22] = 0
    assert gradient_correlation(corrupted, image[None], mask=mask)[0] == pytest.approx(
        1.0, abs=1e-5
    )
    assert gradient_correlation(corrupted, image[None])[0] < 0.9


def test_patchwise_gc_agrees_on_identity_and_rejects_noise(image):
    noise = torch.rand(2, 96, 128)
    pg = patchwise_gradient_correlation(image, torch.stack([image, noise[0]]), patch_px=16)
    assert pg[0] == pytest.approx(1.0, abs=1e-5)
    assert abs(pg[1]) < 0.3


@pytest.mark.parametrize("sigma", [0.0, 1.0, 1.7])
def test_numpy_and_torch_give_the_same_scores(image, sigma):
    """Registration scores NumPy arrays on the CPU and tensors on CUDA (and the models'
    loss is the tensor form): one formula, the smoothing implemented per library; the
    two must agree, on the GPU where there is one."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    moving = torch.stack([image, torch.roll(image, 2, dims=0), torch.rand(96, 128)])
    mask = torch.ones_like(image)
    mask[:10] = 0
    cases = [
        (gradient_correlation, {"mask": mask}),
        (gradient_correlation, {}),
        (normalized_cross_correlation, {"mask": mask}),
        (patchwise_gradient_correlation, {"patch_px": 16}),
    ]
    for fn, options in cases:
        on_numpy = {k: v.numpy() if torch.is_tensor(v) else v for k, v in options.items()}
        on_device = {k: v.to(device) if torch.is_tensor(v) else v for k, v in options.items()}
        a = fn(image.numpy(), moving.numpy(), sigma_px=sigma, **on_numpy)
        b = fn(image.to(device), moving.to(device), sigma_px=sigma, **on_device)
        assert isinstance(a, np.ndarray) and torch.is_tensor(b)
        np.testing.assert_allclose(a, b.cpu().numpy(), atol=2e-5)


@pytest.mark.parametrize("sigma_px", [0.0, 1.0, 1.5])
@pytest.mark.parametrize("mask_kind", ["none", "binary", "fractional"])
def test_fused_gc_equals_the_array_formula(sigma_px, mask_kind):
    """registration's fused GC (channels and background summed, smoothed, differenced and
    reduced in one compiled pass) scores as GradientCorrelation on the summed image, to
    float rounding: with no mask, a binary one and fractional weights, any smoothing."""
    from conventions.similarity import GradientCorrelation
    from registration.fused_gc import FusedGradientCorrelation

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:70, 0:90]
    fixed = (np.sin(x / 6.0) + np.cos(y / 9.0) + 0.2 * rng.normal(size=x.shape)).astype(np.float32)
    gains = rng.uniform(0.5, 2.0, (6, 2, 1, 1))
    moving = (fixed * gains + 0.4 * rng.normal(size=(6, 2, *x.shape))).astype(np.float32)
    moving[0] = -moving[0]  # anticorrelated: GC of the opposite sign
    background = (0.3 * fixed + 0.05 * x).astype(np.float32)
    mask = {
        "none": None,
        "binary": (rng.uniform(size=x.shape) > 0.3).astype(np.float32),
        "fractional": rng.uniform(size=x.shape).astype(np.float32),
    }[mask_kind]
    expected = GradientCorrelation(fixed, mask, sigma_px)(moving.sum(axis=1) + background)
    fused = FusedGradientCorrelation(fixed, mask, sigma_px, background)(moving)
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    assert expected[0] < -0.2 < 0.2 < expected[1:].min()  # the scores span both signs
    # One channel given as (B, H, W), and no background.
    alone = FusedGradientCorrelation(fixed, mask, sigma_px)(moving[:, 0])
    reference = GradientCorrelation(fixed, mask, sigma_px)(moving[:, 0])
    np.testing.assert_allclose(alone, reference, atol=1e-6)
    with pytest.raises(ValueError, match="differ"):
        FusedGradientCorrelation(fixed, mask, sigma_px)(moving[:, :, 1:])
