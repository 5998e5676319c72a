"""``python -m evaluation``: the cohort's metrics and its Table 2.

``summarise``  predictions.tsv → metrics.tsv (per method and target: n, PCC and its p,
               ICC(2,1), MAE, SEE, RMS-CV, Bland-Altman), table2.md and, optionally,
               the DXA-BMD predictions' WHO categories against DXA's.
``plots``      predictions.tsv → the scatter and Bland-Altman figures (PNG).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from conventions.errors import InputError
from conventions.files import write_text
from evaluation.categories import NHANES_TOTAL_HIP_WOMEN, category_confusion
from evaluation.plots import bland_altman_figure, save_png, scatter_figure
from evaluation.summary import METHODS, cohort_metrics, table2_markdown

REQUIRED = {"subject_id", "image", "method", "target", "prediction", "truth"}


def read_predictions(path: str) -> pd.DataFrame:
    predictions = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "image": str})
    missing = REQUIRED - set(predictions.columns)
    if missing:
        raise InputError(path, f"lacks the columns {sorted(missing)}")
    return predictions


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


def summarise_command(a) -> int:
    predictions = read_predictions(a.predictions)
    metrics = cohort_metrics(predictions)
    write_text(a.out_metrics, metrics.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text(a.out_table, table2_markdown(metrics))
    if a.out_categories:
        counts = who_category_counts(predictions, a.t_mean, a.t_sd)
        write_text(a.out_categories, counts.to_csv(sep="\t", index=False))
    print(f"{len(metrics)} method × target rows from {len(predictions)} predictions")
    return 0


def plots_command(a) -> int:
    predictions = read_predictions(a.predictions)
    save_png(scatter_figure(predictions), a.out_scatter)
    save_png(bland_altman_figure(predictions), a.out_bland_altman)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evaluation", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarise", help="metrics.tsv and table2.md from predictions.tsv")
    p.add_argument("--predictions", required=True)
    p.add_argument("--out-metrics", required=True)
    p.add_argument("--out-table", required=True)
    p.add_argument(
        "--t-mean",
        type=float,
        default=NHANES_TOTAL_HIP_WOMEN["mean_g_cm2"],
        help="T-score reference mean, g/cm² (default NHANES III women, total hip)",
    )
    p.add_argument(
        "--t-sd",
        type=float,
        default=NHANES_TOTAL_HIP_WOMEN["sd_g_cm2"],
        help="T-score reference SD, g/cm²",
    )
    p.add_argument("--out-categories", default=None,
                   help="WHO categories of DXA-BMD predictions against DXA's")  # fmt: skip
    p.set_defaults(run=summarise_command)
    p = sub.add_parser("plots", help="scatter and Bland-Altman figures from predictions.tsv")
    p.add_argument("--predictions", required=True)
    p.add_argument("--out-scatter", required=True)
    p.add_argument("--out-bland-altman", required=True)
    p.set_defaults(run=plots_command)
    a = ap.parse_args(argv)
    try:
        return a.run(a)
    except (InputError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
