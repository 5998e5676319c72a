"""The projection geometry of one X-ray image (``geometry.json``).

Camera frame (docs/conventions.md): right-handed, X-ray source at the origin, the
principal ray along +z, the detector plane at z = ``sdd_mm``. Columns grow along +x,
rows along +y. The centre of pixel (r, c), 0-based, is at

    x = (c + 0.5) * col_spacing - cx,   y = (r + 0.5) * row_spacing - cy,   z = sdd_mm

with (cx, cy) the principal point in mm from the detector's top-left corner (default:
the detector centre). This module is the only place that formula is written down.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conventions.errors import InputError
from conventions.files import write_json

REQUIRED_KEYS = ("sdd_mm", "rows", "cols", "pixel_spacing_mm")


@dataclass(frozen=True)
class ProjectionGeometry:
    """Cone-beam geometry of one detector image, all lengths in mm."""

    sdd_mm: float
    rows: int
    cols: int
    pixel_spacing_mm: tuple[float, float]  # (row_spacing, col_spacing)
    principal_point_mm: tuple[float, float] | None = None  # (cx, cy); None: detector centre
    # Not needed to project, but it places the patient: DICOM DistanceSourceToPatient.
    source_to_patient_mm: float | None = None

    def __post_init__(self) -> None:
        # Tuples, so a geometry is hashable (renderers cache per geometry).
        object.__setattr__(self, "pixel_spacing_mm", tuple(self.pixel_spacing_mm))
        if self.principal_point_mm is not None:
            object.__setattr__(self, "principal_point_mm", tuple(self.principal_point_mm))
        problems = _geometry_problems(self)
        if problems:
            raise ValueError("invalid projection geometry: " + "; ".join(problems))

    # -- derived quantities -------------------------------------------------
    @property
    def row_spacing_mm(self) -> float:
        return float(self.pixel_spacing_mm[0])

    @property
    def col_spacing_mm(self) -> float:
        return float(self.pixel_spacing_mm[1])

    @property
    def principal_point(self) -> tuple[float, float]:
        """(cx, cy) in mm from the detector's top-left corner."""
        if self.principal_point_mm is not None:
            return float(self.principal_point_mm[0]), float(self.principal_point_mm[1])
        return self.cols * self.col_spacing_mm / 2.0, self.rows * self.row_spacing_mm / 2.0

    def intrinsic_matrix(self) -> np.ndarray:
        """3×3 K with (c, r, 1)ᵀ ∝ K q for a camera-frame point q (pixel-centre indices)."""
        cx, cy = self.principal_point
        return np.array(
            [
                [self.sdd_mm / self.col_spacing_mm, 0.0, cx / self.col_spacing_mm - 0.5],
                [0.0, self.sdd_mm / self.row_spacing_mm, cy / self.row_spacing_mm - 0.5],
                [0.0, 0.0, 1.0],
            ]
        )

    def pixel_centres(self) -> np.ndarray:
        """Camera-frame positions of all pixel centres, shape (rows, cols, 3), mm."""
        cx, cy = self.principal_point
        x = (np.arange(self.cols) + 0.5) * self.col_spacing_mm - cx
        y = (np.arange(self.rows) + 0.5) * self.row_spacing_mm - cy
        xx, yy = np.meshgrid(x, y, indexing="xy")
        return np.stack([xx, yy, np.full_like(xx, self.sdd_mm)], axis=-1)

    def camera_to_pixel(self, points_camera: np.ndarray) -> np.ndarray:
        """Project camera-frame points (..., 3) to fractional (row, col) pixel indices.

        Points at or behind the source (z ≤ 0) have no image and give NaN.
        """
        q = np.asarray(points_camera, dtype=np.float64)
        z = q[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(z > 0, self.sdd_mm / z, np.nan)
        cx, cy = self.principal_point
        col = (q[..., 0] * scale + cx) / self.col_spacing_mm - 0.5
        row = (q[..., 1] * scale + cy) / self.row_spacing_mm - 0.5
        return np.stack([row, col], axis=-1)

    def resized(self, rows: int, cols: int) -> ProjectionGeometry:
        """The same detector sampled on a rows × cols grid (spacing scales, extent kept)."""
        return ProjectionGeometry(
            sdd_mm=self.sdd_mm,
            rows=rows,
            cols=cols,
            pixel_spacing_mm=(
                self.row_spacing_mm * self.rows / rows,
                self.col_spacing_mm * self.cols / cols,
            ),
            principal_point_mm=self.principal_point,
            source_to_patient_mm=self.source_to_patient_mm,
        )

    def binned(self, factor: int) -> ProjectionGeometry:
        """The same detector with factor × factor pixels binned into one: rows and cols
        cut to multiples of ``factor`` (the remainder dropped at the far edges, as block
        means of the image drop it), so the first pixel's corner and the principal point
        stay where they are."""
        return ProjectionGeometry(
            sdd_mm=self.sdd_mm,
            rows=self.rows // factor,
            cols=self.cols // factor,
            pixel_spacing_mm=(self.row_spacing_mm * factor, self.col_spacing_mm * factor),
            principal_point_mm=self.principal_point,
            source_to_patient_mm=self.source_to_patient_mm,
        )

    def cropped(self, rows: slice, cols: slice) -> ProjectionGeometry:
        """The part of the detector in ``rows`` × ``cols`` (slices of pixel indices, step
        1): its pixels are where they were, the principal point moves with the corner."""
        r0, r1, _ = rows.indices(self.rows)
        c0, c1, _ = cols.indices(self.cols)
        cx, cy = self.principal_point
        return ProjectionGeometry(
            sdd_mm=self.sdd_mm,
            rows=r1 - r0,
            cols=c1 - c0,
            pixel_spacing_mm=(self.row_spacing_mm, self.col_spacing_mm),
            principal_point_mm=(cx - c0 * self.col_spacing_mm, cy - r0 * self.row_spacing_mm),
            source_to_patient_mm=self.source_to_patient_mm,
        )

    # -- (de)serialisation --------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sdd_mm": float(self.sdd_mm),
            "rows": int(self.rows),
            "cols": int(self.cols),
            "pixel_spacing_mm": [self.row_spacing_mm, self.col_spacing_mm],
            "principal_point_mm": list(self.principal_point),
        }
        if self.source_to_patient_mm is not None:
            out["source_to_patient_mm"] = float(self.source_to_patient_mm)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> ProjectionGeometry:
        """Build from a ``geometry.json`` mapping; errors name ``source`` and the key."""
        if not isinstance(d, dict):
            raise InputError(source, "geometry must be a JSON object")
        missing = [k for k in REQUIRED_KEYS if d.get(k) is None]
        if missing:
            raise InputError(source, "geometry lacks " + ", ".join(missing))
        try:
            spacing = _pair(d["pixel_spacing_mm"], "pixel_spacing_mm")
            pp = d.get("principal_point_mm")
            sod = d.get("source_to_patient_mm")
            return cls(
                sdd_mm=_number(d["sdd_mm"], "sdd_mm"),
                rows=_integer(d["rows"], "rows"),
                cols=_integer(d["cols"], "cols"),
                pixel_spacing_mm=spacing,
                principal_point_mm=None if pp is None else _pair(pp, "principal_point_mm"),
                source_to_patient_mm=None if sod is None else _number(sod, "source_to_patient_mm"),
            )
        except ValueError as e:
            raise InputError(source, str(e)) from None


