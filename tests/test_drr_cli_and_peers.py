"""The DRR command line, and agreement with plastimatch on a real CT."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from realdata import real_ct_paths

from conventions.ct import read_ct
from conventions.geometry import ProjectionGeometry, write_geometry
from conventions.pose import Pose, ap_pose, rotation_about, write_pose
from drr import Volume, project
from drr import plastimatch as pm


@pytest.fixture(scope="module")
def real_ct(tmp_path_factory):
    """TotalSegmentator's example CT with identity direction cosines (plastimatch ignores
    them) and one voxel of zeros around it: plastimatch's volume ends at the outer voxel
    centres, ours at the outer voxel faces, and zeros there make the two agree."""
    paths = real_ct_paths()
    ct = sitk.DICOMOrient(read_ct(paths["ct"]), "LPS")
    ct = sitk.ConstantPad(ct, [1, 1, 1], [1, 1, 1], 0.0)
    out = tmp_path_factory.mktemp("ct") / "ct_lps.mha"
    sitk.WriteImage(ct, str(out))
    return out, ct, paths


def _poses(ct):
    c = np.array(ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in ct.GetSize()]))
    oblique = ap_pose(c + np.array([10.0, 0.0, -20.0]), 850.0).camera_from_ct
    return [ap_pose(c, 900.0).camera_from_ct, oblique @ rotation_about(c, [0.15, 0.35, -0.1])]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("integrator", "peer_algorithm"), [("siddon", "exact"), ("trilinear", "uniform")]
)
def test_agrees_with_plastimatch_on_a_real_ct(real_ct, integrator, peer_algorithm):
    if pm.plastimatch_binary() is None:
        pytest.skip("plastimatch not installed (pip install plastimatch)")
    path, ct, _ = real_ct
    g = ProjectionGeometry(1200.0, 96, 80, (4.0, 4.5), principal_point_mm=(170.0, 200.0))
    volume = Volume.from_image(ct)
    for pose in _poses(ct):
        ref, _ = pm.render(path, g, pose, algorithm=peer_algorithm)
        ours = project(volume, g, pose, integrator=integrator)[0, 0]
        assert ours.shape == ref.shape == (96, 80)
        assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.9999
        through = np.abs(ref) > 1.0
        assert abs((ours[through] / ref[through]).mean() - 1.0) < 0.005


def test_cli_renders_a_masked_areal_density_drr(tmp_path):
    # A 1000 mg/cm³ cube of label 7 beside a 500 mg/cm³ cube of label 3.
    dens = np.zeros((30, 30, 30), np.float32)
    labels = np.zeros_like(dens, dtype=np.uint8)
    dens[10:20, 10:20, 4:12], labels[10:20, 10:20, 4:12] = 1000.0, 7
    dens[10:20, 10:20, 18:26], labels[10:20, 10:20, 18:26] = 500.0, 3
    for arr, name in ((dens, "density.mha"), (labels, "labels.nii.gz")):
        img = sitk.GetImageFromArray(arr)
        img.SetOrigin((-15.0, -15.0, -15.0))
        sitk.WriteImage(img, str(tmp_path / name))
    g = ProjectionGeometry(1000.0, 20, 30, (1.0, 1.0))
    write_geometry(tmp_path / "geometry.json", g)
    write_pose(tmp_path / "pose.json", Pose(ap_pose(np.zeros(3), 900.0).camera_from_ct))
    cmd = [
        sys.executable,
        "-m",
        "drr",
        "--ct",
        str(tmp_path / "density.mha"),
        "--geometry",
        str(tmp_path / "geometry.json"),
        "--pose",
        str(tmp_path / "pose.json"),
        "--out",
        str(tmp_path / "drr.mha"),
        "--quantity",
        "areal-density",
        "--mask",
        str(tmp_path / "labels.nii.gz"),
        "--labels",
        "7",
        "--integrator",
        "siddon",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    out = sitk.ReadImage(str(tmp_path / "drr.mha"))
    img = sitk.GetArrayFromImage(out)
    assert img.shape == (20, 30)
    assert out.GetSpacing() == (1.0, 1.0)
    # Label 7 (x from -11 to -3 mm: the patient's right, image left) is 10 mm thick in y:
    # 1000 mg/cm³ × 10 mm = 1.0 g/cm² on its central ray; label 3 is masked out.
    row = img[10]
    assert row[:15].max() == pytest.approx(1.0, rel=0.005)
    assert row[15:].max() == 0.0


def test_cli_reports_bad_input_naming_the_file(tmp_path):
    (tmp_path / "geometry.json").write_text(json.dumps({"sdd_mm": 1000}))
    img = sitk.GetImageFromArray(np.zeros((4, 4, 4), np.float32))
    sitk.WriteImage(img, str(tmp_path / "ct.mha"))
    write_pose(tmp_path / "pose.json", Pose(np.eye(4)))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "drr",
            "--ct",
            str(tmp_path / "ct.mha"),
            "--geometry",
            str(tmp_path / "geometry.json"),
            "--pose",
            str(tmp_path / "pose.json"),
            "--out",
            str(tmp_path / "o.mha"),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2
    assert "geometry.json" in p.stderr and "rows" in p.stderr
