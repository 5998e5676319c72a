"""The models' parts: losses on known inputs, BMD from a PF-DRR, one training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.bmd import fit_bmd_calibration, thresholded_mean
from models.losses import (
    LossWeights,
    discriminator_loss,
    feature_matching,
    generator_loss,
    gradient_correlation_loss,
    lsgan,
)
from models.networks import Generator, MultiscaleDiscriminator


def test_gradient_correlation_loss_is_zero_for_an_image_and_any_affine_copy():
    x = torch.rand(3, 1, 32, 16)
    assert float(gradient_correlation_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_correlation_loss(2.5 * x + 1.0, x)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_correlation_loss(-x, x)) == pytest.approx(2.0, abs=1e-5)


def test_feature_matching_and_lsgan_on_known_inputs():
    feats = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 3, 3)]]
    assert float(feature_matching(feats, feats)) == 0.0
    other = [[torch.full((1, 2, 4, 4), 3.0), torch.zeros(1, 1, 3, 3)]]
    assert float(feature_matching(other, feats)) == pytest.approx(2.0)
    scores = [[torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)]]
    assert float(lsgan(scores, real=True)) == pytest.approx(0.25)
    assert float(lsgan(scores, real=False)) == pytest.approx(0.25)
    assert float(discriminator_loss(scores, scores)) == pytest.approx(0.25)


def test_thresholded_mean_and_the_threshold_that_best_tracks_bmd():
    """Each PF-DRR: a bone of the subject's density plus a faint rim whose brightness
    has nothing to do with BMD; the tuned threshold must drop the rim."""
    rng = np.random.default_rng(0)
    bmd = rng.uniform(0.5, 1.1, 30)
    images = []
    for b in bmd:
        img = np.zeros((40, 20))
        img[10:30, 5:15] = b
        img[8:32, 3:17][img[8:32, 3:17] == 0] = rng.uniform(0.05, 0.3)  # the rim
        images.append(img)
    assert thresholded_mean(images[0], 0.0) < bmd[0]  # the rim pulls the plain mean down
    assert thresholded_mean(images[0], 0.4) == pytest.approx(bmd[0])
    cal, curve = fit_bmd_calibration(images, 2.0 * bmd + 0.1, "dxa_bmd_g_cm2")
    assert 0.3 <= cal.threshold_g_cm2 <= 0.5 and cal.train_pcc == pytest.approx(1.0)
    assert curve[0.0] < 0.99
    assert np.allclose(cal.predict(images), 2.0 * bmd + 0.1)


def test_generator_and_discriminator_shapes_and_group_norm():
    g = Generator("hrnet_w18_small", width=8)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    x = torch.rand(2, 1, 64, 32)
    y = g(x)
    assert y.shape == (2, 1, 64, 32)
    assert g.representation(x).shape == (2, g.representation_channels, 16, 8)
    d = MultiscaleDiscriminator(width=8, scales=2)
    out = d(x, y)
    assert len(out) == 2 and out[0][-1].shape[1] == 1


def test_one_optimisation_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    g = Generator("hrnet_w18_small", width=8)
    x = torch.rand(2, 1, 64, 32)
    target = torch.nn.functional.avg_pool2d(x, 5, 1, 2) * 2.0  # a smooth function of x
    opt = torch.optim.AdamW(g.parameters(), lr=1e-3)
    w = LossWeights()
    losses = []
    for _ in range(6):
        loss, _ = generator_loss(g(x), target, None, None, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_gc_loss_has_finite_gradients_against_a_flat_target():
    """An augmentation can move the PF region out of the frame, leaving an all-zero
    target: GC is undefined there, and its gradient must be zero, not NaN (a NaN
    gradient once turned a whole demo network into NaN)."""
    pred = torch.rand(2, 1, 32, 16, requires_grad=True)
    target = torch.rand(2, 1, 32, 16)
    target[1] = 0.0
    loss = gradient_correlation_loss(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    assert float(pred.grad[1].abs().max()) == 0.0  # the flat target pulls nothing
    assert float(pred.grad[0].abs().max()) > 0.0
