"""Training pairs as tensors: a dataset table's rows, a fold's subjects, the paper's
augmentations applied alike to the radiograph and its target; for the regressors, the
radiograph (or its proximal-femur ROI) with the subject's BMD and its sample weight.

The radiograph is standardised per image (zero mean, unit SD: exposure and processing
differ between radiographs); targets stay in g/cm². Pairs may be trained at a reduced
resolution (block means of the 512 × 256 pair: a demo on a CPU).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from models.folds import fold_rows
from models.regression import sample_weights

TARGETS = {"bone": "bone_drr_g_cm2", "pf": "pf_drr_g_cm2"}


def _digest(arrays) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    sd = float(x.std())
    return (x - float(x.mean())) / (sd if sd > 0 else 1.0)


def block_mean(image: np.ndarray, factor: int = 1) -> np.ndarray:
    """The image at 1/``factor`` of its size (means of factor × factor blocks), float32."""
    x = np.asarray(image, np.float32)
    if factor > 1:
        x = F.avg_pool2d(torch.from_numpy(x)[None, None], factor)[0, 0].numpy()
    return x


def load_pair(path: str | Path, target: str, factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(the model's input, target in g/cm²), each (H/factor, W/factor) float32."""
    with np.load(path) as pair:
        x, y = pair["xray"], pair[TARGETS[target]]
    return model_input(x, factor=factor), block_mean(y, factor)


class PairDataset(torch.utils.data.Dataset):
    """The pairs of ``table`` (a dataset TSV) whose subjects are in ``subjects`` (and
    whose pose is in ``poses``, when given)."""

    def __init__(
        self,
        table: str | Path,
        subjects,
        target: str,
        factor: int = 1,
        augment: bool = False,
        root: str | Path = ".",
        poses=None,
        augment_intensity: bool = True,
        augment_range: float = 1.0,
    ):
        df = fold_rows(table, subjects, poses)
        if df.empty:
            raise ValueError(
                f"{table}: no pairs for the subjects {sorted(subjects)}"
                + (f" in the poses {sorted(poses)}" if poses else "")
            )
        self.rows = df
        self.pairs = [load_pair(Path(root) / p, target, factor) for p in df["pair"]]
        self.augment = augment
        self.transform = paper_augmentation(augment_intensity, augment_range) if augment else None

    def __len__(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        """A digest of the pairs' arrays, as training sees them."""
        return _digest(a for pair in self.pairs for a in pair)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = (torch.from_numpy(a)[None] for a in self.pairs[i])
        if self.transform is not None:
            x, y = self.transform(x, y)
        return x, y


def proximal_femur_roi(xray: np.ndarray, pf_mask: np.ndarray, size: int, margin=0.15):
    """The conventional method's input: a square crop about the PF region's bounding box
    (its longer side plus ``margin`` on each side), resized to ``size`` × ``size``.

    The box comes from the ground-truth PF silhouette: the paper's "pre-cropped ROI ...
    to simulate the most ideal situation" of a localisation model. Outside the image the
    crop repeats the edge pixels."""
    rows, cols = np.nonzero(pf_mask)
    if rows.size == 0:
        raise ValueError("the pair has an empty PF mask: no ROI to crop")
    centre = np.array([rows.min() + rows.max(), cols.min() + cols.max()]) / 2.0
    half = 0.5 * (1 + 2 * margin) * (max(np.ptp(rows), np.ptp(cols)) + 1)
    lo = np.floor(centre - half).astype(int)
    hi = np.ceil(centre + half).astype(int)
    pad = int(max(0, -lo.min(), *(hi - np.array(xray.shape))))
    padded = np.pad(np.asarray(xray, np.float32), pad, mode="edge")
    crop = padded[lo[0] + pad : hi[0] + pad, lo[1] + pad : hi[1] + pad]
    # Imported here: it brings scipy.ndimage (0.3 s), which the decomposition stages'
    # jobs do not otherwise load.
    from skimage.transform import resize

    return resize(crop, (size, size), anti_aliasing=True, preserve_range=True).astype(np.float32)


class RegressionDataset(torch.utils.data.Dataset):
    """Radiographs of ``table``'s rows whose subjects are in ``subjects`` and whose
    ``target`` column (e.g. ``dxa_bmd_g_cm2``) is known, with that BMD and its sample
    weight (Eq. 10, over these rows). The input is the pair's radiograph at 1/``factor``
    of its size or, with ``roi_size``, its PF ROI crop (the conventional method). With
    ``poses``, only those poses' radiographs."""

    def __init__(
        self,
        table: str | Path,
        subjects,
        target: str,
        factor: int = 1,
        augment: bool = False,
        roi_size: int | None = None,
        root: str | Path = ".",
        poses=None,
        augment_intensity: bool = True,
        augment_range: float = 1.0,
    ):
        df = fold_rows(table, subjects, poses)
        df = df[np.isfinite(df[target].to_numpy(float))].reset_index(drop=True)
        if df.empty:
            raise ValueError(
                f"{table}: no pairs with a known {target} for the subjects {sorted(subjects)}"
            )
        self.rows = df
        self.inputs = [load_input(Path(root) / p, factor, roi_size) for p in df["pair"]]
        self.bmd = df[target].to_numpy(np.float32)
        self.weights = sample_weights(self.bmd).astype(np.float32)
        self.transform = paper_augmentation(augment_intensity, augment_range) if augment else None

    def __len__(self) -> int:
        return len(self.inputs)

    def fingerprint(self) -> str:
        """A digest of the inputs and their BMD, as training sees them."""
        return _digest([*self.inputs, self.bmd])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.inputs[i])[None]
        if self.transform is not None:
            x, _ = self.transform(x)
        return x, torch.tensor(self.bmd[i]), torch.tensor(self.weights[i])


