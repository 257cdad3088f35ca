#!/usr/bin/env bash
# The failure-probability study of docs/study.md on the shipped MST-Tiny models, in tiers that fit
# one small machine. Every tier is one `quantal sweep` (or two) and resumes after any stop: rerun
# this script with the same tier. Results go to $OUT (default study-results/).
#   examples/mst/study.sh tier1|tier1-compensate|tier2|tier3|tier3-combined [quantal binary]
set -euo pipefail
tier=${1:?usage: study.sh tier1|tier1-compensate|tier2|tier3|tier3-combined [quantal]}
Q=${2:-build/apps/quantal}
M=$(dirname "$0")/models
D=/usr/share/datasets/fashion-mnist
OUT=${OUT:-study-results}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
common=(--model "$M/mst_r0.h5" --model "$M/mst_r75.h5" --input "$D/t10k-images-idx3-ubyte.gz"
        --labels "$D/t10k-labels-idx1-ubyte.gz" --ticks 64 --observe 8,16,32,64 --seeds 1 --threads "$THREADS")
case "$tier" in
  # 2,000 paired images per configuration; every target set, both release modes, ratios 0 ... 0.9
  tier1) "$Q" sweep "${common[@]}" --samples 2000 --ratios 0,0.25,0.5,0.75,0.9 --release spike,synapse \
           --targets attention,linear,all --out "$OUT/tier1.h5" --csv "$OUT/tier1.csv" ;;
  # the same images, all targets, surviving transmissions scaled by 1/(1 - ratio)
  tier1-compensate) "$Q" sweep "${common[@]}" --samples 2000 --ratios 0,0.25,0.5,0.75,0.9 --release spike,synapse \
           --targets all --compensate --out "$OUT/tier1-compensate.h5" --csv "$OUT/tier1-compensate.csv" ;;
  # the whole test set for the MST setting (attention, per-spike masks) at 0.75, and at 0.25, nearest
  # to where tier 1 saw the unmasked-trained model break (linear/all are at chance by then)
  tier2) "$Q" sweep "${common[@]}" --samples 10000 --ratios 0,0.25,0.75 --release spike --targets attention \
           --out "$OUT/tier2.h5" --csv "$OUT/tier2.csv" ;;
  # per-layer sensitivity: every layer group masked alone at 0.75, per spike
  tier3) "$Q" sweep "${common[@]}" --samples 500 --ratios 0,0.75 --release spike --targets each \
           --out "$OUT/tier3.h5" --csv "$OUT/tier3.csv" ;;
  # the layer groups tier 3 found tolerant, masked together: stage 1's MLP inputs and the head
  # (tolerated by both models), and those plus every attention operator (tolerated by mst_r75)
  tier3-combined) mlp1=fc1_in@s1.b0+fc1_in@s1.b1+fc2_in@s1.b0+fc2_in@s1.b1+head@logits
           "$Q" sweep "${common[@]}" --samples 500 --ratios 0,0.75 --release spike --targets "$mlp1,$mlp1+attention" \
           --out "$OUT/tier3-combined.h5" --csv "$OUT/tier3-combined.csv" ;;
  *) echo "study.sh: unknown tier '$tier'" >&2; exit 2 ;;
esac
