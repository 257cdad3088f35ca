#!/usr/bin/python3
"""Writes a Brunel-style sparse recurrent network as a quantal model file (docs/model-format.md).

Network (Brunel 2000, model A without refractoriness): N_E excitatory and N_I inhibitory LIF
neurons, each receiving a fixed in-degree of eps * N_E excitatory, eps * N_I inhibitory and
eps * N_X drive synapses (sources drawn without replacement, no autapses), all with the same delay;
the drive is N_X independent Bernoulli neurons (Poisson at `rate` Hz on the dt grid). Populations
`exc`, `inh` (LIF) and `drive` (bernoulli_source); projections `ee`, `ei`, `ie`, `ii`, `xe`, `xi`
(sparse, named source-letter target-letter).

Units: the potential is measured in units of the excitatory weight J, so every weight is an
integer (J = 1, inhibitory -g, drive J_ext) and every sum of inputs is exact in float32/float64:
simulators that sum a tick's inputs in any order get the same bits. The threshold is theta = 1/j
where j = J/theta is the regime's relative weight (0.005 -> theta = 200).

Per tick (quantal's LIF, v_leak = 0, no bias): v <- alpha v + sum(inputs), alpha = exp(-1/tau_ticks);
spike if v > theta (`>` like NEURON's IntFire1), then v <- v_reset.

Regimes (A and B are the issue's; --regime sets the defaults, the other options override them):
  A: j = 0.1/20 = 0.005 (theta = 200), drive 150 Hz
  B: j = 0.02 (theta = 50), drive 35 Hz
  C: j = 0.005, drive 90 Hz: the drive's mean stays below threshold, sparse recurrent activity (~1.3 Hz)
  D: j = 0.005, drive 20 Hz: the recurrent network is silent, only the drive's events (where an
     event-driven engine should win)
Other defaults: v_reset = 0 (IntFire1 resets to 0, so NEURON runs the same model), v0 = 0,
g = 5, J_ext = J, tau = 20 ms, dt = 0.1 ms, delay = 1.5 ms, eps = 0.1, seed 1.

Usage: generate.py OUT.h5 [--regime A|B|C|D] [--n-exc 4000 --n-inh 1000 --n-ext 1000] [--eps 0.1]
       [--theta-over-j 200] [--g 5] [--j-ext 1] [--rate 150] [--v-reset 0] [--tau-ms 20]
       [--delay-ms 1.5] [--dt 0.1] [--seed 1]
"""
import argparse
import json
import math
import sys

import h5py
import numpy as np

REGIMES = {'A': {'theta_over_j': 200.0, 'rate': 150.0}, 'B': {'theta_over_j': 50.0, 'rate': 35.0},
           'C': {'theta_over_j': 200.0, 'rate': 90.0}, 'D': {'theta_over_j': 200.0, 'rate': 20.0}}


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--regime', choices=sorted(REGIMES), default='A')
    ap.add_argument('--n-exc', type=int, default=4000)
    ap.add_argument('--n-inh', type=int, default=1000)
    ap.add_argument('--n-ext', type=int, default=1000)
    ap.add_argument('--eps', type=float, default=0.1, help='in-degree as a fraction of each source population')
    ap.add_argument('--theta-over-j', type=float, help='threshold in units of J (default: the regime\'s)')
    ap.add_argument('--g', type=float, default=5.0, help='inhibitory weight is -g J')
    ap.add_argument('--j-ext', type=float, default=1.0, help='drive weight in units of J')
    ap.add_argument('--rate', type=float, help='drive rate per neuron, Hz (default: the regime\'s)')
    ap.add_argument('--v-reset', type=float, default=0.0, help='reset potential in units of J')
    ap.add_argument('--tau-ms', type=float, default=20.0)
    ap.add_argument('--delay-ms', type=float, default=1.5)
    ap.add_argument('--dt', type=float, default=0.1, help='ms per tick')
    ap.add_argument('--seed', type=int, default=1, help='connectivity seed (the drive spikes use quantal --seed)')
    a = ap.parse_args(argv)
    r = REGIMES[a.regime]
    if a.theta_over_j is None:
        a.theta_over_j = r['theta_over_j']
    if a.rate is None:
        a.rate = r['rate']
    return a


def fixed_indegree(rng, n_source, n_target, k, exclude_self):
    """(source, target) pairs: every target draws k distinct sources (not itself if exclude_self)."""
    src = np.empty((n_target, k), dtype=np.int64)
    for t in range(n_target):
        if exclude_self:
            s = rng.choice(n_source - 1, size=k, replace=False)
            s[s >= t] += 1  # skip t itself
        else:
            s = rng.choice(n_source, size=k, replace=False)
        src[t] = s
    return src.ravel(), np.repeat(np.arange(n_target), k)


