#!/usr/bin/env bash
# Regenerates the numbers of docs/performance.md in one go: builds bench_propagate and quantal
# (Release), then each section, every peer measured side by side in the same run:
#   dense   the layered network: quantal vs Brian2 (release none and synapse at mask 0.75; Brian2
#           with and without -march=native -ffast-math), quantal's propagation throughput tables;
#   brunel  the sparse recurrent networks: quantal vs Brian2 (default and IEEE flags) vs NEURON;
#   mst     MST-Tiny spike by spike vs the time-stepped PyTorch reference (ratio 0 and masks on
#           every projection), and two threads vs one;
#   memory  peak memory of pending work (20 k biased IF neurons, silent / dense / sparse input).
#   bench/run_all.sh [BUILD_DIR]        (default: build-bench next to this repository's sources)
# Environment: REPS (default 5), TICKS (Brian2 comparison, default 1000), SECTIONS (default
# "dense brunel mst memory"), QUANTAL (the quantal binary the Brunel section times; default the one built
# here: point it at another build to measure another engine), NEURON_TICKS (default 10000).
set -euo pipefail

main() { # parsed whole before it runs: editing this file during a run is harmless

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$src/build-bench}"
reps="${REPS:-5}"
ticks="${TICKS:-1000}"
sections="${SECTIONS:-dense brunel mst memory}"
quantal="${QUANTAL:-$build/apps/quantal}"
neuron_ticks="${NEURON_TICKS:-10000}"
out="$build/bench-results"

mkdir -p "$out"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 &&
  make -C "$build" -j2 bench_propagate quantal_cli >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }

echo "== machine"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"

if [[ " $sections " == *" dense "* ]]; then
echo "== quantal vs Brian2 (same network, same input spikes, one thread)"
"$build/bench/bench_propagate" --export "$out/export" --export-ticks "$ticks" --reps "$reps"
/usr/bin/python3 "$src/bench/brian2_dense.py" "$out/export" --reps "$reps" --json "$out/brian2.json" \
  --quantal "$build/bench/bench_propagate" --mask 0.75 --no-fast-math 2>&1 |
  grep -v -e 'Warning' -e 'if not hasattr(numpy' -e 'obj = getattr(themodule'

echo "== quantal propagation throughput (one thread)"
"$build/bench/bench_propagate" --reps "$reps" --json-out "$out/propagate.json" | tee "$out/propagate.txt"
fi

if [[ " $sections " == *" brunel "* ]]; then
echo "== sparse recurrent network (Brunel): quantal vs Brian2 (default and IEEE flags) vs NEURON, one thread"
echo "quantal: $quantal"
/usr/bin/python3 "$src/bench/brunel/compare.py" --quantal "$quantal" --reps "$reps" --neuron-ticks "$neuron_ticks" \
  --workdir "$out/brunel" --json "$out/brunel.json" 2>&1 |
  grep -v -e 'Warning' -e 'if not hasattr(numpy' -e 'obj = getattr(themodule' -e 'No graphics will be displayed'
fi

if [[ " $sections " == *" mst "* ]]; then
echo "== MST-Tiny spike by spike: quantal vs the time-stepped PyTorch reference, one thread"
"$src/bench/mst_vs_reference.py" --quantal "$quantal" --reps "$reps" --json "$out/mst.json"
fi

if [[ " $sections " == *" memory "* ]]; then
echo "== peak memory of pending work"
"$src/bench/queue_memory.py" --quantal "$quantal" --reps "$reps" --json "$out/memory.json"
fi

echo "== all workloads"
/usr/bin/python3 "$src/bench/summary.py" "$out"
echo "results in $out"
}
main "$@"
exit
