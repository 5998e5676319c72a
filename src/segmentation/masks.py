"""Bone masks given by the user (e.g. TotalSegmentator's output), mapped onto our labels.

A mask is either one label image (values named by a label map) or a folder of binary
masks named after the bones (``femur_left.nii.gz``, ...: TotalSegmentator's default
output). Either must lie on the CT's grid: same size, spacing, origin and direction.
Nothing is resampled: a mask on another grid usually means it belongs to another series
(or was cropped), and resampling would hide that. Label maps:

- ``totalsegmentator``: :data:`conventions.labels.TOTALSEGMENTATOR_LABELS` (75 femur_left,
  76 femur_right, 77 hip_left, 78 hip_right, 25 sacrum);
- ``project``: our own values (:data:`conventions.labels.BONE_LABELS`);
- a JSON object from bone name to value, e.g. ``{"femur_left": 75, "hip_left": 77}``;
  bones it leaves out stay background.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from conventions.ct import VOLUME_SUFFIXES, grid_mismatch
from conventions.errors import InputError
from conventions.labels import BONE_LABELS, TOTALSEGMENTATOR_LABELS

LABEL_MAPS = {"totalsegmentator": TOTALSEGMENTATOR_LABELS, "project": BONE_LABELS}


def parse_label_map(text: str) -> dict[str, int]:
    """A preset's name or a JSON object {bone name: label value}."""
    if text in LABEL_MAPS:
        return dict(LABEL_MAPS[text])
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(
            None,
            f"label map {text!r} is neither a preset ({', '.join(LABEL_MAPS)}) nor a JSON "
            "object such as '{\"femur_left\": 75}'",
        ) from None
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(None, f"label map {text!r} must be a non-empty JSON object")
    unknown = sorted(set(mapping) - set(BONE_LABELS))
    if unknown:
        raise InputError(
            None, f"label map names unknown bones {unknown}; known: {', '.join(BONE_LABELS)}"
        )
    bad = {k: v for k, v in mapping.items() if not isinstance(v, int) or isinstance(v, bool)}
    if bad or any(v <= 0 for v in mapping.values()):
        raise InputError(None, f"label map values must be positive integers, got {mapping}")
    if len(set(mapping.values())) != len(mapping):
        raise InputError(None, f"label map gives two bones the same value: {mapping}")
    return {k: int(v) for k, v in mapping.items()}


def read_masks(path: str | Path, ct: sitk.Image, label_map: dict[str, int]) -> np.ndarray:
    """Our uint8 labels (z, y, x) from a label image, or from a folder of per-bone masks,
    on ``ct``'s grid. Errors name the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, ct)
    values = _read_on_grid(path, ct)
    if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
        raise InputError(path, "label image holds non-integer values")
    out = np.zeros(values.shape, np.uint8)
    for name, value in label_map.items():
        out[values == value] = BONE_LABELS[name]
    return out


def _read_folder(folder: Path, ct: sitk.Image) -> np.ndarray:
    out = np.zeros(sitk.GetArrayViewFromImage(ct).shape, np.uint8)
    found = False
    for name, value in BONE_LABELS.items():
        for suffix in VOLUME_SUFFIXES:
            f = folder / f"{name}{suffix}"
            if f.is_file():
                out[_read_on_grid(f, ct) > 0] = value
                found = True
                break
    if not found:
        raise InputError(
            folder, f"no bone masks found: expected files named {', '.join(BONE_LABELS)} (.nii.gz)"
        )
    return out


def _read_on_grid(path: Path, ct: sitk.Image) -> np.ndarray:
    if not path.exists():
        raise InputError(path, "mask file not found")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        last = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise InputError(path, f"cannot read label image ({last[-1] if last else e})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "label image has several components per voxel")
    problem = grid_mismatch(image, ct)
    if problem:
        raise InputError(path, f"label image is not on the CT's grid: {problem}")
    return sitk.GetArrayFromImage(image)
