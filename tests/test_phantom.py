"""The synthetic cohort records truths that its own images agree with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

from cohort.manifest import read_cohort
from conventions.ct import read_ct
from conventions.geometry import ProjectionGeometry
from conventions.labels import BONE_LABELS
from conventions.pose import Pose, transform_points
from conventions.radiograph import read_radiograph
from drr.simulate import XraySettings, project_materials, transmission
from phantom.cohort import generate_subject, write_manifest
from phantom.radiographs import Detector, split_bodies

POSES = ("supine", "abduction")
SMALL_DETECTOR = Detector(rows=150, cols=240, pixel_mm=1.6)


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    truth = generate_subject("S001", 11, 4.0, out / "S001", POSES, SMALL_DETECTOR)
    return out, truth


def _array(path):
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


def test_bones_are_on_their_anatomical_sides(subject):
    out, truth = subject
    img, labels = _array(out / "S001" / "truth" / "labels.nii.gz")
    assert set(np.unique(labels)) == {0, *BONE_LABELS.values()}
    ijk = {n: np.argwhere(labels == v).mean(axis=0) for n, v in BONE_LABELS.items()}
    x = {n: img.TransformContinuousIndexToPhysicalPoint(tuple(ijk[n][::-1]))[0] for n in ijk}
    # LPS: +x is the patient's left.
    assert x["femur_left"] > 40 and x["hip_left"] > 20
    assert x["femur_right"] < -40 and x["hip_right"] < -20
    assert abs(x["sacrum"]) < 5
    # Each femoral head centre (truth landmark) lies inside that femur's label.
    for side, name in (("L", "femur_left"), ("R", "femur_right")):
        p = truth["landmarks_lps_mm"][f"head_center_{side}"]
        idx = img.TransformPhysicalPointToIndex(p)
        assert labels[idx[2], idx[1], idx[0]] == BONE_LABELS[name]


def test_ct_follows_the_scanner_line_at_the_phantom_rods(subject):
    out, truth = subject
    ct = read_ct(out / "S001" / "ct.nii.gz")
    hu = sitk.GetArrayFromImage(ct)
    _, density = _array(out / "S001" / "truth" / "density_mg_cm3.nii.gz")
    sc = truth["scanner"]
    for rod in truth["calibration_phantom"]["rods"]:
        idx = ct.TransformPhysicalPointToIndex((rod["x_mm"], rod["y_mm"], 0.0))
        core = (slice(None), slice(idx[1] - 1, idx[1] + 2), slice(idx[0] - 1, idx[0] + 2))
        expected_hu = sc["intercept_hu"] + sc["slope_hu_per_mg_cm3"] * rod["density_mg_cm3"]
        # Median over ~600 voxels: noise SD ≤ 22 HU gives a standard error ~1 HU.
        assert np.median(hu[core]) == pytest.approx(expected_hu, abs=4.0)
        assert np.median(density[core]) == pytest.approx(rod["density_mg_cm3"], abs=0.5)


def test_bmd_truth_is_consistent_with_the_density_volume(subject):
    from anatomy.bmd import dxa_view
    from conventions.hip_regions import FemurLandmarks, dxa_rotation

    out, truth = subject
    img, density = _array(out / "S001" / "truth" / "density_mg_cm3.nii.gz")
    _, region = _array(out / "S001" / "truth" / "pf_region.nii.gz")
    region = region.astype(bool)
    pf = truth["pf_region"]
    assert density[region].mean() == pytest.approx(pf["mask_mean_mg_cm3"], rel=1e-5)
    voxel_cm3 = np.prod(img.GetSpacing()) / 1000
    assert region.sum() * voxel_cm3 == pytest.approx(pf["volume_cm3"], rel=1e-9)
    # The bone's partial-volume voxels just outside the region add mineral, never remove it.
    assert pf["bmc_g"] > density[region].sum() * voxel_cm3 / 1000
    # The DRR engine's exact projection of the region's mask in the DXA view (a computation
    # independent of the phantom's own sampling) gives the silhouette's area and, as its
    # pixels' path lengths, the region's volume: so the truth's two BMDs, whatever BMC
    # they share, must stand in the ratio of the region's mean thickness along the beam.
    lm = FemurLandmarks.from_dict(truth["femurs"][truth["target_side"]])
    images, _, _ = dxa_view(
        img, {"region": region.astype(np.float32)}, lm.head_center, dxa_rotation(lm)
    )
    path_mm, pixel_cm2 = images[0], 0.05**2  # DXA_PIXEL_MM = 0.5 at the femur
    silhouette = path_mm > 1e-3
    area = silhouette.sum() * pixel_cm2
    assert area == pytest.approx(pf["projected_area_cm2"], rel=0.01)
    assert path_mm.sum() * pixel_cm2 / 10 == pytest.approx(pf["volume_cm3"], rel=0.01)
    thickness_cm = path_mm[silhouette].mean() / 10
    assert pf["areal_bmd_g_cm2"] == pytest.approx(
        pf["qct_bmd_mg_cm3"] / 1000 * thickness_cm, rel=0.02
    )
    # Adult proximal femur ranges (total-hip DXA 0.4-1.3 g/cm², integral vBMD 150-450).
    assert 0.4 < truth["areal_bmd_g_cm2"] < 1.3
    assert 150 < truth["qct_bmd_mg_cm3"] < 450
    side = "left" if truth["target_side"] == "L" else "right"
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "S001" / "truth" / "labels.nii.gz")))
    assert np.all(labels[region] == BONE_LABELS[f"femur_{side}"])
    # The head is not in the region: DXA's total hip leaves it out.
    head = np.array(truth["landmarks_lps_mm"][f"head_center_{truth['target_side']}"])
    k = img.TransformPhysicalPointToIndex(tuple(head))
    assert not region[k[2], k[1], k[0]]


def test_generation_is_deterministic(subject, tmp_path):
    out, truth = subject
    again = generate_subject("S001", 11, 4.0, tmp_path / "S001", POSES, SMALL_DETECTOR)
    assert json.dumps(again, sort_keys=True) == json.dumps(truth, sort_keys=True)
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "S001" / "ct.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "S001" / "ct.nii.gz")))
    assert np.array_equal(a, b)
    # Same seed, same bytes: the CT, the truth volumes, the DICOMs (UIDs included).
    files = [
        "ct.nii.gz",
        "truth/density_mg_cm3.nii.gz",
        "truth/labels.nii.gz",
        *(f"radiographs/{pose}.dcm" for pose in POSES),
    ]
    for rel in files:
        assert (out / "S001" / rel).read_bytes() == (tmp_path / "S001" / rel).read_bytes(), rel


def test_manifest_of_the_synthetic_cohort_validates(subject):
    out, truth = subject
    write_manifest(
        [out / "S001" / "truth" / "truth.json"], out / "subjects.tsv", out / "radiographs.tsv"
    )
    c = read_cohort(out / "subjects.tsv", out / "radiographs.tsv")
    assert c.images_of("S001") == list(POSES)
    assert c.radiograph("S001", "abduction")["pose"] == "abduction"
    row = c.subject("S001")
    assert row["target_side"] == truth["target_side"]
    assert row["dxa_bmd_g_cm2"] == pytest.approx(truth["dxa_bmd_g_cm2"], abs=1e-4)
    assert row["ct"] == str((out / "S001" / "ct.nii.gz").resolve())


def _view(out, pose):
    return json.loads((out / "S001" / "truth" / "radiographs" / f"{pose}.json").read_text())


def test_radiographs_carry_their_geometry_and_true_poses(subject):
    out, truth = subject
    assert truth["radiographs"] == list(POSES)
    for pose in POSES:
        view = _view(out, pose)
        r = read_radiograph(out / "S001" / "radiographs" / f"{pose}.dcm")
        assert r.require_geometry().to_dict() == view["geometry"]
        assert r.pixels.shape == (SMALL_DETECTOR.rows, SMALL_DETECTOR.cols)
        for body in ("pelvis", "femur_left", "femur_right"):
            Pose(np.array(view["camera_from_ct"][body]))  # a valid rigid transform
        # The femur turns about its head centre: the head stays where the pelvis puts it.
        pelvis = np.array(view["camera_from_ct"]["pelvis"])
        for side, name in (("L", "femur_left"), ("R", "femur_right")):
            head = np.array(truth["landmarks_lps_mm"][f"head_center_{side}"])
            femur = np.array(view["camera_from_ct"][name])
            assert transform_points(femur, head) == pytest.approx(transform_points(pelvis, head))
            relative = np.linalg.inv(pelvis) @ femur
            angle = np.degrees(np.linalg.norm(Rotation.from_matrix(relative[:3, :3]).as_rotvec()))
            expected = np.linalg.norm(list(view["joint_angles_deg"][side].values()))
            assert angle == pytest.approx(expected, rel=0.15, abs=1.0)
    # Abduction really spreads the legs: more than 10 degrees between femur and pelvis.
    abd = _view(out, "abduction")["joint_angles_deg"]
    assert abd["L"]["abduction"] > 10 and abd["R"]["abduction"] > 10


def test_true_poses_reproduce_the_rendered_radiograph(subject):
    """Re-render the subject's CT with the recorded poses: the image matches the stored
    radiograph far better than with the femurs left at the pelvis pose."""
    out, _ = subject
    view = _view(out, "abduction")
    geometry = ProjectionGeometry.from_dict(view["geometry"])
    stored = read_radiograph(out / "S001" / "radiographs" / "abduction.dcm").pixels
    ct = sitk.ReadImage(str(out / "S001" / "ct.nii.gz"), sitk.sitkFloat32)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "S001" / "truth" / "labels.nii.gz")))
    body, femurs = split_bodies(sitk.GetArrayFromImage(ct), labels, ct, muscle_hu=40.0)
    poses = {k: np.array(v) for k, v in view["camera_from_ct"].items()}

    def high_pass(a):
        a = a - ndimage.gaussian_filter(a.astype(float), 4)
        return (a - a.mean()) / a.std()

    def ncc(femur_l, femur_r):
        areal = project_materials(
            [(body, poses["pelvis"]), (femurs["L"], femur_l), (femurs["R"], femur_r)], geometry
        )
        log = -np.log(transmission({"water": areal[0], "cortical_bone": areal[1]}, XraySettings()))
        return float((high_pass(log) * high_pass(stored)).mean())

    true = ncc(poses["femur_left"], poses["femur_right"])
    unmoved = ncc(poses["pelvis"], poses["pelvis"])
    assert true > 0.6
    assert true > unmoved + 0.1


def test_cohort_bmd_distribution_matches_the_target():
    """Drawn areal BMDs follow the seed paper's cohort (mean 0.76, SD 0.15 g/cm²)."""
    from phantom.anatomy import draw_subject

    rng = np.random.default_rng(0)
    drawn = [draw_subject(rng) for _ in range(4000)]
    bmd = np.array([p.target_areal_bmd_g_cm2 for p in drawn])
    assert abs(bmd.mean() - 0.76) < 0.02  # standard error ≈ 0.0024
    assert abs(bmd.std() - 0.15) < 0.02
    women = np.array([p.sex == "F" for p in drawn])
    assert 0.77 < women.mean() < 0.83
    assert bmd[women].mean() < bmd[~women].mean()  # as in the real table


