"""Shared test fixtures: small DICOM files built by hand, the shared real data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "data"))
from make_bad_inputs import write_dx  # noqa: E402  the corpus's DX writer, one for all tests

# CI lays shared/ beside the checkout; developers have it at ../shared as well.
SHARED = Path(os.environ.get("XRAY_BMD_SHARED", REPO.parent / "shared"))
DDH_DIR = SHARED / "data" / "hip_radiographs_ddh"

IDENTIFIERS = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-0042-SECRET",
    "PatientBirthDate": "19470312",
    "AccessionNumber": "ACC-777-SECRET",
    "InstitutionName": "St Example Hospital",
    "StudyDate": "20230102",
}


def write_dicom_ct_series(
    folder: Path,
    hu: np.ndarray,
    spacing_xyz=(0.8, 0.7, 2.5),
    origin=(-100.0, -80.0, 40.0),
    row_dir=(1.0, 0.0, 0.0),
    col_dir=(0.0, 1.0, 0.0),
    slope: float = 1.0,
    intercept: float = -1024.0,
) -> None:
    """A CT series carrying identifiers, hu[k, j, i] in HU, file names not in slice order."""
    from conventions.ct import write_dicom_series

    image = sitk.GetImageFromArray(hu.astype(np.float32))
    image.SetSpacing(spacing_xyz)
    image.SetOrigin(origin)
    image.SetDirection([*np.column_stack([row_dir, col_dir, np.cross(row_dir, col_dir)]).ravel()])
    write_dicom_series(
        folder, image, IDENTIFIERS["PatientID"], extra_tags=IDENTIFIERS, rescale=(slope, intercept)
    )
    files = sorted(folder.iterdir())
    order = np.random.default_rng(0).permutation(len(files))  # file order ≠ slice order
    for n, f in enumerate(files):
        f.rename(folder / f"tmp{order[n]:04d}")
    for f in folder.iterdir():
        f.rename(folder / f"img{f.name[3:]}.dcm")


def write_dicom_radiograph(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    **tags,
) -> None:
    """A single-frame DX image carrying the identifiers; ``tags`` are set as DICOM
    attributes (geometry etc.); no geometry unless they give it."""
    write_dx(path, pixels, photometric, bits_stored, geometry=False, tags={**IDENTIFIERS, **tags})


@pytest.fixture
def ddh_files() -> list[Path]:
    files = sorted(DDH_DIR.glob("*.dcm"))
    if not files:
        pytest.skip(f"shared real radiographs not found under {DDH_DIR}")
    return files


# The workflow, copied into a temporary folder for the workflow and cluster tests.
WORKFLOW_PARTS = (
    "Snakefile",
    "rules",
    "schemas",
    "src",
    "envs",
    "report",
    "profiles",
    "config.yaml",
)


@pytest.fixture
def workflow(tmp_path) -> Path:
    """A copy of the workflow in a temporary folder, so results/ of the repo stay untouched."""
    wf = tmp_path / "wf"
    wf.mkdir()
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(
                src,
                wf / part,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy(src, wf / part)
    return wf


def snakemake(
    wf: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 *args`` in ``wf``; ``env``: the environment, os.environ's by
    default."""
    env = dict(os.environ if env is None else env)
    # Jobs call `python`: make it this interpreter, whatever PATH says.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    p = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=wf,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return p


def job_counts(output: str) -> dict[str, int]:
    """Job counts from the first "Job stats" table in Snakemake's output."""
    counts = {}
    table = output.split("Job stats:", 1)[-1]
    for line in table.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
            if parts[0] == "total":
                break
    return counts
