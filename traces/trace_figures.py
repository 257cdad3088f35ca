"""The figures of a run, drawn from a trace file or from a quantal.Result: one module for
`quantal inspect --plot` (traces/plot_trace.py) and for Python (`quantal.plot`, which is this file
copied into the package by the build).

    raster(rec, populations=None, neurons=None, samples=(0, 1), ticks=None)
    rates(rec, populations=None)        firing rate per population vs tick within a sample, mean over samples
    energy(rows, title)                 energy per layer under each energy model, grouped by role
    membrane(rec, populations=None, neurons=None, samples=(0, 1), ticks=None)
                                        membrane potentials of a membrane report (--record-v / record_v)
    accuracy(results)                   accuracy vs ticks simulated, with 95 % intervals

A recording (`rec`) is a TraceRecording (an open h5py trace) or a ResultRecording (a Result);
each function returns a matplotlib Figure (no pyplot state: save it with fig.savefig, or display
it in a notebook) whose `quantal` attribute is a dict of what was drawn (populations, neurons,
window), which the tests read. Only numpy and matplotlib are needed; h5py only for traces.
"""
import math

import numpy as np
from matplotlib import colormaps, colors, ticker
from matplotlib.figure import Figure
from matplotlib.patches import Patch

MAX_PANELS = 8  # more populations than this are not drawn one panel each unless chosen
MAX_NEURONS = 100  # rows per raster panel unless chosen: a dot per spike stays visible
BLOCK = 1 << 20  # spikes read from a trace at a time


# ---- recordings: where the spikes, samples and ledger come from --------------------------------

def layer_of(name):
    """A population's layer: its name up to the last '.' (network/targets.hpp layer_of)."""
    return name.rpartition(".")[0] or name


class ResultRecording:
    """A quantal.Result seen as a recording: spikes as (sample position, tick, node_id)."""

    def __init__(self, result):
        self.source = "the run of '%s'" % result.model
        self.ticks, self.dt_ms = result.ticks, result.dt_ms
        self.sample_index = np.asarray(result.samples)
        self.recorded = np.zeros(len(self.sample_index), bool)
        self.recorded[:result.recorded_samples] = True
        self.populations = list(result.spikes)
        self.sizes = dict(zip(result.ledger.population_names, result.ledger.population_sizes))
        first = int(self.sample_index[0]) if len(self.sample_index) else 0
        self._spikes = {name: (np.asarray(s.sample, np.int64) - first, np.asarray(s.tick, np.int64),
                               np.asarray(s.node_id, np.int64)) for name, s in result.spikes.items()}
        ids = getattr(result, "potential_neurons", {})
        self.reports = {name: np.asarray(ids[name], np.int64) for name in getattr(result, "potentials", {})}
        self._potentials = getattr(result, "potentials", {})

    def frames(self, name, first, last):
        """(frames, neurons) potentials of the recorded samples at positions [first, last)."""
        v = self._potentials[name][first:last]
        return v.reshape(-1, v.shape[2])

    def window(self, name, first, last):
        """(sample position, tick, node_id) of the spikes of samples [first, last)."""
        k, t, n = self._spikes[name]
        keep = (k >= first) & (k < last)
        return k[keep], t[keep], n[keep]

    def tick_counts(self, name):
        return np.bincount(self._spikes[name][1], minlength=self.ticks)[:self.ticks]


