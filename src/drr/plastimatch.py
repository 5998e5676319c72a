"""Render the same DRR with plastimatch (the peer we check against), where it is installed.

plastimatch's ``drr`` takes a source-axis distance, a detector normal pointing at the
source, a "view up" vector and an isocenter; it ignores direction cosines (give it a
volume with an identity direction) and writes ∫ value dl in value × cm. Its ``-r`` and
``-z`` options take the detector's column count (width) first. This module maps our
geometry and pose onto those options, so both renderers see the same rays.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from conventions.geometry import ProjectionGeometry
from conventions.units import MM_PER_CM


def plastimatch_binary() -> str | None:
    """Path of the plastimatch executable (PyPI's wheel ships it), or None."""
    found = shutil.which("plastimatch")
    if found:
        return found
    try:
        import plastimatch
    except ImportError:
        return None
    exe = Path(plastimatch.__file__).parent / "bin" / "plastimatch"
    return str(exe) if exe.is_file() else None


def drr_options(
    geometry: ProjectionGeometry, camera_from_ct: np.ndarray, sad_mm: float
) -> list[str]:
    """plastimatch drr options for our geometry and pose (isocenter ``sad_mm`` from the source)."""
    r, t = camera_from_ct[:3, :3], camera_from_ct[:3, 3]
    source = -r.T @ t
    _, ey, ez = r  # camera axes in CT coordinates: columns (unused), rows, principal ray
    cx, cy = geometry.principal_point
    # plastimatch's image centre is in pixels, (column, row) like -r, measured from the
    # first pixel's centre.
    centre_px = (cx / geometry.col_spacing_mm - 0.5, cy / geometry.row_spacing_mm - 0.5)
    fmt = " ".join
    return [
        "--sad",
        f"{sad_mm}",
        "--sid",
        f"{geometry.sdd_mm}",
        "-r",
        f"{geometry.cols} {geometry.rows}",
        "-z",
        f"{geometry.cols * geometry.col_spacing_mm} {geometry.rows * geometry.row_spacing_mm}",
        "-c",
        fmt(f"{v:.6f}" for v in centre_px),
        "-o",
        fmt(f"{v:.6f}" for v in source + sad_mm * ez),
        "--nrm",
        fmt(f"{v:.9f}" for v in -ez),
        "--vup",
        fmt(f"{v:.9f}" for v in -ey),
    ]


def read_pfm(path: str | Path) -> np.ndarray:
    with open(path, "rb") as f:
        if f.readline().strip() != b"Pf":
            raise ValueError(f"{path}: not a greyscale PFM file")
        width, height = map(int, f.readline().split())
        scale = float(f.readline())
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    return data.reshape(height, width).copy()


def render(
    volume_path: str | Path,
    geometry: ProjectionGeometry,
    camera_from_ct: np.ndarray,
    algorithm: str = "exact",
    sad_mm: float | None = None,
) -> tuple[np.ndarray, float]:
    """(DRR in value × mm, seconds plastimatch reported for rendering) for one pose."""
    exe = plastimatch_binary()
    if exe is None:
        raise RuntimeError("plastimatch is not installed (pip install plastimatch)")
    image = sitk.ReadImage(str(volume_path))
    if not np.allclose(image.GetDirection(), np.eye(3).ravel()):
        raise ValueError("plastimatch ignores direction cosines: give it an identity direction")
    if sad_mm is None:  # any point on the principal ray will do; take the volume's centre
        centre = np.array(
            image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
        )
        sad_mm = float((camera_from_ct[:3, :3] @ centre + camera_from_ct[:3, 3])[2])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            exe,
            "drr",
            "-t",
            "pfm",
            "-A",
            "cpu",
            "-P",
            "none",
            "-i",
            algorithm,
            *drr_options(geometry, camera_from_ct, sad_mm),
            "-O",
            f"{tmp}/drr",
            str(volume_path),
        ]
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if p.returncode != 0:
            raise RuntimeError(f"plastimatch drr failed: {p.stderr[-500:]}")
        reported = [ln for ln in p.stdout.splitlines() if ln.startswith("Total time")]
        seconds = float(reported[-1].split()[2]) if reported else wall
        return read_pfm(f"{tmp}/drr0000.pfm") * MM_PER_CM, seconds
