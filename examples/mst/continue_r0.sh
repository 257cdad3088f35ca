#!/bin/sh
# Second training phase for the ratio-0 model (used when the machine's load left the first
# 55-minute phase short of epochs): keeps the phase-1 checkpoint and log as mst_r0.phase1.*,
# then continues from it with a fresh warm-up + cosine schedule at a lower learning rate.
# Usage: sh examples/mst/continue_r0.sh [MINUTES]
set -e
cd "$(dirname "$0")/models"
for f in pt train.json train.log; do cp "mst_r0.$f" "mst_r0.phase1.$f"; done
nice -n 5 /usr/bin/python3 ../train.py --out mst_r0 --init mst_r0.phase1.pt --mask-ratio 0 \
    --lr 5e-4 --warmup 50 --budget-min "${1:-15}" > mst_r0.train.log 2>&1
