#!/usr/bin/python3
"""The Brunel network of a generate.py model file in NEURON (Debian python3-neuron), the
event-driven peer: one IntFire1 artificial cell per LIF neuron, one NetCon per synapse, and the
drive spikes quantal emitted replayed with a PatternStim (this NEURON build has no VecStim).

IntFire1 is NEURON's closest built-in model: m decays exactly, m *= exp(-(t - t0)/tau), each event
adds its weight, and the cell fires when m > 1, checked per *event*; it then ignores input for
`refrac` ms and resets m to 0. With refrac = 0 that is quantal's model with threshold 1 (weights
divided by theta), v_reset = 0 and `>` — except that quantal sums all input of a tick and tests
once, so where excitation and inhibition arrive in the same tick the two differ, and the trains
diverge after some time (rates agree).

Writes the spikes (tick, neuron) to OUT.npz and prints one JSON line: setup and main-loop CPU
seconds (time.process_time around pc.psolve), spikes, NetCons.
Usage: neuron_brunel.py MODEL.h5 DRIVE.npy OUT.npz --ticks T
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('drive', help='.npy (k, 2) int64 of (tick, neuron): the drive spikes')
    ap.add_argument('out')
    ap.add_argument('--ticks', type=int, required=True)
    a = ap.parse_args()

    c0 = time.process_time()
    params, projections = common.read_model(a.model)
    drive = np.load(a.drive)
    from neuron import h
    pc = h.ParallelContext()
    dt, theta = params['dt'], params['theta']
    sizes = params['sizes']
    first_gid = {'exc': 0, 'inh': sizes['exc'], 'drive': sizes['exc'] + sizes['inh']}
    cells = {}
    keep = []
    for name in common.SPIKING:
        cells[name] = []
        for k in range(sizes[name]):
            c = h.IntFire1()
            c.tau = params['tau_ms']
            c.refrac = 0
            gid = first_gid[name] + k
            pc.set_gid2node(gid, pc.id())
            nc = h.NetCon(c, None)
            pc.cell(gid, nc)
            keep.append(nc)
            cells[name].append(c)
    netcons = []
    for p in projections.values():
        src0 = first_gid[p['source_population']]
        tgt = cells[p['target_population']]
        delay = p['delay'] * dt
        for s, t, w in zip(p['source'].tolist(), p['target'].tolist(), (p['weight'] / theta).tolist()):
            nc = pc.gid_connect(src0 + s, tgt[t])
            nc.weight[0] = w
            nc.delay = delay
            netcons.append(nc)
    tvec, idvec = h.Vector(), h.Vector()
    pc.spike_record(-1, tvec, idvec)
    ps = h.PatternStim()
    pt, pg = h.Vector(drive[:, 0] * dt), h.Vector(drive[:, 1] + first_gid['drive'])
    ps.play(pt, pg)
    h.dt = dt
    pc.set_maxstep(10)
    h.finitialize(0)
    setup = time.process_time() - c0

    c0, w0 = time.process_time(), time.perf_counter()
    pc.psolve(a.ticks * dt)
    loop, wall = time.process_time() - c0, time.perf_counter() - w0

    t = np.round(np.array(tvec.to_python(), dtype=np.float64) / dt).astype(np.int64)  # (empty Vectors too)
    gid = np.array(idvec.to_python(), dtype=np.float64).astype(np.int64)
    out = {}
    for name in common.SPIKING:
        sel = (gid >= first_gid[name]) & (gid < first_gid[name] + sizes[name]) & (t < a.ticks)
        out[name] = common.sort_trains(np.stack([t[sel], gid[sel] - first_gid[name]], axis=1))
    np.savez(a.out, **out)
    print(json.dumps({'setup_cpu': setup, 'loop_cpu': loop, 'loop_wall': wall, 'netcons': len(netcons),
                      'spikes': {k: int(len(v)) for k, v in out.items()}, 'neuron_version': h.nrnversion(1).split('VERSION ')[-1].split()[0]}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
