#!/usr/bin/python3
"""One table of every workload bench/run_all.sh measured: quantal, its peer, the ratio, events/s,
peak RSS. Reads the JSON files the sections wrote into the results folder (a missing section is
reported as missing, not skipped silently).

    bench/summary.py RESULTS_DIR        (bench/run_all.sh calls it last)
"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def row(workload, quantal, peer, ratio, events_per_s, rss):
    return f'| {workload} | {quantal} | {peer} | {ratio} | {events_per_s} | {rss} |'


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    rows = []
    dense = load(os.path.join(out, 'brian2.json'))
    if dense is None:
        rows.append(row('dense layered network', 'not measured (section dense not run)', '', '', '', ''))
    else:
        for v in dense['variants']:
            q = dense['quantal']['synapse' if v['release'] == 'synapse' else 'none']
            rows.append(row(f"dense layered, release {v['release']} (p = {v['p']})", f"{q['median_seconds']:.3f} s loop",
                            f"Brian2 {v['flags']}: {v['loop_seconds_median']:.3f} s",
                            f"{v['quantal_over_brian2_attempted_per_second']:.2f}",
                            f"{q['attempted_per_second'] / 1e6:.0f} M / {v['attempted_per_second'] / 1e6:.0f} M attempted",
                            '–'))
    brunel = load(os.path.join(out, 'brunel.json'))
    if brunel is None:
        rows.append(row('Brunel', 'not measured (section brunel not run)', '', '', '', ''))
    else:
        for r in brunel:
            q = r['quantal']
            for flags, b in r.get('brian2', {}).items():
                same = all(x == 'identical' for x in b.get('identical', {}).values())
                rows.append(row(f"Brunel {r['regime']}", f"{q['loop_cpu']:.2f} s loop",
                                f"Brian2 {flags}: {b['loop_cpu']:.2f} s ({'identical spikes' if same else 'SPIKES DIFFER'})",
                                f"{b['loop_cpu'] / q['loop_cpu']:.2f}",
                                f"{r['events'] / q['loop_cpu'] / 1e6:.0f} M / {b['events'] / b['loop_cpu'] / 1e6:.0f} M",
                                f"{q['maxrss_mb']:.0f} / {b['maxrss_mb']:.0f} MB"))
            n = r.get('neuron')
            if n:
                scale = r['ticks'] / n['ticks']
                rows.append(row(f"Brunel {r['regime']}", f"{q['loop_cpu']:.2f} s loop",
                                f"NEURON {n['version']}: {n['loop_cpu']:.2f} s for {n['ticks']} ticks",
                                f"{n['loop_cpu'] * scale / q['loop_cpu']:.1f} (scaled)",
                                f"{r['events'] / q['loop_cpu'] / 1e6:.0f} M / {n['events'] / n['loop_cpu'] / 1e6:.1f} M",
                                f"{q['maxrss_mb']:.0f} / {n['maxrss_mb']:.0f} MB"))
    mst = load(os.path.join(out, 'mst.json'))
    if mst is None:
        rows.append(row('MST-Tiny', 'not measured (section mst not run)', '', '', '', ''))
    else:
        for s in mst['summary']:
            rows.append(row(f"MST-Tiny, {s['configuration']}", f"{s['quantal_s_per_image']:.3f} s/image",
                            f"reference.py: {s['reference_s_per_image']:.3f} s/image", f"{s['ratio']:.2f}",
                            f"{s['events_per_image'] / s['quantal_s_per_image'] / 1e6:.0f} M (quantal)",
                            f"{s['rss_mb_quantal']:.0f} / {s['rss_mb_reference']:.0f} MB"))
        if mst.get('thread_speedup'):
            rows.append(row('MST-Tiny, --threads 2 vs 1 (wall)', '', '', f"{mst['thread_speedup']:.2f}", '', ''))
    memory = load(os.path.join(out, 'memory.json'))
    if memory is None:
        rows.append(row('pending-work memory', 'not measured (section memory not run)', '', '', '', ''))
    else:
        for name, m in memory['inputs'].items():
            rows.append(row(f"pending-work memory, {name} input", f"{m['bytes_per_neuron']:+.1f} B/neuron over silent",
                            'target ≤ 64', '', '', f"{m['peak_mb']:.1f} MB"))
    print('| workload | quantal | peer | peer time ÷ quantal time | events/s quantal / peer | peak RSS quantal / peer |')
    print('| --- | --- | --- | --- | --- | --- |')
    print('\n'.join(rows))


if __name__ == '__main__':
    main()
