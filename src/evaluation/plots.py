"""The evaluation's figures for the report.

- Per method and target, a row per target and a column per method: predicted against
  reference BMD (identity line, PCC and ICC in the title) and the Bland-Altman plot
  (bias, 95 % limits, outliers circled).
- Per target, one panel each: the methods' absolute errors as box plots (Fig. 6's
  lower row), their PCC pose by pose (Fig. 7), and their PCC against the radiographs'
  file size under compression (Fig. 8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from matplotlib.lines import Line2D

from conventions.files import atomic_path
from evaluation.metrics import bland_altman, icc, pearson
from evaluation.summary import METHODS, PF_INTENSITIES, TARGETS, ordered_methods


def _panels(predictions: pd.DataFrame):
    """A figure with a row per target and a column per method (Table 2's order), and for
    each panel (axes, target's name and unit, method's label, truth, finite predictions)."""
    methods = ordered_methods(predictions["method"])
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


def _target_axes(fig: Figure, targets: list[str]):
    for i, target in enumerate(targets):
        ax = fig.add_subplot(1, len(targets), i + 1)
        ax.tick_params(labelsize=7)
        yield ax, target, *TARGETS[target]


def absolute_error_figure(predictions: pd.DataFrame) -> Figure:
    """Per target, a box per method of |predicted − reference| over the test radiographs."""
    methods = ordered_methods(predictions["method"])
    targets = [t for t in TARGETS if t in set(predictions["target"])]
    fig = Figure(figsize=(max(4.0, 1.0 * len(methods)) * len(targets), 4.0))
    for ax, target, name, unit in _target_axes(fig, targets):
        errors, labels = [], []
        for method in methods:
            g = predictions[(predictions["method"] == method) & (predictions["target"] == target)]
            e = np.abs(g["prediction"].to_numpy(float) - g["truth"].to_numpy(float))
            errors.append(e[np.isfinite(e)])
            labels.append(METHODS.get(method, method).replace(" (", "\n("))
        ax.boxplot(errors, showmeans=True)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=35, ha="right", fontsize=6)
        ax.set_ylabel(f"|predicted − {name}| ({unit})", fontsize=7)
        ax.set_title(f"{name}: absolute error", fontsize=8)
    fig.tight_layout()
    return fig


# Line styles of the experiments in the pose-wise figure (colours are the methods').
EXPERIMENT_STYLES = {"main": "-", "limited_poses": "--", "uncalibrated_ct": ":"}


def posewise_figure(posewise: pd.DataFrame, seen_poses: list[str] | None = None) -> Figure:
    """Per target, each method's PCC on each pose's radiographs (``posewise_metrics``):
    a colour per method, a line style per experiment (main solid, limited poses dashed,
    uncalibrated CT dotted, any other dash-dotted). Poses not in ``seen_poses`` (a
    limited-pose training's) are marked unseen."""
    targets = [t for t in TARGETS if t in set(posewise["target"])]
    poses = list(dict.fromkeys(posewise["pose"]))
    methods = ordered_methods(posewise["method"])
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    experiments = list(dict.fromkeys(posewise["experiment"]))
    styles = {e: EXPERIMENT_STYLES.get(e, "-.") for e in experiments}
    fig = Figure(figsize=(4.6 * len(targets), 4.4))
    for ax, target, name, _unit in _target_axes(fig, targets):
        t = posewise[posewise["target"] == target]
        for (experiment, method), g in t.groupby(["experiment", "method"], sort=False):
            g = g.set_index("pose").reindex(poses)
            ax.plot(range(len(poses)), g["pcc"].to_numpy(float), marker="o", ms=3, lw=1,
                    color=colours[method], ls=styles[experiment])  # fmt: skip
        ticks = [p if seen_poses is None or p in seen_poses else f"{p}\n(unseen)" for p in poses]
        ax.set_xticks(range(len(poses)), ticks, fontsize=7)
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_ylabel(f"PCC with {name}", fontsize=7)
        ax.set_title(f"{name}: pose-wise PCC", fontsize=8)
    handles = [Line2D([], [], color=colours[m], marker="o", ms=3, label=METHODS.get(m, m))
               for m in methods]  # fmt: skip
    if len(experiments) > 1:
        handles += [Line2D([], [], color="0.2", ls=styles[e], label=e) for e in experiments]
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=6, frameon=False)
    return fig


def _legend_below(fig: Figure) -> None:
    """One legend for the figure's panels (they share their lines), under them."""
    handles, labels = fig.axes[0].get_legend_handles_labels() if fig.axes else ([], [])
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=6, frameon=False)


def compression_figure(curves: pd.DataFrame) -> Figure:
    """Per target, each method's PCC against the mean file size of the compressed test
    radiographs (log axis), a point per condition labelled with its name (Fig. 8)."""
    targets = [t for t in TARGETS if t in set(curves["target"])]
    fig = Figure(figsize=(4.8 * len(targets), 4.4))
    for ax, target, name, _unit in _target_axes(fig, targets):
        t = curves[curves["target"] == target]
        for method in ordered_methods(t["method"]):
            g = t[t["method"] == method].sort_values("mean_bytes")
            ax.plot(g["mean_bytes"] / 1024, g["pcc"], marker="o", label=METHODS.get(method, method))
        ax.set_xscale("log")
        sizes = t.groupby("condition")["mean_bytes"].first().sort_values()
        top = ax.secondary_xaxis("top")  # each condition named at its file size
        top.set_xticks(sizes.to_numpy() / 1024, list(sizes.index), rotation=90, fontsize=5)
        top.minorticks_off()
        ax.set_xlabel("mean file size of a test radiograph (KiB)", fontsize=7)
        ax.set_ylabel(f"PCC with {name}", fontsize=7)
        ax.set_title(f"{name}: compression of the test radiographs", fontsize=8)
    _legend_below(fig)
    return fig


def pf_intensity_figure(intensities: pd.DataFrame, correlations: pd.DataFrame) -> Figure:
    """The paper's Fig. 1 on this cohort: per image (radiograph, ground-truth and
    predicted PF-DRR), the PF region's mean intensity against DXA-BMD, PCC in the title."""
    target = "dxa_bmd_g_cm2" if "dxa_bmd_g_cm2" in intensities.columns else "qct_bmd_mg_cm3"
    name, unit = TARGETS[target]
    fig = Figure(figsize=(2.8 * len(PF_INTENSITIES), 2.9))
    pcc = correlations[correlations["target"] == target].set_index("image")["pcc"]
    for k, (image, label) in enumerate(PF_INTENSITIES.items()):
        ax = fig.add_subplot(1, len(PF_INTENSITIES), k + 1)
        ax.scatter(intensities[target], intensities[image], s=5, alpha=0.6, linewidths=0)
        ax.set_title(f"{label}\nr = {pcc.get(image, float('nan')):.2f}", fontsize=8)
        ax.set_xlabel(f"{name} ({unit})", fontsize=7)
        unit_y = "g/cm²" if image.endswith("pf_drr") else "pixel value"
        ax.set_ylabel(f"PF-region mean ({unit_y})", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
