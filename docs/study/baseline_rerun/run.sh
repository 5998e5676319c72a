#!/bin/bash
# The study's conventional baseline retrained at commit 584e04a on run 2's data products
# (the worktree /work/study, commit 2927e04), as rule train_baseline would run it with
# configs/study.yaml at 584e04a: 40 epochs, lr 1e-3, no augmentation, batch norm.
set -e
cd /work/study
export PYTHONPATH=/work/main/src OMP_NUM_THREADS=1 PATH=/work/main/.venv/bin:$PATH
CFG='{"factor": 8, "batch_size": 4, "lr": 0.001, "weight_decay": 0.01, "restart_epochs": 10, "checkpoint_every": 5, "seed": 2023, "augment": false, "augment_intensity": false, "augment_range": 0.0, "epochs": 40}'
job() {  # fold target
  out=results/models/main/fold$1/baseline_bn_$2
  python -m models train-regressor --kind conventional --target $2 --table results/cohort/dataset_B.tsv --folds results/cohort/folds.json --fold $1 --config "$CFG" --out-dir $out --out-history $out/history.json --quiet
}
for f in 0 1 2 3 4; do
  job $f dxa_bmd_g_cm2 & job $f qct_bmd_mg_cm3 & wait
  python -m models predict-regressors --models results/models/main/fold$f/baseline_bn_dxa_bmd_g_cm2/final.pt results/models/main/fold$f/baseline_bn_qct_bmd_mg_cm3/final.pt --table results/cohort/dataset_B.tsv --folds results/cohort/folds.json --fold $f --out results/models/main/fold$f/baseline_bn_predictions.tsv
  date
done
