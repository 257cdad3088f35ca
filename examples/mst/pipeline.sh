#!/bin/sh
# After the ratio-0 training: export it, fine-tune the masked models from it (one job at a time:
# the machine has 2 cores), export them, evaluate the three as quantised ANNs on the full test
# set, then as SNNs (T up to TICKS) on the first SAMPLES test images, then the ratio-0 SNN on the
# remaining images up to REST_TICKS (each evaluation writes partial results after every batch).
# Usage: sh examples/mst/pipeline.sh [FINETUNE_MINUTES] [TICKS] [SAMPLES] [REST_TICKS]
set -e
cd "$(dirname "$0")"
M=models
PY="nice -n 5 /usr/bin/python3"
FT=${1:-8}
TICKS=${2:-256}
SAMPLES=${3:-500}
REST_TICKS=${4:-128}
$PY export.py $M/mst_r0.pt $M/mst_r0.h5
for r in 50 75; do
  $PY train.py --out $M/mst_r$r --init $M/mst_r0.pt --mask-ratio 0.$r --lr 5e-4 --warmup 50 \
      --budget-min "$FT" > $M/mst_r$r.train.log 2>&1
  $PY export.py $M/mst_r$r.pt $M/mst_r$r.h5
done
for r in 0 50 75; do
  $PY reference.py --model $M/mst_r$r.h5 --ann --predictions --out $M/mst_r$r.ann.json > $M/mst_r$r.ann.log 2>&1
done
for r in 0 50 75; do
  $PY reference.py --model $M/mst_r$r.h5 --ticks "$TICKS" --samples "$SAMPLES" --predictions \
      --out $M/mst_r$r.snn.json > $M/mst_r$r.snn.log 2>&1
done
$PY reference.py --model $M/mst_r0.h5 --ticks "$REST_TICKS" --offset "$SAMPLES" --samples 10000 --predictions \
    --out $M/mst_r0.snn.rest.json > $M/mst_r0.snn.rest.log 2>&1
