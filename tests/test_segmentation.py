"""Bone segmentation against the synthetic cohort's truth and a real CT's trusted labels.

The synthetic subject is S004 (seed 5) at 1.5 × 1.5 × 3 mm voxels; its density comes
from its CT through the true scanner line. At this size the default segmentation
reaches Dice 0.96-0.99 (femurs and hip bones must reach 0.95).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from realdata import real_ct_paths
from scipy import ndimage

from conventions.ct import read_ct, write_volume
from conventions.errors import InputError
from conventions.labels import BONE_LABELS, TOTALSEGMENTATOR_LABELS
from phantom.cohort import generate_subject
from segmentation.__main__ import main
from segmentation.masks import parse_label_map, read_masks
from segmentation.metal import METAL_MG_CM3

VOXEL_MM = (1.5, 1.5, 3.0)
REQUIRED_DICE = 0.95


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def segment(tmp, density, *extra) -> tuple[int, np.ndarray | None, dict | None]:
    """Run the CLI in-process; (exit code, labels, record)."""
    out = tmp / "labels.nii.gz", tmp / "segmentation.json"
    argv = ["--subject", "S004", "--density", str(density), "--out-labels", str(out[0])]
    code = main([*argv, "--out-json", str(out[1]), *map(str, extra)])
    if code != 0:
        return code, None, None
    labels = sitk.ReadImage(str(out[0]))
    assert labels.GetPixelID() == sitk.sitkUInt8
    return code, sitk.GetArrayFromImage(labels), json.loads(out[1].read_text())


def image_like(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    return image


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """(folder, density path, truth labels, truth record) of the synthetic subject."""
    out = tmp_path_factory.mktemp("seg") / "S004"
    truth = generate_subject("S004", 5, VOXEL_MM, out, poses=())
    ct = read_ct(out / "ct.nii.gz")
    scanner = truth["scanner"]
    density = (ct - scanner["intercept_hu"]) / scanner["slope_hu_per_mg_cm3"]
    write_volume(out / "density.nii.gz", density)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "labels.nii.gz")))
    return out, out / "density.nii.gz", labels, truth


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def segmented(subject, run_dir):
    _, density, _, _ = subject
    code, labels, record = segment(run_dir, density)
    assert code == 0
    return labels, record


def test_bones_match_the_synthetic_truth(subject, segmented):
    _, density, truth, _ = subject
    labels, record = segmented
    assert labels.shape == truth.shape
    scores = {name: dice(labels == v, truth == v) for name, v in BONE_LABELS.items()}
    print("Dice at 1.5 × 1.5 × 3 mm:", {k: round(v, 3) for k, v in scores.items()})
    for name in ("hip_left", "hip_right", "femur_left", "femur_right"):
        assert scores[name] >= REQUIRED_DICE, (name, scores)
    assert scores["sacrum"] >= 0.9, scores  # reported; separated across the SI joints
    # The record counts what the file holds.
    ct = sitk.ReadImage(str(density))
    for name, v in BONE_LABELS.items():
        assert record["labels"][name]["voxels"] == int((labels == v).sum())
        assert record["labels"][name]["volume_cm3"] == pytest.approx(
            (labels == v).sum() * np.prod(ct.GetSpacing()) / 1000, rel=1e-3
        )
    assert record["subject_id"] == "S004" and record["method"] == "threshold"
    assert record["metal"]["present"] is False
    assert record["warnings"] == []


def test_labels_stay_on_the_cts_grid(subject, segmented, run_dir):
    _, density, _, _ = subject
    ct, out = sitk.ReadImage(str(density)), sitk.ReadImage(str(run_dir / "labels.nii.gz"))
    assert out.GetSize() == ct.GetSize()
    np.testing.assert_allclose(out.GetSpacing(), ct.GetSpacing())
    np.testing.assert_allclose(out.GetOrigin(), ct.GetOrigin())
    np.testing.assert_allclose(out.GetDirection(), ct.GetDirection())


def test_nothing_is_labelled_away_from_the_true_bones(subject, segmented):
    """Lumbar vertebrae, the calibration phantom's rods, the table and bowel gas are 0."""
    _, density, truth, record = subject
    labels, _ = segmented
    spacing = np.array(VOXEL_MM[::-1])
    far = ndimage.distance_transform_edt(truth == 0, sampling=spacing) > 3.0
    assert (labels[far] > 0).sum() < 0.002 * (truth > 0).sum()
    # The rods (up to 200 mg/cm³) and everything under the patient are background.
    ct = sitk.ReadImage(str(density))
    rods_y = min(r["y_mm"] for r in record["calibration_phantom"]["rods"])
    below = ct.TransformPhysicalPointToIndex((0.0, rods_y - 10.0, 0.0))[1]
    assert not labels[:, below:, :].any()


