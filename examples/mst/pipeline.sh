#!/bin/sh
# The MST-Tiny recipe as run for the shipped models, on a 2-core machine:
#   1. train the ratio-0 model from scratch (TRAIN_MIN minutes, both cores);
#   2. export it and evaluate it as the quantised ANN on the full test set;
#   3. two lanes, one core each:
#      a. the ratio-0 SNN on the full test set to T = 128, then to T = 256 on the first
#         LONG_SAMPLES images;
#      b. fine-tune the ratio-0.5 and 0.75 models from it with their ratio on (FT50_MIN and
#         FT75_MIN minutes, one thread), export them, evaluate them as ANNs, then their SNNs to
#         T = 128 on the first MASKED_SAMPLES images;
#   4. the masked models' SNNs to T = 256 on the first LONG_SAMPLES images.
# (Each evaluation is seeded and deterministic: the order in which they run does not matter.)
# Every evaluation writes partial results after each batch (FILE.json.partial).
# Usage: sh examples/mst/pipeline.sh [all|train|rest]
set -e
cd "$(dirname "$0")"
M=models
PY="/usr/bin/python3"
TRAIN_MIN=${TRAIN_MIN:-68}
FT50_MIN=${FT50_MIN:-12}
FT75_MIN=${FT75_MIN:-20}
MASKED_SAMPLES=${MASKED_SAMPLES:-3000}
LONG_SAMPLES=${LONG_SAMPLES:-500}

train_r0() {
  $PY train.py --out $M/mst_r0 --budget-min "$TRAIN_MIN" > $M/mst_r0.train.log 2>&1
}

ann() {   # ann RATIO THREADS
  $PY export.py $M/mst_r$1.pt $M/mst_r$1.h5
  $PY reference.py --model $M/mst_r$1.h5 --ann --predictions --threads "$2" \
      --out $M/mst_r$1.ann.json > $M/mst_r$1.ann.log 2>&1
}

snn() {   # snn RATIO TICKS SAMPLES SUFFIX
  $PY reference.py --model $M/mst_r$1.h5 --ticks "$2" --samples "$3" --threads 1 --predictions \
      --out $M/mst_r$1.snn$4.json > $M/mst_r$1.snn$4.log 2>&1
}

finetune() {   # finetune RATIO MINUTES
  $PY train.py --out $M/mst_r$1 --init $M/mst_r0.pt --mask-ratio 0.$1 --lr 5e-4 --warmup 50 \
      --threads 1 --budget-min "$2" > $M/mst_r$1.train.log 2>&1
  ann $1 1
}

lane_b() {
  finetune 50 "$FT50_MIN"
  finetune 75 "$FT75_MIN"
  for r in 75 50; do snn $r 128 "$MASKED_SAMPLES" ""; done
}

rest() {
  ann 0 2
  lane_b & b=$!
  snn 0 128 10000 ""
  snn 0 256 "$LONG_SAMPLES" -t256
  wait $b
  snn 50 256 "$LONG_SAMPLES" -t256 & a=$!
  snn 75 256 "$LONG_SAMPLES" -t256
  wait $a
  $PY results.py
}

case "${1:-all}" in
  train) train_r0 ;;
  rest) rest ;;
  all) train_r0; rest ;;
  *) echo "usage: pipeline.sh [all|train|rest]" >&2; exit 2 ;;
esac
