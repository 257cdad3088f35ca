#!/usr/bin/python3
"""The Brunel network of a generate.py model file in Brian2's C++ standalone device, one thread,
driven by the drive spikes quantal emitted (read from a quantal trace) via a SpikeGeneratorGroup.

Arithmetic, identical to quantal's LIF per tick with v_leak = 0 and no bias
(v_leak + alpha (v - v_leak) + drive + input = alpha v + input, bit for bit):
  - each synapse adds its weight into an accumulator `inp` of its target (weights are integers,
    so the sum is exact in any order: quantal's "sum the tick's inputs, then add"),
  - a run_regularly operation in the `groups` slot does `v = alpha*v + inp; inp = 0` with
    alpha = exp(-1/tau_ticks) computed in Python (glibc's exp, as quantal's std::exp),
  - threshold `v > theta`, reset `v = v_reset`.
Schedule: Brian2 delivers a spike in the `synapses` slot, after that step's state update, so a
Brian2 delay of d - 1 steps makes the input count in the state update of step t + d, which is
where quantal integrates a spike of tick t sent with delay d.

The compiled project is cached: DIR/<tag>/ holds it with a key (hash of the model file, the
drive spikes, the ticks, the compiler flags and the source of build()); when the key matches, only the
binary is run. A run reports the main loop's CPU time (Brian2's own std::clock() measure,
results/last_run_info.txt), the whole process's CPU and wall time and peak RSS, and the spikes.

Flags: `default` is Brian2's own (-O3 -ffast-math -fno-finite-math-only -march=native);
`ieee` drops -ffast-math, -fno-finite-math-only and -march=native (IEEE semantics, no FMA
contraction: -std=c++11 is ISO mode, where GCC does not contract a*b+c).
"""
import hashlib
import inspect
import json
import math
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

FAST = ('-ffast-math', '-fno-finite-math-only', '-march=native')


_brian2_default_flags = []  # Brian2's own, read once: build() changes the preference


def compile_flags(kind):
    import brian2
    if not _brian2_default_flags:
        _brian2_default_flags.extend(brian2.prefs.codegen.cpp.extra_compile_args_gcc)
    default = list(_brian2_default_flags)
    if kind == 'default':
        return default
    if kind == 'ieee':
        return [f for f in default if f not in FAST]
    raise ValueError(kind)


