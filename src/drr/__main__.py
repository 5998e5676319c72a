"""``python -m drr``: render one DRR of a CT (or of labelled structures in it) at a pose.

    python -m drr --ct CT --geometry geometry.json --pose pose.json --out OUT.mha \\
        [--quantity raw|attenuation|areal-density] [--mask LABELS --labels 76,78] \\
        [--integrator trilinear|siddon|joseph] [--step-mm S] [--device cpu|cuda]

OUT is a 2D float32 image whose rows and columns follow the geometry, with the
detector's pixel spacing.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import SimpleITK as sitk

from conventions.ct import read_ct, require_same_grid
from conventions.errors import InputError, run_cli
from conventions.geometry import read_geometry
from conventions.pose import read_pose
from conventions.radiograph import write_radiograph
from drr.projector import INTEGRATORS, project
from drr.quantities import QUANTITIES, integrand
from drr.volume import Volume


def read_mask(path: str, labels: list[int], like: sitk.Image) -> np.ndarray:
    """Boolean mask of voxels whose label is in ``labels``; the label image must share
    the CT's grid."""
    try:
        lab = sitk.ReadImage(path)
    except RuntimeError:
        raise InputError(path, "cannot read label image") from None
    require_same_grid(lab, like, path, "the CT's")
    return np.isin(sitk.GetArrayFromImage(lab), labels)


def drr_command(a: argparse.Namespace) -> int:
    if bool(a.mask) != bool(a.labels):
        raise InputError(None, "--mask and --labels go together")
    image = read_ct(a.ct)
    geometry = read_geometry(a.geometry)
    pose = read_pose(a.pose)
    values = integrand(sitk.GetArrayFromImage(image), a.quantity)
    if a.mask:
        try:
            labels = [int(v) for v in a.labels.split(",")]
        except ValueError:
            raise InputError(None, f"--labels must be integers, got {a.labels!r}") from None
        values = np.where(read_mask(a.mask, labels, image), values, np.float32(0))
    volume = Volume.from_image(image, value=values).cropped_to_support()
    drr = project(
        volume,
        geometry,
        pose.camera_from_ct,
        integrator=a.integrator,
        step_mm=a.step_mm,
        device=a.device,
    )
    write_radiograph(a.out, drr[0, 0], geometry)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m drr",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ct", required=True, help="CT (HU) or calibrated density volume")
    ap.add_argument("--geometry", required=True)
    ap.add_argument("--pose", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quantity", choices=QUANTITIES, default="raw")
    ap.add_argument("--mask", help="label image on the CT's grid")
    ap.add_argument("--labels", help="comma-separated label values that the mask keeps")
    ap.add_argument("--integrator", choices=INTEGRATORS, default="trilinear")
    ap.add_argument(
        "--step-mm",
        type=float,
        default=None,
        help="ray-marching step (default: half the smallest voxel spacing)",
    )
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    return run_cli(lambda: drr_command(a))


if __name__ == "__main__":
    sys.exit(main())
