#!/usr/bin/env bash
# Regenerates the numbers of docs/performance.md, "Propagation throughput" and "Sparse recurrent
# network (Brunel)", in one go: builds bench_propagate and quantal (Release), runs the quantal
# benchmarks on one core, exports the layered network and its input spikes, runs the same network
# with Brian2's C++ standalone device and prints both throughputs and their ratio; then the Brunel
# networks in quantal, Brian2 (default and IEEE flags) and NEURON (bench/brunel/compare.py).
#   bench/run_all.sh [BUILD_DIR]        (default: build-bench next to this repository's sources)
# Environment: REPS (default 5), TICKS (Brian2 comparison, default 1000), SECTIONS (default
# "dense brunel"), QUANTAL (the quantal binary the Brunel section times; default the one built
# here: point it at another build to measure another engine), NEURON_TICKS (default 10000).
set -euo pipefail

main() { # parsed whole before it runs: editing this file during a run is harmless

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$src/build-bench}"
reps="${REPS:-5}"
ticks="${TICKS:-1000}"
sections="${SECTIONS:-dense brunel}"
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
  --quantal "$build/bench/bench_propagate" 2>&1 |
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
echo "results in $out"
}
main "$@"
exit
