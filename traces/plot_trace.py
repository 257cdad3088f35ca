#!/usr/bin/python3
"""Raster, rate and energy plots of a quantal spike trace (SONATA spike layout, docs/traces.md).

    /usr/bin/python3 traces/plot_trace.py TRACE.h5 --out DIR [--samples 0:2] [--bin-ms 1]

Writes DIR/raster.png (spikes of every population in a time window, by default the first
recorded sample), DIR/rates.png (population firing rate over the whole run) and, when the trace has an
/energy group, DIR/energy.png (energy per layer per sample). With --energy-models JSON (what
`quantal energy --json` prints), DIR/energy_models.png: energy per group of layers (the model
format's roles) under each energy model, with the ANN baselines, and DIR/energy_per_layer.png:
every layer under each energy model, grouped by role (plot_common.plot_energy_per_layer, which
`quantal plot` uses for a study too); --energy-only draws just those two.
`quantal inspect --plot DIR` and `quantal energy --plot DIR` call this script. Only h5py, numpy and matplotlib are used; memory stays bounded for long traces
(spikes are read in blocks, the raster window is found by bisection on the sorted timestamps).
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

from plot_common import (InputProblem, add_error_prefix_option, as_text, energy_rows_from_json, open_hdf5,
                         plot_energy_per_layer, prepare_out_dir, run_reporting_input_problems, save_figure)

import matplotlib  # plot_common has selected the Agg backend (files only, no display)
import matplotlib.colors
import matplotlib.pyplot as plt

BLOCK = 1 << 20  # spikes read at a time


def sorting_name(group):
    """SONATA `sorting`: an HDF5 enum (quantal, libsonata) or a string (bmtk)."""
    if "sorting" not in group.attrs:
        return ""
    value = group.attrs["sorting"]
    enum = h5py.check_enum_dtype(group.attrs.get_id("sorting").dtype)
    if enum:
        names = {v: k for k, v in enum.items()}
        return names.get(int(value), str(value))
    return as_text(value)


def populations(f):
    """(name, group) for each population under /spikes, in the file's creation order."""
    spikes = f["spikes"]
    return [(name, spikes[name]) for name in spikes]


def first_index_at_or_after(timestamps, t, scale):
    """Bisection on a dataset sorted by time: the first index with timestamp >= t (ms)."""
    lo, hi = 0, timestamps.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if timestamps[mid] * scale < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


def units_scale(timestamps):
    units = as_text(timestamps.attrs.get("units", "ms"))
    return 1000.0 if units == "s" else 1.0


def spikes_in_window(group, t0, t1, max_points):
    """Times (ms) and ids of spikes in [t0, t1); evenly thinned to at most max_points."""
    ts, ids = group["timestamps"], group["node_ids"]
    scale = units_scale(ts)
    if sorting_name(group) == "by_time":
        a = first_index_at_or_after(ts, t0, scale)
        b = first_index_at_or_after(ts, t1, scale)
        t, n = ts[a:b] * scale, ids[a:b]
    else:  # unsorted: scan in blocks
        parts_t, parts_n = [], []
        for start in range(0, ts.shape[0], BLOCK):
            tb = ts[start:start + BLOCK] * scale
            keep = (tb >= t0) & (tb < t1)
            parts_t.append(tb[keep])
            parts_n.append(ids[start:start + BLOCK][keep])
        t = np.concatenate(parts_t) if parts_t else np.zeros(0)
        n = np.concatenate(parts_n) if parts_n else np.zeros(0, dtype=np.uint64)
    thinned = len(t) > max_points
    if thinned:
        pick = np.linspace(0, len(t) - 1, max_points).astype(np.int64)
        t, n = t[pick], n[pick]
    return t, n, thinned


def population_sizes(f):
    """Neurons per population from /energy/populations, else None (then the largest id + 1)."""
    try:
        names = [as_text(x) for x in f["energy/populations/name"][()]]
        sizes = f["energy/populations/size"][()]
        return dict(zip(names, (int(s) for s in sizes)))
    except KeyError:
        return {}


def run_info(f):
    """dt (ms), ticks per sample, sample starts (ms) and whether each was recorded."""
    dt = float(f["run"].attrs.get("dt_ms", 1.0)) if "run" in f else 1.0
    ticks = int(f["run"].attrs.get("ticks_per_sample", 0)) if "run" in f else 0
    if "samples" in f:
        starts = f["samples/start_ms"][()]
        recorded = f["samples/recorded"][()].astype(bool)
        index = f["samples/index"][()]
    else:
        starts, recorded, index = np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.uint64)
    return dt, ticks, starts, recorded, index