class TraceRecording:
    """A SONATA spike trace (docs/traces.md) read lazily: only the spikes of a window, or per-tick
    counts in blocks, are held. A file without /samples is one sample of all its ticks (dt 1 ms
    unless /run says otherwise)."""

    def __init__(self, f, source):
        self.source = source
        self._f = f
        self.populations = list(f["spikes"])
        run = f["run"].attrs if "run" in f else {}
        self.dt_ms = float(run.get("dt_ms", f["samples"].attrs.get("dt_ms", 1.0) if "samples" in f else 1.0))
        self.sizes = {}
        if "energy/populations/name" in f:
            names = [_text(x) for x in f["energy/populations/name"][()]]
            self.sizes = dict(zip(names, (int(s) for s in f["energy/populations/size"][()])))
        if "samples" in f and "ticks_per_sample" in f["samples"].attrs:
            self.ticks = int(f["samples"].attrs["ticks_per_sample"])
            self.sample_index = f["samples/index"][()].astype(np.int64)
            self.recorded = f["samples/recorded"][()].astype(bool)
        else:
            self.ticks = int(round(self._last_ms() / self.dt_ms)) + 1
            self.sample_index, self.recorded = np.zeros(1, np.int64), np.ones(1, bool)
        for name in self.populations:
            if name not in self.sizes:  # a foreign file: the largest id says at least how many
                self.sizes[name] = self._largest_id(name) + 1
        report = f["report"] if "report" in f else {}
        self.reports = {name: report[name]["mapping/node_ids"][()].astype(np.int64) for name in report}

    def frames(self, name, first, last):
        """(frames, neurons) of the recorded samples at positions [first, last): frame f of /report
        is tick f mod T of the (f div T)-th recorded sample (docs/traces.md)."""
        return self._f["report"][name]["data"][first * self.ticks:last * self.ticks].astype(np.float64)

    def _blocks(self, name):
        g = self._f["spikes"][name]
        ts, ids = g["timestamps"], g["node_ids"]
        scale = 1000.0 if _text(ts.attrs.get("units", "ms")) == "s" else 1.0
        for start in range(0, ts.shape[0], BLOCK):
            yield ts[start:start + BLOCK] * scale, ids[start:start + BLOCK].astype(np.int64)

    def _last_ms(self):
        return max([float(t.max()) for name in self.populations for t, _ in self._blocks(name) if len(t)] or [0.0])

    def _largest_id(self, name):
        return max([int(n.max()) for _, n in self._blocks(name) if len(n)] or [0])

    def _ticks_of(self, times_ms):
        """(sample position, tick within it) of global tick round(t / dt)."""
        g = np.rint(times_ms / self.dt_ms).astype(np.int64)
        position = np.searchsorted(self.sample_index, g // self.ticks)
        return position, g % self.ticks

    def window(self, name, first, last):
        lo, hi = self.sample_index[first] * self.ticks * self.dt_ms, self.sample_index[last - 1] + 1
        hi = hi * self.ticks * self.dt_ms
        parts = []
        for t, n in self._blocks(name):
            keep = (t >= lo - self.dt_ms / 2) & (t < hi - self.dt_ms / 2)
            if np.any(keep):
                k, tick = self._ticks_of(t[keep])
                parts.append((k, tick, n[keep]))
        if not parts:
            return tuple(np.zeros(0, np.int64) for _ in range(3))
        return tuple(np.concatenate(p) for p in zip(*parts))

    def tick_counts(self, name):
        counts = np.zeros(self.ticks, np.int64)
        for t, _ in self._blocks(name):
            counts += np.bincount(self._ticks_of(t)[1], minlength=self.ticks)[:self.ticks]
        return counts


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _chosen_populations(rec, populations):
    if populations is not None:
        missing = [p for p in populations if p not in rec.populations]
        if missing:
            raise ValueError("%s has no recorded population %s (recorded: %s)"
                             % (rec.source, ", ".join(map(repr, missing)), ", ".join(rec.populations)))
        return list(populations), False
    if len(rec.populations) <= MAX_PANELS:
        return list(rec.populations), False
    # Evenly spread over the network, first and last included.
    picks = np.unique(np.linspace(0, len(rec.populations) - 1, MAX_PANELS).round().astype(int))
    return [rec.populations[i] for i in picks], True


def _chosen_neurons(size, neurons):
    """Sorted neuron ids of one panel: all up to MAX_NEURONS, else evenly spaced; `neurons` is
    None, a number of neurons, a range/slice or an array of ids."""
    if neurons is None:
        neurons = MAX_NEURONS
    if isinstance(neurons, (int, np.integer)):
        if neurons < 1:
            raise ValueError("neurons %d: need at least 1" % neurons)
        return np.arange(size) if size <= neurons else np.unique(np.linspace(0, size - 1, neurons).round().astype(int))
    if isinstance(neurons, slice):
        neurons = range(*neurons.indices(size))
    ids = np.unique(np.asarray(list(neurons) if isinstance(neurons, range) else neurons, np.int64))
    if ids.size == 0 or ids[0] < 0 or ids[-1] >= size:
        raise ValueError("neurons: ids must be within [0, %d)" % size)
    return ids


# ---- raster --------------------------------------------------------------------------------------

def raster(rec, populations=None, neurons=None, samples=(0, 1), ticks=None, width=10.0):
    """Spikes of the chosen populations (default: all up to 8, else 8 spread over the network), one
    panel each with its own neuron axis, for the recorded samples at positions [samples[0],
    samples[1]) and within each the ticks [ticks[0], ticks[1]) (default all); sample boundaries
    are marked. neurons: how many per panel (evenly spaced; default up to 100), a slice/range or
    an array of ids (per population: a dict)."""
    recorded = np.flatnonzero(rec.recorded)
    if recorded.size == 0:
        raise ValueError("%s: no sample has recorded spikes" % rec.source)
    a, b = samples
    if not 0 <= a < b:
        raise ValueError("samples (%d, %d): need 0 <= first < last" % (a, b))
    rows = recorded[a:b]
    if rows.size == 0:
        raise ValueError("samples (%d, %d): only %d samples were recorded" % (a, b, recorded.size))
    t0, t1 = (0, rec.ticks) if ticks is None else ticks
    if not 0 <= t0 < t1 <= rec.ticks:
        raise ValueError("ticks (%d, %d): need 0 <= first < last <= %d" % (t0, t1, rec.ticks))
    chosen, spread = _chosen_populations(rec, populations)
    dt, T = rec.dt_ms, rec.ticks
    # Samples side by side on one time axis, each cut to the tick window.
    span = (t1 - t0) * dt
    starts = [j * span for j in range(len(rows))]
    height = 1.2 + 1.5 * len(chosen)
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(len(chosen), 1, sharex=True, squeeze=False)[:, 0]
    summary = {"populations": chosen, "panels": [], "samples": [int(rec.sample_index[r]) for r in rows],
               "ticks": [t0, t1], "xlim_ms": [0.0, len(rows) * span]}
    for ax, name in zip(axes, chosen):
        size = rec.sizes[name]
        ids = _chosen_neurons(size, neurons.get(name) if isinstance(neurons, dict) else neurons)
        k, tick, node = rec.window(name, int(rows[0]), int(rows[-1]) + 1)
        keep = np.isin(k, rows) & (tick >= t0) & (tick < t1) & np.isin(node, ids)
        k, tick, node = k[keep], tick[keep], node[keep]
        x = np.searchsorted(rows, k) * span + (tick - t0 + 0.5) * dt
        y = np.searchsorted(ids, node)  # row of the neuron among the shown ones
        # One mark per spike, a tick wide and a row high: readable as long as rows stay few.
        ax.scatter(x, y, s=_mark_area(fig, ax, len(ids), len(rows) * (t1 - t0)), marker="s", linewidths=0,
                   color="black", rasterized=True)
        for s in starts[1:]:
            ax.axvline(s, color="tab:red", linewidth=1.0)
        ax.set_ylim(len(ids) - 0.5, -0.5)
        _neuron_ticks(ax, ids)
        shown = "all %d" % size if len(ids) == size else "%d of %d" % (len(ids), size)
        ax.set_ylabel("%s\nneuron id (%s)" % (name, shown), fontsize=7)
        ax.set_title("%s: %d spikes of the neurons shown" % (name, len(x)), fontsize=8, loc="left")
        summary["panels"].append({"population": name, "neurons": ids.tolist(), "spikes": int(len(x))})
    axes[-1].set_xlim(*summary["xlim_ms"])
    _sample_axis(axes[-1], rows, rec, starts, span, t0, dt)
    what = ", ".join(map(str, summary["samples"]))
    title = "Spike raster, sample%s %s%s (%s)" % ("s" if len(rows) > 1 else "", what,
                                                  "" if ticks is None else ", ticks %d-%d" % (t0, t1 - 1), rec.source)
    if spread:
        title += "\n%d of %d populations, spread over the network (choose them: populations= or --populations)" % (
            len(chosen), len(rec.populations))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.quantal = summary
    return fig


def _mark_area(fig, ax, rows, columns):
    """Marker area (points²) of a cell one row high and one tick wide, at least 1 pt²."""
    w_in, h_in = fig.get_figwidth() * 0.8, fig.get_figheight() / max(len(fig.axes), 1) * 0.6
    cell = min(w_in / max(columns, 1), h_in / max(rows, 1)) * 72
    return max(cell * 0.9, 1.0) ** 2


def _neuron_ticks(ax, ids):
    """Row positions labelled with the neuron ids they show (at most ~5 labels)."""
    step = max(1, math.ceil(len(ids) / 5))
    positions = np.arange(0, len(ids), step)
    ax.set_yticks(positions)
    ax.set_yticklabels([str(int(ids[p])) for p in positions], fontsize=7)


def _sample_axis(ax, rows, rec, starts, span, t0, dt):
    ax.set_xlabel("time within each sample (ms)" + ("; red lines: sample boundaries" if len(rows) > 1 else ""),
                  fontsize=8, labelpad=16 if len(rows) > 1 else 4)
    step = _nice_step(span, 4)
    ticks, labels = [], []
    for s in starts:
        for v in np.arange(0, span + 1e-9, step):
            if s > 0 and v == 0:
                continue
            ticks.append(s + v)
            labels.append("%g" % (t0 * dt + v))
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    if len(rows) > 1:  # which sample each stretch is: a row of names under the tick labels
        for s, r in zip(starts, rows):
            ax.annotate("sample %d" % int(rec.sample_index[r]), xy=(s + span / 2, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, -17), textcoords="offset points", ha="center", va="top", fontsize=7,
                        color="tab:red")


def _nice_step(span, count):
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


# ---- membrane potentials -------------------------------------------------------------------------

MAX_LINES = 8  # membrane traces per panel unless chosen: more lines are not told apart


def membrane(rec, populations=None, neurons=None, samples=(0, 1), ticks=None, width=10.0):
    """Membrane potentials of a membrane report: a panel per reported population (default all),
    a line per neuron (default up to 8 of the reported ones, evenly spaced; or ids, per population
    a dict), the recorded samples at positions [samples[0], samples[1]) side by side with their
    boundaries marked, the ticks [ticks[0], ticks[1]) of each (default all). The value at a tick
    is the one after its input, threshold check and reset, drawn as a step over the tick."""
    if not rec.reports:
        raise ValueError("%s has no membrane report (record potentials with --record-v or record_v=)" % rec.source)
    chosen = list(rec.reports) if populations is None else list(populations)
    missing = [p for p in chosen if p not in rec.reports]
    if missing:
        raise ValueError("%s has no membrane report of %s (reported: %s)"
                         % (rec.source, ", ".join(map(repr, missing)), ", ".join(rec.reports)))
    recorded = int(np.count_nonzero(rec.recorded))
    a, b = samples
    if not 0 <= a < b or b > recorded:
        raise ValueError("samples (%d, %d): need 0 <= first < last <= %d (the recorded samples)" % (a, b, recorded))
    t0, t1 = (0, rec.ticks) if ticks is None else ticks
    if not 0 <= t0 < t1 <= rec.ticks:
        raise ValueError("ticks (%d, %d): need 0 <= first < last <= %d" % (t0, t1, rec.ticks))
    rows = np.flatnonzero(rec.recorded)[a:b]
    dt, span = rec.dt_ms, (t1 - t0) * rec.dt_ms
    starts = [j * span for j in range(b - a)]
    fig = Figure(figsize=(width, 1.2 + 1.9 * len(chosen)))
    axes = fig.subplots(len(chosen), 1, sharex=True, squeeze=False)[:, 0]
    summary = {"populations": chosen, "panels": [], "samples": [int(rec.sample_index[r]) for r in rows],
               "ticks": [t0, t1], "xlim_ms": [0.0, (b - a) * span]}
    for ax, name in zip(axes, chosen):
        reported = rec.reports[name]
        pick = neurons.get(name) if isinstance(neurons, dict) else neurons
        if pick is None:
            columns = np.unique(np.linspace(0, len(reported) - 1, min(MAX_LINES, len(reported))).round().astype(int))
        else:
            ids = np.asarray(list(pick) if isinstance(pick, range) else np.atleast_1d(pick), np.int64)
            absent = ids[~np.isin(ids, reported)]
            if absent.size:
                raise ValueError("%s: neuron %d of '%s' is not in its membrane report" % (rec.source, absent[0], name))
            columns = np.searchsorted(reported, ids)
        v = rec.frames(name, a, b).reshape(b - a, rec.ticks, -1)[:, t0:t1, :]
        edges = np.arange(t1 - t0 + 1) * dt  # a tick's value holds over the tick
        panel = {"population": name, "neurons": reported[columns].tolist(), "values": []}
        for line, c in enumerate(columns):
            color = colormaps["tab10"](line % 10)
            for j in range(b - a):
                ax.stairs(v[j, :, c], starts[j] + edges, baseline=None, linewidth=1.0, color=color,
                          label="neuron %d" % reported[c] if j == 0 else None)
            panel["values"].append(v[:, :, c].ravel())
        for s in starts[1:]:
            ax.axvline(s, color="tab:red", linewidth=1.0)
        ax.set_ylabel("%s\nmembrane potential" % name, fontsize=7)
        ax.set_title("%s: %d of %d reported neurons" % (name, len(columns), len(reported)), fontsize=8, loc="left")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # beside, not over
        ax.tick_params(axis="y", labelsize=7)
        summary["panels"].append(panel)
    axes[-1].set_xlim(*summary["xlim_ms"])
    _sample_axis(axes[-1], rows, rec, starts, span, t0, dt)
    fig.suptitle("Membrane potential at the end of each tick (after input, threshold and reset), %s" % rec.source,
                 fontsize=9)
    fig.tight_layout()
    fig.quantal = summary
    return fig


# ---- rates ---------------------------------------------------------------------------------------

def rates(rec, populations=None, width=10.0):
    """Firing rate per neuron (Hz) of each population at each tick within a sample, averaged over
    the recorded samples: lines for up to 8 populations, a population x time heat map beyond
    (every population unless chosen)."""
    n = int(np.count_nonzero(rec.recorded))
    if n == 0:
        raise ValueError("%s: no sample has recorded spikes" % rec.source)
    chosen = list(populations) if populations is not None else list(rec.populations)
    _chosen_populations(rec, chosen)  # checks the names
    dt, T = rec.dt_ms, rec.ticks
    hz = np.array([rec.tick_counts(p) / (rec.sizes[p] * n * dt / 1000.0) for p in chosen]).reshape(len(chosen), T)
    summary = {"populations": chosen, "samples": n, "xlim_ms": [0.0, T * dt], "rates_hz": hz.tolist()}
    title = "Firing rate per neuron vs time within a sample, mean over %d recorded sample%s (%s)" % (
        n, "s" if n > 1 else "", rec.source)
    if len(chosen) <= MAX_PANELS:
        fig = Figure(figsize=(width, 4.5))
        ax = fig.subplots()
        time = (np.arange(T) + 0.5) * dt
        for name, r in zip(chosen, hz):
            ax.step(time, r, where="mid", linewidth=1.2, label=name)
        ax.set_xlim(0, T * dt)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("rate per neuron (Hz)")
        ax.legend(fontsize=8, loc="best")
        summary["kind"] = "lines"
    else:
        fig = Figure(figsize=(width, min(2.5 + 0.2 * len(chosen), 14.0)))
        ax = fig.subplots()
        positive = hz[hz > 0]
        cmap = colormaps["viridis"].copy()
        cmap.set_bad("white")
        norm = colors.LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
        image = ax.imshow(np.ma.masked_less_equal(hz, 0), aspect="auto", interpolation="nearest", cmap=cmap,
                          norm=norm, extent=(0, T * dt, len(chosen), 0))
        ax.set_yticks(np.arange(len(chosen)) + 0.5)
        ax.set_yticklabels(chosen, fontsize=max(5, min(8, 300 // len(chosen))))
        ax.set_ylabel("population (network order)")
        bar = fig.colorbar(image, ax=ax, label="rate per neuron (Hz, log scale); white: no spike")
        if norm is not None:  # labels at 1, 2, 5 x 10^k: a log bar with only powers of ten reads poorly
            bar.set_ticks(ticker.LogLocator(subs=(1.0, 2.0, 5.0)).tick_values(norm.vmin, norm.vmax))
            bar.ax.set_ylim(norm.vmin, norm.vmax)
            bar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: "%g" % v))
            bar.ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        summary["kind"] = "heat map"
        summary["colorbar_ticks"] = [float(t) for t in bar.get_ticks()]
    ax.set_xlabel("time within the sample (ms; tick = %g ms)" % dt)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.quantal = summary
    return fig


# ---- energy --------------------------------------------------------------------------------------
# One figure of energy per layer for traces (`quantal inspect --plot`, `quantal energy --plot`),
# studies (`quantal plot`) and Python (`quantal.plot.energy`). Its numbers are those of
# `quantal energy --json` (sim/energy_models.cpp computes them; nothing is re-derived here).

ENERGY_MODELS = (("proxy_pj", "proxy, measured", "E_AC × accumulates + E_MAC × MACs, counted"),
                 ("papers_pj", "proxy, the papers' way", "E_AC × rate × T × FLOPs + E_MAC × MACs"),
                 ("memory_pj", "memory-inclusive", "operations + memory accesses (Lemaire 2022)"))
# The model format's role groups, in the order data flows through a block (sim/energy_models.cpp).
ROLE_GROUPS = ("embedding, head", "attention (qkv_in, proj_in)", "MLP (fc1_in, fc2_in)", "stream",
               "patch merging (merge)", "without role")
GROUP_COLOURS = dict(zip(ROLE_GROUPS, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")))


def energy_rows(doc):
    """A network's row of energy(): its layers, the models' totals and the ANN's, from the JSON
    of `quantal energy --json` (a trace or a run). ValueError when it is not that JSON."""
    try:
        totals = {k: doc["models"][i]["input_every_tick_pj"] for i, (k, _, _) in enumerate(ENERGY_MODELS)}
        ann = {"proxy_pj": doc["ann"]["float_pj"], "papers_pj": doc["ann"]["float_pj"],
               "memory_pj": doc["ann"]["memory_model_pj"]}
        profile = doc["assumptions"]["profile"]
        return dict(layers=doc["layers"], totals=totals, ann=ann, ann_name=doc["ann"]["baseline"],
                    memory="%s, %s memories, %s updates" % (profile["name"], profile["memory"],
                                                           profile["neuron_updates"].replace("_", "-")))
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError("not the JSON of `quantal energy --json` (%s missing)" % e) from None


def engineering_unit(values_pj):
    """(scale, unit) so that the largest value reads between 1 and 1000."""
    top = max([abs(v) for v in values_pj if v == v] + [0.0])
    for scale, unit in ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if top >= scale:
            return scale, unit
    return 1.0, "pJ"


def energy(rows, title):
    """One row of panels per network (rows: [(label, energy_rows(...))]), one panel per energy
    model: every layer (target population) as a bar, grouped and coloured by the model format's
    role groups, per sample with the analog input charged every tick; each panel's title gives
    the model's total and its ratio to the ANN on that model's terms. fig.quantal: per network
    label, the layers in drawn order, their groups and {model key: pJ per layer}."""
    n_layers = max(len(r["layers"]) for _, r in rows)
    fig = Figure(figsize=(5.2 * len(ENERGY_MODELS), 1.6 + 0.16 * n_layers * len(rows)))
    axes = fig.subplots(len(rows), len(ENERGY_MODELS), squeeze=False, sharey="row")
    drawn = {}
    for (label, r), panel_row in zip(rows, axes):
        order = sorted(range(len(r["layers"])), key=lambda i: (ROLE_GROUPS.index(r["layers"][i]["group"])
                                                               if r["layers"][i]["group"] in ROLE_GROUPS
                                                               else len(ROLE_GROUPS), i))
        layers = [r["layers"][i] for i in order]
        y = np.arange(len(layers))
        groups = [l["group"] for l in layers]
        starts = [i for i in range(len(groups)) if i == 0 or groups[i] != groups[i - 1]]
        drawn[label] = {"layers": [l["layer"] for l in layers], "groups": groups,
                        "pj": {key: [l[key] for l in layers] for key, _, _ in ENERGY_MODELS}}
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
    handles = [Patch(color=GROUP_COLOURS[g]) for g in present]
    fig.legend(handles, ["role group: " + g for g in present], loc="upper center", ncol=min(len(present), 6),
               bbox_to_anchor=(0.5, 0.995), fontsize=8, frameon=False)
    fig.suptitle(title + " (layer = target population; analog input charged every tick)", y=1.02, fontsize=10)
    fig.tight_layout()
    fig.quantal = drawn
    return fig


# ---- accuracy ------------------------------------------------------------------------------------

def wilson_interval(correct, n, z=1.959963984540054):
    """95 % Wilson score interval of a proportion (no scipy needed; close to Clopper-Pearson)."""
    correct, n = np.asarray(correct, np.float64), np.asarray(n, np.float64)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def accuracy(curves, dt_ms=1.0, width=7.0):
    """Accuracy (%) vs ticks simulated, one line per curve with its 95 % Wilson interval as a
    band; curves: {label: (observed ticks, correct counts per observed tick, samples)}."""
    fig = Figure(figsize=(width, 4.2))
    ax = fig.subplots()
    summary = {"curves": {}}
    for label, (observed, correct, n) in curves.items():
        observed, correct = np.asarray(observed), np.asarray(correct)
        low, high = wilson_interval(correct, n)
        ax.plot(observed, 100 * correct / n, marker="o", clip_on=False, label="%s (%d samples)" % (label, n))
        ax.fill_between(observed, 100 * low, 100 * high, alpha=0.2, linewidth=0)
        summary["curves"][label] = {"observed": observed.tolist(), "accuracy": (correct / n).tolist()}
    top = max((max(c["observed"]) for c in summary["curves"].values()), default=1)
    ax.set_xlim(0, top)
    ax.set_ylim(0, 100)
    ax.set_xlabel("ticks simulated (1 tick = %g ms)" % dt_ms)
    ax.set_ylabel("accuracy (%), band: 95 % interval")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Accuracy vs simulated time", fontsize=9)
    fig.tight_layout()
    fig.quantal = summary
    return fig