def read_geometry(path: str | Path) -> ProjectionGeometry:
    """Read and validate a ``geometry.json``."""
    return ProjectionGeometry.from_dict(read_json_object(path), source=path)


def write_geometry(path: str | Path, geometry: ProjectionGeometry) -> None:
    write_json(path, geometry.to_dict())


def read_json_object(path: str | Path) -> dict[str, Any]:
    """Read a JSON file that must hold an object; errors name the file."""
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(path, "expected a JSON object")
    return obj


def _geometry_problems(g: ProjectionGeometry) -> list[str]:
    problems = []
    if not (math.isfinite(g.sdd_mm) and g.sdd_mm > 0):
        problems.append(f"sdd_mm must be a positive number, got {g.sdd_mm}")
    for name in ("rows", "cols"):
        v = getattr(g, name)
        if not (isinstance(v, int | np.integer) and v > 0):
            problems.append(f"{name} must be a positive integer, got {v}")
    if len(g.pixel_spacing_mm) != 2 or not all(
        math.isfinite(s) and s > 0 for s in g.pixel_spacing_mm
    ):
        problems.append(f"pixel_spacing_mm must be two positive numbers, got {g.pixel_spacing_mm}")
    if g.principal_point_mm is not None and (
        len(g.principal_point_mm) != 2 or not all(math.isfinite(v) for v in g.principal_point_mm)
    ):
        problems.append(f"principal_point_mm must be two numbers, got {g.principal_point_mm}")
    sod = g.source_to_patient_mm
    if sod is not None and not (math.isfinite(sod) and 0 < sod < g.sdd_mm):
        problems.append(f"source_to_patient_mm must lie between 0 and sdd_mm, got {sod}")
    return problems


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{name} must be a number, got {v!r}")
    return float(v)


def _integer(v: Any, name: str) -> int:
    if (
        isinstance(v, bool)
        or not isinstance(v, int | float)
        or not math.isfinite(v)
        or float(v) != int(v)
    ):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    return int(v)


def _pair(v: Any, name: str) -> tuple[float, float]:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError(f"{name} must be a list of two numbers, got {v!r}")
    return _number(v[0], name), _number(v[1], name)
