"""A fold of the cross-validation, read as the paper's Table 2 reads it: each method's
BMD of the fold's test radiographs beside the reference, in one predictions table.

- the decomposition: a PF-DRR's BMD through the threshold and line fitted on the fold's
  training radiographs (on their ground-truth PF-DRRs, the paper's Fig. 4, or on the
  network's predictions of them), and the ground-truth PF-DRRs through the same;
- the null model: every test subject given its training fold's mean;
- the regressors: stage three (frozen and fine-tuned) and the conventional baseline;
- the paper's Fig. 1 intensities and the failure detection's checks per test pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conventions.predictions import (
    BMD_TARGETS,
    CONVENTIONAL,
    DECOMPOSITION,
    GT_PF_DRR,
    NULL_MODEL,
    REGRESSION,
    REGRESSION_FROZEN,
)
from models.bmd import fit_bmd_calibration, roi_mean
from models.data import block_mean, load_input, standardise
from models.plausibility import FEATURES, PlausibleRange
from models.train import load_checkpoint
from models.train_regression import RegressionConfig, predict_bmd, regressor_from_checkpoint


def prediction_rows(table, which, fold, method, target, estimate) -> list[dict]:
    """Rows of the predictions table for ``table``'s rows selected by ``which``."""
    return [
        {"subject_id": table["subject_id"].iloc[i], "image": table["image"].iloc[i],
         "pose": table["pose"].iloc[i], "fold": fold, "method": method, "target": target,
         "prediction": float(estimate[i]), "truth": float(table[target].iloc[i])}
        for i in np.flatnonzero(which)
    ]  # fmt: skip


def fold_bmd_predictions(
    table: pd.DataFrame,
    is_test: np.ndarray,
    is_train: np.ndarray,
    predicted: np.ndarray,
    truth_images: np.ndarray,
    bmd_fit: str,
    fold: int,
) -> tuple[list[dict], dict]:
    """A fold's BMD of its test radiographs (``is_test``) from their PF-DRRs, predicted
    (``decomposition``) and true (``gt_pf_drr``), each through the threshold and line
    fitted on the training radiographs (``is_train``), and the null model's (the
    training mean); the prediction rows and the calibration records."""
    rows, calibrations = [], {"bmd_fit": bmd_fit}
    # The threshold and line that read BMD off a PF-DRR are fitted on the training
    # fold's ground-truth PF-DRRs (the paper's Fig. 4; the network is trained to
    # reproduce them) or, with --bmd-fit predicted, on the network's own predictions of
    # its training radiographs (which it has fitted, not predicted).
    fit_images = {DECOMPOSITION: truth_images if bmd_fit == "ground_truth" else predicted,
                  GT_PF_DRR: truth_images}  # fmt: skip
    for method, images in ((DECOMPOSITION, predicted), (GT_PF_DRR, truth_images)):
        for target in BMD_TARGETS:
            values = table[target].to_numpy(float)
            fit_rows = is_train & np.isfinite(values)
            if fit_rows.sum() < 3:
                continue
            try:
                cal, curve = fit_bmd_calibration(
                    [fit_images[method][i] for i in np.flatnonzero(fit_rows)],
                    values[fit_rows], target,
                )  # fmt: skip
            except ValueError as e:
                # A collapsed network (the same image for every radiograph): its BMD is
                # unknown, recorded as such; the fold's other methods still count.
                calibrations[f"{method}/{target}"] = {"error": str(e)}
                print(f"warning: fold {fold}, {method}, {target}: {e}")
                estimate = np.full(len(images), np.nan)
            else:
                calibrations[f"{method}/{target}"] = {**cal.to_dict(), "pcc_by_threshold": curve}
                estimate = cal.predict(images)
            rows += prediction_rows(table, is_test, fold, method, target, estimate)
    for target in BMD_TARGETS:
        # The null model: every test subject gets the training fold's mean BMD. A method
        # must beat it to carry information (in a small cohort its cross-validated PCC is
        # negative: leaving out the high-BMD subjects lowers the training mean).
        values = table[target].to_numpy(float)
        fit = is_train & np.isfinite(values)
        if fit.any():
            mean = np.full(len(table), values[fit].mean())
            rows += prediction_rows(table, is_test, fold, NULL_MODEL, target, mean)
    return rows, calibrations


