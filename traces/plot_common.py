"""Helpers shared by quantal's plotting scripts: plot_trace.py (`quantal inspect --plot`) and
plot_study.py (`quantal plot`). They are installed together under <prefix>/share/quantal and found
beside each other (a script's own directory is first on sys.path).

Unusable input (a file that cannot be read, a missing object, an output directory that cannot be
written) is an InputProblem: the script prints one line naming the file or object and exits with
status 2, the same convention as the `quantal` executable (docs/run.md, "Exit codes").
"""
import argparse
import os
import sys
import tempfile

import h5py

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.patches  # noqa: E402
import numpy as np  # noqa: E402

EXIT_INPUT = 2


class InputProblem(Exception):
    """The input (a file, an object in it, a command-line value, the output directory) is unusable."""


def as_text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def add_error_prefix_option(parser, default):
    """--error-prefix: the program name an error line starts with (`quantal` passes its own)."""
    parser.add_argument("--error-prefix", default=default, help=argparse.SUPPRESS)


def open_hdf5(path):
    if not os.path.exists(path):
        raise InputProblem("%s: no such file" % path)
    if os.path.isdir(path):
        raise InputProblem("%s: is a directory, not an HDF5 file" % path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputProblem("%s: cannot be opened as HDF5 (%s)" % (path, e)) from None


def prepare_out_dir(path):
    """Creates DIR if needed and checks that a file can be written in it (before anything is drawn;
    os.access alone says yes to root on a read-only mount)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".quantal-write-check-"):
            pass
    except OSError as e:
        raise InputProblem("%s: cannot write plots there (%s)" % (path, e.strerror or e)) from None


def save_figure(fig, path, dpi, tight=False):
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    except OSError as e:
        raise InputProblem("%s: cannot be written (%s)" % (path, e.strerror or e)) from None
    finally:
        plt.close(fig)


def write_text(path, text):
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as e:
        raise InputProblem("%s: cannot be written (%s)" % (path, e.strerror or e)) from None


def run_reporting_input_problems(body, error_prefix):
    """body() -> exit status; an InputProblem becomes one line on stderr and status 2."""
    try:
        return body()
    except InputProblem as e:
        print("%s: %s" % (error_prefix, e), file=sys.stderr)
        return EXIT_INPUT


# Figures meant for a paper: a readable size at a column's width, no chart junk.
PAPER_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "savefig.dpi": 200,
}


# ---- energy per layer under each energy model (quantal inspect / energy --plot, quantal plot) ----

# The energy models of docs/energy.md, as `quantal energy --json` names their per-layer values.
ENERGY_MODELS = (("proxy_pj", "proxy, measured", "E_AC × accumulates + E_MAC × MACs, counted"),
                 ("papers_pj", "proxy, the papers' way", "E_AC × rate × T × FLOPs + E_MAC × MACs"),
                 ("memory_pj", "memory-inclusive", "operations + memory accesses (Lemaire 2022)"))
# The model format's role groups, in the order data flows through a block (sim/energy_models.cpp).
ROLE_GROUPS = ("embedding, head", "attention (qkv_in, proj_in)", "MLP (fc1_in, fc2_in)", "stream",
               "patch merging (merge)", "without role")
GROUP_COLOURS = dict(zip(ROLE_GROUPS, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")))


def engineering_unit(values_pj):
    """(scale, unit) so that the largest value reads between 1 and 1000."""
    top = max([abs(v) for v in values_pj if v == v] + [0.0])
    for scale, unit in ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if top >= scale:
            return scale, unit
    return 1.0, "pJ"


def energy_rows_from_json(doc, where):
    """A row of the per-layer figure from the JSON of `quantal energy --json` (a trace): its
    layers, the models' totals and the ANN's."""
    try:
        totals = {k: doc["models"][i]["input_every_tick_pj"] for i, (k, _, _) in enumerate(ENERGY_MODELS)}
        ann = {"proxy_pj": doc["ann"]["float_pj"], "papers_pj": doc["ann"]["float_pj"],
               "memory_pj": doc["ann"]["memory_model_pj"]}
        profile = doc["assumptions"]["profile"]
        return dict(layers=doc["layers"], totals=totals, ann=ann, ann_name=doc["ann"]["baseline"],
                    memory="%s, %s memories, %s updates" % (profile["name"], profile["memory"],
                                                           profile["neuron_updates"].replace("_", "-")))
    except (KeyError, IndexError, TypeError) as e:
        raise InputProblem("%s: not the JSON of `quantal energy --json` (%s missing)" % (where, e)) from None


def plot_energy_per_layer(rows, path, title, dpi):
    save_figure(energy_per_layer_figure(rows, title), path, dpi, tight=True)


def energy_per_layer_figure(rows, title):
    """One row per network (rows: [(label, energy_rows_from_json(...))]), one panel per energy
    model: every layer (target population) as a bar, grouped and coloured by the model format's
    role groups, pJ per sample with the analog input charged every tick; each panel's title gives
    the model's total and its ratio to the ANN on that model's terms."""
    n_layers = max(len(r["layers"]) for _, r in rows)
    fig, axes = plt.subplots(len(rows), len(ENERGY_MODELS), squeeze=False, sharey="row",
                             figsize=(5.2 * len(ENERGY_MODELS), 1.6 + 0.16 * n_layers * len(rows)))
    for (label, r), panel_row in zip(rows, axes):
        order = sorted(range(len(r["layers"])), key=lambda i: (ROLE_GROUPS.index(r["layers"][i]["group"])
                                                               if r["layers"][i]["group"] in ROLE_GROUPS
                                                               else len(ROLE_GROUPS), i))
        layers = [r["layers"][i] for i in order]
        y = np.arange(len(layers))
        groups = [l["group"] for l in layers]
        starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
        for ax, (key, name, how) in zip(panel_row, ENERGY_MODELS):
            values = [l[key] for l in layers]
            total, ann = r["totals"][key], r["ann"][key]
            scale, unit = engineering_unit(values + [total])
            ax.barh(y, np.array(values) / scale, color=[GROUP_COLOURS.get(g, "black") for g in groups])
            top = max(values) / scale if values else 1.0
            ax.set_xlim(0, 1.55 * top)  # room right of the longest bar for the groups' shares
            for k, first in enumerate(starts):  # each group's share of the total, at its first bar
                last = starts[k + 1] if k + 1 < len(starts) else len(groups)
                share = sum(values[first:last])
                if first:
                    ax.axhline(first - 0.5, color="0.6", linewidth=0.6)
                ax.text(1.54 * top, first - 0.3, "%s: %.3g %s (%.0f %%)" % (groups[first].split(" (")[0], share / scale, unit,
                                                                      100 * share / total if total else 0),
                        ha="right", va="top", fontsize=7, color=GROUP_COLOURS.get(groups[first], "black"))
            vs = ("; ANN %.3g %s, SNN ×%.2f" % (ann / scale, unit, total / ann)) if ann and ann == ann and ann > 0 \
                else "; no ANN on these terms"
            ax.set_title("%s%s\ntotal %.3g %s%s" % (name, (" — " + label) if label else "", total / scale, unit, vs))
            extra = ("\n" + r["memory"]) if key == "memory_pj" else ""
            ax.set_xlabel("%s per sample (%s)%s" % (unit, how, extra))
        panel_row[0].set_yticks(y)
        panel_row[0].set_yticklabels([l["layer"] for l in layers], fontsize=6)
        panel_row[0].invert_yaxis()
    present = [g for g in ROLE_GROUPS if any(l["group"] == g for _, r in rows for l in r["layers"])]
    handles = [matplotlib.patches.Patch(color=GROUP_COLOURS[g]) for g in present]
    fig.legend(handles, ["role group: " + g for g in present], loc="upper center", ncol=min(len(present), 6),
               bbox_to_anchor=(0.5, 0.995), fontsize=8, frameon=False)
    fig.suptitle(title + " (layer = target population; analog input charged every tick)", y=1.02, fontsize=10)
    fig.tight_layout()
    return fig
