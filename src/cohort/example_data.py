"""A real hip CT with trusted bone masks, fetched from PyPI and cached.

TotalSegmentator's source distribution (Apache-2.0) carries a small CT of the lower
abdomen and hips (122×101×112 voxels, 3 mm, HU) and its own segmentation on the same
grid. Tests and benchmarks use it as real data; nothing here is needed to run the
workflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

TOTALSEGMENTATOR_VERSION = "2.18.0"
_MEMBERS = {
    "ct": "tests/reference_files/example_ct.nii.gz",
    "labels": "tests/reference_files/example_seg_fast_force_split.nii.gz",
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xray-bmd"


def totalsegmentator_example(cache: Path | None = None) -> dict[str, Path]:
    """Paths of the example CT and its labels, downloading the sdist on first use.

    Raises RuntimeError (with pip's message) where PyPI cannot be reached.
    """
    cache = cache or cache_dir()
    root = cache / f"totalsegmentator-{TOTALSEGMENTATOR_VERSION}"
    paths = {k: root / m for k, m in _MEMBERS.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"totalsegmentator-{TOTALSEGMENTATOR_VERSION}.tar.gz"
    if not sdist.is_file():
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"totalsegmentator=={TOTALSEGMENTATOR_VERSION}",
                "-d",
                str(cache),
            ],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0 or not sdist.is_file():
            raise RuntimeError(f"cannot download TotalSegmentator's sdist: {p.stderr[-500:]}")
    with tarfile.open(sdist) as tar:
        for m in _MEMBERS.values():
            tar.extract(f"{root.name}/{m}", path=cache, filter="data")
    return paths


def totalsegmentator_example_in_lps(cache: Path | None = None):
    """The example CT (HU, float32) and its bones as our labels (uint8 (z, y, x), values of
    :data:`conventions.labels.BONE_LABELS`), both turned to LPS storage order."""
    import numpy as np
    import SimpleITK as sitk

    from conventions.labels import BONE_LABELS, TOTALSEGMENTATOR_LABELS

    paths = totalsegmentator_example(cache)
    ct = sitk.DICOMOrient(sitk.ReadImage(str(paths["ct"]), sitk.sitkFloat32), "LPS")
    theirs = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(paths["labels"])), "LPS"))
    labels = np.zeros(theirs.shape, np.uint8)
    for name, value in BONE_LABELS.items():
        labels[theirs == TOTALSEGMENTATOR_LABELS[name]] = value
    return ct, labels
