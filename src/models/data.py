"""Training pairs as tensors: a dataset table's rows, a fold's subjects, the paper's
augmentations applied alike to the radiograph and its target.

The radiograph is standardised per image (zero mean, unit SD: exposure and processing
differ between radiographs); targets stay in g/cm². Pairs may be trained at a reduced
resolution (block means of the 512 × 256 pair: a demo on a CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

TARGETS = {"bone": "bone_drr_g_cm2", "pf": "pf_drr_g_cm2"}


def fold_subjects(folds_json: str | Path, fold: int) -> tuple[list[str], list[str]]:
    """(training subjects, test subjects) of one fold of ``folds.json``."""
    doc = json.loads(Path(folds_json).read_text(encoding="utf-8"))
    entry = doc["folds"][fold]
    return list(entry["train"]), list(entry["test"])


def standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    sd = float(x.std())
    return (x - float(x.mean())) / (sd if sd > 0 else 1.0)


def load_pair(path: str | Path, target: str, factor: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(standardised radiograph, target in g/cm²), each (H/factor, W/factor) float32."""
    with np.load(path) as pair:
        x, y = pair["xray"].astype(np.float32), pair[TARGETS[target]].astype(np.float32)
    if factor > 1:
        t = torch.from_numpy(np.stack([x, y]))[None]
        x, y = F.avg_pool2d(t, factor)[0].numpy()
    return standardise(x), y


class PairDataset(torch.utils.data.Dataset):
    """The pairs of ``table`` (a dataset TSV) whose subjects are in ``subjects``."""

    def __init__(
        self,
        table: str | Path,
        subjects,
        target: str,
        factor: int = 1,
        augment: bool = False,
        root: str | Path = ".",
    ):
        df = pd.read_csv(table, sep="\t", dtype={"subject_id": str, "image": str})
        df = df[df["subject_id"].isin(set(subjects))].reset_index(drop=True)
        if df.empty:
            raise ValueError(f"{table}: no pairs for the subjects {sorted(subjects)}")
        self.rows = df
        self.pairs = [load_pair(Path(root) / p, target, factor) for p in df["pair"]]
        self.augment = augment
        self.transform = paper_augmentation() if augment else None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = (torch.from_numpy(a)[None] for a in self.pairs[i])
        if self.transform is not None:
            x, y = self.transform(x, y)
        return x, y


def paper_augmentation():
    """Gu et al. 2023, Appendix A: rotation ±25°, shear ±9°, translation ±0.3, scaling
    ±0.3, horizontal and vertical flips (the same for radiograph and target), brightness
    and contrast ±0.5 (the radiograph only)."""
    geometric = v2.Compose(
        [
            v2.RandomAffine(degrees=25, translate=(0.3, 0.3), scale=(0.7, 1.3), shear=9),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
        ]
    )

    def apply(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = geometric(torch.cat([x, y]))  # one draw for both channels
        x, y = both[:1], both[1:]
        gain = 1.0 + (torch.rand(()) - 0.5)  # contrast ×[0.5, 1.5]
        shift = torch.rand(()) - 0.5  # brightness ±0.5 SD
        return x * gain + shift, y

    return apply