def last_time(f):
    end = 0.0
    for _, g in populations(f):
        ts = g["timestamps"]
        if ts.shape[0]:
            scale = units_scale(ts)
            if sorting_name(g) == "by_time":
                end = max(end, float(ts[-1]) * scale)
            else:
                for start in range(0, ts.shape[0], BLOCK):
                    end = max(end, float(np.max(ts[start:start + BLOCK])) * scale)
    return end


def parse_range(text, n):
    """'a:b' (python slice over sample rows) -> (a, b) clipped to [0, n]."""
    a, _, b = text.partition(":")
    a = int(a) if a else 0
    b = int(b) if b else n
    return max(0, min(a, n)), max(0, min(b, n))


def raster_window(f, args):
    """(t0, t1, sample boundaries, title) of the raster: the chosen recorded samples."""
    dt, ticks, starts, recorded, index = run_info(f)
    sample_ms = ticks * dt
    rows = [i for i in range(len(starts)) if recorded[i]]
    if rows and sample_ms > 0:
        a, b = parse_range(args.samples, len(rows))
        if a >= b:
            a, b = 0, 1
        t0 = float(starts[rows[a]])
        t1 = float(starts[rows[b - 1]]) + sample_ms
        boundaries = [float(starts[r]) for r in rows[a:b]] + [t1]
        if b - a == 1:
            title = "sample %d" % int(index[rows[a]])
        else:
            title = "samples %d..%d" % (int(index[rows[a]]), int(index[rows[b - 1]]))
        return t0, t1, boundaries, title
    return 0.0, last_time(f) + dt, [], "whole trace"


