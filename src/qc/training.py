"""Training curves: each model's loss terms per epoch, one row per model (stage one,
stage two, stage three and the baseline per target), one line per fold."""

from __future__ import annotations

from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from conventions.files import atomic_path
from conventions.geometry import read_json_object

# The decomposition stages' terms, then the regressors' (weighted L1 on the standardised
# target, and the MAE in the target's units).
TERMS = ("total", "l1", "gc", "adversarial", "feature_matching", "discriminator", "loss", "mae")


def _label(stage) -> str:
    return f"stage {stage}" if isinstance(stage, int) else str(stage)


def training_curves(histories: list[str], out_png: str) -> None:
    docs = [read_json_object(p) for p in histories]
    labels = list(dict.fromkeys(_label(d["stage"]) for d in docs))  # in the given order
    rows = {
        label: [t for t in TERMS if any(t in h for d in docs if _label(d["stage"]) == label
                                       for h in d["history"])]
        for label in labels
    }  # fmt: skip
    ncols = max(len(terms) for terms in rows.values())
    fig = Figure(figsize=(3.0 * ncols, 2.6 * len(labels)))
    for i, label in enumerate(labels):
        for j, term in enumerate(rows[label]):
            ax = fig.add_subplot(len(labels), ncols, i * ncols + j + 1)
            for d in (d for d in docs if _label(d["stage"]) == label):
                epochs = [h["epoch"] for h in d["history"] if term in h]
                values = [h[term] for h in d["history"] if term in h]
                ax.plot(epochs, values, marker=".", label=f"fold {d['fold']}")
            ax.set_title(f"{label}: {term}", fontsize=8)
            ax.set_xlabel("epoch", fontsize=7)
            ax.tick_params(labelsize=6)
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
