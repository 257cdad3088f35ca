#!/usr/bin/env bash
# The main job on the shipped defaults: installs what it needs, builds quantal, then simulates the
# trained MST-Tiny (examples/mst/models) spike by spike on Fashion-MNIST test images with quantal,
# writes a SONATA spike trace, prints the energy report, plots rasters and rates, and checks the
# spike-level run against the time-stepped PyTorch reference. Outputs go to traces/demo/.
# Environment: MST_SAMPLES (default 100), MST_TICKS (default 64), MST_MODEL (default the ratio-0 model).
# The ratio-0.75 model (mst_r75.h5) is run too, for the energy saved by masking.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target quantal_cli
bin=build/apps/quantal
out=traces/demo
data=/usr/share/datasets/fashion-mnist
mkdir -p "$out"

model=${MST_MODEL:-examples/mst/models/mst_r0.h5}
samples=${MST_SAMPLES:-100}
ticks=${MST_TICKS:-64}
if [ ! -f "$model" ]; then
  echo "no exported MST model at $model: running the built-in demo network instead" >&2
  "$bin" demo --samples 16 --ticks 64 --mask 0.75 --release synapse --trace "$out/demo.h5" --force
  "$bin" inspect "$out/demo.h5" --plot "$out/demo"
  exit 0
fi

echo "== spike-level MST: $model, $samples test images x $ticks ticks"
"$bin" run --model "$model" --input "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" \
  --samples "$samples" --ticks "$ticks" --threads "$(nproc)" --trace "$out/mst.h5" --force --record-samples 4
echo "== trace summary and plots: $out/mst/"
"$bin" inspect "$out/mst.h5" --plot "$out/mst" --max-samples 5
masked=examples/mst/models/mst_r75.h5
if [ -f "$masked" ]; then
  echo "== MST-Tiny trained and run with Random Spike Masking at 75% (q, k and score spikes), no trace"
  "$bin" run --model "$masked" --input "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" \
    --samples "$samples" --ticks "$ticks" --threads "$(nproc)" | grep -E "^(run|accuracy|energy)"
fi
echo "== spike-level run against the time-stepped PyTorch reference (float64), 5 images x 32 ticks"
/usr/bin/python3 examples/mst/compare_engine.py --model "$model" --quantal "$bin" --samples 5 --ticks 32 | tail -n 3