def test_sides_follow_the_patient_not_the_array(subject, segmented, tmp_path):
    """The same CT stored right-to-left and front-to-back gets the same labels in space."""
    _, density, _, _ = subject
    labels, _ = segmented
    ct = sitk.ReadImage(str(density))
    nx, ny, _ = ct.GetSize()
    flipped = sitk.GetImageFromArray(sitk.GetArrayFromImage(ct)[:, ::-1, ::-1].copy())
    flipped.SetSpacing(ct.GetSpacing())
    flipped.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    flipped.SetOrigin(ct.TransformIndexToPhysicalPoint((nx - 1, ny - 1, 0)))
    write_volume(tmp_path / "flipped.nii.gz", flipped)
    code, again, _ = segment(tmp_path, tmp_path / "flipped.nii.gz")
    assert code == 0
    again = again[:, ::-1, ::-1]
    for name, v in BONE_LABELS.items():
        assert dice(again == v, labels == v) > 0.99, name


def test_marrow_as_faint_as_muscle_is_still_bone(subject, tmp_path):
    """Osteoporotic or fatty marrow: trabecular density cut to a quarter (about 30 mg/cm³,
    like muscle) inside an intact cortex. The shell and what it encloses carry the bone."""
    _, density, truth, _ = subject
    ct = sitk.ReadImage(str(density))
    values = sitk.GetArrayFromImage(ct)
    marrow = ndimage.binary_erosion(truth > 0, iterations=2) & (values < 300)
    values[marrow] *= 0.25
    write_volume(tmp_path / "faint.nii.gz", image_like(values, ct))
    code, labels, _ = segment(tmp_path, tmp_path / "faint.nii.gz")
    assert code == 0
    for name in ("hip_left", "hip_right", "femur_left", "femur_right"):
        v = BONE_LABELS[name]
        assert dice(labels == v, truth == v) >= REQUIRED_DICE, name


