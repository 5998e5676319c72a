"""BMD regressed from a radiograph: stage three and the conventional baseline.

- :class:`RegressionHead` (the paper's M_R, Sec. 3.4 and Appendix A): CoAtNet's
  relative-attention transformer stages (S3-TFM_Rel and S4-TFM_Rel, each opening with a
  stride-2 block; ``timm``'s ``TransformerBlock2d`` with ``RelPosBias``) on the encoder's
  1/4-resolution representation, then global average pooling and a linear layer.
- :class:`DecompositionRegressor`: stage two's encoder M_E plus the head, R = {M_E, M_R};
  trained first with the encoder frozen, then end to end at a lower learning rate.
- :class:`ConventionalRegressor`: the baseline the paper compares with (Hsieh et al.
  2021): a CNN (``timm``, ResNet-18 by default) regressing BMD from a proximal-femur ROI
  crop of the radiograph.
- :func:`sample_weights` and :func:`weighted_l1`: the paper's Eq. 9-11, weights that
  favour the rarer BMDs far from the mean.

Every regressor predicts the target standardised by its training fold's mean and SD
(``target_mean``, ``target_sd``, kept with the weights) and returns it in the target's
own units.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import timm
import torch
from timm.models.maxxvit import MaxxVitTransformerCfg, RelPosBias, TransformerBlock2d
from torch import nn

from models.networks import Encoder


def sample_weights(bmd) -> np.ndarray:
    """Gu et al. Eq. 9-10: d = |y − ȳ| over the training set, w = 1.5 − (d − d_min) /
    (d_max − d_min), from 1.5 at the mean to 0.5 at the extreme. Equal BMDs weigh 1."""
    y = np.asarray(bmd, float)
    d = np.abs(y - y.mean())
    span = d.max() - d.min()
    if span == 0:
        return np.ones_like(y)
    return 1.5 - (d - d.min()) / span


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gu et al. Eq. 11: the batch mean of w·|y − R(x)|."""
    return (weight * (pred - target).abs()).mean()


class RegressionHead(nn.Module):
    """Representation (B, C, h, w) → one value per image.

    ``input_size`` is the representation's (h, w): relative position biases are tables
    over a fixed grid, so a head serves one image size (each stage halves it)."""

    def __init__(
        self,
        in_channels: int,
        input_size: tuple[int, int],
        dims: tuple[int, ...] = (192, 384),
        depths: tuple[int, ...] = (2, 2),
        dim_head: int = 32,
    ):
        super().__init__()
        h, w = input_size
        if h % 2 ** len(dims) or w % 2 ** len(dims):
            raise ValueError(
                f"a representation of {h} × {w} cannot be halved {len(dims)} times: "
                f"the image must be a multiple of {4 * 2 ** len(dims)} pixels"
            )
        cfg = MaxxVitTransformerCfg(dim_head=dim_head)
        blocks, c = [], in_channels
        for dim, depth in zip(dims, depths, strict=True):
            h, w = h // 2, w // 2
            rel_pos = partial(RelPosBias, window_size=(h, w))
            for k in range(depth):
                blocks.append(
                    TransformerBlock2d(
                        c, dim, stride=2 if k == 0 else 1, rel_pos_cls=rel_pos, cfg=cfg
                    )
                )
                c = dim
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(c)
        self.fc = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x).mean(dim=(2, 3))
        return self.fc(self.norm(x))[:, 0]


class DecompositionRegressor(nn.Module):
    """R = {M_E, M_R}: the decomposition encoder and a regression head (stage three)."""

    def __init__(
        self,
        image_size: tuple[int, int],
        backbone: str = "hrnet_w18_small",
        width: int = 32,
        head_dims: tuple[int, ...] = (192, 384),
        head_depths: tuple[int, ...] = (2, 2),
        dim_head: int = 32,
    ):
        super().__init__()
        self.encoder = Encoder(backbone, width)
        size = (image_size[0] // 4, image_size[1] // 4)
        self.head = RegressionHead(self.encoder.channels, size, head_dims, head_depths, dim_head)
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_sd", torch.tensor(1.0))

    def load_encoder(self, generator_state: dict) -> None:
        """Take M_E's weights from a decomposition generator's state dict."""
        prefix = "encoder."
        state = {k[len(prefix) :]: v for k, v in generator_state.items() if k.startswith(prefix)}
        self.encoder.load_state_dict(state)

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_mean + self.target_sd * self.standardised(x)


class ConventionalRegressor(nn.Module):
    """The conventional method: a CNN regressing BMD directly from a PF ROI crop.

    The CNN keeps its own batch normalisation (Hsieh et al.'s ResNet), unlike the
    decomposition networks, which take the paper's group normalisation. With group
    normalisation the baseline collapsed to a constant: on the learning cohort's fold 0
    (124 ROIs of 32 px) its predictions' SD stayed under 0.001 g/cm² and its training
    MAE at the constant predictor's 0.12 for 40 epochs, where batch normalisation fits
    them (training PCC 0.82, test PCC 0.81; docs/study.md)."""

    def __init__(self, backbone: str = "resnet18"):
        super().__init__()
        self.cnn = timm.create_model(backbone, pretrained=False, in_chans=1, num_classes=1)
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_sd", torch.tensor(1.0))

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_mean + self.target_sd * self.standardised(x)
