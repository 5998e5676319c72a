"""The WHO categories of predicted against reference DXA-BMD (the T-score and the
categories themselves are the floor's: :mod:`conventions.who`)."""

from __future__ import annotations

import pandas as pd

from conventions.who import CATEGORIES, NHANES_TOTAL_HIP_WOMEN, t_score, who_category

__all__ = ["CATEGORIES", "NHANES_TOTAL_HIP_WOMEN", "category_confusion", "t_score",
           "who_category"]  # fmt: skip


def category_confusion(pred_g_cm2, truth_g_cm2, mean_g_cm2: float, sd_g_cm2: float):
    """Counts of (reference category, predicted category): rows the DXA category, columns
    the prediction's, in the order normal, osteopenia, osteoporosis."""
    truth = who_category(t_score(truth_g_cm2, mean_g_cm2, sd_g_cm2))
    pred = who_category(t_score(pred_g_cm2, mean_g_cm2, sd_g_cm2))
    table = pd.crosstab(pd.Categorical(truth, CATEGORIES), pd.Categorical(pred, CATEGORIES),
                        dropna=False)  # fmt: skip
    table.index.name, table.columns.name = "dxa", "predicted"
    return table.reindex(index=list(CATEGORIES), columns=list(CATEGORIES), fill_value=0)
