"""Read and validate the cohort manifest: ``subjects.tsv`` and ``radiographs.tsv``.

Each row is checked against the JSON schemas in ``schemas/`` (the same files the
Snakefile validates against), then across rows and against the file system. Every
problem is reported at once, each naming the file, the line and the column.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from conventions.errors import InputError

PATH_COLUMNS = {
    "subjects": ("ct", "landmarks", "bone_masks"),
    "radiographs": ("path", "geometry", "init_pose_pelvis", "init_pose_femur"),
}


class ManifestError(InputError):
    """One or more problems in the manifest; ``problems`` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(None, "invalid cohort manifest:\n  " + "\n  ".join(problems))


@dataclass
class Cohort:
    """A validated cohort; paths are absolute, optional cells are None."""

    subjects: pd.DataFrame  # index: subject_id
    radiographs: pd.DataFrame  # columns include subject_id, image_id

    def __post_init__(self):
        # The workflow looks rows up once per job: dictionaries built once keep that O(1),
        # where a boolean mask over the table per lookup made building the DAG of a large
        # cohort quadratic (benchmarks/dag_scale.py).
        self._subject_rows = {
            subject_id: _none_for_missing(row)
            for subject_id, row in zip(
                self.subjects.index, self.subjects.to_dict("records"), strict=True
            )
        }
        self._radiograph_rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._images: dict[str, list[str]] = {s: [] for s in self._subject_rows}
        for row in self.radiographs.to_dict("records"):
            self._radiograph_rows[row["subject_id"], row["image_id"]] = _none_for_missing(row)
            self._images.setdefault(row["subject_id"], []).append(row["image_id"])

    @property
    def subject_ids(self) -> list[str]:
        return list(self.subjects.index)

    def subject(self, subject_id: str) -> dict[str, Any]:
        """One subject's row; empty optional cells are None."""
        return dict(self._subject_rows[subject_id])

    def radiograph(self, subject_id: str, image_id: str) -> dict[str, Any]:
        """One radiograph's row; empty optional cells are None."""
        return dict(self._radiograph_rows[subject_id, image_id])

    def images_of(self, subject_id: str) -> list[str]:
        """The subject's image IDs in manifest order."""
        return list(self._images.get(subject_id, []))


def _none_for_missing(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        for k, v in row.items()
    }


@cache
def load_schema(table: str) -> dict[str, Any]:
    """The JSON schema of one manifest table ('subjects' or 'radiographs')."""
    text = resources.files("cohort").joinpath(f"schemas/{table}.schema.yaml").read_text()
    return yaml.safe_load(text)


