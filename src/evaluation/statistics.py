"""The paper's significance tests, on absolute errors, with statsmodels.

- Between methods: the single-factor repeated-measures ANOVA (the factor is the method,
  each test radiograph is measured by every method), then Tukey's HSD between each pair
  of methods (Gu et al. 2023, Sec. 4.2.1).
- Between poses: Tukey's HSD of one method's absolute errors between the poses, and, for
  a robustness study, pose by pose between two experiments (full against limited-pose
  training, calibrated against uncalibrated CT; Sec. 4.2.3 and 4.2.5).

Every test reads the long predictions table (subject_id, image, pose, method, target,
prediction, truth) and returns rows of one tidy table (test, target, and the groups
compared; statistic, degrees of freedom, p).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.multicomp import pairwise_tukeyhsd

STAT_COLUMNS = ["test", "target", "scope", "group_a", "group_b", "n", "statistic", "df",
                "p"]  # fmt: skip


def absolute_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """The table with ``abs_error`` = |prediction − truth|, rows without a finite
    prediction or truth left out."""
    p = predictions.copy()
    p["abs_error"] = (p["prediction"].astype(float) - p["truth"].astype(float)).abs()
    return p[np.isfinite(p["abs_error"].to_numpy(float))]


def repeated_measures_anova(errors: pd.DataFrame, methods: list[str], target: str) -> dict:
    """Do ``methods``' absolute errors differ? Radiographs measured by every one of them
    are the subjects of the design (a radiograph missing from any method is left out, as
    the design must be balanced)."""
    g = errors[(errors["target"] == target) & errors["method"].isin(methods)]
    g = g.assign(radiograph=g["subject_id"] + "/" + g["image"])
    wide = g.pivot_table(index="radiograph", columns="method", values="abs_error")
    wide = wide[[m for m in methods if m in wide.columns]].dropna()
    row = {"test": "rm_anova", "target": target, "scope": "methods",
           "group_a": ",".join(wide.columns), "group_b": "", "n": len(wide)}  # fmt: skip
    if wide.shape[1] < 2 or len(wide) < 2:
        return {**row, "statistic": np.nan, "df": "", "p": np.nan}
    long = wide.reset_index().melt(id_vars="radiograph", var_name="method",
                                   value_name="abs_error")  # fmt: skip
    table = AnovaRM(long, "abs_error", "radiograph", within=["method"]).fit().anova_table
    f, df_num, df_den, p = table.iloc[0][["F Value", "Num DF", "Den DF", "Pr > F"]]
    return {**row, "statistic": float(f), "df": f"{df_num:g},{df_den:g}", "p": float(p)}


def tukey_hsd(values: np.ndarray, groups: np.ndarray, target: str, scope: str) -> list[dict]:
    """Tukey's HSD between every pair of ``groups``' values: a row per pair, the
    statistic being the difference of means (b − a), p adjusted for the family."""
    names = list(dict.fromkeys(groups))
    if len(names) < 2 or any((groups == n).sum() < 2 for n in names):
        return []
    result = pairwise_tukeyhsd(np.asarray(values, float), np.asarray(groups))
    rows = []
    for (i, j), diff, p in zip(_pairs(result.groupsunique), result.meandiffs,
                               result.pvalues, strict=True):  # fmt: skip
        a, b = result.groupsunique[i], result.groupsunique[j]
        n = int((groups == a).sum() + (groups == b).sum())
        rows.append({"test": "tukey_hsd", "target": target, "scope": scope, "group_a": str(a),
                     "group_b": str(b), "n": n, "statistic": float(diff),
                     "df": str(len(values) - len(names)), "p": float(p)})  # fmt: skip
    return rows


def _pairs(names) -> list[tuple[int, int]]:
    # statsmodels orders the pairs as itertools.combinations of its sorted groups
    return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]


def method_tests(predictions: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per target: the repeated-measures ANOVA across ``methods``, Tukey's HSD between
    every pair of them, and for each method Tukey's HSD between the poses."""
    errors = absolute_errors(predictions)
    rows = []
    for target in dict.fromkeys(errors["target"]):
        present = [m for m in methods if m in set(errors.loc[errors["target"] == target,
                                                             "method"])]  # fmt: skip
        rows.append(repeated_measures_anova(errors, present, target))
        g = errors[(errors["target"] == target) & errors["method"].isin(present)]
        rows += tukey_hsd(g["abs_error"].to_numpy(), g["method"].to_numpy(), target, "methods")
        for method in present:
            m = g[g["method"] == method]
            rows += tukey_hsd(m["abs_error"].to_numpy(), m["pose"].to_numpy(), target,
                              f"poses of {method}")  # fmt: skip
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def experiment_tests(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str,
                     methods: list[str]) -> pd.DataFrame:  # fmt: skip
    """Pose by pose, Tukey's HSD between two experiments' absolute errors of the same
    method (with two groups it is the two-sample t-test at the studentised range)."""
    ea, eb = absolute_errors(a), absolute_errors(b)
    rows = []
    for target in dict.fromkeys(ea["target"]):
        for method in methods:
            for pose in sorted(set(ea["pose"]) | set(eb["pose"])):
                sel = [e[(e["target"] == target) & (e["method"] == method) & (e["pose"] == pose)]
                       for e in (ea, eb)]  # fmt: skip
                values = np.concatenate([s["abs_error"].to_numpy() for s in sel])
                groups = np.array([name_a] * len(sel[0]) + [name_b] * len(sel[1]))
                rows += tukey_hsd(values, groups, target, f"{method} at {pose}")
    return pd.DataFrame(rows, columns=STAT_COLUMNS)
