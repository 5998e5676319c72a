"""Run TotalSegmentator on the CT, when it is installed with its weights (optional).

TotalSegmentator (Wasserthal et al., Radiology: AI 2023) is not a dependency of the
workflow: it is imported only here, only when asked for. Its five bones of the "total"
task are requested (``roi_subset``) as one label image with its own values, which
:mod:`segmentation.masks` maps onto ours. It needs the CT in HU, not the density.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from conventions.errors import InputError
from conventions.labels import TOTALSEGMENTATOR_LABELS
from segmentation.masks import read_masks

INSTALL_HINT = (
    "TotalSegmentator is not installed: `pip install TotalSegmentator` (its weights, about "
    "1.5 GB, download on first use; offline, fetch them beforehand with "
    "`totalseg_download_weights -t total`), or use --method threshold or --masks"
)


def run_totalsegmentator(ct_path: str | Path, ct: sitk.Image, fast: bool = False) -> np.ndarray:
    """Our uint8 labels (z, y, x) on ``ct``'s grid, from TotalSegmentator run on the HU
    CT at ``ct_path``."""
    try:
        from totalsegmentator.python_api import totalsegmentator
    except ImportError:
        raise InputError(ct_path, INSTALL_HINT) from None
    with tempfile.TemporaryDirectory(prefix="totalseg-") as tmp:
        out = Path(tmp) / "labels.nii.gz"
        try:
            totalsegmentator(
                str(ct_path),
                str(out),
                ml=True,
                fast=fast,
                roi_subset=sorted(TOTALSEGMENTATOR_LABELS),
                quiet=True,
            )
        except Exception as e:  # its failures (no weights offline, GPU) are its own types
            raise InputError(ct_path, f"TotalSegmentator failed: {e}") from None
        return read_masks(out, ct, TOTALSEGMENTATOR_LABELS)
