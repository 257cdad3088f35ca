#!/usr/bin/env bash
# Regenerates the numbers of docs/performance.md, "Propagation throughput", in one go:
# builds bench_propagate (Release), runs the quantal benchmarks on one core, exports the layered
# network and its input spikes, runs the same network with Brian2's C++ standalone device and
# prints both throughputs and their ratio.
#   bench/run_all.sh [BUILD_DIR]        (default: build-bench next to this repository's sources)
# Environment: REPS (default 5), TICKS (Brian2 comparison, default 1000).
set -euo pipefail

main() { # parsed whole before it runs: editing this file during a run is harmless

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$src/build-bench}"
reps="${REPS:-5}"
ticks="${TICKS:-1000}"
out="$build/bench-results"

mkdir -p "$out"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 &&
  make -C "$build" -j2 bench_propagate >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }

echo "== machine"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"

echo "== quantal vs Brian2 (same network, same input spikes, one thread)"
"$build/bench/bench_propagate" --export "$out/export" --export-ticks "$ticks" --reps "$reps"
/usr/bin/python3 "$src/bench/brian2_dense.py" "$out/export" --reps "$reps" --json "$out/brian2.json" \
  --quantal "$build/bench/bench_propagate" 2>&1 |
  grep -v -e 'Warning' -e 'if not hasattr(numpy' -e 'obj = getattr(themodule'

echo "== quantal propagation throughput (one thread)"
"$build/bench/bench_propagate" --reps "$reps" --json-out "$out/propagate.json" | tee "$out/propagate.txt"
echo "results in $out"
}
main "$@"
exit
