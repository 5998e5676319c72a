"""The WHO categories of predicted against reference DXA-BMD (the T-score and the
categories themselves are the floor's: :mod:`conventions.who`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conventions.predictions import METHODS
from conventions.who import CATEGORIES, NHANES_TOTAL_HIP_WOMEN, t_score, who_category

__all__ = ["CATEGORIES", "NHANES_TOTAL_HIP_WOMEN", "category_confusion", "t_score",
           "who_category", "who_category_counts"]  # fmt: skip


def category_confusion(pred_g_cm2, truth_g_cm2, mean_g_cm2: float, sd_g_cm2: float):
    """Counts of (reference category, predicted category): rows the DXA category, columns
    the prediction's, in the order normal, osteopenia, osteoporosis."""
    truth = who_category(t_score(truth_g_cm2, mean_g_cm2, sd_g_cm2))
    pred = who_category(t_score(pred_g_cm2, mean_g_cm2, sd_g_cm2))
    table = pd.crosstab(pd.Categorical(truth, CATEGORIES), pd.Categorical(pred, CATEGORIES),
                        dropna=False)  # fmt: skip
    table.index.name, table.columns.name = "dxa", "predicted"
    return table.reindex(index=list(CATEGORIES), columns=list(CATEGORIES), fill_value=0)


def who_category_counts(predictions: pd.DataFrame, t_mean: float, t_sd: float) -> pd.DataFrame:
    """Per method, the DXA-BMD predictions' WHO categories against the DXA's (long form:
    method, dxa, predicted, count)."""
    dxa = predictions[(predictions["target"] == "dxa_bmd_g_cm2")]
    dxa = dxa[np.isfinite(dxa["prediction"].to_numpy(float))]
    parts = []
    for method in dict.fromkeys(m for m in METHODS if m in set(dxa["method"])):
        g = dxa[dxa["method"] == method]
        table = category_confusion(g["prediction"], g["truth"], t_mean, t_sd)
        long = table.stack().rename("count").reset_index()
        parts.append(long.assign(method=method)[["method", "dxa", "predicted", "count"]])
    columns = ["method", "dxa", "predicted", "count"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
