#!/usr/bin/python3
"""Peak memory of pending work (issue 8, target 4): does it follow the pending events or the
reschedules?

N biased IF neurons (bias 0.003, threshold 1, v0 0.5: each would cross after ~170 ticks of drift
alone) are driven one-to-one by N Bernoulli sources, so every input moves every driven neuron's
predicted crossing. Three inputs, each a model file run by `quantal run --ticks T`:
  silent  probability 0      nothing is ever rescheduled (the baseline)
  dense   probability 1      every neuron gets input every tick (the sweep path)
  sparse  probability 0.02   ~2 % of the neurons per tick (the lazy path: predictions rescheduled)
Peak RSS of the whole process (/usr/bin/time) minus the silent run's, per neuron. Target: <= 64
bytes per neuron (before the tick calendar: ~13 KB per neuron for the dense input).

    bench/queue_memory.py [--quantal build/apps/quantal] [--neurons 20000] [--ticks 2000] [--reps 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

import h5py
import numpy as np


def write_model(path, n, probability):
    with h5py.File(path, 'w') as f:
        f.attrs['format'] = 'quantal-model'
        f.attrs['format_version'] = np.int64(2)
        f.attrs['name'] = f'queue-memory-p{probability}'
        f.attrs['producer'] = 'bench/queue_memory.py'
        f.attrs['provenance'] = ''
        pops = f.create_group('populations')
        g = pops.create_group('drive')
        g.attrs['model'] = 'bernoulli_source'
        g.create_dataset('shape', data=np.array([n], dtype=np.int64))
        g.create_dataset('probability', data=np.array([probability], dtype=np.float64))
        g = pops.create_group('neurons')
        g.attrs['model'] = 'IF'
        g.attrs['threshold'] = 1.0
        g.attrs['comparison'] = '>='
        g.attrs['reset'] = 'subtract'
        g.attrs['v0'] = 0.5
        g.create_dataset('shape', data=np.array([n], dtype=np.int64))
        g.create_dataset('bias', data=np.array([0.003], dtype=np.float64))
        pops.attrs['order'] = ['drive', 'neurons']
        projs = f.create_group('projections')
        g = projs.create_group('drive')
        g.attrs['kind'] = 'one_to_one'
        g.attrs['source'] = 'drive'
        g.attrs['target'] = 'neurons'
        g.create_dataset('weight', data=np.array([0.01], dtype=np.float32))
        projs.attrs['order'] = ['drive']


def peak_kb(quantal, model, ticks):
    r = subprocess.run(['/usr/bin/time', '-f', '%M %U %S', quantal, 'run', '--model', model, '--ticks', str(ticks)],
                       capture_output=True, text=True, check=True)
    kb, user, sys_ = r.stderr.strip().splitlines()[-1].split()
    return int(kb), float(user) + float(sys_)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quantal', default=os.environ.get('QUANTAL_BINARY', 'build/apps/quantal'))
    ap.add_argument('--neurons', type=int, default=20000)
    ap.add_argument('--ticks', type=int, default=2000)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--json', help='also write the table here')
    a = ap.parse_args()
    inputs = {'silent': 0.0, 'dense': 1.0, 'sparse': 0.02}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for name, p in inputs.items():
            models[name] = os.path.join(tmp, f'{name}.h5')
            write_model(models[name], a.neurons, p)
        runs = {name: [] for name in inputs}
        for _ in range(a.reps):
            for name in inputs:
                runs[name].append(peak_kb(a.quantal, models[name], a.ticks))
    silent = statistics.median(kb for kb, _ in runs['silent'])
    print(f'{a.neurons} biased IF neurons, {a.ticks} ticks, medians of {a.reps} runs; quantal {a.quantal}')
    print('| input | peak RSS | minus silent | bytes per neuron | CPU |')
    print('| --- | --- | --- | --- | --- |')
    table = {}
    for name in inputs:
        kb = statistics.median(k for k, _ in runs[name])
        cpu = statistics.median(c for _, c in runs[name])
        extra = (kb - silent) * 1024
        table[name] = {'probability': inputs[name], 'peak_mb': kb / 1024, 'bytes_per_neuron': extra / a.neurons, 'cpu': cpu}
        print(f'| {name} (p = {inputs[name]}) | {kb / 1024:.1f} MB | {extra / 2**20:+.2f} MB | {extra / a.neurons:+.1f} | {cpu:.2f} s |')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'neurons': a.neurons, 'ticks': a.ticks, 'inputs': table}, f, indent=1)


if __name__ == '__main__':
    main()
