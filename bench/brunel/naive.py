#!/usr/bin/python3
"""A naive time-stepped simulation (numpy) of a generate.py model file, driven by the drive spikes
of a quantal trace; checks that quantal's exc and inh spikes are identical to it.

Per tick t, every neuron: v <- alpha v + input[t] (the weights of spikes sent at t - delay, summed
exactly: they are integers), spike if v > theta, then v <- v_reset. For small networks
(the ctest runs 400 + 100 neurons, 2000 ticks); the full 5000-neuron network takes minutes.
Usage: naive.py MODEL.h5 TRACE.h5 --ticks T
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def simulate(params, projections, drive, ticks):
    sizes = params['sizes']
    offset = {'exc': 0, 'inh': sizes['exc']}
    n = sizes['exc'] + sizes['inh']
    delay = params['delay_ticks']
    alpha = math.exp(-1.0 / params['tau_ticks'])
    # fan-out per source population: CSR over its neurons into the concatenated exc+inh index
    fan = {}
    for pop in ('exc', 'inh', 'drive'):
        src, dst, w = [], [], []
        for p in projections.values():
            if p['source_population'] == pop:
                src.append(p['source'])
                dst.append(p['target'] + offset[p['target_population']])
                w.append(p['weight'])
        src, dst, w = np.concatenate(src), np.concatenate(dst), np.concatenate(w)
        order = np.argsort(src, kind='stable')
        begin = np.searchsorted(src[order], np.arange(sizes[pop] + 1))
        fan[pop] = (begin, dst[order], w[order])
    drive_at = np.split(drive[:, 1], np.searchsorted(drive[:, 0], np.arange(1, ticks)))
    ring = np.zeros((delay + 1, n))
    v = np.zeros(n)
    out = []

    def send(pop, neurons, t):
        begin, dst, w = fan[pop]
        idx = np.concatenate([np.arange(begin[k], begin[k + 1]) for k in neurons]) if len(neurons) else []
        if len(idx):
            np.add.at(ring[(t + delay) % (delay + 1)], dst[idx], w[idx])

    for t in range(ticks):
        slot = t % (delay + 1)
        v = alpha * v + ring[slot]
        ring[slot] = 0.0
        fired = np.nonzero(v > params['theta'])[0]
        v[fired] = params['v_reset']
        out.extend((t, j) for j in fired)
        send('exc', fired[fired < sizes['exc']], t)
        send('inh', fired[fired >= sizes['exc']] - sizes['exc'], t)
        send('drive', drive_at[t], t)
    out = np.array(out, dtype=np.int64).reshape(-1, 2)
    exc = out[out[:, 1] < sizes['exc']]
    inh = out[out[:, 1] >= sizes['exc']] - np.array([0, sizes['exc']])
    return {'exc': common.sort_trains(exc), 'inh': common.sort_trains(inh)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('trace')
    ap.add_argument('--ticks', type=int, required=True)
    a = ap.parse_args()
    params, projections = common.read_model(a.model)
    q = common.read_trace(a.trace, params['dt'])
    ref = simulate(params, projections, q['drive'], a.ticks)
    ok = True
    for name in common.SPIKING:
        d = common.first_difference(q[name], ref[name])
        ok &= d is None
        rate = len(ref[name]) / (params['sizes'][name] * a.ticks * params['dt'] * 1e-3)
        print(f'{name}: quantal {len(q[name])}, naive {len(ref[name])} spikes ({rate:.1f} Hz): {d or "identical"}')
    if not ok:
        return 1
    if sum(len(ref[n]) for n in common.SPIKING) == 0:
        print('naive.py: no spikes at all: the check would be vacuous')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