def plot_raster(f, path, args):
    t0, t1, boundaries, title = raster_window(f, args)
    pops = populations(f)
    sizes = population_sizes(f)
    # Few populations: one panel each. Many (a transformer has dozens): one panel, a band per
    # population, so the figure stays readable and its size bounded.
    stacked = len(pops) > args.stack_above
    if stacked:
        fig, ax = plt.subplots(figsize=(12, min(4.0 + 0.22 * len(pops), 24.0)))
        per_population = max(args.max_points // max(len(pops), 1), 2000)
        total = 0
        for p, (name, group) in enumerate(pops):
            t, ids, _ = spikes_in_window(group, t0, t1, per_population)
            size = sizes.get(name) or (int(ids.max()) + 1 if len(ids) else 1)
            if p % 2:
                ax.axhspan(p, p + 1, color="0.93", linewidth=0)
            ax.scatter(t, p + (ids.astype(np.float64) + 0.5) / size, s=1.5, marker="s", linewidths=0,
                       color="black", rasterized=True)
            total += len(t)
        ax.set_ylim(len(pops), 0)  # first population at the top
        ax.set_yticks(np.arange(len(pops)) + 0.5)
        ax.set_yticklabels([name for name, _ in pops], fontsize=max(4, min(8, 400 // max(len(pops), 1))))
        ax.set_ylabel("population (band height = its neurons)")
        for x in boundaries:
            ax.axvline(x, color="tab:red", linewidth=0.6, alpha=0.6)
        ax.set_xlim(t0, t1)
        ax.set_xlabel("time (ms)")
        ax.set_title("Spike raster, %s, %d populations, %d spikes shown (%s)"
                     % (title, len(pops), total, os.path.basename(args.trace)))
    else:
        n = max(1, len(pops))
        fig, axes = plt.subplots(n, 1, figsize=(11, 1.2 + 1.6 * n), sharex=True, squeeze=False)
        for ax, (name, group) in zip(axes[:, 0], pops):
            t, ids, thinned = spikes_in_window(group, t0, t1, args.max_points)
            size = sizes.get(name) or (int(ids.max()) + 1 if len(ids) else 1)
            ax.scatter(t, ids, s=1.5, marker="s", linewidths=0, color="black", rasterized=True)
            for x in boundaries:
                ax.axvline(x, color="tab:red", linewidth=0.6, alpha=0.6)
            ax.set_ylim(-0.5, size - 0.5)
            ax.set_ylabel("%s\nneuron" % name, fontsize=8)
            label = "%d spikes%s" % (len(t), " (thinned)" if thinned else "")
            ax.text(1.0, 1.0, label, transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
        axes[-1, 0].set_xlim(t0, t1)
        axes[-1, 0].set_xlabel("time (ms)")
        fig.suptitle("Spike raster, %s (%s)" % (title, os.path.basename(args.trace)))
    fig.tight_layout()
    save_figure(fig, path, args.dpi)


def population_rates(f, edges, bin_ms):
    """Rate per neuron (Hz) of each population in each time bin, spikes read in blocks."""
    sizes = population_sizes(f)
    rates = []
    for name, group in populations(f):
        ts = group["timestamps"]
        scale = units_scale(ts)
        counts = np.zeros(len(edges) - 1)
        largest = -1
        for start in range(0, ts.shape[0], BLOCK):
            counts += np.histogram(ts[start:start + BLOCK] * scale, bins=edges)[0]
            block_ids = group["node_ids"][start:start + BLOCK]
            if len(block_ids):
                largest = max(largest, int(block_ids.max()))
        neurons = sizes.get(name) or max(largest + 1, 1)
        rates.append(counts / neurons / (bin_ms / 1000.0))
    return rates


def plot_rates(f, path, args):
    dt, ticks, starts, recorded, _ = run_info(f)
    end = (float(starts[-1]) + ticks * dt) if len(starts) and ticks else last_time(f) + dt
    bin_ms = args.bin_ms or max(dt, end / 400.0)
    edges = np.arange(0.0, end + bin_ms, bin_ms)
    names = [name for name, _ in populations(f)]
    rates = population_rates(f, edges, bin_ms)
    title = "Population firing rates (%s)" % os.path.basename(args.trace)
    if len(names) > args.stack_above:
        # Many populations: a heat map (population x time), log colour scale.
        matrix = np.array(rates) if rates else np.zeros((1, len(edges) - 1))
        positive = matrix[matrix > 0]
        fig, ax = plt.subplots(figsize=(12, min(3.0 + 0.22 * len(names), 24.0)))
        cmap = matplotlib.colormaps["viridis"].copy()
        cmap.set_bad("white")  # no spikes in the bin
        norm = matplotlib.colors.LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
        image = ax.imshow(np.ma.masked_less_equal(matrix, 0), aspect="auto", interpolation="nearest", cmap=cmap,
                          norm=norm, extent=(0, edges[-1], len(names), 0))
        ax.set_yticks(np.arange(len(names)) + 0.5)
        ax.set_yticklabels(names, fontsize=max(4, min(8, 400 // max(len(names), 1))))
        fig.colorbar(image, ax=ax, label="rate per neuron (Hz), bin %.3g ms" % bin_ms)
        ax.set_xlabel("time (ms)")
        ax.set_title(title)
    else:
        fig, ax = plt.subplots(figsize=(11, 4.5))
        for name, rate_hz in zip(names, rates):
            ax.plot(edges[:-1] + bin_ms / 2, rate_hz, linewidth=1.0, label=name)
        for i, s in enumerate(starts):
            if not recorded[i]:
                ax.axvspan(s, s + ticks * dt, color="0.9", linewidth=0)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("rate per neuron (Hz), bin %.3g ms" % bin_ms)
        ax.set_xlim(0, end)
        if names:
            ax.legend(fontsize=8, loc="upper right")
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, args.dpi)


def plot_energy(f, path, args):
    e = f["energy"]
    samples = max(int(e["total"].attrs.get("samples", 1)), 1)
    e_ac = float(e.attrs["e_ac_pj"])
    e_mac = float(e.attrs["e_mac_pj"])
    names, values, colors = [], [], []
    for name, transmitted in zip(e["projections/name"][()], e["total/projections/transmitted"][()]):
        names.append(as_text(name))
        values.append(e_ac * float(transmitted) / samples)
        colors.append("tab:blue")
    for name, macs in zip(e["populations/name"][()], e["total/populations/macs"][()]):
        if macs:
            names.append(as_text(name) + " (MAC)")
            values.append(e_mac * float(macs) / samples)
            colors.append("tab:orange")
    if "operators" in e and "operators" in e["total"]:  # attention: spike-driven ACs and softmax MACs
        t = e["total/operators"]
        for i, name in enumerate(e["operators/name"][()]):
            ac = float(t["coincidences"][i]) + float(t["deliveries"][i])
            names.append(as_text(name) + " (operator)")
            values.append((e_ac * ac + e_mac * float(t["macs"][i])) / samples)
            colors.append("tab:green")
    fig, ax = plt.subplots(figsize=(11, 1.5 + 0.3 * max(len(names), 1)))
    y = np.arange(len(names))
    ax.barh(y, values, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("energy per sample (pJ): E_AC %.2g pJ x transmitted, E_MAC %.2g pJ x MACs" % (e_ac, e_mac))
    ax.set_title("Energy per layer, mean over %d samples (%s)" % (samples, os.path.basename(args.trace)))
    fig.tight_layout()
    save_figure(fig, path, args.dpi)


def plot_energy_models(models_path, path, args):
    """Energy per group of layers under each model (docs/energy.md), the ANN as a line: the proxy
    models on one axis, the memory-inclusive one on its own (tens of times larger)."""
    try:
        with open(models_path) as f:
            m = json.load(f)
        layers, models, ann = m["layers"], m["models"], m["ann"]
    except (OSError, ValueError, KeyError) as e:
        raise InputProblem("%s: not an energy-models JSON (%s)" % (models_path, e))
    groups = list(dict.fromkeys(l["group"] for l in layers))
    keys = [("proxy_pj", "proxy, measured"), ("papers_pj", "the papers' way"), ("memory_pj", "memory-inclusive")]
    totals = {k: [sum(l[k] for l in layers if l["group"] == g) for g in groups] for k, _ in keys}
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.8 + 0.45 * len(groups)), sharey=True)
    y = np.arange(len(groups))
    for ax, chosen in ((axes[0], keys[:2]), (axes[1], keys[2:])):
        height = 0.8 / len(chosen)
        for i, (k, label) in enumerate(chosen):
            ax.barh(y + (i - (len(chosen) - 1) / 2) * height, totals[k], height, label=label)
        ax.set_yticks(y)
        ax.set_yticklabels(groups, fontsize=8)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].invert_yaxis()  # shared: once for both
    axes[0].set_xlabel("pJ per sample (E_AC %.2g, E_MAC %.2g pJ; analog input every tick)"
                       % (m["assumptions"]["e_ac_pj"], m["assumptions"]["e_mac_pj"]))
    axes[1].set_xlabel("pJ per sample (profile %s, %s memories)" % (m["assumptions"]["profile"]["name"],
                                                                    m["assumptions"]["profile"]["memory"]))
    snn = {mo["name"]: mo["input_every_tick_pj"] for mo in models}
    names = [mo["name"] for mo in models]
    fig.suptitle("Energy by group of layers; totals: proxy %.3g pJ, papers' way %.3g pJ, memory %.3g pJ; "
                 "%s %.3g pJ, quantised %.3g pJ" % (snn[names[0]], snn[names[1]], snn[names[2]], ann["baseline"],
                                                    ann["float_pj"], ann["quantised_pj"]), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, args.dpi)
    return m


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trace")
    p.add_argument("--out", required=True, help="directory for the PNG files")
    p.add_argument("--samples", default="0:1", help="rows of the recorded samples shown in the raster (a:b)")
    p.add_argument("--bin-ms", type=float, default=0.0, help="rate histogram bin (default: ~400 bins)")
    p.add_argument("--max-points", type=int, default=200000, help="raster points per population before thinning")
    p.add_argument("--stack-above", type=int, default=8,
                   help="more populations than this: one stacked raster and a rate heat map")
    p.add_argument("--dpi", type=int, default=110)
    p.add_argument("--energy-models", help="JSON of `quantal energy --json`: also draw energy_models.png")
    p.add_argument("--energy-only", action="store_true", help="draw energy_models.png only")
    add_error_prefix_option(p, "plot_trace.py")
    args = p.parse_args(argv)
    return run_reporting_input_problems(lambda: plot_trace(args), args.error_prefix)


def plot_trace(args):
    prepare_out_dir(args.out)
    with open_hdf5(args.trace) as f:
        if "spikes" not in f:
            raise InputProblem("%s: group /spikes is missing" % args.trace)
        written = []
        if not args.energy_only:
            for name, plot in (("raster.png", plot_raster), ("rates.png", plot_rates)):
                plot(f, os.path.join(args.out, name), args)
                written.append(name)
            if "energy" in f:
                plot_energy(f, os.path.join(args.out, "energy.png"), args)
                written.append("energy.png")
        if args.energy_models:
            doc = plot_energy_models(args.energy_models, os.path.join(args.out, "energy_models.png"), args)
            written.append("energy_models.png")
            plot_energy_per_layer([("", energy_rows_from_json(doc, args.energy_models))],
                                  os.path.join(args.out, "energy_per_layer.png"),
                                  "Energy per layer under each model, %s, mean over %d samples, T = %d"
                                  % (os.path.basename(args.trace), doc["samples"], doc["ticks"]), args.dpi)
            written.append("energy_per_layer.png")
    for name in written:
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
