"""Anatomical landmarks: read 3D Slicer markups, write project JSON in LPS mm.

Slicer writes ``.mrk.json`` (with a ``coordinateSystem`` of "LPS" or "RAS" per markup)
and the older ``.fcsv`` (a ``# CoordinateSystem`` header of LPS/RAS, or 0 = RAS and
1 = LPS in Slicer 4.x). Each header is honoured; RAS points are converted by negating
x and y, the only difference between the two frames.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from conventions.errors import InputError
from conventions.files import write_json
from conventions.geometry import read_json_object

RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


def read_slicer_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """Landmarks by label, LPS mm, from a Slicer ``.mrk.json`` or ``.fcsv`` file."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".json"):
        points = _read_mrk_json(path)
    elif name.endswith(".fcsv"):
        points = _read_fcsv(path)
    else:
        raise InputError(path, "landmarks must be a Slicer .mrk.json or .fcsv file")
    if not points:
        raise InputError(path, "no landmarks in file")
    return points


def _add(points: dict[str, np.ndarray], label: str, xyz, system: str, path: Path) -> None:
    p = np.asarray(xyz, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(path, f"landmark {label!r} has an invalid position {xyz!r}")
    if label in points:
        raise InputError(path, f"landmark label {label!r} appears twice")
    points[label] = p * RAS_TO_LPS if system == "RAS" else p


def _system(value, path: Path) -> str:
    v = str(value).strip().upper()
    if v in ("LPS", "1"):
        return "LPS"
    if v in ("RAS", "0"):
        return "RAS"
    raise InputError(path, f"unknown coordinate system {value!r} (expected LPS or RAS)")


def _read_mrk_json(path: Path) -> dict[str, np.ndarray]:
    doc = read_json_object(path)
    markups = doc.get("markups")
    if not isinstance(markups, list):
        raise InputError(path, "not a Slicer markups file (no 'markups' list)")
    points: dict[str, np.ndarray] = {}
    for m in markups:
        if "coordinateSystem" not in m:
            raise InputError(path, "markup without 'coordinateSystem'; cannot tell RAS from LPS")
        system = _system(m["coordinateSystem"], path)
        for i, cp in enumerate(m.get("controlPoints", [])):
            if cp.get("positionStatus", "defined") != "defined":
                continue
            _add(points, str(cp.get("label") or f"point{i}"), cp.get("position"), system, path)
    return points


def _read_fcsv(path: Path) -> dict[str, np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read landmarks ({e})") from None
    system, columns, rows = None, None, []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            key = key.strip().lower()
            if key == "coordinatesystem":
                system = _system(value, path)
            elif key == "columns":
                columns = [c.strip() for c in value.split(",")]
        elif line.strip():
            rows.append(line)
    if system is None:
        raise InputError(path, "no '# CoordinateSystem' header; cannot tell RAS from LPS")
    columns = columns or [
        "id",
        "x",
        "y",
        "z",
        "ow",
        "ox",
        "oy",
        "oz",
        "vis",
        "sel",
        "lock",
        "label",
    ]
    points: dict[str, np.ndarray] = {}
    for i, rec in enumerate(csv.reader(io.StringIO("\n".join(rows)))):
        row = dict(zip(columns, rec, strict=False))
        try:
            xyz = [float(row["x"]), float(row["y"]), float(row["z"])]
        except (KeyError, ValueError):
            raise InputError(path, f"landmark row {i + 1} has no numeric x, y, z") from None
        _add(points, row.get("label") or f"point{i}", xyz, system, path)
    return points


def write_landmarks(path: str | Path, points: dict[str, np.ndarray]) -> None:
    """Write landmarks as ``{"coordinate_system": "LPS", "unit": "mm", "landmarks": …}``."""
    write_json(
        path,
        {
            "coordinate_system": "LPS",
            "unit": "mm",
            "landmarks": {k: [float(v) for v in p] for k, p in points.items()},
        },
    )


def read_landmarks(path: str | Path) -> dict[str, np.ndarray]:
    """Read landmarks written by :func:`write_landmarks`."""
    doc = read_json_object(path)
    if doc.get("coordinate_system") != "LPS" or not isinstance(doc.get("landmarks"), dict):
        raise InputError(path, "not a project landmarks file (LPS landmarks object expected)")
    return {k: np.asarray(v, dtype=np.float64) for k, v in doc["landmarks"].items()}


__all__ = ["read_landmarks", "read_slicer_landmarks", "write_landmarks"]
