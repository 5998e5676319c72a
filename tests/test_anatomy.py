"""Landmarks, the PF region and CT-derived BMD against the synthetic cohort's truth."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from realdata import real_ct_paths

from anatomy.landmarks import femur_landmarks, fit_sphere
from conventions.errors import InputError
from conventions.hip_regions import FemurLandmarks
from phantom.cohort import generate_subject


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """One subject at a clinical hip CT's resolution, and its density from the true line."""
    out = tmp_path_factory.mktemp("anatomy") / "S002"
    truth = generate_subject("S002", 2023, (1.5, 1.5, 3.0), out, poses=())
    ct = sitk.ReadImage(str(out / "ct.nii.gz"), sitk.sitkFloat32)
    sc = truth["scanner"]
    density = (ct - sc["intercept_hu"]) / sc["slope_hu_per_mg_cm3"]
    sitk.WriteImage(sitk.Cast(density, sitk.sitkFloat32), str(out / "density.nii.gz"))
    return out, truth


def anatomy_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anatomy", *map(str, args)], capture_output=True, text=True
    )


def landmarks_cli(labels, side, out, slicer=None, subject="S002"):
    extra = ["--slicer", slicer] if slicer else []
    return anatomy_cli(
        "landmarks",
        "--subject",
        subject,
        "--labels",
        labels,
        "--target-side",
        side,
        *extra,
        "--out",
        out,
    )


def ct_bmd_args(density, labels, landmarks, side, out_dir) -> list:
    """``python -m anatomy ct-bmd`` arguments writing b.json, r.nii.gz, drr.mha in out_dir."""
    return [
        "ct-bmd",
        "--subject",
        "S002",
        "--density",
        density,
        "--labels",
        labels,
        "--landmarks",
        landmarks,
        "--side",
        side,
        "--out-json",
        out_dir / "b.json",
        "--out-region",
        out_dir / "r.nii.gz",
        "--out-drr",
        out_dir / "drr.mha",
    ]


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def test_sphere_fit_is_exact_on_a_sphere():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(400, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d = d[d[:, 0] < 0.5]  # a cap, as the head is seen beside its neck
    centre, radius, rms = fit_sphere(np.array([10.0, -20.0, 5.0]) + 23.0 * d)
    assert centre == pytest.approx([10.0, -20.0, 5.0], abs=1e-9)
    assert (radius, rms) == pytest.approx((23.0, 0.0), abs=1e-9)


def test_landmarks_recover_the_true_femur(subject):
    out, truth = subject
    image = sitk.ReadImage(str(out / "truth" / "labels.nii.gz"))
    labels = sitk.GetArrayFromImage(image)
    for side in ("L", "R"):
        true = FemurLandmarks.from_dict(truth["femurs"][side])
        lm = femur_landmarks(labels, image, side)
        assert np.linalg.norm(lm.head_center - true.head_center) < 1.0
        assert lm.head_radius_mm == pytest.approx(true.head_radius_mm, abs=0.5)
        assert _angle_deg(lm.neck_axis, true.neck_axis) < 3.0
        assert np.linalg.norm(lm.head_neck_junction - true.head_neck_junction) < 2.0
        assert _angle_deg(lm.shaft_axis, true.shaft_axis) < 2.0
        # The lesser trochanter: its level along the shaft (which sets the PF region's
        # distal border) within 2 mm; the point found is its tip, the truth its centre.
        assert (
            abs(true.shaft_level(lm.lesser_trochanter) - true.shaft_level(true.lesser_trochanter))
            < 2.0
        )
        assert np.linalg.norm(lm.lesser_trochanter - true.lesser_trochanter) < 12.0


def test_ct_bmd_matches_the_truth(subject, tmp_path):
    out, truth = subject
    side = truth["target_side"]
    labels = out / "truth" / "labels.nii.gz"
    p = landmarks_cli(labels, side, tmp_path / "lm.json", subject="S002")
    assert p.returncode == 0, p.stderr
    p = anatomy_cli(
        *ct_bmd_args(out / "density.nii.gz", labels, tmp_path / "lm.json", side, tmp_path)
    )
    assert p.returncode == 0, p.stderr
    bmd = json.loads((tmp_path / "b.json").read_text())
    for key in ("pf_region", "neck_roi"):
        assert bmd[key]["qct_bmd_mg_cm3"] == pytest.approx(truth[key]["qct_bmd_mg_cm3"], rel=0.02)
        assert bmd[key]["areal_bmd_g_cm2"] == pytest.approx(truth[key]["areal_bmd_g_cm2"], rel=0.02)
    # The CT's blur costs a plain mask mean several per cent: the correction matters.
    pf = bmd["pf_region"]
    assert pf["mask_mean_mg_cm3"] < 0.96 * truth["qct_bmd_mg_cm3"]
    # The region found is the true one, voxel for voxel nearly.
    found = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "r.nii.gz"))) > 0
    true = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "pf_region.nii.gz"))) > 0
    assert 2 * (found & true).sum() / (found.sum() + true.sum()) > 0.97
    # The DXA-view image holds the region's mineral: BMC = Σ areal density × pixel area.
    drr = sitk.ReadImage(str(tmp_path / "drr.mha"))
    pixel_cm2 = np.prod(drr.GetSpacing()) / 100
    assert sitk.GetArrayFromImage(drr).sum() * pixel_cm2 == pytest.approx(pf["bmc_g"], rel=1e-3)


