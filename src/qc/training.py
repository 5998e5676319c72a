"""Training curves: each stage's loss terms per epoch, one line per fold."""

from __future__ import annotations

from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from conventions.files import atomic_path
from conventions.geometry import read_json_object

TERMS = ("total", "l1", "gc", "adversarial", "feature_matching", "discriminator")


def training_curves(histories: list[str], out_png: str) -> None:
    docs = [read_json_object(p) for p in histories]
    stages = sorted({d["stage"] for d in docs})
    terms = [t for t in TERMS if any(t in d["history"][0] for d in docs if d["history"])]
    fig = Figure(figsize=(3.2 * len(terms), 2.8 * len(stages)))
    for i, stage in enumerate(stages):
        for j, term in enumerate(terms):
            ax = fig.add_subplot(len(stages), len(terms), i * len(terms) + j + 1)
            for d in (d for d in docs if d["stage"] == stage):
                epochs = [h["epoch"] for h in d["history"] if term in h]
                values = [h[term] for h in d["history"] if term in h]
                ax.plot(epochs, values, marker=".", label=f"fold {d['fold']}")
            ax.set_title(f"stage {stage}: {term}", fontsize=8)
            ax.set_xlabel("epoch", fontsize=7)
            ax.tick_params(labelsize=6)
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
