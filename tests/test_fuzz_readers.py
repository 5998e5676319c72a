"""Property-based fuzzing of the readers that take outside input: the manifest parser, the
geometry and pose readers, the DICOM radiograph reader and the Slicer landmark reader.
Whatever bytes they get, they return a value or raise the project's own InputError
(ManifestError is one): never a bare KeyError, struct.error, RecursionError…"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort.manifest import read_cohort
from conftest import REPO
from conventions.errors import InputError
from conventions.geometry import read_geometry
from conventions.landmarks import read_slicer_landmarks
from conventions.pose import read_pose
from conventions.radiograph import read_radiograph

# CI replays the same examples every run (derandomize), so a failure there is a change in
# the code, not a new draw; XRAY_BMD_FUZZ=explore draws fresh ones, many more of them.
settings.register_profile("ci", max_examples=300, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
settings.register_profile("explore", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
FUZZ = settings(settings.get_profile(os.environ.get("XRAY_BMD_FUZZ", "ci")))
OK_DICOM = (REPO / "tests" / "data" / "bad" / "rad_ok.dcm").read_bytes()

# JSON values of any shape, numbers included that JSON itself cannot say (NaN, 1e400).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=30,
)  # fmt: skip


def _fuzz_file(data: bytes, name: str, read) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / name
        f.write_bytes(data)
        try:
            read(f)
        except InputError as e:
            assert str(f) in str(e) or e.path is None or "manifest" in str(e)


def _near_valid_geometry() -> st.SearchStrategy:
    base = {"sdd_mm": 1100.0, "pixel_spacing_mm": [0.2, 0.2], "rows": 40, "cols": 30,
            "source_to_patient_mm": 1000.0}  # fmt: skip
    return st.fixed_dictionaries(
        {}, optional={k: st.just(v) | json_values for k, v in base.items()}
    ).map(lambda d: json.dumps(d, allow_nan=True))


@FUZZ
@given(st.one_of(_near_valid_geometry(), json_values.map(lambda v: json.dumps(v)),
                 st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))  # fmt: skip
def test_geometry_reader_raises_only_input_errors(text):
    _fuzz_file(text.encode("utf-8", "surrogatepass"), "geometry.json", read_geometry)


def _near_valid_pose() -> st.SearchStrategy:
    number = st.floats() | st.integers() | st.text(max_size=3)
    matrix = st.lists(st.lists(number, max_size=5), max_size=5)
    identity = np.eye(4).tolist()
    return st.fixed_dictionaries(
        {},
        optional={
            "camera_from_ct": st.just(identity) | matrix | json_values,
            "body": json_values,
        },
    ).map(lambda d: json.dumps(d, allow_nan=True))


@FUZZ
@given(st.one_of(_near_valid_pose(), json_values.map(lambda v: json.dumps(v))))
def test_pose_reader_raises_only_input_errors(text):
    _fuzz_file(text.encode(), "pose.json", read_pose)


HEADER = "subject_id\tct\ttarget_side\tphantom\tct_scanner\n"
cells = st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), max_size=12)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=0, max_size=7), max_size=4),
    header=st.sampled_from([HEADER, "", "subject_id\n", "a\tb\tb\n", HEADER.replace("\t", ",")]),
    raw=st.binary(max_size=64),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_manifest_parser_raises_only_manifest_errors(rows, header, raw, ending):
    text = header + "".join("\t".join(r) + "\n" for r in rows)
    data = text.replace("\n", ending).encode() + raw
    _fuzz_file(data, "subjects.tsv", lambda f: read_cohort(f, None))


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(OK_DICOM) - 1), st.integers(0, 255)), min_size=1, max_size=12
    ),
    cut=st.integers(0, len(OK_DICOM)),
)
def test_dicom_radiograph_reader_raises_only_input_errors(edits, cut):
    """Random byte flips and truncations of a valid DX file."""
    data = bytearray(OK_DICOM)
    for i, v in edits:
        data[i] = v
    _fuzz_file(bytes(data[:cut] if cut > 132 else data), "r.dcm", read_radiograph)


@FUZZ
@given(st.one_of(
    json_values.map(lambda v: json.dumps({"markups": [v]} if isinstance(v, dict) else v)),
    st.lists(cells, max_size=6).map(lambda r: "# CoordinateSystem = LPS\n" + ",".join(r)),
))  # fmt: skip
def test_landmark_reader_raises_only_input_errors(text):
    name = "points.fcsv" if text.startswith("#") else "points.mrk.json"
    _fuzz_file(text.encode(), name, read_slicer_landmarks)
