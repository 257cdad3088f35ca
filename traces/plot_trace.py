#!/usr/bin/python3
"""Raster, rate and energy plots of a quantal spike trace (SONATA spike layout, docs/traces.md).

    /usr/bin/python3 traces/plot_trace.py TRACE.h5 --out DIR [--samples 0:2] [--ticks 0:32]
                                          [--populations a,b] [--neurons 50 | --neurons 0:64]

Writes DIR/raster.png (a panel per population with its own neuron axis: the chosen populations,
by default all up to 8, else 8 spread over the network; up to 100 neurons each; the chosen
recorded samples, by default the first, with their boundaries marked), DIR/rates.png (rate per
neuron per population vs time within a sample, mean over the recorded samples) and, when it
has a membrane report (/report, --record-v), DIR/membrane.png (potentials, a panel per
population). The figures are
trace_figures.py's, shared with the Python module (quantal.plot). With --energy-models JSON (what
`quantal energy --json` prints; `quantal inspect --plot` passes it for a trace with a ledger),
DIR/energy_models.png: energy per group of layers (the model format's roles) under each energy
model, with the ANN baselines, and DIR/energy_per_layer.png: every layer under each energy model,
grouped by role (trace_figures.energy, which `quantal plot` draws for a study and quantal.plot.energy
for a run); --energy-only draws just those two.
`quantal inspect --plot DIR` and `quantal energy --plot DIR` call this script. Only h5py, numpy
and matplotlib are used; spikes are read in blocks, so memory stays bounded for long traces.
"""
import argparse
import json
import os
import sys

import numpy as np

from plot_common import (InputProblem, add_error_prefix_option, as_text, energy_rows_from_json, open_hdf5,
                         plot_energy_per_layer, prepare_out_dir, run_reporting_input_problems, save_figure)
import trace_figures  # the figures themselves, shared with the Python module (quantal.plot)

import matplotlib.pyplot as plt  # plot_common has selected the Agg backend (files only, no display)


def drawn(figure, *args, **kwargs):
    """A trace_figures figure; its ValueErrors (a name or range the trace does not have) are input problems."""
    try:
        return figure(*args, **kwargs)
    except ValueError as e:
        raise InputProblem(str(e)) from None


def plot_raster(f, path, args):
    rec = trace_figures.TraceRecording(f, os.path.basename(args.trace))
    populations = args.populations.split(",") if args.populations else None
    fig = drawn(trace_figures.raster, rec, populations=populations, neurons=parse_neurons(args.neurons),
                samples=parse_range(args.samples, "--samples"),
                ticks=parse_range(args.ticks, "--ticks") if args.ticks else None)
    save_figure(fig, path, args.dpi)


def plot_rates(f, path, args):
    rec = trace_figures.TraceRecording(f, os.path.basename(args.trace))
    fig = drawn(trace_figures.rates, rec, populations=args.populations.split(",") if args.populations else None)
    save_figure(fig, path, args.dpi)


def plot_membrane(f, path, args):
    rec = trace_figures.TraceRecording(f, os.path.basename(args.trace))
    save_figure(drawn(trace_figures.membrane, rec, samples=parse_range(args.samples, "--samples"),
                      ticks=parse_range(args.ticks, "--ticks") if args.ticks else None), path, args.dpi)


def parse_range(text, option):
    """'a:b' -> (a, b) of whole numbers."""
    a, sep, b = text.partition(":")
    try:
        return int(a), int(b)
    except ValueError:
        raise InputProblem("%s %s: expected FIRST:LAST (whole numbers, LAST excluded)" % (option, text)) from None


def parse_neurons(text):
    """N (that many per panel, evenly spaced) or a:b (those ids), or None."""
    if not text:
        return None
    if ":" in text:
        return range(*parse_range(text, "--neurons"))
    try:
        return int(text)
    except ValueError:
        raise InputProblem("--neurons %s: expected a count N or ids FIRST:LAST" % text) from None


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
    p.add_argument("--samples", default="0:1", help="recorded samples shown in the raster, FIRST:LAST (positions "
                   "among the recorded ones, LAST excluded; default the first)")
    p.add_argument("--ticks", help="ticks within each sample shown in the raster, FIRST:LAST (default all)")
    p.add_argument("--populations", help="populations to draw, comma-separated (default: all up to 8 in the raster, "
                   "else 8 spread over the network; all in the rates)")
    p.add_argument("--neurons", help="raster rows per population: N (evenly spaced, default up to 100) or ids "
                   "FIRST:LAST")
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
            if "report" in f:
                plot_membrane(f, os.path.join(args.out, "membrane.png"), args)
                written.append("membrane.png")
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
