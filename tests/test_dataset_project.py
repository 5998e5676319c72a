"""The decomposed images of a phantom radiograph at its true poses: the PF-DRR holds the
region's mineral, and its mean is the true areal BMD."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from anatomy.bmd import mineral_content
from conventions.geometry import ProjectionGeometry
from conventions.labels import femur_label
from conventions.pose import transform_points
from dataset.project import (
    PAIR_EDGES,
    cut_edges,
    decomposition_drrs,
    pf_drr_mean,
    projected_landmarks,
    touches_border,
)
from phantom.cohort import generate_subject
from phantom.radiographs import Detector


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A 2 mm phantom with two radiographs and its truth (density, labels, PF region); the
    detector wide enough that no positioning cuts the proximal femurs."""
    out = tmp_path_factory.mktemp("project") / "S004"
    wide = Detector(rows=400, cols=600, pixel_mm=0.9)
    truth = generate_subject("S004", 2023, 2.0, out, poses=("supine", "abduction"), detector=wide)
    density = sitk.ReadImage(str(out / "truth" / "density_mg_cm3.nii.gz"), sitk.sitkFloat32)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "labels.nii.gz")))
    region = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "truth" / "pf_region.nii.gz"))) > 0
    side = truth["target_side"]
    spacing = np.array(density.GetSpacing())[::-1]
    femur = labels == femur_label(side)
    m = mineral_content(
        sitk.GetArrayFromImage(density), region, labels > 0, femur & ~region, spacing
    )
    return out, truth, density, labels, region, m


@pytest.mark.parametrize("pose", ["supine", "abduction"])
def test_pf_drr_mean_at_the_true_pose_is_the_true_areal_bmd(phantom, pose):
    out, truth, density, labels, region, m = phantom
    side = truth["target_side"]
    view = json.loads((out / "truth" / "radiographs" / f"{pose}.json").read_text())
    geometry = ProjectionGeometry.from_dict(view["geometry"])
    poses = view["camera_from_ct"]
    femur_pose = np.array(poses["femur_left" if side == "L" else "femur_right"])
    drrs = decomposition_drrs(
        density, labels, m["mineral"], region, side, geometry, np.array(poses["pelvis"]), femur_pose
    )
    assert not touches_border(drrs["pf_silhouette"])
    mean = pf_drr_mean(drrs["pf_drr_g_cm2"], drrs["pf_silhouette"])
    assert mean == pytest.approx(truth["areal_bmd_g_cm2"], rel=0.02)
    # Mass: the PF-DRR summed over the pixels' area at the femur is the region's BMC.
    depth = transform_points(femur_pose, np.array(truth["femurs"][side]["head_center"]))[2]
    pixel_cm2 = (geometry.row_spacing_mm * depth / geometry.sdd_mm / 10.0) * (
        geometry.col_spacing_mm * depth / geometry.sdd_mm / 10.0
    )
    assert drrs["pf_drr_g_cm2"].sum() * pixel_cm2 == pytest.approx(m["bmc_g"], rel=0.02)
    # The bone DRR holds the PF-DRR's bone and more (pelvis, the rest of the femur).
    assert drrs["bone_drr_g_cm2"].sum() > 3 * drrs["pf_drr_g_cm2"].sum()
    # The PF region (neck, trochanters, below the head) projects where its landmarks do:
    # their centroid lands inside the silhouette, the head centre (not in it) outside.
    t = truth["landmarks_lps_mm"]
    inner = np.mean([t[f"{k}_{side}"] for k in ("head_neck_junction", "lesser_trochanter",
                                                 "greater_trochanter")], axis=0)  # fmt: skip
    at = projected_landmarks({"in": inner, "head": t[f"head_center_{side}"]}, femur_pose, geometry)
    (r, c), (rh, ch) = np.round(at["in"]).astype(int), np.round(at["head"]).astype(int)
    assert drrs["pf_silhouette"][r, c] and not drrs["pf_silhouette"][rh, ch]


def test_cut_edges_names_the_edges_a_region_reaches():
    mask = np.zeros((6, 5), bool)
    mask[2:4, 1:3] = True
    assert cut_edges(mask) == [] and not touches_border(mask)
    mask[4:, 0] = True  # down to the bottom row, along the first column
    assert cut_edges(mask) == ["bottom", "left"]
    assert cut_edges(mask, PAIR_EDGES) == ["inferior", "lateral"]
    mask[0, 4] = True
    assert cut_edges(mask) == ["top", "bottom", "left", "right"]


