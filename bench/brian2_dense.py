#!/usr/bin/python3
"""The layered network of bench_propagate run by Brian2's C++ standalone device, one thread.

Reads what `bench_propagate --export DIR` wrote (weights, the input spike trains of one sample,
every layer's spikes, quantal's timing), builds the same network in Brian2, runs it, checks
that both simulators produce the same spikes and reports transmitted synaptic events per second
and the ratio quantal / Brian2.

Semantics. quantal propagates a spike through zero-delay projections within the same tick, layer
after layer (stages). Brian2's default schedule per time step is groups -> thresholds ->
synapses -> resets, so a zero-delay spike reaches the next layer's v in the same step but after
that layer's threshold was tested: every layer would add one step of latency. We put every
object in the 'thresholds' slot instead, ordered input, syn1, thr1, reset1, syn2, thr2, ...,
which gives exactly quantal's order: weights are multiples of 2^-12 and v0 = 0.5, theta = 1,
so all sums are exact in double and the spike trains must be identical.

Timing: Brian2's own measure of its main loop (Network::_last_run_time: std::clock(), i.e. CPU
time, without OpenMP; it excludes process start, array loading and result writing), median over
repeated runs of the compiled binary; code generation + compilation (from clean) reported apart.
quantal's time is the CPU time of Engine::run for the same sample (bench_propagate
--time-layered, run between Brian2's runs with --quantal so both see the same machine load).
Usage: brian2_dense.py EXPORT_DIR [--reps N] [--json OUT] [--workdir DIR] [--quantal BENCH_BINARY]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def load(export):
    with open(os.path.join(export, 'network.json')) as f:
        meta = json.load(f)
    sizes = meta['sizes']
    weights = []
    for l in range(1, len(sizes)):
        w = np.fromfile(os.path.join(export, f'weight{l}.f32'), dtype='<f4')
        weights.append(w.astype(np.float64).reshape(sizes[l], sizes[l - 1]))  # (target, source)
    spikes = {}
    for name in meta['populations']:
        a = np.fromfile(os.path.join(export, f'spikes_{name}.i32'), dtype='<i4').reshape(-1, 2)
        spikes[name] = a  # columns: tick, neuron
    return meta, weights, spikes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('export')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--json', help='write the results here')
    ap.add_argument('--workdir', default=None, help='Brian2 project directory (default: EXPORT/brian2_project)')
    ap.add_argument('--quantal', help='bench_propagate binary: time quantal (--time-layered) between '
                    "Brian2's runs, so both see the same load (default: the timing in the export)")
    ap.add_argument('--default-schedule', action='store_true',
                    help="keep Brian2's default schedule (shows the one-step-per-layer latency)")
    args = ap.parse_args()

    meta, weights, spikes = load(args.export)
    workdir = args.workdir or os.path.join(os.path.abspath(args.export), 'brian2_project')

    import brian2 as b2
    from brian2 import ms, second
    b2.set_device('cpp_standalone', directory=workdir, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0  # one thread, no OpenMP
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = ['-j2']
    b2.defaultclock.dt = 1 * ms

    ticks = meta['ticks']
    theta = float(meta['threshold'])
    sizes = meta['sizes']
    names = meta['populations']

    inp = spikes[names[0]]
    gen = b2.SpikeGeneratorGroup(sizes[0], inp[:, 1], inp[:, 0] * ms, name='input')
    gen.when, gen.order = 'thresholds', 0
    groups, synapses, monitors = [gen], [], []
    order = 1
    for l in range(1, len(sizes)):
        g = b2.NeuronGroup(sizes[l], 'dv/dt = 0/second : 1', threshold='v >= theta', reset='v -= theta',
                           method='euler', namespace={'theta': theta}, name=names[l])
        g.v = float(meta['v0'])
        s = b2.Synapses(groups[-1], g, 'w : 1', on_pre='v_post += w', name=f'fc{l}')
        n_in, n_out = sizes[l - 1], sizes[l]
        s.connect(i=np.repeat(np.arange(n_in), n_out), j=np.tile(np.arange(n_out), n_in))
        s.w = weights[l - 1].T.ravel()  # synapse (i, j) has weight W[j, i]
        # Zero-delay layered propagation within one step: syn_l, threshold_l, reset_l in order.
        if args.default_schedule:
            groups.append(g)
            synapses.append(s)
            continue
        s.pre.when, s.pre.order = 'thresholds', order
        g.thresholder['spike'].when, g.thresholder['spike'].order = 'thresholds', order + 1
        g.resetter['spike'].when, g.resetter['spike'].order = 'thresholds', order + 2
        order += 3
        groups.append(g)
        synapses.append(s)
    monitors = [b2.SpikeMonitor(g, name=f'mon_{g.name}') for g in groups]
    net = b2.Network(groups, synapses, monitors)
    net.run(ticks * ms)

    t0 = time.perf_counter()
    b2.device.build(directory=workdir, compile=True, run=False, with_output=False, clean=True)
    build_seconds = time.perf_counter() - t0

    loop_seconds, process_seconds, process_cpu_seconds = [], [], []
    quantal_seconds = list(meta['run_seconds'])
    quantal_wall = list(meta.get('run_wall_seconds', []))
    if args.quantal:
        quantal_seconds, quantal_wall = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b2.device.run(workdir, with_output=False, run_args=[])
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        process_seconds.append(time.perf_counter() - t0)
        process_cpu_seconds.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        loop_seconds.append(b2.device._last_run_time)  # std::clock(): CPU time of the main loop
        if args.quantal:
            out = subprocess.run([args.quantal, '--time-layered', str(ticks)], check=True, capture_output=True,
                                 text=True).stdout
            timed = json.loads(out)
            assert timed['transmitted'] == meta['transmitted'], 'quantal timing run differs from the export'
            quantal_seconds.append(timed['seconds'])
            quantal_wall.append(timed['wall_seconds'])

    # Spikes: identical trains expected.
    counts, identical = [], True
    for name, mon in zip(names, monitors):
        ticks_b = np.round(np.asarray(mon.t / ms)).astype(np.int64)
        ours = np.lexsort((np.asarray(mon.i), ticks_b))
        b = np.stack([ticks_b[ours], np.asarray(mon.i)[ours]], axis=1)
        q = spikes[name].astype(np.int64)
        if args.default_schedule:  # expect quantal's trains delayed by one step per layer
            lag = names.index(name)
            q = q[q[:, 0] + lag < ticks] + np.array([lag, 0])
        q = q[np.lexsort((q[:, 1], q[:, 0]))]
        same = b.shape == q.shape and bool(np.all(b == q))
        identical &= same
        counts.append({'population': name, 'quantal': int(len(q)), 'brian2': int(len(b)), 'identical': same,
                       'rate_quantal': len(q) / (sizes[names.index(name)] * ticks),
                       'rate_brian2': len(b) / (sizes[names.index(name)] * ticks)})

    # Transmitted events: every spike of layer l-1 reaches all sizes[l] targets (no release failures).
    transmitted = sum(counts[l - 1]['brian2'] * sizes[l] for l in range(1, len(sizes)))
    loop = statistics.median(loop_seconds)
    brian_eps = transmitted / loop
    quantal_eps = meta['transmitted'] / statistics.median(quantal_seconds)
    result = {
        'ticks': ticks, 'sizes': sizes, 'synapses': int(sum(sizes[l - 1] * sizes[l] for l in range(1, len(sizes)))),
        'spikes': counts, 'identical_spikes': identical,
        'transmitted_brian2': transmitted, 'transmitted_quantal': meta['transmitted'],
        'brian2_build_seconds': build_seconds, 'brian2_loop_seconds': loop_seconds,
        'brian2_process_seconds': process_seconds, 'brian2_process_cpu_seconds': process_cpu_seconds, 'brian2_events_per_second': brian_eps,
        'quantal_run_seconds': quantal_seconds, 'quantal_run_wall_seconds': quantal_wall, 'quantal_events_per_second': quantal_eps,
        'ratio_quantal_over_brian2': quantal_eps / brian_eps,
        'brian2_version': b2.__version__,
        'brian2_compile_args': list(b2.prefs.codegen.cpp.extra_compile_args_gcc),
    }
    print(f"Brian2 {b2.__version__} cpp_standalone, 1 thread: network {'-'.join(map(str, sizes))} "
          f"({result['synapses']} synapses), {ticks} ticks")
    for c in counts:
        print(f"  {c['population']:8s} spikes quantal {c['quantal']:8d}  brian2 {c['brian2']:8d}  "
              f"rate {c['rate_quantal']:.4f}/tick  {'identical' if c['identical'] else 'DIFFERENT'}"
          f"{' (quantal delayed by one step per layer)' if args.default_schedule else ''}")
    print(f"  code generation + compile: {build_seconds:.1f} s")
    print(f"  Brian2 main loop: median {loop:.3f} s CPU of {len(loop_seconds)} runs (whole process median "
          f"{statistics.median(process_cpu_seconds):.3f} s CPU, {statistics.median(process_seconds):.3f} s wall)")
    print(f"  quantal Engine::run: median {statistics.median(quantal_seconds):.3f} s CPU of {len(quantal_seconds)} runs"
          f" ({statistics.median(quantal_wall) if quantal_wall else float('nan'):.3f} s wall)"
          f"{', interleaved with Brian2' + chr(39) + 's' if args.quantal else ''}")
    print(f"  transmitted events: brian2 {transmitted}, quantal {meta['transmitted']}")
    print(f"  events/s: quantal {quantal_eps / 1e6:.1f} M, brian2 {brian_eps / 1e6:.1f} M, "
          f"ratio quantal/brian2 {quantal_eps / brian_eps:.2f}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0 if identical else 1


if __name__ == '__main__':
    sys.exit(main())
