"""The predictions table: one row per test radiograph, method and BMD target, written by
the models (per fold, then gathered) and read by evaluation and the deployed model's
card. Its columns, targets and method names are defined here, once.

Methods, in Table 2's order: the conventional baseline (a CNN on the PF ROI), the
decomposition (BMD read off the predicted PF-DRR), stage three's regression with the
encoder frozen and fine-tuned, and two references: the ground-truth PF-DRR through the
decomposition's threshold and line (what the method can reach) and the training fold's
mean (the null model a method must beat).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conventions.errors import InputError

PREDICTION_COLUMNS = ["subject_id", "image", "pose", "fold", "method", "target", "prediction",
                      "truth"]  # fmt: skip
REQUIRED_COLUMNS = {"subject_id", "image", "method", "target", "prediction", "truth"}
BMD_TARGETS = {"dxa_bmd_g_cm2": ("DXA-BMD", "g/cm²"), "qct_bmd_mg_cm3": ("QCT-BMD", "mg/cm³")}

CONVENTIONAL = "conventional_regression"
DECOMPOSITION = "decomposition"
REGRESSION_FROZEN = "decomposition+regression_frozen"
REGRESSION = "decomposition+regression"
GT_PF_DRR = "gt_pf_drr"
NULL_MODEL = "training_mean"
METHODS = {
    CONVENTIONAL: "Conventional regression",
    DECOMPOSITION: "Decomposition",
    REGRESSION_FROZEN: "+ Regression (freeze M_E)",
    REGRESSION: "+ Regression",
    GT_PF_DRR: "Ground-truth PF-DRR (reference)",
    NULL_MODEL: "Training-fold mean (null model)",
}
# The methods learned from the radiograph (the paper's significance tests compare these).
LEARNED_METHODS = [CONVENTIONAL, DECOMPOSITION, REGRESSION_FROZEN, REGRESSION]
# The robustness experiments beside "main" (rules/common.smk: EXPERIMENT_SETTINGS).
ROBUSTNESS_EXPERIMENTS = ("limited_poses", "uncalibrated_ct", "without_hierarchy")


def read_predictions(path: str | Path, required=REQUIRED_COLUMNS) -> pd.DataFrame:
    """A predictions table; InputError naming the file when columns are missing."""
    predictions = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "image": str})
    missing = set(required) - set(predictions.columns)
    if missing:
        raise InputError(path, f"lacks the columns {sorted(missing)}")
    return predictions
