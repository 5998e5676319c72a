"""The projection geometry and poses of docs/conventions.md."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from conventions.errors import InputError
from conventions.geometry import ProjectionGeometry, read_geometry, write_geometry
from conventions.pose import (
    R_AP,
    Pose,
    ap_pose,
    project_ct_points,
    read_pose,
    rigid_matrix,
    rotation_about,
    rotation_from_rotvec,
    rotation_matrix_about,
    transform_points,
    write_pose,
)

GEOM = ProjectionGeometry(sdd_mm=1000.0, rows=100, cols=80, pixel_spacing_mm=(0.5, 0.4))


def test_ap_projection_matches_hand_computation():
    # Isocenter (10, 20, 30) LPS on the principal ray 600 mm from the source; a point
    # 5 mm to the patient's left and 8 mm inferior of it.
    pose = ap_pose(np.array([10.0, 20.0, 30.0]), 600.0)
    p = np.array([15.0, 20.0, 22.0])
    # By hand: R_AP p = (15, -22, 20); t = (0, 0, 600) - R_AP iso = (-10, 30, 580)
    # q = (5, 8, 600); detector x = 5·1000/600, y = 8·1000/600; principal point at the
    # detector centre (16, 25) mm; col = (x + 16)/0.4 - 0.5, row = (y + 25)/0.5 - 0.5.
    expected_col = (5 * 1000 / 600 + 16.0) / 0.4 - 0.5
    expected_row = (8 * 1000 / 600 + 25.0) / 0.5 - 0.5
    row, col = project_ct_points(p, pose.camera_from_ct, GEOM)
    assert row == pytest.approx(expected_row, abs=1e-9)
    assert col == pytest.approx(expected_col, abs=1e-9)
    # Radiologists' view: patient's left on the image's right, superior at the top.
    iso_row, iso_col = project_ct_points(np.array([10.0, 20.0, 30.0]), pose.camera_from_ct, GEOM)
    assert (iso_row, iso_col) == pytest.approx((49.5, 39.5))
    assert col > iso_col and row > iso_row


def test_ap_rotation_is_the_documented_matrix():
    assert np.array_equal(R_AP, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    assert np.linalg.det(R_AP) == pytest.approx(1.0)
    pose = ap_pose(np.zeros(3), 700.0)
    # The source sits anterior (-y) of the patient, 700 mm from the isocenter.
    assert pose.source_position_ct == pytest.approx([0.0, -700.0, 0.0])


def test_pixel_centres_project_back_to_their_indices():
    g = ProjectionGeometry(1100.0, 7, 5, (0.3, 0.25), principal_point_mm=(0.4, 1.3))
    centres = g.pixel_centres()
    assert centres.shape == (7, 5, 3)
    # Scaling a pixel centre along its ray must not move its image.
    rc = g.camera_to_pixel(centres * 0.37)
    rows, cols = np.meshgrid(np.arange(7), np.arange(5), indexing="ij")
    assert np.allclose(rc[..., 0], rows) and np.allclose(rc[..., 1], cols)
    # Pixel (0, 0) centre, written out from the conventions formula.
    assert centres[0, 0] == pytest.approx([0.5 * 0.25 - 0.4, 0.5 * 0.3 - 1.3, 1100.0])


def test_points_behind_the_source_have_no_image():
    assert np.all(np.isnan(GEOM.camera_to_pixel(np.array([1.0, 2.0, -5.0]))))


@settings(max_examples=60, deadline=None)
@given(
    rotvec=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    t=st.lists(st.floats(-200, 200), min_size=2, max_size=2),
    depth=st.floats(300, 1500),
    p=st.lists(st.floats(-150, 150), min_size=3, max_size=3),
)
def test_projection_equals_intrinsic_matrix_form(rotvec, t, depth, p):
    r = Rotation.from_rotvec(rotvec).as_matrix()
    m = rigid_matrix(r, [t[0], t[1], depth])
    row, col = project_ct_points(np.array(p), m, GEOM)
    q = r @ np.array(p) + [t[0], t[1], depth]
    h = GEOM.intrinsic_matrix() @ q
    assert col == pytest.approx(h[0] / h[2], rel=1e-9, abs=1e-6)
    assert row == pytest.approx(h[1] / h[2], rel=1e-9, abs=1e-6)


def test_rotation_about_keeps_its_centre_fixed():
    c = np.array([12.0, -40.0, 88.0])
    m = rotation_about(c, [0.1, -0.4, 0.25])
    assert m[:3, :3] @ c + m[:3, 3] == pytest.approx(c)


def test_geometry_round_trip(tmp_path):
    g = ProjectionGeometry(
        1150.5, 1024, 512, (0.3, 0.28), principal_point_mm=(70.0, 150.0), source_to_patient_mm=980
    )
    write_geometry(tmp_path / "geometry.json", g)
    assert read_geometry(tmp_path / "geometry.json") == g
    # Default principal point is the detector centre, and is written out explicitly.
    d = ProjectionGeometry(1000.0, 10, 20, (0.5, 0.25)).to_dict()
    assert d["principal_point_mm"] == [2.5, 2.5]


def test_pose_round_trip_keeps_extra_keys(tmp_path):
    m = rotation_about([1, 2, 3], [0.3, 0.2, -0.1]) @ ap_pose(np.zeros(3), 800).camera_from_ct
    pose = Pose(m, {"similarity": 0.87, "status": "ok"})
    write_pose(tmp_path / "pose.json", pose)
    back = read_pose(tmp_path / "pose.json")
    assert np.array_equal(back.camera_from_ct, m)
    assert back.extra == {"similarity": 0.87, "status": "ok"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rows": 10, "cols": 10, "pixel_spacing_mm": [0.3, 0.3]}, "lacks sdd_mm"),
        ({"sdd_mm": -5, "rows": 10, "cols": 10, "pixel_spacing_mm": [0.3, 0.3]}, "sdd_mm"),
        ({"sdd_mm": 1000, "rows": 10.5, "cols": 10, "pixel_spacing_mm": [0.3, 0.3]}, "rows"),
        ({"sdd_mm": 1000, "rows": 10, "cols": 10, "pixel_spacing_mm": [0.3]}, "pixel_spacing"),
        ({"sdd_mm": 1000, "rows": 10, "cols": 10, "pixel_spacing_mm": [0, 0.3]}, "pixel_spacing"),
    ],
)
def test_bad_geometry_names_file_and_value(tmp_path, doc, message):
    f = tmp_path / "geometry.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message) as e:
        read_geometry(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.diag([1.0, 1.0, -1.0, 1.0]), "reflection"),
        (np.diag([2.0, 1.0, 1.0, 1.0]), "orthonormal"),
        (np.eye(3), "shape"),
        (np.vstack([np.eye(4)[:3], [0, 0, 1, 1]]), "last row"),
    ],
)
def test_bad_pose_names_file_and_problem(tmp_path, matrix, message):
    f = tmp_path / "pose.json"
    f.write_text(json.dumps({"camera_from_ct": matrix.tolist()}))
    with pytest.raises(InputError, match=message) as e:
        read_pose(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_a_binned_detector_sees_a_point_where_the_block_means_put_it(factor):
    """Binning f × f pixels (rows and cols not multiples of f: the remainder is dropped at
    the far edges): a point's pixel coordinate on the binned detector is its coordinate
    on the full one, measured from the first pixel's corner, divided by f."""
    g = ProjectionGeometry(
        sdd_mm=1100.0, rows=101, cols=77, pixel_spacing_mm=(0.7, 0.9),
        principal_point_mm=(30.0, 41.0), source_to_patient_mm=950.0,
    )  # fmt: skip
    b = g.binned(factor)
    assert (b.rows, b.cols) == (101 // factor, 77 // factor)
    points = np.array([[12.0, -20.0, 1000.0], [-5.0, 33.0, 900.0], [0.0, 0.0, 1050.0]])
    full, binned = g.camera_to_pixel(points), b.camera_to_pixel(points)
    # pixel centres sit at integer coordinates: the corner is at -0.5 on each detector
    np.testing.assert_allclose(binned + 0.5, (full + 0.5) / factor, atol=1e-9)


def test_a_cropped_detector_keeps_its_pixels_where_they_were():
    """A detector's part (rows r0.., cols c0..): a point's pixel there is its pixel on the
    whole detector less (r0, c0), and its pixel centres are the whole one's."""
    g = ProjectionGeometry(
        sdd_mm=1100.0, rows=101, cols=77, pixel_spacing_mm=(0.7, 0.9),
        principal_point_mm=(30.0, 41.0), source_to_patient_mm=950.0,
    )  # fmt: skip
    part = g.cropped(slice(13, 60), slice(5, 77))
    assert (part.rows, part.cols) == (47, 72)
    points = np.array([[12.0, -20.0, 1000.0], [-5.0, 33.0, 900.0], [0.0, 0.0, 1050.0]])
    np.testing.assert_allclose(
        part.camera_to_pixel(points), g.camera_to_pixel(points) - [13, 5], atol=1e-9
    )
    np.testing.assert_allclose(part.pixel_centres(), g.pixel_centres()[13:60, 5:77], atol=1e-12)


def test_a_rotation_about_a_point_keeps_the_point_and_turns_the_rest():
    """conventions.pose.rotation_matrix_about, the one builder (single and stacked): the
    centre stays put, every other point turns about it by the rotation."""
    rng = np.random.default_rng(3)
    centre = np.array([10.0, -20.0, 35.0])
    rotations = Rotation.from_rotvec(rng.normal(0, 0.5, (4, 3))).as_matrix()
    stacked = rotation_matrix_about(centre, rotations)
    points = rng.normal(0, 50, (6, 3))
    for r, m in zip(rotations, stacked, strict=True):
        np.testing.assert_allclose(m, rotation_matrix_about(centre, r))
        np.testing.assert_allclose(transform_points(m, centre[None])[0], centre, atol=1e-12)
        np.testing.assert_allclose(transform_points(m, points), (points - centre) @ r.T + centre)


def test_rotation_from_rotvec_is_scipys_rotation_at_every_angle_scale():
    """Rodrigues' formula against scipy's quaternion route, from 1e-10 rad (the small-angle
    series) to beyond π, one vector and a stack, plus two closed forms."""
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.normal(size=(200, 3)) * s for s in (1e-10, 1e-5, 1e-2, 1.0, 4.0)])
    np.testing.assert_allclose(
        rotation_from_rotvec(v), Rotation.from_rotvec(v).as_matrix(), atol=1e-14
    )
    np.testing.assert_allclose(
        rotation_from_rotvec(v[3]), Rotation.from_rotvec(v[3]).as_matrix(), atol=1e-14
    )
    np.testing.assert_array_equal(rotation_from_rotvec(np.zeros(3)), np.eye(3))
    quarter_turn_z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(
        rotation_from_rotvec([0.0, 0.0, np.pi / 2]), quarter_turn_z, atol=1e-15
    )
