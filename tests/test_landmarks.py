"""3D Slicer landmark files: their coordinate-system headers are honoured."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conventions.errors import InputError
from conventions.landmarks import read_landmarks, read_slicer_landmarks, write_landmarks


def _mrk(system: str, points: dict[str, list[float]]) -> dict:
    return {
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#",
        "markups": [
            {
                "type": "Fiducial",
                "coordinateSystem": system,
                "coordinateUnits": "mm",
                "controlPoints": [
                    {"id": str(i), "label": k, "position": v, "positionStatus": "defined"}
                    for i, (k, v) in enumerate(points.items())
                ],
            }
        ],
    }


def test_mrk_json_ras_is_converted_to_lps(tmp_path):
    f = tmp_path / "lm.mrk.json"
    f.write_text(json.dumps(_mrk("RAS", {"head_center_L": [80.0, -12.5, 30.0]})))
    assert read_slicer_landmarks(f)["head_center_L"] == pytest.approx([-80.0, 12.5, 30.0])
    f.write_text(json.dumps(_mrk("LPS", {"head_center_L": [80.0, -12.5, 30.0]})))
    assert read_slicer_landmarks(f)["head_center_L"] == pytest.approx([80.0, -12.5, 30.0])


@pytest.mark.parametrize(("header", "sign"), [("LPS", 1), ("RAS", -1), ("0", -1), ("1", 1)])
def test_fcsv_coordinate_system_header(tmp_path, header, sign):
    f = tmp_path / "lm.fcsv"
    f.write_text(
        "# Markups fiducial file version = 4.11\n"
        f"# CoordinateSystem = {header}\n"
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"
        "vtkMRMLMarkupsFiducialNode_0,10.5,-20,33,0,0,0,1,1,1,0,gt_R,,\n"
    )
    assert read_slicer_landmarks(f)["gt_R"] == pytest.approx([sign * 10.5, sign * -20.0, 33.0])


def test_files_that_do_not_say_their_frame_are_rejected(tmp_path):
    f = tmp_path / "lm.fcsv"
    f.write_text("# columns = id,x,y,z,label\n0,1,2,3,a\n")
    with pytest.raises(InputError, match="CoordinateSystem") as e:
        read_slicer_landmarks(f)
    assert str(f) in str(e.value)
    doc = _mrk("LPS", {"a": [1, 2, 3]})
    del doc["markups"][0]["coordinateSystem"]
    g = tmp_path / "lm.mrk.json"
    g.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="coordinateSystem"):
        read_slicer_landmarks(g)


def test_project_landmark_file_round_trip(tmp_path):
    pts = {"head_center_L": np.array([85.0, 1.5, -2.0]), "head_center_R": np.array([-86, 0, 1.0])}
    write_landmarks(tmp_path / "landmarks.json", pts)
    back = read_landmarks(tmp_path / "landmarks.json")
    assert set(back) == set(pts)
    for k in pts:
        assert back[k] == pytest.approx(pts[k])
    assert json.loads((tmp_path / "landmarks.json").read_text())["coordinate_system"] == "LPS"


def test_depth_inside_is_scipys_distance_transform_on_the_whole_grid():
    """The femoral head's thickest point is found on the femur's box grown by a voxel:
    the same distances as scipy's exact transform of the whole CT, masks touching the
    grid's edge and anisotropic voxels included."""
    from scipy import ndimage

    from anatomy.landmarks import depth_inside

    rng = np.random.default_rng(5)
    for k in range(12):
        mask = np.zeros((24, 30, 36), bool)
        blob = ndimage.binary_opening(rng.random((12, 15, 18)) > 0.35)
        at = [(0, 3, 12)[k % 3], 5, 9 + k]  # touching the first and last slice too
        mask[at[0] : at[0] + 12, at[1] : at[1] + 15, at[2] : at[2] + 18] = blob[:, :, : 36 - at[2]]
        spacing = tuple(rng.uniform(0.4, 3.0, 3))
        full = ndimage.distance_transform_edt(mask, sampling=spacing)
        assert np.array_equal(depth_inside(mask, spacing), full)
    assert not depth_inside(np.zeros((4, 4, 4), bool), (1, 1, 1)).any()
