"""``python -m evaluation``: the cohort's metrics and its Table 2.

``summarise``  predictions.tsv → metrics.tsv (per method and target: n, PCC and its p,
               ICC(2,1), MAE, SEE, RMS-CV, Bland-Altman), table2.md, and optionally the
               pose-wise PCC and MAE, the significance tests (repeated-measures ANOVA
               and Tukey's HSD) and the DXA-BMD predictions' WHO categories.
``plots``      predictions.tsv → the scatter, Bland-Altman, absolute-error and
               pose-wise figures (PNG).
``compress``   a dataset table's radiographs under one compression condition (bits<n>
               PNG or jpeg<q>) → the files and their index (for predict-compressed).
``compression``  the compressed radiographs' predictions → PCC, ICC and MAE per
               condition, method and target with the mean file size, and the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from conventions.errors import InputError, run_cli
from conventions.files import write_text
from conventions.predictions import ROBUSTNESS_EXPERIMENTS
from conventions.who import NHANES_TOTAL_HIP_WOMEN

# Each command imports its own statistics (scipy.stats, statsmodels) and figures
# (matplotlib): together ~1.5 s that ``compress``, run once per condition, does not use.


def _tsv(frame: pd.DataFrame) -> str:
    return frame.to_csv(sep="\t", index=False, float_format="%.6g")


def summarise_command(a) -> int:
    from evaluation.categories import who_category_counts
    from evaluation.statistics import experiment_tests, method_tests
    from evaluation.summary import (
        LEARNED_METHODS,
        cohort_metrics,
        experiment_titles,
        failure_detection_metrics,
        posewise_metrics,
        read_experiments,
        table2_markdown,
    )

    if bool(a.checks) != bool(a.out_failure):
        raise ValueError("--checks and --out-failure go together")
    experiments = read_experiments(a.predictions, a.experiment, a.limited_poses)
    predictions = experiments["main"]
    metrics = pd.concat([cohort_metrics(p, e) for e, p in experiments.items()], ignore_index=True)
    write_text(a.out_metrics, _tsv(metrics))
    titles = experiment_titles(a.limited_poses)
    write_text(a.out_table, table2_markdown(metrics, titles, a.bmd_fit))
    if a.out_posewise:
        table = pd.concat([posewise_metrics(p, e) for e, p in experiments.items()])
        write_text(a.out_posewise, _tsv(table))
    if a.out_statistics:
        tests = [method_tests(predictions, LEARNED_METHODS)]
        for name in ROBUSTNESS_EXPERIMENTS:  # each against main, pose by pose
            if name in experiments:
                tests.append(experiment_tests(predictions, experiments[name], "main", name,
                                              LEARNED_METHODS[1:]))  # fmt: skip
        write_text(a.out_statistics, _tsv(pd.concat(tests, ignore_index=True)))
    if a.checks:
        checks = pd.read_csv(a.checks, sep="\t", dtype={"subject_id": str, "image": str})
        missing = {"subject_id", "image", "flagged"} - set(checks.columns)
        if missing:
            raise InputError(a.checks, f"lacks the columns {sorted(missing)}")
        write_text(a.out_failure, _tsv(failure_detection_metrics(predictions, checks)))
    if a.out_categories:
        counts = who_category_counts(predictions, a.t_mean, a.t_sd)
        write_text(a.out_categories, counts.to_csv(sep="\t", index=False))
    print(f"{len(metrics)} method × target rows from {len(predictions)} predictions")
    return 0


def plots_command(a) -> int:
    from evaluation.plots import (
        absolute_error_figure,
        bland_altman_figure,
        posewise_figure,
        save_png,
        scatter_figure,
    )
    from evaluation.summary import posewise_metrics, read_experiments

    experiments = read_experiments(a.predictions, a.experiment, a.limited_poses)
    predictions = experiments["main"]
    save_png(scatter_figure(predictions), a.out_scatter)
    save_png(bland_altman_figure(predictions), a.out_bland_altman)
    if a.out_absolute_error:
        save_png(absolute_error_figure(predictions), a.out_absolute_error)
    if a.out_posewise:
        table = pd.concat([posewise_metrics(p, e) for e, p in experiments.items()])
        save_png(posewise_figure(table, a.limited_poses), a.out_posewise)
    return 0


def compress_command(a) -> int:
    """Every radiograph of the table under one condition: the files, and an index of
    (condition, subject_id, image, file, bytes)."""
    import numpy as np

    from conventions.files import atomic_path
    from evaluation.compression import compress, parse_condition

    parse_condition(a.condition)  # a clear error before any file is written
    table = pd.read_csv(a.table, sep="\t", dtype={"subject_id": str, "image": str})
    out_dir = Path(a.out_dir)
    rows = []
    for r in table.itertuples():
        with np.load(r.pair) as pair:
            data, suffix = compress(pair["xray"], a.condition)
        path = out_dir / r.subject_id / f"{r.image}{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        rows.append({"condition": a.condition, "subject_id": r.subject_id, "image": r.image,
                     "file": str(path), "bytes": len(data)})  # fmt: skip
    index = pd.DataFrame(rows, columns=["condition", "subject_id", "image", "file", "bytes"])
    write_text(a.out_index, index.to_csv(sep="\t", index=False))
    mean = index["bytes"].mean() if len(index) else 0
    print(f"{a.condition}: {len(index)} radiographs, mean {mean / 1024:.1f} KiB")
    return 0


def compression_command(a) -> int:
    """The folds' predictions of the compressed radiographs in one table, and its curves."""
    from conventions.predictions import REQUIRED_COLUMNS, read_predictions
    from evaluation.plots import compression_figure, save_png
    from evaluation.summary import compression_metrics

    parts = [read_predictions(p, REQUIRED_COLUMNS | {"condition", "bytes"}) for p in a.predictions]
    predictions = pd.concat(parts, ignore_index=True)
    write_text(a.out_predictions, _tsv(predictions))
    curves = compression_metrics(predictions)
    write_text(a.out_table, _tsv(curves))
    save_png(compression_figure(curves), a.out_figure)
    print(f"{curves['condition'].nunique()} conditions, {len(curves)} rows")
    return 0