def test_densities_are_solved_to_reach_the_drawn_bmd(subject):
    _, truth = subject
    target = truth["parameters"]["target_areal_bmd_g_cm2"]
    assert abs(truth["density_level_z"]) < 4  # not clipped
    assert truth["areal_bmd_g_cm2"] == pytest.approx(target, rel=0.01)


def test_anatomy_is_in_the_adult_range(subject):
    _, truth = subject
    for side in ("L", "R"):
        f = truth["parameters"]["femur"][side]
        assert 120 <= f["neck_shaft_angle_deg"] <= 140
        assert 18 <= f["head_radius_mm"] <= 30
    p = truth["parameters"]
    assert 140 < p["head_separation_mm"] < 220
    # Proximal-femur region (neck and trochanters): tens of cm³ of bone, not a sliver.
    assert 40 < truth["pf_region"]["volume_cm3"] < 200


def test_preview_draws_the_ct_and_every_radiograph(subject, tmp_path):
    from phantom.preview import preview

    out, _ = subject
    preview(out / "S001", tmp_path / "preview.png")
    png = (tmp_path / "preview.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    assert width > 3 * height  # two CT panels and two radiographs side by side


def test_landmarks_are_written_in_lps_where_anatomy_puts_them(subject):
    from conventions.landmarks import read_landmarks

    out, truth = subject
    lm = read_landmarks(out / "S001" / "truth" / "landmarks.json")
    for side, s in (("L", 1), ("R", -1)):
        head = lm[f"head_center_{side}"]
        assert head == pytest.approx(truth["landmarks_lps_mm"][f"head_center_{side}"])
        asis = lm[f"asis_{side}"] - head
        assert asis[1] < -20 and asis[2] > 30  # anterior (−y) and superior (+z)
        lt = lm[f"lesser_trochanter_{side}"] - head
        assert lt[2] < -40 and s * lt[0] > 0  # below the head, on the same side
    assert abs(lm["pubic_symphysis"][0]) < 1e-9 and lm["pubic_symphysis"][1] < 0


def test_true_poses_are_the_views_poses_in_registrations_format(subject, tmp_path):
    """``python -m phantom true-poses``: the view's pelvis and target-side femur poses,
    read back through the pose convention, status ok, for either side."""
    from conventions.pose import read_pose
    from phantom.__main__ import main as phantom_main

    out, _ = subject
    view = out / "S001" / "truth" / "radiographs" / "supine.json"
    truth = json.loads(view.read_text())["camera_from_ct"]
    for side, femur in (("L", "femur_left"), ("R", "femur_right")):
        pelvis, femur_out = tmp_path / f"pelvis_{side}.json", tmp_path / f"femur_{side}.json"
        args = ["true-poses", "--view", str(view), "--side", side,
                "--out-pelvis", str(pelvis), "--out-femur", str(femur_out)]  # fmt: skip
        assert phantom_main(args) == 0
        p, f = read_pose(pelvis), read_pose(femur_out)
        assert np.array_equal(p.camera_from_ct, np.array(truth["pelvis"]))
        assert np.array_equal(f.camera_from_ct, np.array(truth[femur]))
        assert f.extra["status"] == "ok" and f.extra["body"] == "femur"
        assert not np.allclose(truth["femur_left"], truth["femur_right"])