def test_a_field_of_view_cutting_the_head_is_a_clear_error(subject, tmp_path):
    out, truth = subject
    image = sitk.ReadImage(str(out / "truth" / "labels.nii.gz"))
    head_z = truth["femurs"]["L"]["head_center"][2]
    k = image.TransformPhysicalPointToIndex((0.0, 0.0, head_z))[2]
    cropped = image[:, :, : k + 2]  # ends just above the head centres
    sitk.WriteImage(cropped, str(tmp_path / "labels.nii.gz"))
    p = landmarks_cli(
        tmp_path / "labels.nii.gz", truth["target_side"], tmp_path / "lm.json", subject="S002"
    )
    assert p.returncode == 2
    assert "subject S002" in p.stderr and "cuts the" in p.stderr and "head" in p.stderr
    assert not (tmp_path / "lm.json").exists()
    with pytest.raises(InputError, match="field of view ends"):  # and a femur with no shaft
        femur_landmarks(sitk.GetArrayFromImage(image[:, :, k - 12 :]), image[:, :, k - 12 :], "L")


def _slicer_file(path, points: dict, system: str = "LPS") -> None:
    path.write_text(
        json.dumps(
            {
                "markups": [
                    {
                        "type": "Fiducial",
                        "coordinateSystem": system,
                        "controlPoints": [
                            {"label": k, "position": list(v)} for k, v in points.items()
                        ],
                    }
                ]
            }
        )
    )


def test_expert_landmarks_override_and_a_wrong_system_is_caught(subject, tmp_path):
    out, truth = subject
    side = truth["target_side"]
    labels = out / "truth" / "labels.nii.gz"
    true = FemurLandmarks.from_dict(truth["femurs"][side])
    moved = true.lesser_trochanter + np.array([0.0, 0.0, -4.0])
    _slicer_file(
        tmp_path / "lm.mrk.json",
        {f"lesser_trochanter_{side}": moved, f"head_center_{side}": true.head_center},
    )
    p = landmarks_cli(
        labels, side, tmp_path / "lm.json", slicer=tmp_path / "lm.mrk.json", subject="S002"
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "lm.json").read_text())
    assert doc["landmarks"][f"lesser_trochanter_{side}"] == pytest.approx(moved)
    assert doc["expert_points"][side] == ["head_center", "lesser_trochanter"]
    # The same points written in RAS but labelled LPS lie across the body.
    ras = {f"head_center_{side}": true.head_center * [-1, -1, 1]}
    _slicer_file(tmp_path / "bad.mrk.json", ras)
    p = landmarks_cli(
        labels, side, tmp_path / "bad.json", slicer=tmp_path / "bad.mrk.json", subject="S002"
    )
    assert p.returncode == 2
    assert "subject S002" in p.stderr and "bad.mrk.json" in p.stderr
    assert "RAS/LPS" in p.stderr


def test_labels_on_another_grid_are_a_clear_error(subject, tmp_path):
    out, truth = subject
    labels = sitk.ReadImage(str(out / "truth" / "labels.nii.gz"))
    shifted = sitk.Image(labels)
    shifted.SetOrigin(tuple(np.add(labels.GetOrigin(), (3.0, 0.0, 0.0))))
    sitk.WriteImage(shifted, str(tmp_path / "labels.nii.gz"))
    side = truth["target_side"]
    assert (
        landmarks_cli(
            tmp_path / "labels.nii.gz", side, tmp_path / "lm.json", subject="S002"
        ).returncode
        == 0
    )
    p = anatomy_cli(
        *ct_bmd_args(
            out / "density.nii.gz", tmp_path / "labels.nii.gz", tmp_path / "lm.json", side, tmp_path
        )
    )
    assert p.returncode == 2
    assert "subject S002" in p.stderr and "not on the density volume's grid" in p.stderr


