"""PCC of every method with each target, test folds pooled, from the runs' predictions."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

for path in sys.argv[1:] or sorted(Path(__file__).parent.glob("predictions_*.tsv")):
    p = pd.read_csv(path, sep="\t")
    table = p.groupby(["method", "target"]).apply(
        lambda g: np.corrcoef(g["prediction"], g["truth"])[0, 1], include_groups=False
    )
    print(Path(path).name, f"({p['fold'].nunique()} folds, {p['image'].count() // 6} pairs)")
    print(table.unstack().round(3).to_string(), "\n")
