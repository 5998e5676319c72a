"""The decomposition losses (Gu et al. 2023, Eq. 1-4), weights from the config.

- adversarial: least squares (LSGAN, as pix2pixHD), averaged over the discriminator's
  scales; the generator wants its fakes scored 1, the discriminator reals 1 and fakes 0;
- L1 between the predicted and the ground-truth DRR (λ = 100);
- gradient correlation: 1 − GC of each predicted DRR with its target (λ = 1): edges,
  the structure a DRR and a radiograph share, whatever the intensity scale;
- feature matching: L1 between the discriminator's intermediate features for the real
  and the generated pair, averaged over layers and scales (λ = 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from conventions.similarity import paired_gradient_correlation


@dataclass(frozen=True)
class LossWeights:
    adversarial: float = 1.0
    l1: float = 100.0
    gc: float = 1.0
    feature_matching: float = 10.0


def lsgan(scores: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss of a multiscale discriminator's final outputs."""
    target = 1.0 if real else 0.0
    return torch.stack([((s[-1] - target) ** 2).mean() for s in scores]).mean()


def gradient_correlation_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean GC of each predicted image with its target ((B, 1, H, W) each)."""
    return 1.0 - paired_gradient_correlation(pred[:, 0], target[:, 0]).mean()


def feature_matching(
    fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminator's features for the generated and the real pair (all
    layers but the score), averaged; the real features are constants."""
    terms = [
        F.l1_loss(f, r.detach())
        for fs, rs in zip(fake, real, strict=True)
        for f, r in zip(fs[:-1], rs[:-1], strict=True)
    ]
    return torch.stack(terms).mean()


def generator_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    fake_scores: list[list[torch.Tensor]] | None,
    real_scores: list[list[torch.Tensor]] | None,
    w: LossWeights,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The generator's total loss and its terms. Without discriminator outputs (None) the
    adversarial and feature-matching terms are left out (a pure reconstruction run)."""
    terms = {
        "l1": F.l1_loss(pred, target),
        "gc": gradient_correlation_loss(pred, target),
    }
    total = w.l1 * terms["l1"] + w.gc * terms["gc"]
    if fake_scores is not None and real_scores is not None:
        terms["adversarial"] = lsgan(fake_scores, real=True)
        terms["feature_matching"] = feature_matching(fake_scores, real_scores)
        total = total + w.adversarial * terms["adversarial"]
        total = total + w.feature_matching * terms["feature_matching"]
    return total, {k: float(v.detach()) for k, v in terms.items()}


def discriminator_loss(
    fake_scores: list[list[torch.Tensor]], real_scores: list[list[torch.Tensor]]
) -> torch.Tensor:
    return 0.5 * (lsgan(real_scores, real=True) + lsgan(fake_scores, real=False))