def test_cli_projects_a_subjects_radiographs_in_one_process_as_one_at_a_time(phantom, tmp_path):
    """``python -m dataset project --registration R --out-dir D`` (the workflow's job per
    subject): each radiograph's pair and record as the one-radiograph form writes them,
    in D/{image}/, from the poses in R/{image}/; and the record's PF-DRR mean at the true
    poses is the true areal BMD."""
    from conventions.geometry import write_geometry
    from conventions.landmarks import write_landmarks
    from dataset.__main__ import main as dataset_main
    from phantom.radiographs import write_true_poses

    out, truth, density, labels, region, m = phantom
    side, images = truth["target_side"], ["supine", "abduction"]
    like = sitk.Cast(density, sitk.sitkFloat32)
    files = {}
    for name, array in (("labels", labels.astype(np.int16)), ("region", region.astype(np.uint8)),
                        ("mineral", m["mineral"].astype(np.float32))):  # fmt: skip
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(like)
        files[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(image, str(files[name]))
    sitk.WriteImage(like, str(tmp_path / "density.nii.gz"))
    landmarks = {k: np.array(v) for k, v in truth["landmarks_lps_mm"].items()}
    write_landmarks(tmp_path / "landmarks.json", landmarks)
    registration = tmp_path / "registration"
    for image in images:
        view = out / "truth" / "radiographs" / f"{image}.json"
        write_true_poses(view, side, out_dir=registration)
        geometry = ProjectionGeometry.from_dict(json.loads(view.read_text())["geometry"])
        write_geometry(tmp_path / f"{image}_geometry.json", geometry)
    common = ["project", "--subject", "S004", "--side", side,
              "--density", str(tmp_path / "density.nii.gz"), "--labels", str(files["labels"]),
              "--pf-region", str(files["region"]), "--pf-mineral", str(files["mineral"]),
              "--landmarks", str(tmp_path / "landmarks.json")]  # fmt: skip

    def radiographs(names):
        return ["--image", *names, "--pose", *names,
                "--xray", *[str(out / "radiographs" / f"{n}.dcm") for n in names],
                "--geometry", *[str(tmp_path / f"{n}_geometry.json") for n in names]]  # fmt: skip

    folder = tmp_path / "dataset"
    args = [*common, *radiographs(images), "--registration", str(registration)]
    assert dataset_main([*args, "--out-dir", str(folder)]) == 0
    one = tmp_path / "one"
    assert dataset_main([*common, *radiographs(["abduction"]),
                         "--pose-pelvis", str(registration / "abduction" / "pose_pelvis.json"),
                         "--pose-femur", str(registration / "abduction" / "pose_femur.json"),
                         "--out-projection", str(one / "projection.npz"),
                         "--out-pair", str(one / "pair.npz"),
                         "--out-record", str(one / "pair.json")]) == 0  # fmt: skip
    for name in ("projection.npz", "pair.npz"):
        assert (folder / "abduction" / name).read_bytes() == (one / name).read_bytes()
    record = json.loads((folder / "abduction" / "pair.json").read_text())
    alone = json.loads((one / "pair.json").read_text())
    assert record.pop("pair") == str(folder / "abduction" / "pair.npz")
    alone.pop("pair")
    assert record == alone
    for image in images:
        record = json.loads((folder / image / "pair.json").read_text())
        assert record["image"] == image and record["pose"] == image
        assert record["registration"]["femur"]["status"] == "ok"
        assert record["pf_drr_mean_g_cm2"] == pytest.approx(truth["areal_bmd_g_cm2"], rel=0.02)


def test_cli_refuses_radiographs_that_do_not_pair_up(tmp_path, capsys):
    from dataset.__main__ import main as dataset_main

    args = ["project", "--subject", "S9", "--side", "L", "--density", "d.nii.gz",
            "--labels", "l.nii.gz", "--pf-region", "r.nii.gz", "--pf-mineral", "m.nii.gz",
            "--landmarks", "lm.json", "--image", "supine", "abduction", "--pose", "supine",
            "--xray", "a.dcm", "b.dcm", "--geometry", "a.json", "b.json",
            "--registration", "reg", "--out-dir", str(tmp_path / "out")]  # fmt: skip
    assert dataset_main(args) == 2
    err = capsys.readouterr().err
    assert "subject S9" in err and "a.dcm" in err and "must pair up" in err
    assert not (tmp_path / "out").exists()