def test_the_whole_ct_chain_meets_the_accuracy_targets(subject, tmp_path):
    """Calibration, weight-free segmentation, landmarks and CT BMD, each by its CLI."""
    out, truth = subject
    side = truth["target_side"]
    run = [sys.executable, "-m"]
    steps = [
        [
            "calibration",
            "--subject",
            "S002",
            "--ct",
            out / "ct.nii.gz",
            "--out-density",
            tmp_path / "d.nii.gz",
            "--out-json",
            tmp_path / "c.json",
        ],
        [
            "segmentation",
            "--subject",
            "S002",
            "--density",
            tmp_path / "d.nii.gz",
            "--out-labels",
            tmp_path / "l.nii.gz",
            "--out-json",
            tmp_path / "s.json",
        ],
        [
            "anatomy",
            "landmarks",
            "--subject",
            "S002",
            "--labels",
            tmp_path / "l.nii.gz",
            "--target-side",
            side,
            "--out",
            tmp_path / "lm.json",
        ],
        [
            "anatomy",
            *ct_bmd_args(
                tmp_path / "d.nii.gz", tmp_path / "l.nii.gz", tmp_path / "lm.json", side, tmp_path
            ),
        ],
    ]
    for step in steps:
        p = subprocess.run([*run, *map(str, step)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    femurs = json.loads((tmp_path / "lm.json").read_text())["femurs"]
    for s in ("L", "R"):
        error = np.subtract(femurs[s]["head_center"], truth["femurs"][s]["head_center"])
        assert np.linalg.norm(error) < 1.0
    bmd = json.loads((tmp_path / "b.json").read_text())
    assert bmd["qct_bmd_mg_cm3"] == pytest.approx(truth["qct_bmd_mg_cm3"], rel=0.02)
    assert bmd["areal_bmd_g_cm2"] == pytest.approx(truth["areal_bmd_g_cm2"], rel=0.02)


def test_landmarks_do_not_depend_on_the_ct_axis_order(subject):
    """The same labels stored RAS-flipped (as many NIfTI writers do) give the same points."""
    out, truth = subject
    image = sitk.ReadImage(str(out / "truth" / "labels.nii.gz"))
    flipped = sitk.Flip(image, [True, True, False])  # x and y reversed, same physical space
    assert flipped.GetDirection()[0] == -1.0
    lm = femur_landmarks(sitk.GetArrayFromImage(flipped), flipped, "R")
    assert np.linalg.norm(lm.head_center - truth["femurs"]["R"]["head_center"]) < 1.0


def test_real_ct_too_short_for_the_pf_region_is_a_clear_error(tmp_path):
    """TotalSegmentator's example CT ends ~3 cm below the femoral heads."""

    paths = real_ct_paths()
    ts = sitk.ReadImage(str(paths["labels"]))
    labels = np.zeros(sitk.GetArrayFromImage(ts).shape, np.uint8)
    for ours, theirs in ((3, 75), (4, 76), (1, 77), (2, 78), (5, 25)):
        labels[sitk.GetArrayFromImage(ts) == theirs] = ours
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(ts)
    sitk.WriteImage(image, str(tmp_path / "labels.nii.gz"))
    p = landmarks_cli(tmp_path / "labels.nii.gz", "R", tmp_path / "lm.json", subject="R1")
    assert p.returncode == 2
    assert "subject R1" in p.stderr and "field of view ends" in p.stderr


def test_spill_shell_in_a_box_is_the_whole_grids():
    """spill_shell_mask computes the shell in a box around the region; a cut voxel just
    within twice the margin, one just beyond, anisotropic voxels and bone beside the
    region must give the whole grid's shell voxel for voxel."""
    from conventions.hip_regions import spill_margin_mm, spill_shell, spill_shell_mask

    rng = np.random.default_rng(3)
    spacing = np.array([3.0, 0.8, 1.1])  # z, y, x (mm)
    shape = (40, 90, 80)
    region = np.zeros(shape, bool)
    region[15:22, 30:55, 25:45] = rng.random((7, 25, 20)) > 0.2  # ragged, holes
    bone = region.copy()
    bone[15:22, 55:70, 30:40] = True  # bone touching the region: the shell avoids it
    margin = spill_margin_mm(spacing)
    cut = np.zeros(shape, bool)
    # Six 0.8 mm rows before the region (4.8 mm): beyond the margin from it, within the
    # margin of the shell's outer row (2.4 mm), so it trims the shell; a box reaching
    # only the margin (five rows) would not see it.
    assert 2.4 <= margin < 4.8
    cut[12:25, 24, 25:45] = True
    cut[18, 70:80, 60:78] = True  # far away
    whole = spill_shell(region, bone, cut, spacing)[0]
    assert whole.any() and not (whole & cut).any()
    np.testing.assert_array_equal(spill_shell_mask(region, bone, cut, spacing), whole)
    none = np.zeros(shape, bool)
    np.testing.assert_array_equal(spill_shell_mask(region, bone, none, spacing),
                                  spill_shell(region, bone, none, spacing)[0])  # fmt: skip
