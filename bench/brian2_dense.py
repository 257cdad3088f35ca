#!/usr/bin/python3
"""The layered network of bench_propagate run by Brian2's C++ standalone device, one thread.

Reads what `bench_propagate --export DIR` wrote (weights, the input spike trains of one sample,
every layer's spikes, quantal's timing), builds the same network in Brian2, runs it, checks
that both simulators produce the same spikes and reports transmitted synaptic events per second
and the ratio quantal / Brian2.

Synapse release (--mask M, default 0.75; 0 skips it): the same network and input spikes with
per-synapse failures, Brian2 `on_pre='v_post += w*int(rand()<p)'` (p = 1 - M) against quantal's
`synapse` release at mask M (bench_propagate --time-layered T --mask M). The random streams differ,
so spike trains cannot be identical: the script compares rates per layer and attempted synaptic
events per second (presynaptic spikes x fan-out: what both simulators spend work on); Brian2's
transmitted count is not observable without changing its synapse code and is reported as p x
attempted (its expectation).

Compiler flags (--no-fast-math): Brian2 compiles its generated code with
`-O3 -ffast-math -fno-finite-math-only -march=native` by default; quantal keeps IEEE semantics
and builds with -O3 for the baseline x86-64 ISA. With --no-fast-math every Brian2 project is also
built with `-O3` only (no -ffast-math, no -march=native) and timed in the same run, so the flags'
worth is measured, not guessed.

Semantics. quantal propagates a spike through zero-delay projections within the same tick, layer
after layer (stages). Brian2's default schedule per time step is groups -> thresholds ->
synapses -> resets, so a zero-delay spike reaches the next layer's v in the same step but after
that layer's threshold was tested: every layer would add one step of latency. We put every
object in the 'thresholds' slot instead, ordered input, syn1, thr1, reset1, syn2, thr2, ...,
which gives exactly quantal's order: weights are multiples of 2^-12 and v0 = 0.5, theta = 1,
so all sums are exact in double and the spike trains must be identical.

Timing: Brian2's own measure of its main loop (results/last_run_info.txt, written by the
generated main: std::clock(), i.e. CPU time, without OpenMP; it excludes process start, array
loading and result writing), median over repeated runs of the compiled binaries; code generation
+ compilation (from clean) reported apart. quantal's time is the CPU time of Engine::run for the
same sample (bench_propagate --time-layered, run between Brian2's runs with --quantal so all
see the same machine load; configurations interleaved within each repetition).
Usage: brian2_dense.py EXPORT_DIR [--reps N] [--json OUT] [--workdir DIR] [--quantal BENCH_BINARY]
                       [--mask M] [--no-fast-math] [--default-schedule]
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


FAST_FLAGS = None  # Brian2's default extra_compile_args_gcc, read at start
PLAIN_FLAGS = ['-w', '-O3', '-std=c++11']


def build_project(b2, meta, weights, spikes, workdir, p, flags, default_schedule, first):
    """Builds (and runs once, to read the spikes) one Brian2 project: release p (1: none)."""
    from brian2 import ms
    if first:
        b2.set_device('cpp_standalone', directory=workdir, build_on_run=False)
    else:
        b2.device.reinit()
        b2.device.activate(directory=workdir, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0  # one thread, no OpenMP
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = ['-j2']
    b2.prefs.codegen.cpp.extra_compile_args_gcc = list(flags)
    b2.defaultclock.dt = 1 * ms
    b2.seed(1)

    ticks = meta['ticks']
    theta = float(meta['threshold'])
    sizes = meta['sizes']
    names = meta['populations']
    inp = spikes[names[0]]
    gen = b2.SpikeGeneratorGroup(sizes[0], inp[:, 1], inp[:, 0] * ms, name='input')
    gen.when, gen.order = 'thresholds', 0
    groups, synapses = [gen], []
    order = 1
    for l in range(1, len(sizes)):
        g = b2.NeuronGroup(sizes[l], 'dv/dt = 0/second : 1', threshold='v >= theta', reset='v -= theta',
                           method='euler', namespace={'theta': theta}, name=names[l])
        g.v = float(meta['v0'])
        if p < 1:
            s = b2.Synapses(groups[-1], g, 'w : 1', on_pre='v_post += w*int(rand()<p)', namespace={'p': p},
                            name=f'fc{l}')
        else:
            s = b2.Synapses(groups[-1], g, 'w : 1', on_pre='v_post += w', name=f'fc{l}')
        n_in, n_out = sizes[l - 1], sizes[l]
        s.connect(i=np.repeat(np.arange(n_in), n_out), j=np.tile(np.arange(n_out), n_in))
        s.w = weights[l - 1].T.ravel()  # synapse (i, j) has weight W[j, i]
        # Zero-delay layered propagation within one step: syn_l, threshold_l, reset_l in order.
        if not default_schedule:
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
    b2.device.run(workdir, with_output=False, run_args=[])
    trains = {}
    for name, mon in zip(names, monitors):
        t = np.round(np.asarray(mon.t / ms)).astype(np.int64)
        i = np.asarray(mon.i).astype(np.int64)
        order_ = np.lexsort((i, t))
        trains[name] = np.stack([t[order_], i[order_]], axis=1)
    return build_seconds, trains


def run_binary(workdir):
    """One run of a built project: (main-loop CPU seconds as the binary measured it, process CPU, wall)."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(['./main'], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(workdir, 'results', 'last_run_info.txt')) as f:
        loop = float(f.read().split()[0])
    return loop, c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('export')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--json', help='write the results here')
    ap.add_argument('--workdir', default=None, help='Brian2 project directories go here (default: EXPORT/brian2_project)')
    ap.add_argument('--quantal', help='bench_propagate binary: time quantal (--time-layered) between '
                    "Brian2's runs, so both see the same load (default: the timing in the export; "
                    'required for --mask)')
    ap.add_argument('--mask', type=float, default=0.75,
                    help="synapse-release comparison at this mask ratio (Brian2: w*int(rand()<1-mask)); 0: skip")
    ap.add_argument('--no-fast-math', action='store_true',
                    help='also build and time every Brian2 project without -ffast-math and -march=native')
    ap.add_argument('--default-schedule', action='store_true',
                    help="keep Brian2's default schedule (shows the one-step-per-layer latency)")
    args = ap.parse_args()
    if args.mask > 0 and not args.quantal:
        print('--mask needs --quantal (quantal is timed with synapse release between Brian2 runs); '
              'skipping the synapse-release comparison', file=sys.stderr)
        args.mask = 0.0

    meta, weights, spikes = load(args.export)
    workdir = args.workdir or os.path.join(os.path.abspath(args.export), 'brian2_project')
    ticks = meta['ticks']
    sizes = meta['sizes']
    names = meta['populations']

    import brian2 as b2
    # `v_post += w*int(rand()<p)` draws a random number inside an in-place update, which Brian2
    # flags as possibly order-dependent; the order of failures does not matter here.
    b2.BrianLogger.suppress_hierarchy('brian2.codegen.generators.base')
    fast_flags = list(b2.prefs.codegen.cpp.extra_compile_args_gcc)
    flag_sets = [('default', fast_flags)] + ([('no-fast-math', PLAIN_FLAGS)] if args.no_fast_math else [])
    releases = [('none', 1.0)] + ([('synapse', 1.0 - args.mask)] if args.mask > 0 else [])

    # Build every project first (compilation is slow and noisy), then time them interleaved.
    variants = []
    for release, p in releases:
        for flag_name, flags in flag_sets:
            d = workdir if (release, flag_name) == ('none', 'default') else f'{workdir}-{release}-{flag_name}'
            build_seconds, trains = build_project(b2, meta, weights, spikes, d, p, flags, args.default_schedule,
                                                  first=not variants)
            variants.append({'release': release, 'p': p, 'flags': flag_name, 'compile_args': list(flags),
                             'dir': d, 'build_seconds': build_seconds, 'trains': trains,
                             'loop_seconds': [], 'process_cpu_seconds': [], 'process_seconds': []})

    quantal_runs = {'none': [], 'synapse': []}
    for _ in range(args.reps):
        for v in variants:
            loop, cpu, wall = run_binary(v['dir'])
            v['loop_seconds'].append(loop)
            v['process_cpu_seconds'].append(cpu)
            v['process_seconds'].append(wall)
        if args.quantal:
            for release, p in releases:
                cmd = [args.quantal, '--time-layered', str(ticks)] + (['--mask', str(1.0 - p)] if p < 1 else [])
                timed = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                if p == 1:
                    assert timed['transmitted'] == meta['transmitted'], 'quantal timing run differs from the export'
                quantal_runs[release].append(timed)

    def attempted_of(counts):  # presynaptic spikes x fan-out, per projection, summed
        return sum(counts[l - 1] * sizes[l] for l in range(1, len(sizes)))

    result = {'ticks': ticks, 'sizes': sizes, 'brian2_version': b2.__version__, 'mask': args.mask,
              'synapses': int(sum(sizes[l - 1] * sizes[l] for l in range(1, len(sizes)))), 'variants': []}
    print(f"Brian2 {b2.__version__} cpp_standalone, 1 thread: network {'-'.join(map(str, sizes))} "
          f"({result['synapses']} synapses), {ticks} ticks, {args.reps} repetitions interleaved")
    identical = True
    quantal_eps = {}
    if args.quantal:
        for release, _ in releases:
            runs = quantal_runs[release]
            sec = statistics.median(r['seconds'] for r in runs)
            quantal_eps[release] = {'seconds': [r['seconds'] for r in runs],
                                    'wall_seconds': [r['wall_seconds'] for r in runs],
                                    'spikes': runs[0]['spikes'], 'attempted': runs[0]['attempted'],
                                    'transmitted': runs[0]['transmitted'], 'median_seconds': sec,
                                    'attempted_per_second': runs[0]['attempted'] / sec,
                                    'transmitted_per_second': runs[0]['transmitted'] / sec}
    else:
        sec = statistics.median(meta['run_seconds'])
        quantal_eps['none'] = {'seconds': meta['run_seconds'], 'wall_seconds': meta.get('run_wall_seconds', []),
                               'spikes': meta['spike_counts'], 'attempted': meta['transmitted'],
                               'transmitted': meta['transmitted'], 'median_seconds': sec,
                               'attempted_per_second': meta['transmitted'] / sec,
                               'transmitted_per_second': meta['transmitted'] / sec}
    result['quantal'] = quantal_eps

    for v in variants:
        counts = [int(len(v['trains'][n])) for n in names]
        attempted = attempted_of(counts)
        loop = statistics.median(v['loop_seconds'])
        q = quantal_eps[v['release']]
        entry = {k: v[k] for k in ('release', 'p', 'flags', 'compile_args', 'build_seconds', 'loop_seconds',
                                   'process_cpu_seconds', 'process_seconds')}
        entry.update({'spikes': counts, 'attempted': attempted, 'transmitted': attempted if v['p'] == 1 else None,
                      'transmitted_expected': attempted * v['p'], 'loop_seconds_median': loop,
                      'attempted_per_second': attempted / loop,
                      'quantal_over_brian2_attempted_per_second': q['attempted_per_second'] / (attempted / loop)})
        print(f"\n== release {v['release']}" + (f" (p = {v['p']:g})" if v['p'] < 1 else '') +
              f", Brian2 flags {v['flags']}: {' '.join(v['compile_args'])}")
        print(f"  code generation + compile: {v['build_seconds']:.1f} s")
        for k, name in enumerate(names):
            n = sizes[k]
            line = (f"  {name:8s} spikes quantal {q['spikes'][k]:8d}  brian2 {counts[k]:8d}  "
                    f"rate quantal {q['spikes'][k] / (n * ticks):.4f}  brian2 {counts[k] / (n * ticks):.4f} /tick")
            if v['p'] == 1:
                ref = spikes[name].astype(np.int64)
                if args.default_schedule:  # expect quantal's trains delayed by one step per layer
                    lag = names.index(name)
                    ref = ref[ref[:, 0] + lag < ticks] + np.array([lag, 0])
                ref = ref[np.lexsort((ref[:, 1], ref[:, 0]))]
                b = v['trains'][name]
                same = b.shape == ref.shape and bool(np.all(b == ref))
                identical &= same
                entry.setdefault('identical', []).append(same)
                line += '  ' + ('identical' if same else 'DIFFERENT')
            print(line)
        print(f"  Brian2 main loop: median {loop:.3f} s CPU (whole process {statistics.median(v['process_cpu_seconds']):.3f} s "
              f"CPU, {statistics.median(v['process_seconds']):.3f} s wall); quantal Engine::run: median "
              f"{q['median_seconds']:.3f} s CPU")
        if v['p'] == 1:
            print(f"  transmitted events: brian2 {attempted}, quantal {q['transmitted']}")
            print(f"  events/s: quantal {q['transmitted_per_second'] / 1e6:.1f} M, brian2 {attempted / loop / 1e6:.1f} M, "
                  f"ratio quantal/brian2 {entry['quantal_over_brian2_attempted_per_second']:.2f}")
        else:
            print(f"  attempted events: brian2 {attempted}, quantal {q['attempted']}; transmitted: quantal "
                  f"{q['transmitted']}, brian2 ~{attempted * v['p']:.0f} (p x attempted)")
            print(f"  attempted events/s: quantal {q['attempted_per_second'] / 1e6:.1f} M, brian2 "
                  f"{attempted / loop / 1e6:.1f} M, ratio quantal/brian2 "
                  f"{entry['quantal_over_brian2_attempted_per_second']:.2f}")
            print(f"  transmitted events/s: quantal {q['transmitted_per_second'] / 1e6:.1f} M, brian2 "
                  f"~{attempted * v['p'] / loop / 1e6:.1f} M, ratio "
                  f"{q['transmitted_per_second'] / (attempted * v['p'] / loop):.2f}")
        result['variants'].append(entry)

    # Side by side: every ratio from this one run.
    print('\n== summary (medians of CPU time, this run)')
    by = {(e['release'], e['flags']): e for e in result['variants']}
    for release, _ in releases:
        for flag_name, _ in flag_sets:
            e = by[(release, flag_name)]
            print(f"  {release:8s} Brian2 {flag_name:13s} {e['attempted_per_second'] / 1e6:8.1f} M attempted/s   "
                  f"quantal {quantal_eps[release]['attempted_per_second'] / 1e6:8.1f} M attempted/s   "
                  f"quantal/Brian2 {e['quantal_over_brian2_attempted_per_second']:.2f}")
        if len(flag_sets) == 2:
            a, b = by[(release, 'default')], by[(release, 'no-fast-math')]
            print(f"  {release:8s} Brian2 -ffast-math -march=native worth: x{b['loop_seconds_median'] / a['loop_seconds_median']:.2f} "
                  f"(main loop without / with)")
    if 'synapse' in quantal_eps:
        print(f"  quantal synapse mask {args.mask:g} vs none: "
              f"{quantal_eps['synapse']['attempted_per_second'] / quantal_eps['none']['attempted_per_second']:.2f} x "
              f"attempted/s")
    result['identical_spikes'] = identical
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0 if identical else 1


if __name__ == '__main__':
    sys.exit(main())
