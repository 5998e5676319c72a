#!/bin/bash
# Run 2's predictions with the conventional baseline's rows replaced by the retrained
# baseline's (run.sh), evaluated as rule evaluate does (code at commit 584e04a).
set -e
cd /work/study
export PYTHONPATH=/work/main/src PATH=/work/main/.venv/bin:$PATH
out=/work/study_baseline/results; mkdir -p $out
python - <<'PY'
import pandas as pd
run2 = pd.read_csv("results/cohort/predictions.tsv", sep="\t", dtype={"subject_id": str, "image": str})
new = pd.concat([pd.read_csv(f"results/models/main/fold{k}/baseline_bn_predictions.tsv", sep="\t",
                             dtype={"subject_id": str, "image": str}) for k in range(5)])
assert set(new["method"]) == {"conventional_regression"}
kept = run2[run2["method"] != "conventional_regression"]
both = pd.concat([kept, new], ignore_index=True)
both.to_csv("/work/study_baseline/results/predictions.tsv", sep="\t", index=False, float_format="%.6g")
print(len(kept), "run-2 rows kept,", len(new), "baseline rows new")
PY
python -m evaluation summarise --predictions $out/predictions.tsv \
  --experiment without_hierarchy=results/cohort/robustness/without_hierarchy/predictions.tsv \
  --out-metrics $out/metrics.tsv --out-table $out/table2.md --t-mean 0.942 --t-sd 0.122 \
  --bmd-fit ground_truth --out-posewise $out/posewise.tsv --out-statistics $out/statistics.tsv