def _read_tsv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ManifestError([f"{path}: manifest file not found"])
    try:
        # utf-8-sig drops a BOM; every cell stays a string so IDs like 007 keep their zeros.
        return pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig"
        ).rename(columns=lambda c: c.strip())
    except UnicodeDecodeError as e:
        raise ManifestError([f"{path}: not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    except pd.errors.ParserError as e:
        raise ManifestError([f"{path}: not a tab-separated table ({e})"]) from None
    except pd.errors.EmptyDataError:
        raise ManifestError([f"{path}: empty file (a header line is required)"]) from None


def _typed_rows(
    df: pd.DataFrame, table: str, path: Path, problems: list[str]
) -> list[dict[str, Any]]:
    """Rows as dicts with empty cells dropped and numbers converted, schema-checked."""
    schema = load_schema(table)
    props = schema["properties"]
    unknown = [c for c in df.columns if c not in props]
    if unknown:
        problems.append(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(props)}"
        )
    missing = [c for c in schema["required"] if c not in df.columns]
    if missing:
        problems.append(f"{path}: missing required column(s) {', '.join(map(repr, missing))}")
    if unknown or missing:
        return []
    validator = jsonschema.Draft202012Validator(schema)
    rows = []
    for i, raw in enumerate(df.to_dict("records")):
        where = f"{path}: line {i + 2}"  # line 1 is the header
        row: dict[str, Any] = {}
        for col, cell in raw.items():
            cell = cell.strip()
            if cell == "":
                continue
            if props[col].get("type") == "number":
                try:
                    value = float(cell)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    problems.append(f"{where}, column '{col}': {cell!r} is not a finite number")
                    continue
                row[col] = value
            else:
                row[col] = cell
        for err in validator.iter_errors(row):
            column = err.path[0] if err.path else None
            if column is None and err.validator == "required":
                problems.append(f"{where}: {err.message}")
            else:
                problems.append(f"{where}, column '{column}': {err.message}")
        for col, spec in props.items():
            if "default" in spec:
                row.setdefault(col, spec["default"])
        row["_line"] = i + 2
        rows.append(row)
    return rows


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def _inside(p: Path, roots: list[Path]) -> bool:
    # Lexical: '..' is collapsed but symlinks are not followed, so a link the user placed
    # inside a data root (data -> /mnt/pacs) is their decision and stays allowed.
    norm = Path(os.path.normpath(p))
    return any(norm == r or r in norm.parents for r in roots)


def _resolve_paths(
    rows: list[dict[str, Any]],
    table: str,
    base: Path,
    path: Path,
    problems: list[str],
    roots: list[Path],
) -> None:
    for row in rows:
        for col in PATH_COLUMNS[table]:
            if col not in row:
                continue
            where = f"{path}: line {row['_line']}, column '{col}'"
            if "\0" in row[col]:
                problems.append(f"{where}: a NUL character in the path")
                continue
            try:
                p = Path(row[col]).expanduser()
            except RuntimeError:  # ~name of a user this machine does not know
                problems.append(f"{where}: cannot expand {row[col]!r} (no such user)")
                continue
            p = p if p.is_absolute() else base / p
            if not _inside(p, roots):
                problems.append(
                    f"{where}: {p} is outside the cohort's data roots "
                    f"({', '.join(map(str, roots))}); add its folder to config "
                    "cohort.data_roots if it is meant"
                )
            elif not _exists(p):
                problems.append(f"{where}: no such file {p}")
            row[col] = str(p.resolve())


def _duplicates(
    rows: list[dict[str, Any]], keys: tuple[str, ...], path: Path, problems: list[str]
) -> None:
    first_line: dict[tuple, int] = {}
    for row in rows:
        if not all(k in row for k in keys):
            continue
        key = tuple(row[k] for k in keys)
        if key in first_line:
            problems.append(
                f"{path}: line {row['_line']}, column '{keys[-1]}': duplicate "
                f"{'/'.join(key)} (first on line {first_line[key]})"
            )
        else:
            first_line[key] = row["_line"]


def data_roots(
    subjects_tsv: str | Path,
    radiographs_tsv: str | Path | None = None,
    extra: list[str | Path] | tuple = (),
) -> list[Path]:
    """The folders manifest paths may point into: the manifests' own folders and
    ``extra`` (config ``cohort.data_roots``), absolute and normalised."""
    folders = [Path(subjects_tsv).parent, *([Path(radiographs_tsv).parent] if radiographs_tsv
                                             else []), *map(Path, extra)]  # fmt: skip
    return list(dict.fromkeys(Path(os.path.normpath(f.expanduser().absolute())) for f in folders))


def read_cohort(
    subjects_tsv: str | Path,
    radiographs_tsv: str | Path | None,
    check_files: bool = True,
    extra_roots: list[str | Path] | tuple = (),
) -> Cohort:
    """Read and validate both manifest tables; raise ManifestError listing every problem.

    Paths are relative to their manifest's folder and must lie inside the data roots
    (:func:`data_roots`), so a manifest cannot point the pipeline at arbitrary files.
    """
    subjects_tsv = Path(subjects_tsv)
    roots = data_roots(subjects_tsv, radiographs_tsv, extra_roots)
    problems: list[str] = []
    subjects = _typed_rows(_read_tsv(subjects_tsv), "subjects", subjects_tsv, problems)
    if check_files:
        _resolve_paths(subjects, "subjects", subjects_tsv.parent, subjects_tsv, problems, roots)
    _duplicates(subjects, ("subject_id",), subjects_tsv, problems)
    if not subjects and not problems:
        problems.append(f"{subjects_tsv}: no subjects")

    radiographs: list[dict[str, Any]] = []
    if radiographs_tsv is not None:
        radiographs_tsv = Path(radiographs_tsv)
        radiographs = _typed_rows(
            _read_tsv(radiographs_tsv), "radiographs", radiographs_tsv, problems
        )
        if check_files:
            _resolve_paths(
                radiographs, "radiographs", radiographs_tsv.parent, radiographs_tsv, problems,
                roots,
            )  # fmt: skip
        _duplicates(radiographs, ("subject_id", "image_id"), radiographs_tsv, problems)
        known = {r["subject_id"] for r in subjects if "subject_id" in r}
        for r in radiographs:
            if "subject_id" in r and r["subject_id"] not in known:
                problems.append(
                    f"{radiographs_tsv}: line {r['_line']}, column 'subject_id': "
                    f"unknown subject {r['subject_id']!r} (not in {subjects_tsv.name})"
                )
    if problems:
        raise ManifestError(problems)

    subject_cols = list(load_schema("subjects")["properties"])
    radiograph_cols = list(load_schema("radiographs")["properties"])
    sdf = pd.DataFrame(
        [{c: r.get(c) for c in subject_cols} for r in subjects], columns=subject_cols
    ).set_index("subject_id", drop=False)
    rdf = pd.DataFrame(
        [{c: r.get(c) for c in radiograph_cols} for r in radiographs], columns=radiograph_cols
    )
    return Cohort(sdf, rdf)