def model_input(xray: np.ndarray, pf_mask: np.ndarray | None = None, factor: int = 1,
                roi_size: int | None = None) -> np.ndarray:  # fmt: skip
    """A model's input from a pair's radiograph: standardised, at 1/``factor`` of its size
    (block means), or the PF ROI crop at ``roi_size`` (the conventional method) cut from
    the radiograph standardised as a whole, so the ROI keeps its intensities relative to
    the rest of the image (a crop standardised on its own loses the bone's density)."""
    if roi_size is not None:
        return proximal_femur_roi(standardise(xray), pf_mask, roi_size)
    return standardise(block_mean(xray, factor))


def load_input(path: str | Path, factor: int = 1, roi_size: int | None = None,
               xray: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """:func:`model_input` of a pair file's radiograph, or of ``xray`` in its place (the
    same radiograph compressed, for the robustness study) with the pair's PF mask."""
    with np.load(path) as pair:
        x = pair["xray"] if xray is None else xray
        mask = pair["pf_mask"] if roi_size is not None else None
    return model_input(x, mask, factor, roi_size)


def paper_augmentation(intensity: bool = True, geometric_range: float = 1.0):
    """Gu et al. 2023, Appendix A: rotation ±25°, shear ±9°, translation ±0.3, scaling
    ±0.3, horizontal and vertical flips (the same for radiograph and target), and with
    ``intensity`` brightness and contrast ±0.5 (the radiograph only).

    BMD is an intensity: on a standardised radiograph the bone's contrast against the
    soft tissue is what carries it, and a contrast draw of ×[0.5, 1.5] blurs it by more
    than the cohort's BMD spread (SD 20 % of the mean). ``intensity=False`` keeps the
    geometric augmentations only.

    ``geometric_range`` scales the paper's ranges (rotation, shear, translation, scaling)
    and the vertical flip's probability (0.5 at 1): the paper's ranges are for hundreds
    of epochs on a GPU; a network trained for tens of epochs on a CPU fits its training
    pairs only under milder draws (docs/models.md). The horizontal flip stays: it turns
    one hip into the other."""
    if not 0.0 <= geometric_range <= 1.0:
        raise ValueError(f"geometric_range must be in [0, 1], got {geometric_range}")
    r = geometric_range
    geometric = v2.Compose(
        [
            v2.RandomAffine(
                degrees=25 * r,
                translate=(0.3 * r, 0.3 * r),
                scale=(1 - 0.3 * r, 1 + 0.3 * r),
                shear=9 * r,
            ),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(p=0.5 * r),
        ]
    )

    def apply(x: torch.Tensor, y: torch.Tensor | None = None):
        """(radiograph, target image or None) → both moved by one geometric draw."""
        if y is None:
            x = geometric(x)
        else:
            both = geometric(torch.cat([x, y]))  # one draw for both channels
            x, y = both[:1], both[1:]
        if not intensity:
            return x, y
        gain = 1.0 + (torch.rand(()) - 0.5)  # contrast ×[0.5, 1.5]
        shift = torch.rand(()) - 0.5  # brightness ±0.5 SD
        return x * gain + shift, y

    return apply
