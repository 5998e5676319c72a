"""The evaluation's figures for the report: per method and target, predicted against
reference BMD (identity line, PCC and ICC in the title) and the Bland-Altman plot
(bias, 95 % limits, outliers circled), a row per target and a column per method."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from conventions.files import atomic_path
from evaluation.metrics import bland_altman, icc, pearson
from evaluation.summary import METHODS, TARGETS


def _panels(predictions: pd.DataFrame):
    """A figure with a row per target and a column per method (Table 2's order), and for
    each panel (axes, target's name and unit, method's label, truth, finite predictions)."""
    methods = [m for m in METHODS if m in set(predictions["method"])]
    methods += sorted(set(predictions["method"]) - set(METHODS))
    targets = [t for t in TARGETS if t in set(predictions["target"])]
    fig = Figure(figsize=(2.6 * len(methods), 2.6 * len(targets)))

    def panels():
        for i, target in enumerate(targets):
            for j, method in enumerate(methods):
                g = predictions[
                    (predictions["method"] == method) & (predictions["target"] == target)
                ]
                g = g[np.isfinite(g["prediction"].to_numpy(float))]
                ax = fig.add_subplot(len(targets), len(methods), i * len(methods) + j + 1)
                ax.tick_params(labelsize=6)
                yield (ax, *TARGETS[target], METHODS.get(method, method),
                       g["truth"].to_numpy(float), g["prediction"].to_numpy(float))  # fmt: skip

    return fig, panels()


def scatter_figure(predictions: pd.DataFrame) -> Figure:
    fig, panels = _panels(predictions)
    for ax, name, unit, label, truth, pred in panels:
        ax.scatter(truth, pred, s=10, c="tab:blue")
        both = np.concatenate([truth, pred])
        if both.size:
            lo, hi = both.min(), both.max()
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)  # identity
        if len(pred) >= 3 and np.ptp(pred) > 0:
            title = f"PCC {pearson(pred, truth)[0]:.3f}, ICC {icc(pred, truth):.3f}"
        else:
            title = "too few or constant predictions"
        ax.set_title(f"{label}\n{title}", fontsize=7)
        ax.set_xlabel(f"{name} ({unit})", fontsize=7)
        ax.set_ylabel("predicted", fontsize=7)
    fig.tight_layout()
    return fig


def bland_altman_figure(predictions: pd.DataFrame) -> Figure:
    fig, panels = _panels(predictions)
    for ax, name, unit, label, truth, pred in panels:
        ax.set_title(label, fontsize=7)
        ax.set_xlabel(f"mean of predicted and {name} ({unit})", fontsize=6)
        ax.set_ylabel("predicted − reference", fontsize=6)
        if len(pred) < 2:
            continue
        ba = bland_altman(pred, truth)
        mean, diff = (pred + truth) / 2, pred - truth
        ax.scatter(mean, diff, s=10, c="tab:blue")
        ax.scatter(mean[ba.outliers], diff[ba.outliers], s=60, facecolors="none",
                   edgecolors="tab:red")  # fmt: skip
        for level, style in ((ba.bias, "-"), (ba.lower, "--"), (ba.upper, "--")):
            ax.axhline(level, color="0.4", lw=0.8, ls=style)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