def test_metal_in_a_femur_is_flagged_and_left_out(subject, tmp_path):
    """A screw along the left femoral neck: found, placed, in femur_left, not bone."""
    _, density, truth, record = subject
    ct = read_ct(density)
    values = sitk.GetArrayFromImage(ct)
    head = np.array(record["landmarks_lps_mm"]["head_center_L"])
    trochanter = np.array(record["landmarks_lps_mm"]["greater_trochanter_L"])
    neck = head + 0.8 * (trochanter - head)  # a screw up the neck into the head
    zz, yy, xx = np.indices(values.shape)
    index = np.stack([xx, yy, zz], -1).reshape(-1, 3).astype(float)
    origin, spacing = np.array(ct.GetOrigin()), np.array(ct.GetSpacing())
    points = index * spacing + origin  # identity direction
    axis = (neck - head) / np.linalg.norm(neck - head)
    t = (points - head) @ axis
    radial = np.linalg.norm(points - head - t[:, None] * axis, axis=1)
    screw = ((t > 0) & (t < np.linalg.norm(neck - head)) & (radial < 3.5)).reshape(values.shape)
    values[screw] = 4000.0
    write_volume(tmp_path / "density.nii.gz", image_like(values, ct))
    code, labels, seg = segment(tmp_path, tmp_path / "density.nii.gz")
    assert code == 0
    metal = seg["metal"]
    assert metal["present"] and metal["bone"] == "femur_left" and metal["relation"] == "in"
    voxel_cm3 = np.prod(spacing) / 1000
    assert metal["volume_cm3"] == pytest.approx(screw.sum() * voxel_cm3, rel=0.1)
    centre = points[screw.ravel()].mean(0)
    assert np.linalg.norm(np.array(metal["centroid_mm"]) - centre) < 2.0
    lo, hi = (np.array(metal["bounding_box_mm"][k]) for k in ("min", "max"))
    assert np.all(lo <= points[screw.ravel()].min(0) + 1e-6)
    assert np.all(hi >= points[screw.ravel()].max(0) - 1e-6)
    assert not labels[screw].any()
    assert metal["excluded_from_labels_voxels"] == int(screw.sum())
    femur = BONE_LABELS["femur_left"]
    assert dice(labels == femur, (truth == femur) & ~screw) >= REQUIRED_DICE
    assert any(w.startswith("metal:") for w in seg["warnings"])
    assert METAL_MG_CM3 > 1500  # far above any cortical bone


def test_given_masks_are_mapped_onto_our_labels(subject, tmp_path):
    _, density, truth, _ = subject
    ct = sitk.ReadImage(str(density))
    # A TotalSegmentator-style label image: its values, plus a structure we do not use.
    ts = np.zeros(truth.shape, np.uint8)
    for name, v in BONE_LABELS.items():
        ts[truth == v] = TOTALSEGMENTATOR_LABELS[name]
    assert not truth[:, :2].any()
    ts[:, :2] = 90  # some other structure, to be ignored
    write_volume(tmp_path / "ts.nii.gz", image_like(ts, ct))
    code, labels, record = segment(tmp_path, density, "--masks", tmp_path / "ts.nii.gz")
    assert code == 0 and record["method"] == "masks"
    np.testing.assert_array_equal(labels, truth)
    assert record["label_map"] == TOTALSEGMENTATOR_LABELS
    # Our own values, and an explicit map naming only one bone.
    write_volume(tmp_path / "own.nii.gz", image_like(truth, ct))
    code, labels, _ = segment(
        tmp_path, density, "--masks", tmp_path / "own.nii.gz", "--label-map", "project"
    )
    np.testing.assert_array_equal(labels, truth)
    code, labels, record = segment(
        tmp_path, density, "--masks", tmp_path / "ts.nii.gz", "--label-map", '{"femur_left": 75}'
    )
    assert code == 0
    np.testing.assert_array_equal(labels, np.where(truth == 3, 3, 0))
    assert "hip_left: not found (no voxels)" in record["warnings"]


def test_masks_as_a_folder_of_bone_masks(subject, tmp_path):
    _, density, truth, _ = subject
    ct = sitk.ReadImage(str(density))
    for name, v in BONE_LABELS.items():
        write_volume(
            tmp_path / "m" / f"{name}.nii.gz", image_like((truth == v).astype(np.uint8), ct)
        )
    np.testing.assert_array_equal(read_masks(tmp_path / "m", ct, {}), truth)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda im: im.SetOrigin(np.add(im.GetOrigin(), (1.5, 0, 0)).tolist()), "origin"),
        (lambda im: im.SetSpacing((1.5, 1.5, 3.5)), "spacing"),
        (lambda im: im.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1)), "direction"),
        (lambda im: None, "size"),
    ],
)
def test_masks_on_another_grid_are_refused_naming_the_file(subject, tmp_path, capsys, change, says):
    _, density, truth, _ = subject
    ct = sitk.ReadImage(str(density))
    mask = image_like(truth, ct) if says != "size" else sitk.GetImageFromArray(truth[1:])
    change(mask)
    path = tmp_path / "other_grid.nii.gz"
    write_volume(path, mask)
    with pytest.raises(InputError) as e:
        read_masks(path, ct, BONE_LABELS)
    assert e.value.path == str(path) and says in e.value.problem
    code, _, _ = segment(tmp_path, density, "--masks", path, "--label-map", "project")
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: subject S004: {path}: label image is not on the CT's grid")
    assert not (tmp_path / "labels.nii.gz").exists()


