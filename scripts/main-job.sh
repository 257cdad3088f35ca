#!/usr/bin/env bash
# The main job on the shipped defaults: installs what it needs, builds quantal, then runs the most
# complete end-to-end pipeline the project has, writing into traces/demo/:
#   1. the built-in layered IF demo with and without random synaptic failure (energy report),
#      with a SONATA spike trace and raster/rate plots when the trace writer is built;
#   2. the shipped MST-Tiny model (examples/mst/models) through the time-stepped PyTorch
#      reference on Fashion-MNIST test images: accuracy per tick count, spikes, synaptic ops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target quantal_cli
bin=build/apps/quantal
out=traces/demo
mkdir -p "$out"

for mask in 0 0.75; do
  args=(demo --samples 16 --ticks 64 --mask "$mask" --release synapse --seed 1)
  if "$bin" demo --help | grep -q -- --trace; then args+=(--trace "$out/demo-mask$mask.h5"); fi
  echo "== quantal ${args[*]}"
  "$bin" "${args[@]}"
done
if "$bin" --help | grep -q inspect && [ -f "$out/demo-mask0.75.h5" ]; then
  echo "== quantal inspect $out/demo-mask0.75.h5 --plot $out"
  "$bin" inspect "$out/demo-mask0.75.h5" --plot "$out"
fi

samples=${MST_SAMPLES:-200}
for model in examples/mst/models/mst_r0.h5 examples/mst/models/mst_r0.75.h5; do
  [ -f "$model" ] || continue
  echo "== MST reference (time-stepped, PyTorch): $model on $samples test images"
  /usr/bin/python3 examples/mst/reference.py --model "$model" --samples "$samples" --ticks 64
done
echo "outputs in $out/"
