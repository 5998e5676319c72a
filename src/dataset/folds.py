"""Patient-wise K-fold splits, stratified by BMD.

Subjects are ranked by their BMD and dealt out in blocks of K, each block shuffled by
the seed: every fold then spans the cohort's BMD range (the paper's 5-fold
cross-validation; a fold of only low-BMD subjects would test extrapolation). A subject
is in exactly one test fold, with all its radiographs.
"""

from __future__ import annotations

import numpy as np


def stratified_folds(subjects, bmd, k: int = 5, seed: int = 2023) -> list[list[str]]:
    """``k`` lists of subject IDs (the test fold of each split), sorted within each.

    ``bmd`` gives each subject's stratification value (NaN: unknown, dealt out last)."""
    subjects = [str(s) for s in subjects]
    if len(set(subjects)) != len(subjects):
        raise ValueError("subject IDs repeat: folds are made per subject")
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if len(subjects) < k:
        raise ValueError(f"{len(subjects)} subjects cannot fill {k} folds")
    values = np.asarray(bmd, float)
    # Ties and unknowns broken by ID so the order does not depend on the input's order.
    order = sorted(
        range(len(subjects)), key=lambda i: (np.isnan(values[i]), values[i], subjects[i])
    )
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    for start in range(0, len(order), k):
        block = order[start : start + k]
        # A short last block goes to the folds that are smallest so far.
        targets = sorted(range(k), key=lambda f: (len(folds[f]), f))[: len(block)]
        for f, i in zip(rng.permutation(targets), block, strict=True):
            folds[int(f)].append(subjects[i])
    return [sorted(f) for f in folds]


def fold_document(folds: list[list[str]], seed: int, stratified_by: str) -> dict:
    """``folds.json``: for each fold its test subjects and the training subjects."""
    everyone = sorted(s for f in folds for s in f)
    return {
        "k": len(folds),
        "seed": seed,
        "stratified_by": stratified_by,
        "folds": [
            {"fold": i, "test": f, "train": [s for s in everyone if s not in set(f)]}
            for i, f in enumerate(folds)
        ],
    }
