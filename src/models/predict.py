"""Predicting decomposed images, and BMD from them.

- :func:`predict_images`: a trained generator's images for standardised radiographs.
- :func:`predict_radiograph`: one new radiograph, end to end: its target hip side
  through the dataset stage's pair transform, the generator, the predicted PF-DRR
  mapped back onto the radiograph's pixels, and its BMD by a fold's calibration.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dataset.pairs import pair_transform
from models.bmd import BmdCalibration
from models.data import standardise
from models.networks import Generator
from models.train import TrainConfig, load_checkpoint


def load_generator(checkpoint: str) -> tuple[Generator, TrainConfig]:
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["config"])
    g = Generator(cfg.backbone, width=cfg.width)
    g.load_state_dict(ckpt["generator"])
    return g.eval(), cfg


@torch.no_grad()
def predict_images(generator: Generator, radiographs: np.ndarray, batch: int = 8) -> np.ndarray:
    """Standardised radiographs (N, H, W) → predicted images (N, H, W)."""
    out = []
    for i in range(0, len(radiographs), batch):
        x = torch.from_numpy(np.asarray(radiographs[i : i + batch], np.float32))[:, None]
        out.append(generator(x)[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 0), np.float32)


@torch.no_grad()
def predict_radiograph(
    generator: Generator,
    pixels: np.ndarray,
    side: str,
    factor: int,
    calibration: BmdCalibration | None = None,
    pair_shape: tuple[int, int] = (512, 256),
) -> dict:
    """PF-DRR (pair and radiograph frames, g/cm²) and BMD of one radiograph's ``side`` hip.

    ``factor`` is the model's training downsampling of the pair (its config)."""
    t = pair_transform(pixels.shape, side, pair_shape)
    pair = torch.from_numpy(t.apply(pixels))[None, None]
    small = F.avg_pool2d(pair, factor) if factor > 1 else pair  # as load_pair does
    x = torch.from_numpy(standardise(small[0, 0].numpy()))[None, None]
    pred = generator(x)  # at the training resolution, where the calibration was fitted
    pf_small = pred[0, 0].numpy()
    # Areal density is intensive: interpolated back to the pair's size for display.
    pf_pair = F.interpolate(pred, size=pair_shape, mode="bilinear")[0, 0].numpy()
    # Onto the radiograph: the inverse transform, pixel by pixel (nearest is enough to
    # show it; the BMD is read in the pair's frame, as in training).
    rows, cols = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    rc = t.to_pair(np.stack([rows.ravel(), cols.ravel()], axis=1))
    r, c = np.round(rc[:, 0]).astype(int), np.round(rc[:, 1]).astype(int)
    inside = (r >= 0) & (r < pair_shape[0]) & (c >= 0) & (c < pair_shape[1])
    back = np.zeros(pixels.size, np.float32)
    back[inside] = pf_pair[r[inside], c[inside]]
    result = {
        "pf_drr_pair_g_cm2": pf_pair,
        "pf_drr_radiograph_g_cm2": back.reshape(pixels.shape),
        "transform": t.to_dict(),
    }
    if calibration is not None:
        result["bmd"] = float(calibration.predict([pf_small])[0])
        result["bmd_target"] = calibration.target
    return result
