#!/usr/bin/python3
"""The sparse recurrent (Brunel) benchmark: quantal vs Brian2 (C++ standalone, one thread, with its
default flags and with IEEE flags) vs NEURON, on the networks of generate.py, same drive spikes.

Per regime: generates the model file, runs `quantal run --model M --ticks T --dt DT --trace TR`
(the trace holds every population's spikes, the drive's included), replays the drive spikes in
Brian2 (brian2_brunel.py: compiled once per regime and flags, cached in WORKDIR) and NEURON
(neuron_brunel.py), checks the exc and inh spike trains (identity for Brian2, agreement for NEURON)
and prints one table.

Times are CPU seconds (user + sys; the machine is shared, wall time is printed beside):
- whole process: the child's own rusage (os.wait4), with its peak RSS;
- main loop: Brian2's own measure (std::clock around its loop); NEURON: process_time around
  pc.psolve; quantal: the process of the T-tick run minus that of a 1-tick run of the same
  command (loading, building, trace set-up), which needs nothing from the binary but `run`.
- events: synaptic events delivered within the run (spikes x out-degree, for deliveries before
  T), the same count for everyone; quantal's ledger (`transmitted`) must equal it.
Medians over --reps repetitions, the simulators interleaved within each repetition.

Usage: compare.py [--quantal build/apps/quantal] [--regimes A,B,C,D] [--ticks 10000] [--reps 3]
                  [--workdir DIR] [--neuron-ticks N | --no-neuron] [--no-brian2] [--json OUT]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import common  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def quantal_cmd(binary, model, ticks, dt, seed, trace):
    return [binary, 'run', '--model', model, '--ticks', str(ticks), '--dt', repr(dt), '--seed', str(seed),
            '--trace', trace, '--force']


def transmitted(trace):
    with h5py.File(trace, 'r') as f:
        return int(f['energy/total/projections/transmitted'][()].sum())


def visits(trace):
    """quantal's neuron updates (visits) over the run, from the trace's ledger."""
    with h5py.File(trace, 'r') as f:
        return int(f['energy/total/populations/updates'][()].sum())


def rates(spikes, params, ticks):
    return {n: len(spikes[n]) / (params['sizes'][n] * ticks * params['dt'] * 1e-3) for n in common.SPIKING}


def median(xs):
    return statistics.median(xs) if xs else float('nan')


def run_regime(regime, a, work):
    model = os.path.join(work, f'brunel_{regime}.h5')
    subprocess.run([sys.executable, os.path.join(here, 'generate.py'), model, '--regime', regime, *a.generator_args],
                   check=True, stdout=subprocess.DEVNULL)
    params, projections = common.read_model(model)
    dt, T = params['dt'], a.ticks
    trace, trace1 = os.path.join(work, f'trace_{regime}.h5'), os.path.join(work, f'trace1_{regime}.h5')
    res = {'regime': regime, 'params': params, 'ticks': T, 'quantal': {}, 'brian2': {}}

    log(f'== regime {regime}: quantal')
    qruns = [common.run_timed(quantal_cmd(a.quantal, model, T, dt, a.seed, trace))]
    q = common.read_trace(trace, dt)
    ev = common.events(q, projections, params, T)
    ledger = transmitted(trace)
    if ev != ledger:
        log(f'warning: events from the spikes ({ev}) differ from quantal\'s ledger ({ledger})')
    res.update(events=ev, quantal_ledger_transmitted=ledger, quantal_visits=visits(trace),
               spikes={n: int(len(q[n])) for n in (*common.SPIKING, 'drive')}, rates_quantal=rates(q, params, T))
    setup = []

    projects = {}
    if not a.no_brian2:
        import brian2_brunel
        for kind in ('default', 'ieee'):
            projects[kind] = brian2_brunel.ensure_project(model, q['drive'], T, kind, work, f'brunel_{regime}', log)
            res['brian2'][kind] = {'runs': [], 'flags': projects[kind][1]['flags'],
                                   'build_seconds': projects[kind][1]['build_seconds']}

    for rep in range(a.reps):
        log(f'   repetition {rep + 1}/{a.reps}')
        if rep:
            qruns.append(common.run_timed(quantal_cmd(a.quantal, model, T, dt, a.seed, trace)))
        setup.append(common.run_timed(quantal_cmd(a.quantal, model, 1, dt, a.seed, trace1)))
        for kind, (project, manifest) in projects.items():
            timing, spikes = brian2_brunel.run(project, manifest)
            r = res['brian2'][kind]
            r['runs'].append(timing)
            if rep == 0:
                r['identical'] = {n: common.first_difference(q[n], spikes[n]) or 'identical' for n in common.SPIKING}
                r['rates'] = rates(spikes, params, T)
                r['events'] = common.events({**spikes, 'drive': q['drive']}, projections, params, T)
    qr = res['quantal']
    qr['runs'] = [{k: v for k, v in r.items() if k not in ('stdout', 'stderr')} for r in qruns]
    qr['setup_runs'] = [{k: v for k, v in r.items() if k not in ('stdout', 'stderr')} for r in setup]
    qr['cpu'] = median([r['cpu'] for r in qruns])
    qr['wall'] = median([r['wall'] for r in qruns])
    qr['setup_cpu'] = median([r['cpu'] for r in setup])
    qr['loop_cpu'] = qr['cpu'] - qr['setup_cpu']
    qr['maxrss_mb'] = max(r['maxrss_mb'] for r in qruns)
    for kind, r in res['brian2'].items():
        for key in ('loop_cpu', 'cpu', 'wall'):
            r[key] = median([x[key] for x in r['runs']])
        r['maxrss_mb'] = max(x['maxrss_mb'] for x in r['runs'])

    if a.neuron_ticks:
        nt = min(a.neuron_ticks, T)
        log(f'== regime {regime}: NEURON, {nt} ticks')
        drive_file, out = os.path.join(work, f'drive_{regime}.npy'), os.path.join(work, f'neuron_{regime}.npz')
        np.save(drive_file, q['drive'][q['drive'][:, 0] < nt])
        t = common.run_timed([sys.executable, os.path.join(here, 'neuron_brunel.py'), model, drive_file, out,
                              '--ticks', str(nt)])
        info = json.loads(t['stdout'].strip().splitlines()[-1])
        n = dict(np.load(out))
        qn = {k: v[v[:, 0] < nt] for k, v in q.items()}
        agree = {}
        for k in common.SPIKING:
            frac, first = common.agreement(qn[k], n[k])
            agree[k] = {'common_fraction': frac, 'first_difference_tick': first}
        nev = common.events({**n, 'drive': qn['drive']}, projections, params, nt)
        res['neuron'] = {'ticks': nt, 'loop_cpu': info['loop_cpu'], 'setup_cpu': info['setup_cpu'],
                         'loop_wall': info['loop_wall'], 'cpu': t['cpu'], 'wall': t['wall'],
                         'maxrss_mb': t['maxrss_mb'], 'events': nev, 'rates': rates(n, params, nt),
                         'rates_quantal': rates(qn, params, nt), 'agreement': agree, 'version': info['neuron_version'],
                         'quantal_events': common.events(qn, projections, params, nt)}
    return res


def table(results):
    lines = ['| regime | simulator | main loop CPU (s) | whole process CPU (s) [wall] | events | M events/s (loop) '
             '| time ÷ quantal’s (loop) | rate exc / inh (Hz) | peak RSS (MB) | spikes vs quantal |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in results:
        qr = r['quantal']
        reg = f"{r['regime']} (θ = {r['params']['theta']:g} J, drive {r['params']['rate']:g} Hz)"
        rq = r['rates_quantal']
        lines.append(f"| {reg} | quantal | {qr['loop_cpu']:.2f} | {qr['cpu']:.2f} [{qr['wall']:.2f}] | {r['events']:.3g} "
                     f"| {r['events'] / qr['loop_cpu'] / 1e6:.0f} | 1 | {rq['exc']:.1f} / {rq['inh']:.1f} "
                     f"| {qr['maxrss_mb']:.0f} | – |")
        for kind, b in r['brian2'].items():
            same = all(v == 'identical' for v in b['identical'].values())
            lines.append(f"| | Brian2 ({kind} flags) | {b['loop_cpu']:.2f} | {b['cpu']:.2f} [{b['wall']:.2f}] "
                         f"| {b['events']:.3g} | {b['events'] / b['loop_cpu'] / 1e6:.0f} "
                         f"| {b['loop_cpu'] / qr['loop_cpu']:.2f} | {b['rates']['exc']:.1f} / {b['rates']['inh']:.1f} "
                         f"| {b['maxrss_mb']:.0f} | {'identical' if same else 'DIFFERENT'} |")
        if 'neuron' in r:
            n = r['neuron']
            scale = r['ticks'] / n['ticks']
            scaled = f" (scaled to {r['ticks']} ticks)" if scale != 1 else ''
            firsts = [x['first_difference_tick'] for x in n['agreement'].values() if x['first_difference_tick'] is not None]
            first = f'first difference at tick {min(firsts)}' if firsts else 'identical'
            ag = n['agreement']
            lines.append(f"| | NEURON {n['version']} ({n['ticks']} ticks) | {n['loop_cpu']:.2f} "
                         f"| {n['cpu']:.2f} [{n['wall']:.2f}] | {n['events']:.3g} | {n['events'] / n['loop_cpu'] / 1e6:.1f} "
                         f"| {n['loop_cpu'] * scale / qr['loop_cpu']:.1f}{scaled} "
                         f"| {n['rates']['exc']:.1f} / {n['rates']['inh']:.1f} (quantal "
                         f"{n['rates_quantal']['exc']:.1f} / {n['rates_quantal']['inh']:.1f}) | {n['maxrss_mb']:.0f} "
                         f"| {ag['exc']['common_fraction']:.0%} / {ag['inh']['common_fraction']:.0%} common, {first} |")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = os.path.dirname(os.path.dirname(here))
    ap.add_argument('--quantal', default=os.path.join(src, 'build', 'apps', 'quantal'), help='the quantal binary')
    ap.add_argument('--regimes', default='A,B,C,D', help="generate.py's regimes, comma-separated")
    ap.add_argument('--ticks', type=int, default=10000)
    ap.add_argument('--seed', type=int, default=1, help='quantal run seed (the drive spikes)')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--workdir', default=os.path.join(src, 'build-bench', 'bench-results', 'brunel'),
                    help='models, traces, cached Brian2 projects (default: the one bench/run_all.sh uses)')
    ap.add_argument('--neuron-ticks', type=int, default=2000, help='NEURON runs this many ticks (0: not at all)')
    ap.add_argument('--no-neuron', action='store_true')
    ap.add_argument('--no-brian2', action='store_true')
    ap.add_argument('--json', help='write all results here (default: WORKDIR/results.json)')
    ap.add_argument('generator_args', nargs='*', help='after --: passed to generate.py (e.g. -- --seed 2)')
    a = ap.parse_args()
    if a.no_neuron:
        a.neuron_ticks = 0
    a.quantal = os.path.abspath(a.quantal)
    work = os.path.abspath(a.workdir)
    os.makedirs(work, exist_ok=True)
    results = []
    for r in a.regimes.split(','):
        results.append(run_regime(r, a, work))
        with open(a.json or os.path.join(work, 'results.json'), 'w') as f:  # after each regime
            json.dump(results, f, indent=1, default=str)
        log(table(results[-1:]))
    print(table(results))
    ok = all(v == 'identical' for r in results for b in r['brian2'].values() for v in b['identical'].values())
    for r in results:
        for kind, b in r['brian2'].items():
            for n, v in b['identical'].items():
                if v != 'identical':
                    print(f"regime {r['regime']}, Brian2 {kind}, {n}: {v}")
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
