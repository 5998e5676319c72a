"""The decomposition networks (Gu et al. 2023, Sec. 3.2 and Appendix A).

- :class:`Encoder` (the paper's M_E): a backbone with high-resolution features, HRNet
  from ``timm`` (the paper uses HRFormer-B and reports HRNet about as good), whose
  parallel branches (strides 4 to 32) are upsampled and fused at 1/4 resolution, the
  "1/4-resolution representation" the regression head reads.
- :class:`Generator`: the encoder, then a pix2pixHD-style decoder (M_D) of transposed
  convolutions back to full resolution. Batch and instance normalisation are
  replaced by GroupNorm, as in the paper.
- :class:`MultiscaleDiscriminator`: pix2pixHD's conditional PatchGAN at several image
  scales; input = radiograph and DRR stacked; every layer's features are returned for
  the feature-matching loss.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with at most ``groups`` groups that divide ``channels``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


def batch_norm_to_group_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by a GroupNorm over the same channels (the
    paper's choice: statistics that do not depend on the batch, batches being small)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, group_norm(child.num_features))
        else:
            batch_norm_to_group_norm(child)
    return module


class Encoder(nn.Module):
    """The paper's encoder M_E: radiograph (B, 1, H, W) → the fused 1/4-resolution
    representation (B, 4·width, H/4, W/4), which the decoder (stages 1 and 2) and the
    regression head (stage 3) read.

    ``backbone`` is any ``timm`` model with ``features_only`` support; for HRNet the
    branch outputs themselves are used (``feature_location=''``). H and W must be
    multiples of 32.
    """

    def __init__(self, backbone: str = "hrnet_w18_small", width: int = 32, pretrained=False):
        super().__init__()
        kwargs = {"feature_location": ""} if backbone.startswith("hrnet") else {}
        self.backbone = batch_norm_to_group_norm(
            timm.create_model(
                backbone, features_only=True, pretrained=pretrained, in_chans=1, **kwargs
            )
        )
        info = self.backbone.feature_info
        # The branches at strides 4 and coarser make the 1/4-resolution representation.
        self.branches = [i for i, r in enumerate(info.reduction()) if r >= 4]
        fused = sum(info.channels()[i] for i in self.branches)
        self.channels = 4 * width
        self.fuse = nn.Sequential(
            nn.Conv2d(fused, self.channels, 1, bias=False), group_norm(self.channels), nn.ReLU(True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        size = features[self.branches[0]].shape[-2:]
        parts = [
            f if f.shape[-2:] == size else F.interpolate(f, size, mode="bilinear")
            for f in (features[i] for i in self.branches)
        ]
        return self.fuse(torch.cat(parts, dim=1))


class Generator(nn.Module):
    """Radiograph (B, 1, H, W) → decomposed image (B, out_channels, H, W): the encoder
    M_E, then pix2pixHD's up-sampling decoder M_D."""

    def __init__(
        self,
        backbone: str = "hrnet_w18_small",
        out_channels: int = 1,
        width: int = 32,
        pretrained: bool = False,
    ):
        super().__init__()
        self.encoder = Encoder(backbone, width, pretrained)
        self.representation_channels = self.encoder.channels

        def up(cin, cout):  # pix2pixHD's up-sampling block
            return [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                group_norm(cout),
                nn.ReLU(True),
            ]

        self.decoder = nn.Sequential(
            *up(4 * width, 2 * width),
            *up(2 * width, width),
            nn.ReflectionPad2d(3),
            nn.Conv2d(width, out_channels, 7),
        )

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The fused 1/4-resolution features (B, C, H/4, W/4)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class PatchDiscriminator(nn.Module):
    """pix2pixHD's PatchGAN at one scale; returns every layer's output (the last one is
    the per-patch real/fake score)."""

    def __init__(self, in_channels: int, width: int = 64, layers: int = 3):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(in_channels, width, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        c = width
        for k in range(1, layers + 1):
            stride = 2 if k < layers else 1
            c_next = min(c * 2, 8 * width)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c, c_next, 4, stride, 2), group_norm(c_next), nn.LeakyReLU(0.2, True)
                )
            )
            c = c_next
        blocks.append(nn.Sequential(nn.Conv2d(c, 1, 4, 1, 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out


class MultiscaleDiscriminator(nn.Module):
    """Conditional discriminators at ``scales`` image scales (each half the last): input
    (radiograph, DRR) stacked on channels. Returns, per scale, every layer's output."""

    def __init__(self, in_channels: int = 2, width: int = 64, layers: int = 3, scales: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, width, layers) for _ in range(scales)
        )

    def forward(self, radiograph: torch.Tensor, drr: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([radiograph, drr], dim=1)
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out