def pf_roi_intensities(table, which, fold, factor, predicted) -> pd.DataFrame:
    """The paper's Fig. 1, per selected pair: the mean over the PF region's silhouette of
    the radiograph (its pixel values as stored, and standardised as the models see it),
    of the ground-truth PF-DRR and of the predicted PF-DRR (at the model's resolution,
    over the silhouette's pixels there), beside the subject's BMD."""
    rows = []
    for i in np.flatnonzero(which):
        with np.load(table["pair"].iloc[i]) as pair:
            xray, truth, mask = pair["xray"], pair["pf_drr_g_cm2"], pair["pf_mask"] > 0
        coarse = block_mean(mask.astype(np.float32), factor) >= 0.5
        rows.append({
            "subject_id": table["subject_id"].iloc[i], "image": table["image"].iloc[i],
            "pose": table["pose"].iloc[i], "fold": fold,
            "radiograph": roi_mean(xray, mask),
            "radiograph_standardised": roi_mean(standardise(xray), mask),
            "gt_pf_drr": roi_mean(truth, mask),
            "predicted_pf_drr": roi_mean(predicted[i], coarse),
            **{t: float(table[t].iloc[i]) for t in BMD_TARGETS},
        })  # fmt: skip
    return pd.DataFrame(rows)


CHECK_COLUMNS = ["subject_id", "image", "pose", "fold", *FEATURES,
                 *(f"z_{f}" for f in FEATURES), "flagged", "reasons"]  # fmt: skip


def pf_drr_checks(table, which, fold, images, plausible: PlausibleRange | None) -> pd.DataFrame:
    """Per selected radiograph: its predicted PF-DRR's features, their z-scores against
    the plausible range, and whether (and why) it is flagged. Without a range (a fold
    with fewer than 3 training radiographs) nothing is flagged, and the reason says so."""
    rows = []
    for i in np.flatnonzero(which):
        if plausible is None:
            record, reasons = {}, []
            note = "not checked: fewer than 3 training PF-DRRs"
        else:
            record, reasons = plausible.check(images[i])
            note = "; ".join(reasons)
        rows.append({"subject_id": table["subject_id"].iloc[i], "image": table["image"].iloc[i],
                     "pose": table["pose"].iloc[i], "fold": fold, **record,
                     "flagged": bool(reasons), "reasons": note})  # fmt: skip
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def regression_method(cfg: RegressionConfig, epoch: int) -> str:
    """The method a regressor's predictions are reported under (Table 2's rows): stage
    three's checkpoint after ``epoch`` epochs is the frozen or the fine-tuned model."""
    if cfg.kind == "conventional":
        return CONVENTIONAL
    frozen = epoch <= cfg.epochs
    return REGRESSION_FROZEN if frozen else REGRESSION


def regressor_rows(table: pd.DataFrame, checkpoints, fold: int, xrays=None) -> list[dict]:
    """Rows of every regressor's BMD for ``table``'s radiographs (or for ``xrays`` in
    their place: the same radiographs compressed); each input set read once for all the
    regressors that share it."""
    rows, inputs = [], {}  # inputs by (factor, ROI)
    xrays = [None] * len(table) if xrays is None else xrays
    for checkpoint in checkpoints:
        ckpt = load_checkpoint(checkpoint)
        model, cfg = regressor_from_checkpoint(ckpt)
        method = regression_method(cfg, int(ckpt["epoch"]))
        key = (cfg.factor, cfg.roi_pixels if cfg.kind == "conventional" else None)
        if key not in inputs:
            pairs = zip(table["pair"], xrays, strict=True)
            inputs[key] = np.stack([load_input(p, *key, xray=x) for p, x in pairs])
        rows += prediction_rows(table, np.ones(len(table), bool), fold, method, cfg.target,
                                predict_bmd(model, inputs[key]))  # fmt: skip
    return rows
