"""Shared by the Brunel benchmark scripts: the model file, spike trains, timing a child process."""
import json
import os
import subprocess
import tempfile
import time

import h5py
import numpy as np

SPIKING = ('exc', 'inh')  # the LIF populations whose trains are compared


def read_model(path):
    """The generator's parameters and every projection as (source, target, weight) arrays."""
    with h5py.File(path, 'r') as f:
        params = json.loads(f.attrs['provenance'])
        projections = {}
        for name in f['projections'].attrs['order']:
            g = f['projections'][name]
            row_begin = g['row_begin'][()].astype(np.int64)
            target = g['target'][()].astype(np.int64)
            source = np.repeat(np.arange(len(row_begin) - 1), np.diff(row_begin))
            projections[name] = {'source_population': g.attrs['source'], 'target_population': g.attrs['target'],
                                 'source': source, 'target': target, 'weight': g['weight'][()].astype(np.float64),
                                 'delay': int(g.attrs['delay'])}
    return params, projections


def out_degree(projections, population, n):
    """Synapses leaving each neuron of `population`, over all its projections."""
    d = np.zeros(n, dtype=np.int64)
    for p in projections.values():
        if p['source_population'] == population:
            d += np.bincount(p['source'], minlength=n)
    return d


def read_trace(path, dt):
    """Spikes of a quantal SONATA trace: {population: int64 array (k, 2) of (tick, neuron)}, sorted."""
    spikes = {}
    with h5py.File(path, 'r') as f:
        for name, g in f['spikes'].items():
            ticks = np.round(g['timestamps'][()] / dt).astype(np.int64)
            spikes[name] = sort_trains(np.stack([ticks, g['node_ids'][()].astype(np.int64)], axis=1))
    return spikes


def sort_trains(a):
    a = np.asarray(a, dtype=np.int64).reshape(-1, 2)
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def first_difference(a, b):
    """None if the (tick, neuron) trains are identical, else a sentence on the first difference."""
    if a.shape == b.shape and np.array_equal(a, b):
        return None
    n = min(len(a), len(b))
    bad = np.nonzero(np.any(a[:n] != b[:n], axis=1))[0]
    k = int(bad[0]) if len(bad) else n
    tick = int(min(a[k, 0] if k < len(a) else 1 << 62, b[k, 0] if k < len(b) else 1 << 62))
    only_a = sorted(set(map(tuple, a[a[:, 0] == tick].tolist())) - set(map(tuple, b[b[:, 0] == tick].tolist())))
    only_b = sorted(set(map(tuple, b[b[:, 0] == tick].tolist())) - set(map(tuple, a[a[:, 0] == tick].tolist())))
    return (f'first difference at tick {tick} (spike #{k}): only in the first {[n for _, n in only_a][:5]}, '
            f'only in the second {[n for _, n in only_b][:5]}; counts {len(a)} vs {len(b)}')


def agreement(a, b):
    """Fraction of spikes common to both trains (same tick, same neuron), and the first differing tick."""
    sa = set(map(tuple, a.tolist()))
    sb = set(map(tuple, b.tolist()))
    common = len(sa & sb)
    diff = sa ^ sb
    if not sa and not sb:
        return 1.0, None  # both silent: they agree
    return common / max(len(sa), len(sb)), (min(t for t, _ in diff) if diff else None)


def events(spikes, projections, params, ticks):
    """Synaptic events delivered within [0, ticks): each spike of a source whose delivery tick is < ticks
    counts its out-degree (quantal's ledger counts exactly these as transmitted)."""
    total = 0
    for pop, n in params['sizes'].items():
        if pop not in spikes:
            continue
        s = spikes[pop]
        deg = out_degree(projections, pop, n)
        delivered = s[s[:, 0] + params['delay_ticks'] < ticks]
        total += int(deg[delivered[:, 1]].sum())
    return total


def run_timed(cmd, cwd=None, env=None):
    """Runs cmd; returns its CPU time (user + sys, from wait4), wall time and peak RSS.

    The peak RSS comes from /usr/bin/time, which forks the command from its own small process:
    Linux carries a process's high-water RSS across exec, so a child forked straight from this
    (large) Python process would report at least Python's RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile('r', suffix='.time') as rss:
        t0 = time.perf_counter()
        p = subprocess.Popen(['/usr/bin/time', '-f', '%M', '-o', rss.name, *cmd], cwd=cwd, env=env, stdout=out,
                             stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors='replace'), err.read().decode(errors='replace')
        maxrss_kb = int(rss.read().split()[-1]) if not p.returncode else 0
    if p.returncode:
        raise RuntimeError(f'{" ".join(map(str, cmd))} failed ({p.returncode}): {stderr.strip()[-2000:]}')
    return {'cpu': ru.ru_utime + ru.ru_stime, 'user': ru.ru_utime, 'sys': ru.ru_stime, 'wall': wall,
            'maxrss_mb': maxrss_kb / 1024.0, 'stdout': stdout, 'stderr': stderr}