def cache_key(model, drive, ticks, flags):
    h = hashlib.sha256()
    with open(model, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    h.update(np.ascontiguousarray(drive, dtype=np.int64).tobytes())
    h.update(json.dumps([int(ticks), flags]).encode())
    h.update(inspect.getsource(build).encode())  # what the project is generated from
    return h.hexdigest()


def build(model, drive, ticks, flags, project, make_jobs=2):
    """Generates and compiles the project; writes DIR/manifest.json (result files of the monitors)."""
    import brian2 as b2
    from brian2 import ms
    params, projections = common.read_model(model)
    dt = params['dt']
    if os.path.isdir(project):
        shutil.rmtree(project)
    b2.device.reinit()
    b2.device.activate()
    b2.set_device('cpp_standalone', directory=project, build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = [f'-j{make_jobs}']
    b2.prefs.codegen.cpp.extra_compile_args_gcc = flags
    b2.defaultclock.dt = dt * ms

    alpha = math.exp(-1.0 / params['tau_ticks'])
    ns = {'alpha': alpha, 'theta': params['theta'], 'v_reset': params['v_reset']}
    groups = {}
    for name in common.SPIKING:
        g = b2.NeuronGroup(params['sizes'][name], 'v : 1\ninp : 1', threshold='v > theta', reset='v = v_reset',
                           namespace=ns, name=name)
        g.v = 0.0
        g.run_regularly('v = alpha*v + inp\ninp = 0', when='groups', name=f'{name}_lif')
        groups[name] = g
    # drive spikes: (tick, neuron); Brian2 bins times to steps by rounding
    groups['drive'] = b2.SpikeGeneratorGroup(params['sizes']['drive'], drive[:, 1], drive[:, 0] * dt * ms,
                                             name='drive')
    synapses = []
    for name, p in projections.items():
        s = b2.Synapses(groups[p['source_population']], groups[p['target_population']], 'w : 1 (constant)',
                        on_pre='inp_post += w', delay=(p['delay'] - 1) * dt * ms, name=name)
        s.connect(i=p['source'], j=p['target'])
        s.w = p['weight']
        synapses.append(s)
    monitors = {name: b2.SpikeMonitor(groups[name], name=f'mon_{name}') for name in common.SPIKING}
    net = b2.Network(*groups.values(), *synapses, *monitors.values())
    net.run(ticks * dt * ms)
    t0 = time.perf_counter()
    b2.device.build(directory=project, compile=True, run=False, with_output=False, clean=True)
    seconds = time.perf_counter() - t0
    manifest = {'monitors': {name: {'i': b2.device.get_array_filename(m.variables['i']),
                                    't': b2.device.get_array_filename(m.variables['t'])}
                             for name, m in monitors.items()},
                'dt': dt, 'time_unit': 'monitor times in seconds', 'ticks': int(ticks), 'flags': flags, 'build_seconds': seconds,
                'brian2_version': b2.__version__}
    with open(os.path.join(project, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def ensure_project(model, drive, ticks, kind, workdir, tag, log=print):
    """The compiled project for (model, drive spikes, ticks, flags), built only if not cached."""
    flags = compile_flags(kind)
    key = cache_key(model, drive, ticks, flags)
    project = os.path.join(workdir, f'{tag}-{kind}')
    keyfile = os.path.join(project, 'bench_key.txt')
    if os.path.isfile(keyfile) and open(keyfile).read() == key and os.path.isfile(os.path.join(project, 'main')):
        log(f'brian2: cached project {project}')
        with open(os.path.join(project, 'manifest.json')) as f:
            return project, json.load(f)
    log(f'brian2: generating and compiling {project} ({" ".join(flags)}), 1-3 min ...')
    manifest = build(model, drive, ticks, flags, project)
    with open(keyfile, 'w') as f:
        f.write(key)
    log(f'brian2: compiled in {manifest["build_seconds"]:.0f} s')
    return project, manifest


def run(project, manifest):
    """Runs the compiled binary once: timing and spikes {population: (tick, neuron) array}."""
    t = common.run_timed(['./main'], cwd=project)
    with open(os.path.join(project, 'results', 'last_run_info.txt')) as f:
        loop, fraction = map(float, f.read().split())
    if fraction != 1.0:
        raise RuntimeError(f'{project}: the run completed only {fraction:.3f} of its time')
    spikes = {}
    for name, files in manifest['monitors'].items():
        i = np.fromfile(os.path.join(project, files['i']), dtype=np.int32)
        tt = np.fromfile(os.path.join(project, files['t']), dtype=np.float64)
        spikes[name] = common.sort_trains(np.stack([np.round(tt / (manifest['dt'] * 1e-3)).astype(np.int64), i], axis=1))
    return {'loop_cpu': loop, 'cpu': t['cpu'], 'wall': t['wall'], 'maxrss_mb': t['maxrss_mb']}, spikes


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('trace', help='quantal trace holding the drive spikes (population drive)')
    ap.add_argument('--ticks', type=int, required=True)
    ap.add_argument('--flags', choices=['default', 'ieee'], default='default')
    ap.add_argument('--workdir', default='brian2-projects')
    a = ap.parse_args()
    params, _ = common.read_model(a.model)
    q = common.read_trace(a.trace, params['dt'])
    project, manifest = ensure_project(a.model, q['drive'], a.ticks, a.flags, a.workdir,
                                       os.path.splitext(os.path.basename(a.model))[0])
    timing, spikes = run(project, manifest)
    print(json.dumps(timing))
    ok = True
    for name in common.SPIKING:
        d = common.first_difference(q[name], spikes[name])
        ok &= d is None
        print(f'{name}: quantal {len(q[name])}, brian2 {len(spikes[name])} spikes: {d or "identical"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
