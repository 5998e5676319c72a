"""A cohort's cross-validation folds as the models read them: a fold's training and test
subjects (``folds.json``) and their rows of a dataset table. Free of torch, so that
the CLI's argument parsing and its table-only commands start in a fraction of a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FINAL_FOLD = "all"  # every subject trains, none tests: the deployable model


def fold_subjects(folds_json: str | Path, fold: int | str) -> tuple[list[str], list[str]]:
    """(training subjects, test subjects) of one fold of ``folds.json``; for
    :data:`FINAL_FOLD`, every subject of the folds (each is one fold's test subject) and
    none."""
    doc = json.loads(Path(folds_json).read_text(encoding="utf-8"))
    if fold == FINAL_FOLD:
        return sorted({s for entry in doc["folds"] for s in entry["test"]}), []
    entry = doc["folds"][int(fold)]
    return list(entry["train"]), list(entry["test"])


def fold_index(text: str) -> int | str:
    """A ``--fold`` argument: a fold's number, or :data:`FINAL_FOLD`."""
    return FINAL_FOLD if text == FINAL_FOLD else int(text)


def fold_rows(table: str | Path, subjects, poses=None) -> pd.DataFrame:
    """The rows of a dataset table (TSV) whose subjects are in ``subjects`` and, when
    ``poses`` is given, whose pose is one of them (a limited-pose training)."""
    df = pd.read_csv(table, sep="\t", dtype={"subject_id": str, "image": str})
    keep = df["subject_id"].isin(set(subjects))
    if poses:
        keep &= df["pose"].isin(set(poses))
    return df[keep].reset_index(drop=True)