@pytest.mark.parametrize(
    "text", ["femurs", '{"femur_middle": 3}', '{"femur_left": 0}', '{"hip_left": 1, "sacrum": 1}']
)
def test_bad_label_maps_are_refused(text):
    with pytest.raises(InputError):
        parse_label_map(text)


def test_presets_and_explicit_label_maps():
    assert parse_label_map("totalsegmentator") == TOTALSEGMENTATOR_LABELS
    assert parse_label_map("project") == BONE_LABELS
    assert parse_label_map('{"femur_right": 76, "sacrum": 25}') == {"femur_right": 76, "sacrum": 25}


def test_a_field_of_view_above_the_hips_is_an_error(subject, tmp_path, capsys):
    _, density, _, _ = subject
    ct = sitk.ReadImage(str(density))
    top = ct[:, :, ct.TransformPhysicalPointToIndex((0.0, 0.0, 35.0))[2] :]  # heads at z = 0
    write_volume(tmp_path / "top.nii.gz", top)
    code, _, _ = segment(tmp_path, tmp_path / "top.nii.gz")
    assert code == 2
    err = capsys.readouterr().err
    assert "error: subject S004:" in err and "no femoral head in the field of view" in err


def test_a_head_at_the_edge_of_the_field_of_view_is_warned_about(subject, tmp_path):
    _, density, _, _ = subject
    ct = sitk.ReadImage(str(density))
    low = ct[:, :, ct.TransformPhysicalPointToIndex((0.0, 0.0, -12.0))[2] :]
    write_volume(tmp_path / "low.nii.gz", low)
    code, _, record = segment(tmp_path, tmp_path / "low.nii.gz")
    assert code == 0
    for name in ("femur_left", "femur_right"):
        assert (
            f"{name}: the femoral head reaches the bottom of the field of view"
            in record["warnings"]
        )


def test_totalsegmentator_missing_says_how_to_install(subject, tmp_path, capsys):
    try:
        import totalsegmentator  # noqa: F401

        pytest.skip("TotalSegmentator is installed here")
    except ImportError:
        pass
    out, density, _, _ = subject
    code, _, _ = segment(
        tmp_path, density, "--method", "totalsegmentator", "--ct", out / "ct.nii.gz"
    )
    assert code == 2
    assert "pip install TotalSegmentator" in capsys.readouterr().err


@pytest.fixture(scope="module")
def real_example():

    return real_ct_paths()


def test_real_ct_matches_totalsegmentators_labels(real_example, tmp_path):
    """The real example CT (3 mm, HU, no phantom): HU is used as the density (slope 1,
    intercept 0), close to mg/cm³ HA for bone. Its left femur holds screws."""
    code, labels, record = segment(tmp_path, real_example["ct"])
    assert code == 0
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(real_example["labels"])))
    scores = {
        name: dice(labels == BONE_LABELS[name], theirs == TOTALSEGMENTATOR_LABELS[name])
        for name in BONE_LABELS
    }
    print("Dice against TotalSegmentator:", {k: round(v, 3) for k, v in scores.items()})
    for name in ("femur_right", "hip_left", "hip_right"):
        assert scores[name] >= 0.85, (name, scores)
    metal = record["metal"]
    assert metal["present"] and metal["bone"] == "femur_left"
    assert metal["centroid_mm"][0] > 0  # the patient's left: +x in LPS
