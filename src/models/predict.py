"""Predicting decomposed images, and BMD from them.

- :func:`predict_images`: a trained generator's images for standardised radiographs.
- :func:`predict_radiograph`: one new radiograph, end to end: its target hip side
  through the dataset stage's pair transform, the generator, the predicted PF-DRR
  mapped back onto the radiograph's pixels, and its BMD by a fold's calibration and,
  optionally, by a stage-three regressor.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from conventions.pairs import pair_transform
from models.bmd import BmdCalibration
from models.data import model_input
from models.networks import Generator
from models.plausibility import PlausibleRange
from models.train import TrainConfig, load_checkpoint
from models.train_regression import predict_bmd


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
    regressor: torch.nn.Module | None = None,
    plausible: PlausibleRange | None = None,
) -> dict:
    """PF-DRR (pair and radiograph frames, g/cm²) and BMD of one radiograph's ``side`` hip:
    from the PF-DRR by a fold's ``calibration`` (``bmd``) and, given a stage-three
    ``regressor`` trained at the same ``factor``, from the regression (``bmd_regression``).

    Given the fold's ``plausible`` range, the PF-DRR is checked (failure detection):
    ``plausible`` is False with the reasons when it is not.

    ``factor`` is the model's training downsampling of the pair (its config)."""
    t = pair_transform(pixels.shape, side, pair_shape)
    x = torch.from_numpy(model_input(t.apply(pixels), factor=factor))[None, None]
    pred = generator(x)  # at the training resolution, where the calibration was fitted
    pf_small = pred[0, 0].numpy()
    # Areal density is intensive: interpolated back to the pair's size for display.
    pf_pair = F.interpolate(pred, size=pair_shape, mode="bilinear")[0, 0].numpy()
    # Onto the radiograph: each of its pixels sampled (bilinear) where the pair transform
    # takes it; outside the pair, no prediction (0). The BMD is read in the pair's frame,
    # as in training.
    rows, cols = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    rc = t.to_pair(np.stack([rows.ravel(), cols.ravel()], axis=1))
    back = ndimage.map_coordinates(pf_pair, rc.T, order=1, mode="constant", cval=0.0)
    result = {
        "pf_drr_pair_g_cm2": pf_pair,
        "pf_drr_radiograph_g_cm2": back.reshape(pixels.shape).astype(np.float32),
        "transform": t.to_dict(),
        # At the training resolution, where the calibration was fitted and from which
        # stage three reads: the model's input and its PF-DRR.
        "model_input": x[0, 0].numpy(),
        "pf_drr_model_g_cm2": pf_small,
    }
    if calibration is not None:
        result["bmd"] = float(calibration.predict([pf_small])[0])
        result["bmd_target"] = calibration.target
    if plausible is not None:
        _, reasons = plausible.check(pf_small)
        result["plausible"], result["implausible_because"] = not reasons, reasons
    if regressor is not None:  # stage three reads the same standardised pair
        result["bmd_regression"] = float(predict_bmd(regressor, x[:, 0].numpy())[0])
    return result