def intensities_command(a) -> int:
    """The paper's Fig. 1: the folds' PF-region intensities, their PCCs with BMD, the
    figure."""
    from evaluation.plots import pf_intensity_figure, save_png
    from evaluation.summary import pf_intensity_correlations

    frames = [pd.read_csv(p, sep="\t", dtype={"subject_id": str, "image": str})
              for p in a.intensities]  # fmt: skip
    table = pd.concat(frames, ignore_index=True).sort_values(["subject_id", "image"])
    correlations = pf_intensity_correlations(table)
    write_text(a.out_table, _tsv(table))
    write_text(a.out_correlations, _tsv(correlations))
    save_png(pf_intensity_figure(table, correlations), a.out_figure)
    print(correlations.to_string(index=False))
    return 0


def _prediction_arguments(p: argparse.ArgumentParser) -> None:
    """The main experiment's predictions and the robustness experiments' (summarise and
    plots read the same)."""
    p.add_argument("--predictions", required=True)
    p.add_argument(
        "--experiment",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a robustness experiment's predictions: " + ", ".join(ROBUSTNESS_EXPERIMENTS),
    )
    p.add_argument("--limited-poses", nargs="*", default=None,
                   help="the poses the limited_poses experiment was trained on")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evaluation", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarise", help="metrics.tsv and table2.md from predictions.tsv")
    _prediction_arguments(p)
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
    p.add_argument("--bmd-fit", choices=("ground_truth", "predicted"), default=None,
                   help="what the BMD line was fitted on (Table 2's note)")  # fmt: skip
    p.add_argument("--out-posewise", default=None, help="PCC and MAE per pose (TSV)")
    p.add_argument(
        "--out-statistics",
        default=None,
        help="repeated-measures ANOVA and Tukey's HSD on absolute errors (TSV)",
    )
    p.add_argument(
        "--checks",
        default=None,
        help="failure detection: the test PF-DRRs' checks (pf_drr_checks.tsv)",
    )
    p.add_argument("--out-failure", default=None,
                   help="metrics with and without the flagged radiographs (TSV)")  # fmt: skip
    p.add_argument("--out-categories", default=None,
                   help="WHO categories of DXA-BMD predictions against DXA's")  # fmt: skip
    p.set_defaults(run=summarise_command)
    p = sub.add_parser("plots", help="scatter and Bland-Altman figures from predictions.tsv")
    _prediction_arguments(p)
    p.add_argument("--out-scatter", required=True)
    p.add_argument("--out-bland-altman", required=True)
    p.add_argument("--out-absolute-error", default=None)
    p.add_argument("--out-posewise", default=None)
    p.set_defaults(run=plots_command)
    p = sub.add_parser("compress", help="a dataset table's radiographs, compressed")
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--condition", required=True, help="bits<n> (PNG) or jpeg<q>")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--out-index", required=True)
    p.set_defaults(run=compress_command)
    p = sub.add_parser("compression", help="metrics and figure of the compression study")
    p.add_argument(
        "--predictions",
        nargs="+",
        required=True,
        help="the folds' predict-compressed tables (condition and bytes columns)",
    )
    p.add_argument("--out-predictions", required=True, help="all of them in one table")
    p.add_argument("--out-table", required=True)
    p.add_argument("--out-figure", required=True)
    p.set_defaults(run=compression_command)
    p = sub.add_parser("intensities", help="Fig. 1: PF-region intensities against BMD")
    p.add_argument("--intensities", nargs="+", required=True,
                   help="the folds' predict-fold --out-intensities tables")  # fmt: skip
    p.add_argument("--out-table", required=True, help="all of them in one table")
    p.add_argument("--out-correlations", required=True, help="PCC per image and target")
    p.add_argument("--out-figure", required=True)
    p.set_defaults(run=intensities_command)
    a = ap.parse_args(argv)
    return run_cli(lambda: a.run(a), getattr(a, "subject", None))


if __name__ == "__main__":
    sys.exit(main())
