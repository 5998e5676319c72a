#!/bin/bash
# usage: fold.sh NAME FOLD CONFIG_JSON [stage2-only]
set -e
FOLDS=${FOLDS:-results/cohort/folds.json}
name=$1; fold=$2; cfg=$3
cd /work/learn
export PYTHONPATH=/work/main/src OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
source /work/main/.venv/bin/activate
out=/tmp/exp/$name/fold$fold
mkdir -p $out
factor=$(python -c "import json;print(json.loads('$cfg').get('factor',1))")
python -m models train --stage 1 --table results/cohort/dataset_A.tsv --folds $FOLDS --fold $fold --config "$cfg" --out-dir $out/stage1 --out-history $out/h1.json --quiet
python -m models train --stage 2 --table results/cohort/dataset_B.tsv --folds $FOLDS --fold $fold --init $out/stage1/final.pt --config "$cfg" --out-dir $out/stage2 --out-history $out/h2.json --quiet
python -m models predict-fold --model $out/stage2/final.pt --table results/cohort/dataset_B.tsv --folds $FOLDS --fold $fold --factor $factor --out-predictions $out/pred.tsv --out-calibration $out/cal.json --out-intensities $out/int.tsv
