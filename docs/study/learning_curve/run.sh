#!/bin/bash
# The learning curve of docs/study.md ("Why the decomposition stops near 0.7"), as run on
# 2026-12-06 in the learning guard's worktree (configs/learning.yaml, its data products
# built by the workflow; fold.sh and fold_subset.sh hold that session's paths).
set -e
# 16 of each fold's 32 training subjects, drawn with the fold's number as the seed.
python3 - <<'PY'
import json, random
d = json.load(open("results/cohort/folds.json"))
for f in d["folds"]:
    train = sorted(f["train"])
    random.Random(f["fold"]).shuffle(train)
    f["train"] = sorted(train[:16])
json.dump(d, open("results/cohort/folds_half.json", "w"), indent=1)
PY
for f in 0 1 2 3 4; do bash fold.sh hflip $f "$(cat config_32_subjects.json)"; done
for f in 0 1 2 3 4; do
    FOLDS=results/cohort/folds_half.json bash fold_subset.sh half16 $f "$(cat config_16_subjects.json)"
done