def csr(source, target, n_source):
    """Rows by source, targets ascending within a row."""
    order = np.lexsort((target, source))
    counts = np.bincount(source, minlength=n_source)
    row_begin = np.zeros(n_source + 1, dtype=np.uint64)
    row_begin[1:] = np.cumsum(counts)
    return row_begin, target[order].astype(np.uint32)


def write(a):
    rng = np.random.default_rng(a.seed)
    theta = float(a.theta_over_j)
    tau_ticks = a.tau_ms / a.dt
    delay = int(round(a.delay_ms / a.dt))
    if abs(delay * a.dt - a.delay_ms) > 1e-9 * a.delay_ms:
        sys.exit(f'generate.py: delay {a.delay_ms} ms is not a whole number of ticks of {a.dt} ms')
    sizes = {'exc': a.n_exc, 'inh': a.n_inh, 'drive': a.n_ext}
    indegree = {p: int(round(a.eps * n)) for p, n in sizes.items()}
    weight = {'exc': 1.0, 'inh': -a.g, 'drive': a.j_ext}
    for name, w in weight.items():
        if np.float32(w) != w:
            sys.exit(f'generate.py: weight {w} of {name} is not exact in float32')
    probability = a.rate * a.dt * 1e-3
    params = {k: v for k, v in vars(a).items() if k != 'out'}
    params.update(theta=theta, tau_ticks=tau_ticks, delay_ticks=delay, indegree=indegree, weights=weight,
                  probability=probability, sizes=sizes)

    with h5py.File(a.out, 'w') as f:
        f.attrs['format'] = 'quantal-model'
        f.attrs['format_version'] = np.int64(2)
        f.attrs['name'] = f'brunel-{a.regime}'
        f.attrs['producer'] = 'bench/brunel/generate.py'
        f.attrs['provenance'] = json.dumps(params)
        f.attrs['dt'] = float(a.dt)  # ms per tick: quantal run uses it without --dt
        f.attrs['time_unit'] = 'ms'
        pops = f.create_group('populations')
        for name in ('exc', 'inh'):
            g = pops.create_group(name)
            g.attrs['model'] = 'LIF'
            g.attrs['threshold'] = theta
            g.attrs['comparison'] = '>'
            g.attrs['reset'] = 'value'
            g.attrs['v_reset'] = float(a.v_reset)
            g.attrs['v0'] = 0.0
            g.attrs['v_leak'] = 0.0
            g.attrs['tau_ticks'] = float(tau_ticks)
            g.create_dataset('shape', data=np.array([sizes[name]], dtype=np.int64))
        g = pops.create_group('drive')
        g.attrs['model'] = 'bernoulli_source'
        g.create_dataset('shape', data=np.array([a.n_ext], dtype=np.int64))
        g.create_dataset('probability', data=np.array([probability], dtype=np.float64))
        pops.attrs['order'] = ['drive', 'exc', 'inh']

        projs = f.create_group('projections')
        order = []
        for src in ('exc', 'inh', 'drive'):
            for dst in ('exc', 'inh'):
                name = src[0].replace('d', 'x') + dst[0]
                s, t = fixed_indegree(rng, sizes[src], sizes[dst], indegree[src], exclude_self=src == dst)
                row_begin, target = csr(s, t, sizes[src])
                g = projs.create_group(name)
                g.attrs['kind'] = 'sparse'
                g.attrs['source'] = src
                g.attrs['target'] = dst
                g.attrs['delay'] = np.int64(delay)
                g.create_dataset('row_begin', data=row_begin)
                g.create_dataset('target', data=target)
                g.create_dataset('weight', data=np.full(len(target), weight[src], dtype=np.float32))
                order.append(name)
        projs.attrs['order'] = order
    return params


def main(argv=None):
    a = parse(argv)
    p = write(a)
    syn = sum(p['indegree'][s] * p['sizes'][t] for s in ('exc', 'inh', 'drive') for t in ('exc', 'inh'))
    print(f"generate.py: {a.out}: regime {a.regime}, theta {p['theta']:g} J, drive {a.rate:g} Hz "
          f"(p = {p['probability']:g}/tick), {syn} synapses, delay {p['delay_ticks']} ticks")
    return 0


if __name__ == '__main__':
    sys.exit(main())
