#!/usr/bin/python3
"""Plots of a failure-probability study written by `quantal sweep` (docs/sweep.md, "Plots").

    /usr/bin/python3 traces/plot_study.py STUDY.h5 --out DIR [--ratios 0.5,0.9]

Writes into DIR:
  accuracy_vs_ratio.png      accuracy at the last observed tick vs failure probability, one line per
                             (target set, release mode, compensation) with its 95 % Clopper-Pearson band
  energy_vs_ratio.png        energy per image vs failure probability, the same lines, and the ANN's level
  accuracy_energy_front.png  every configuration as (energy relative to its baseline, accuracy), Pareto front
  accuracy_vs_ticks.png      accuracy vs the observed tick counts, a panel per chosen ratio (--ratios)
  sensitivity.png/.csv       only for configurations of `--targets each`: groups ranked by accuracy lost
                             per energy saved
  summary.txt                every configuration: accuracy, paired change, p, energy relative to baseline
  energy_per_layer.png       with --energy-models JSON (`quantal energy STUDY.h5 --json`, which `quantal
                             plot` passes): each model's baseline, every layer under each energy model,
                             grouped by role (plot_common.plot_energy_per_layer, as for a trace)

`quantal plot` calls this script. Panels: a column per model, a row per seed. A baseline (ratio 0)
belongs to every line at ratio 0; a configuration that repeats another (`same_as`) is drawn once,
and a line that repeats another line entirely is named in that line's legend entry instead.
"""
import argparse
import csv
import io
import math
import os
import sys

import numpy as np

from plot_common import (ENERGY_MODELS, InputProblem, PAPER_STYLE, add_error_prefix_option, as_text, open_hdf5,
                         plot_energy_per_layer, prepare_out_dir, run_reporting_input_problems, save_figure, write_text)

import matplotlib.pyplot as plt  # plot_common has selected the Agg backend (files only, no display)

FORMAT = "quantal-study"
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]  # Okabe-Ito
EACH_COLOR = "0.55"
# (release, compensated) -> line style; release -> marker
LINESTYLES = {("spike", False): "-", ("synapse", False): (0, (5, 2)), ("spike", True): (0, (1, 1.5)),
              ("synapse", True): (0, (5, 1.5, 1, 1.5))}
# (release, compensated) -> marker and whether it is filled: points tell the variants apart without lines
MARKERS = {("spike", False): ("o", True), ("synapse", False): ("s", False), ("spike", True): ("^", True),
           ("synapse", True): ("v", False)}
PANEL = (3.6, 2.9)  # inches per panel


# ---------------------------------------------------------------------------------------------
# Reading and checking the study file: everything is read and checked before anything is drawn.

class Study:
    pass


def _dataset(f, path, name, shape, kind):
    """The dataset's values; shape None: any one-dimensional shape."""
    if name not in f:
        raise InputProblem("%s: dataset /%s is missing" % (path, name))
    d = f[name]
    if not hasattr(d, "shape") or d.shape is None:
        raise InputProblem("%s: /%s is not a dataset" % (path, name))
    if shape is None:
        if len(d.shape) != 1:
            raise InputProblem("%s: /%s has shape %s, expected one dimension" % (path, name, tuple(d.shape)))
    elif tuple(d.shape) != tuple(shape):
        raise InputProblem("%s: /%s has shape %s, expected %s" % (path, name, tuple(d.shape), tuple(shape)))
    value = d[()]
    if kind == "f" and not np.issubdtype(value.dtype, np.floating):
        raise InputProblem("%s: /%s is %s, expected floating point" % (path, name, value.dtype))
    if kind == "i" and not np.issubdtype(value.dtype, np.integer):
        raise InputProblem("%s: /%s is %s, expected integers" % (path, name, value.dtype))
    return value


def _attribute(obj, path, where, name):
    if name not in obj.attrs:
        raise InputProblem("%s: attribute %s of %s is missing" % (path, name, where))
    return obj.attrs[name]


def _strings(value, path, what, count):
    items = [as_text(v) for v in np.atleast_1d(value)]
    if count is not None and len(items) != count:
        raise InputProblem("%s: %s has %d entries, expected %d" % (path, what, len(items), count))
    return items


def read_study(path):
    with open_hdf5(path) as f:
        if "format" not in f.attrs:
            raise InputProblem("%s: not a quantal study (no attribute format)" % path)
        fmt = as_text(f.attrs["format"])
        if fmt != FORMAT:
            raise InputProblem("%s: not a quantal study (attribute format is '%s', expected '%s')"
                               % (path, fmt, FORMAT))
        s = Study()
        s.path = path
        s.models = _strings(_attribute(f, path, "/", "models"), path, "attribute models of /", None)
        s.samples = int(_attribute(f, path, "/", "samples"))
        s.e_ac = float(_attribute(f, path, "/", "e_ac_pj"))
        s.e_mac = float(_attribute(f, path, "/", "e_mac_pj"))
        s.observe = _dataset(f, path, "observe", None, "i").astype(np.int64)
        O = len(s.observe)
        if O == 0:
            raise InputProblem("%s: /observe is empty" % path)
        s.ratio = _dataset(f, path, "configurations/ratio", None, "f")
        C = len(s.ratio)
        s.model = _dataset(f, path, "configurations/model", (C,), "i").astype(np.int64)
        s.seed = _dataset(f, path, "configurations/seed", (C,), "i").astype(np.int64)
        s.baseline = _dataset(f, path, "configurations/baseline", (C,), "i").astype(np.int64)
        s.same_as = _dataset(f, path, "configurations/same_as", (C,), "i").astype(np.int64)
        g = f["configurations"]
        s.release = _strings(_attribute(g, path, "/configurations", "release"), path,
                             "attribute release of /configurations", C)
        s.targets = _strings(_attribute(g, path, "/configurations", "targets"), path,
                             "attribute targets of /configurations", C)
        # Optional, later additions to the format: absent in older files means 0 for every configuration.
        s.compensate = (_dataset(f, path, "configurations/compensate", (C,), "i").astype(bool)
                        if "compensate" in g else np.zeros(C, dtype=bool))
        s.each = (_dataset(f, path, "configurations/each", (C,), "i").astype(bool)
                  if "each" in g else np.zeros(C, dtype=bool))
        for name in ("accuracy", "accuracy_low", "accuracy_high", "change", "change_low", "change_high", "p_value"):
            setattr(s, name, _dataset(f, path, "results/" + name, (C, O), "f"))
        for name in ("energy_pj", "energy_vs_baseline", "energy_vs_ann"):
            setattr(s, name, _dataset(f, path, "results/" + name, (C,), "f"))
    s.C, s.O = C, O
    if C == 0:
        raise InputProblem("%s: /configurations is empty" % path)
    for name, values, low, high in (("model", s.model, 0, len(s.models)), ("baseline", s.baseline, 0, C),
                                    ("same_as", s.same_as, -1, C)):
        bad = np.flatnonzero((values < low) | (values >= high))
        if len(bad):
            raise InputProblem("%s: /configurations/%s[%d] = %d is outside [%d, %d)"
                               % (path, name, bad[0], values[bad[0]], low, high))
    bad = [i for i in range(C) if s.release[i] not in ("none", "spike", "synapse")]
    if bad:
        raise InputProblem("%s: attribute release of /configurations: entry %d is '%s' (none, spike or synapse)"
                           % (path, bad[0], s.release[bad[0]]))
    s.last = int(np.argmax(s.observe))  # the last observed tick
    s.T = int(s.observe[s.last])
    s.seeds = sorted(set(int(x) for x in s.seed))
    s.model_names = [os.path.splitext(os.path.basename(m))[0] for m in s.models]
    if len(set(s.model_names)) < len(s.model_names):  # same file name in different directories
        s.model_names = ["%d: %s" % (k, name) for k, name in enumerate(s.model_names)]
    return s


def own(s, i):
    """The configuration whose results configuration i reports (following same_as)."""
    seen = set()
    while s.same_as[i] >= 0 and i not in seen:
        seen.add(i)
        i = int(s.same_as[i])
    return i


def is_baseline(s, i):
    return s.release[i] == "none"


# ---------------------------------------------------------------------------------------------
# Lines: (target set, release, compensation) per model and seed, over the ratios.

class Line:
    def __init__(self, model, seed, targets, release, compensated):
        self.model, self.seed, self.targets, self.release, self.compensated = model, seed, targets, release, compensated
        self.points = {}  # ratio -> configuration
        self.also = []  # labels of lines that repeat this one

    def label(self):
        text = "%s, %s%s" % (self.targets, self.release, ", compensated" if self.compensated else "")
        return text + ("".join(" (= %s)" % a for a in self.also))

    def ratios(self):
        return sorted(self.points)

    def configs(self):
        return [self.points[r] for r in self.ratios()]


def lines_of(s):
    """Lines per (model, seed), in the file's order; a line repeating an earlier one is folded into it, and
    one with no point above ratio 0 (a grid of ratio 0 alone) is only the baseline, drawn as such."""
    lines = {}
    for i in range(s.C):
        if is_baseline(s, i) or s.each[i]:
            continue
        key = (int(s.model[i]), int(s.seed[i]), s.targets[i], s.release[i], bool(s.compensate[i]))
        line = lines.setdefault(key, Line(*key))
        r = float(s.ratio[i])
        if r > 0:
            line.points[r] = i
    by_panel = {}
    for line in lines.values():
        if not line.points:
            continue
        line.points.setdefault(0.0, int(s.baseline[next(iter(line.points.values()))]))  # its comparison
        kept = by_panel.setdefault((line.model, line.seed), [])
        signature = [own(s, i) for i in line.configs()]
        twin = next((k for k in kept if [own(s, i) for i in k.configs()] == signature
                     and k.ratios() == line.ratios()), None)
        if twin is not None:
            twin.also.append(("%s" % line.release if line.targets == twin.targets else
                              "%s, %s" % (line.targets, line.release))
                             + (", compensated" if line.compensated else ""))
        else:
            kept.append(line)
    return by_panel


class Styles:
    """Colour per target set, dash per (release, compensation), marker per release: fixed for the whole run."""

    def __init__(self, by_panel):
        names = []
        for lines in by_panel.values():
            for line in lines:
                if line.targets not in names:
                    names.append(line.targets)
        self.colors = {name: COLORS[k % len(COLORS)] for k, name in enumerate(names)}

    def of(self, line):
        color = self.colors[line.targets]
        marker, filled = MARKERS[(line.release, line.compensated)]
        return dict(color=color, linestyle=LINESTYLES[(line.release, line.compensated)], marker=marker,
                    markerfacecolor=color if filled else "none", markeredgewidth=1.1)

    def point(self, line):
        st = self.of(line)
        del st["linestyle"]
        return st


def panels(s):
    """(row, column) -> (model, seed): a column per model, a row per seed."""
    models = sorted(set(int(m) for m in s.model))
    return models, s.seeds


def make_grid(rows, cols):
    return plt.subplots(len(rows), len(cols), figsize=(PANEL[0] * len(cols), PANEL[1] * len(rows)), squeeze=False,
                        layout="constrained", sharey=True)


def panel_title(s, model, seed):
    text = s.model_names[model]
    if len(s.seeds) > 1:
        text += ", seed %d" % seed
    return text


def finish(fig, title):
    """The figure's title above its panels (the figures use matplotlib's constrained layout, which makes
    room for it whatever the figure's height)."""
    fig.suptitle(title)


def shared_legend(fig, handles, labels):
    if not handles:
        return
    ncol = min(3, len(handles))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)


def collect_legend(ax, handles, labels):
    for h, l in zip(*ax.get_legend_handles_labels()):
        if l not in labels:
            handles.append(h)
            labels.append(l)


def baseline_of(s, model, seed):
    base = [i for i in range(s.C) if is_baseline(s, i) and s.model[i] == model and s.seed[i] == seed]
    return base[0] if base else None


def percent(x):
    return 100.0 * np.asarray(x, dtype=float)


# ---------------------------------------------------------------------------------------------
# Figures

def plot_accuracy_vs_ratio(s, by_panel, styles, path, dpi):
    models, seeds = panels(s)
    fig, axes = make_grid(seeds, models)
    handles, labels = [], []
    for r, seed in enumerate(seeds):
        for c, model in enumerate(models):
            ax = axes[r, c]
            b = baseline_of(s, model, seed)
            if b is not None:
                ax.axhline(100 * s.accuracy[b, s.last], color="0.35", linewidth=0.8, linestyle=(0, (2, 2)),
                           label="baseline (ratio 0)", zorder=1.8)
            for line in by_panel.get((model, seed), []):
                x = np.array(line.ratios())
                idx = line.configs()
                st = styles.of(line)
                ax.fill_between(x, percent(s.accuracy_low[idx, s.last]), percent(s.accuracy_high[idx, s.last]),
                                color=st["color"], alpha=0.12, linewidth=0)
                ax.plot(x, percent(s.accuracy[idx, s.last]), label=line.label(), **st)
            if b is not None:  # the shared ratio-0 point of every line, with its interval
                a, lo, hi = (100 * v[b, s.last] for v in (s.accuracy, s.accuracy_low, s.accuracy_high))
                ax.errorbar([0.0], [a], yerr=[[a - lo], [hi - a]], color="black", marker="*", markersize=8,
                            elinewidth=0.8, capsize=2, zorder=4, linestyle="none")
            ax.set_title(panel_title(s, model, seed))
            top = float(max(s.ratio))
            ax.set_xlim(-0.03, min(1.0, top + 0.05) if top > 0 else 1.0)
            ax.set_ylim(0, 100)
            if r == len(seeds) - 1:
                ax.set_xlabel("failure probability")
            if c == 0:
                ax.set_ylabel("accuracy at T = %d ticks (%%)" % s.T)
            collect_legend(ax, handles, labels)
    finish(fig, "Accuracy vs failure probability (%d images, 95 %% Clopper-Pearson bands)" % s.samples)
    shared_legend(fig, handles, labels)
    save_figure(fig, path, dpi, tight=True)


def energy_unit(values):
    top = max([abs(v) for v in values if np.isfinite(v)] or [1.0])
    for scale, unit in ((1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ")):
        if top >= scale:
            return scale, unit
    return 1.0, "pJ"


def ann_pj(s, i):
    """The ANN's energy per image for configuration i's model, when the file gives one."""
    v = s.energy_vs_ann[i]
    if not np.isfinite(v) or v <= 0:
        return None
    value = s.energy_pj[i] / v
    return value if np.isfinite(value) and value > 0 else None


def plot_energy_vs_ratio(s, by_panel, styles, path, dpi):
    models, seeds = panels(s)
    levels = [ann_pj(s, i) for i in range(s.C)]
    scale, unit = energy_unit(list(s.energy_pj) + [v for v in levels if v is not None])
    fig, axes = make_grid(seeds, models)
    handles, labels = [], []
    for r, seed in enumerate(seeds):
        for c, model in enumerate(models):
            ax = axes[r, c]
            b = baseline_of(s, model, seed)
            if b is not None and levels[b] is not None:
                ax.axhline(levels[b] / scale, color="black", linewidth=1.0, linestyle=(0, (6, 2, 1, 2)),
                           label="ANN (E_MAC × MACs)", zorder=1.8)  # over the grid
            for line in by_panel.get((model, seed), []):
                idx = line.configs()
                ax.plot(line.ratios(), s.energy_pj[idx] / scale, label=line.label(), **styles.of(line))
            ax.set_title(panel_title(s, model, seed))
            if r == len(seeds) - 1:
                ax.set_xlabel("failure probability")
            if c == 0:
                ax.set_ylabel("energy per image (%s)" % unit)
            collect_legend(ax, handles, labels)
    drawn = [v for v in list(s.energy_pj) + [v for v in levels if v is not None] if np.isfinite(v)]
    if drawn and max(drawn) > 0:
        axes[0, 0].set_ylim(0, 1.08 * max(drawn) / scale)  # shared by every panel
    finish(fig, "Energy per image vs failure probability (E_AC %.3g pJ, E_MAC %.3g pJ)" % (s.e_ac, s.e_mac))
    shared_legend(fig, handles, labels)
    save_figure(fig, path, dpi, tight=True)


def pareto_front(x, y):
    """Indices of the points no other point beats (energy <= and accuracy >=, one strictly), by energy."""
    order = sorted(range(len(x)), key=lambda k: (x[k], -y[k]))
    front, best = [], -math.inf
    for k in order:
        if y[k] > best:
            front.append(k)
            best = y[k]
    return front


def plot_front(s, by_panel, styles, path, dpi):
    models, seeds = panels(s)
    fig, axes = make_grid(seeds, models)
    handles, labels = [], []
    for r, seed in enumerate(seeds):
        for c, model in enumerate(models):
            ax = axes[r, c]
            points = []  # (configuration, style, label)
            b = baseline_of(s, model, seed)
            if b is not None:
                points.append((b, dict(color="black", marker="*", markersize=9), "baseline (ratio 0)"))
            drawn = {b}
            for line in by_panel.get((model, seed), []):
                for i in line.configs():
                    if own(s, i) in drawn or is_baseline(s, i):
                        continue
                    drawn.add(own(s, i))
                    points.append((i, styles.point(line), line.label()))
            for i in range(s.C):
                if s.each[i] and s.model[i] == model and s.seed[i] == seed and s.ratio[i] > 0 \
                        and own(s, i) not in drawn:
                    drawn.add(own(s, i))
                    points.append((i, dict(color=EACH_COLOR, marker="D", markersize=3.5), "one group (--targets each)"))
            if not points:
                continue
            idx = [p[0] for p in points]
            x = percent(s.energy_vs_baseline[idx])
            y = percent(s.accuracy[idx, s.last])
            for (i, st, label), xi, yi in zip(points, x, y):
                lo, hi = 100 * s.accuracy_low[i, s.last], 100 * s.accuracy_high[i, s.last]
                ax.errorbar([xi], [yi], yerr=[[yi - lo], [hi - yi]], linestyle="none", elinewidth=0.6,
                            ecolor=st["color"], alpha=0.35, capsize=0)
                ax.plot([xi], [yi], linestyle="none", label=label, zorder=3, **st)
            front = pareto_front(list(x), list(y))
            fx, fy = x[front], y[front]
            ax.plot(fx, fy, drawstyle="steps-post", color="0.2", linewidth=1.0, zorder=2, label="Pareto front")
            # Front points are labelled with their ratio (and group, for `each`) above and to the left: the
            # step line reaches a front point from below-left, so that corner is free.
            labelled = []
            for k in front:
                i = idx[k]
                near = any(abs(x[k] - a) < 4 and abs(y[k] - b) < 4 for a, b in labelled)
                if not is_baseline(s, i) and not near:
                    labelled.append((x[k], y[k]))
                    text = ("%s %g" % (s.targets[i], s.ratio[i])) if s.each[i] else "%g" % s.ratio[i]
                    ax.annotate(text, (x[k], y[k]), textcoords="offset points", xytext=(-3, 3), ha="right",
                                fontsize=7, color="0.2")
            ax.set_title(panel_title(s, model, seed))
            ax.set_ylim(0, 100)
            ax.set_xlim(0, max(105.0, float(np.nanmax(x)) + 5))
            if r == len(seeds) - 1:
                ax.set_xlabel("energy per image relative to baseline (%)")
            if c == 0:
                ax.set_ylabel("accuracy at T = %d ticks (%%)" % s.T)
            collect_legend(ax, handles, labels)
    finish(fig, "Accuracy-energy front: every configuration, the Pareto front labelled with failure probabilities")
    shared_legend(fig, handles, labels)
    save_figure(fig, path, dpi, tight=True)


def chosen_ratios(s, requested):
    present = sorted(set(float(r) for r in s.ratio))
    if requested is None:
        nonzero = [r for r in present if r > 0]
        return nonzero or present  # the baseline (ratio 0) is drawn in every panel
    chosen = []
    for r in requested:
        match = [p for p in present if abs(p - r) <= 1e-12]
        if not match:
            raise InputProblem("--ratios: %g is not a ratio of %s (ratios: %s)"
                               % (r, s.path, ", ".join("%g" % p for p in present)))
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def plot_accuracy_vs_ticks(s, by_panel, styles, ratios, path, dpi):
    models, seeds = panels(s)
    rows = [(m, seed) for seed in seeds for m in models]
    fig, axes = plt.subplots(len(rows), len(ratios), figsize=(PANEL[0] * len(ratios), PANEL[1] * len(rows)),
                             squeeze=False, layout="constrained", sharey=True)
    order = np.argsort(s.observe)
    ticks = s.observe[order]
    handles, labels = [], []
    for r, (model, seed) in enumerate(rows):
        for c, ratio in enumerate(ratios):
            ax = axes[r, c]
            b = baseline_of(s, model, seed)
            if b is not None:
                ax.fill_between(ticks, percent(s.accuracy_low[b, order]), percent(s.accuracy_high[b, order]),
                                color="black", alpha=0.08, linewidth=0)
                ax.plot(ticks, percent(s.accuracy[b, order]), color="black", marker="*", markersize=6,
                        label="baseline (ratio 0)")
            if ratio > 0:
                for line in by_panel.get((model, seed), []):
                    i = line.points.get(ratio)
                    if i is None:
                        continue
                    st = styles.of(line)
                    ax.fill_between(ticks, percent(s.accuracy_low[i, order]), percent(s.accuracy_high[i, order]),
                                    color=st["color"], alpha=0.12, linewidth=0)
                    ax.plot(ticks, percent(s.accuracy[i, order]), label=line.label(), **st)
            ax.set_title("%s, failure probability %g" % (panel_title(s, model, seed), ratio))
            ax.set_ylim(0, 100)
            ax.set_xticks(ticks)
            if r == len(rows) - 1:
                ax.set_xlabel("ticks per image T")
            if c == 0:
                ax.set_ylabel("accuracy (%)")
            collect_legend(ax, handles, labels)
    finish(fig, "Accuracy vs ticks per image (%d images, 95 %% Clopper-Pearson bands)" % s.samples)
    shared_legend(fig, handles, labels)
    save_figure(fig, path, dpi, tight=True)


# ---------------------------------------------------------------------------------------------
# Per-layer sensitivity (`--targets each`)

SENSITIVITY_COLUMNS = ["model", "seed", "ratio", "release", "compensate", "rank", "group", "configuration", "change",
                       "change_low", "change_high", "lost", "energy_vs_baseline", "saved", "lost_per_saved"]


def sensitivity(s):
    """Blocks of one-group configurations, each ranked by accuracy lost per energy saved.

    Per (model, seed, ratio, release, compensation), over the configurations with each = 1 and ratio > 0:
    lost = -change at the last observed tick, saved = 1 - energy_vs_baseline, lost_per_saved = lost / saved
    (+inf when nothing is saved: saved <= 0); ascending, ties in the file's order. A configuration
    repeating another of the same block (same_as) is listed once."""
    blocks = {}
    for i in range(s.C):
        if not s.each[i] or s.ratio[i] <= 0 or is_baseline(s, i):
            continue
        key = (int(s.model[i]), int(s.seed[i]), float(s.ratio[i]), s.release[i], bool(s.compensate[i]))
        blocks.setdefault(key, []).append(i)
    ranked = []
    for key, members in blocks.items():
        kept = [i for i in members if not (s.same_as[i] >= 0 and own(s, i) in members and own(s, i) != i)]
        rows = []
        for i in kept:
            lost = -float(s.change[i, s.last])
            saved = 1.0 - float(s.energy_vs_baseline[i])
            rows.append(dict(configuration=i, group=s.targets[i], change=float(s.change[i, s.last]),
                             change_low=float(s.change_low[i, s.last]), change_high=float(s.change_high[i, s.last]),
                             lost=lost, energy_vs_baseline=float(s.energy_vs_baseline[i]), saved=saved,
                             lost_per_saved=lost / saved if saved > 0 else math.inf))
        rows.sort(key=lambda row: row["lost_per_saved"])  # stable: ties keep the file's order
        for rank, row in enumerate(rows, 1):
            row.update(model=s.models[key[0]], seed=key[1], ratio=key[2], release=key[3], compensate=int(key[4]),
                       rank=rank)
        ranked.append((key, rows))
    return ranked


def write_sensitivity_csv(ranked, path):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(SENSITIVITY_COLUMNS)
    for _, rows in ranked:
        for row in rows:
            w.writerow([repr(v) if isinstance(v, float) else v for v in (row[c] for c in SENSITIVITY_COLUMNS)])
    write_text(path, out.getvalue())


def plot_sensitivity(s, ranked, path, dpi):
    heights = [max(len(rows), 1) * 0.3 + 0.55 for _, rows in ranked]
    fig, axes = plt.subplots(len(ranked), 1, figsize=(7.2, sum(heights) + 1.0), squeeze=False, layout="constrained",
                             sharex=True,
                             gridspec_kw=dict(height_ratios=heights))
    lows = [-100 * row["change_high"] for _, rows in ranked for row in rows]
    highs = [-100 * row["change_low"] for _, rows in ranked for row in rows]
    left, right = min(lows + [0.0]), max(highs + [1.0])
    for ax, (key, rows) in zip(axes[:, 0], ranked):
        model, seed, ratio, release, compensated = key
        y = np.arange(len(rows))
        lost = np.array([100 * row["lost"] for row in rows])
        low = np.array([-100 * row["change_high"] for row in rows])
        high = np.array([-100 * row["change_low"] for row in rows])
        colors = [COLORS[0] if row["lost"] >= 0 else COLORS[2] for row in rows]
        ax.set_axisbelow(True)
        ax.barh(y, lost, color=colors, height=0.62, xerr=[lost - low, high - lost],
                error_kw=dict(ecolor="0.2", elinewidth=0.8, capsize=2))
        ax.set_yticks(y)
        ax.set_yticklabels([row["group"] for row in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)  # rank 1 at the top
        ax.axvline(0, color="black", linewidth=0.8)
        ax.grid(axis="y", visible=False)
        side = ax.get_yaxis_transform()  # x in axes coordinates, y in data
        for k, row in enumerate(rows):
            if math.isinf(row["lost_per_saved"]):
                text = "saves nothing (%+.1f %% energy)" % (-100 * row["saved"])
            else:
                text = "%.3g lost per saved; saves %.1f %%" % (row["lost_per_saved"], 100 * row["saved"])
            ax.text(1.01, k, text, transform=side, va="center", fontsize=7, color="0.25", clip_on=False)
        ax.set_title("%s%s, failure probability %g, %s release%s" % (
            s.model_names[model], ", seed %d" % seed if len(s.seeds) > 1 else "", ratio, release,
            ", compensated" if compensated else ""), loc="left")
    axes[-1, 0].set_xlim(left - 0.04 * (right - left), right + 0.04 * (right - left))
    axes[-1, 0].set_xlabel("accuracy lost at T = %d ticks (percentage points; bars: 95 %% interval of the paired "
                           "change)" % s.T)
    finish(fig, "Per-group sensitivity: one group fails at a time, ranked by accuracy lost per energy saved "
                "(least first)")
    save_figure(fig, path, dpi, tight=True)


# ---------------------------------------------------------------------------------------------
# Summary table

def summary_text(s):
    rows = []
    header = ["#", "model", "seed", "ratio", "release", "compensate", "kind", "targets", "accuracy [95% interval]",
              "change [95% interval]", "p", "energy/baseline", "same as"]
    for i in range(s.C):
        t = s.last
        kind = "baseline" if is_baseline(s, i) else ("each" if s.each[i] else "grid")
        rows.append([str(i), s.model_names[s.model[i]], str(s.seed[i]), "%g" % s.ratio[i], s.release[i],
                     "yes" if s.compensate[i] else "no", kind, s.targets[i],
                     "%.4f [%.4f, %.4f]" % (s.accuracy[i, t], s.accuracy_low[i, t], s.accuracy_high[i, t]),
                     "%+.4f [%+.4f, %+.4f]" % (s.change[i, t], s.change_low[i, t], s.change_high[i, t]),
                     "%.4g" % s.p_value[i, t], "%.4f" % s.energy_vs_baseline[i],
                     str(s.same_as[i]) if s.same_as[i] >= 0 else "-"])
    widths = [max(len(r[k]) for r in rows + [header]) for k in range(len(header))]
    right = {0, 2, 3, 10, 11}

    def fmt(r):
        return "  ".join(c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths))).rstrip()

    lines = ["study: %s" % s.path,
             "%d configurations, %d images each; accuracy and paired change against the baseline at T = %d ticks"
             % (s.C, s.samples, s.T),
             "intervals: 95 % Clopper-Pearson (accuracy), exact conditional (change); p: exact McNemar",
             "models: " + ", ".join("%s = %s" % (n, m) for n, m in zip(s.model_names, s.models)),
             "",
             fmt(header)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------

def parse_ratios(text):
    if text is None:
        return None
    values = []
    for item in text.split(","):
        try:
            v = float(item)
        except ValueError:
            raise InputProblem("--ratios: '%s' is not a number" % item) from None
        if not 0.0 <= v <= 1.0:
            raise InputProblem("--ratios: %s is outside [0, 1]" % item)
        values.append(v)
    return values


def energy_rows_of_study(path):
    """Per model of the study, its baseline configuration as a row of the per-layer figure, from
    the JSON of `quantal energy STUDY.h5 --json`."""
    import json
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        rows = []
        for m, model in enumerate(doc["models"]):
            c = next(c for c in doc["configurations"] if c["model"] == m and c["baseline"] == c["configuration"])
            rows.append(("model %d (%s), baseline" % (m, os.path.basename(model)), dict(
                layers=c["layers"], totals={k: c[k] for k, _, _ in ENERGY_MODELS},
                ann={"proxy_pj": c["ann_pj"], "papers_pj": c["ann_pj"], "memory_pj": c["ann_memory_pj"]},
                memory=doc["memory"])))
        return rows, doc
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise InputProblem("%s: not the JSON of `quantal energy STUDY.h5 --json` (%r)" % (path, e)) from None


def plot_study(args):
    requested = parse_ratios(args.ratios)
    s = read_study(args.study)
    ratios = chosen_ratios(s, requested)
    prepare_out_dir(args.out)
    by_panel = lines_of(s)
    styles = Styles(by_panel)
    out = lambda name: os.path.join(args.out, name)  # noqa: E731
    written = []
    with plt.rc_context(PAPER_STYLE):
        plot_accuracy_vs_ratio(s, by_panel, styles, out("accuracy_vs_ratio.png"), args.dpi)
        plot_energy_vs_ratio(s, by_panel, styles, out("energy_vs_ratio.png"), args.dpi)
        plot_front(s, by_panel, styles, out("accuracy_energy_front.png"), args.dpi)
        plot_accuracy_vs_ticks(s, by_panel, styles, ratios, out("accuracy_vs_ticks.png"), args.dpi)
        written += ["accuracy_vs_ratio.png", "energy_vs_ratio.png", "accuracy_energy_front.png",
                    "accuracy_vs_ticks.png"]
        if s.each.any():
            ranked = sensitivity(s)
            if ranked:
                plot_sensitivity(s, ranked, out("sensitivity.png"), args.dpi)
                write_sensitivity_csv(ranked, out("sensitivity.csv"))
                written += ["sensitivity.png", "sensitivity.csv"]
    if args.energy_models:
        rows, doc = energy_rows_of_study(args.energy_models)
        plot_energy_per_layer(rows, out("energy_per_layer.png"), "Energy per layer under each model, %s, %d images, T = %d"
                              % (os.path.basename(args.study), doc["samples"], doc["ticks"]), args.dpi)
        written.append("energy_per_layer.png")
    write_text(out("summary.txt"), summary_text(s))
    written.append("summary.txt")
    for name in written:
        print(out(name))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", help="study file written by quantal sweep (HDF5)")
    p.add_argument("--out", required=True, help="directory for the figures, sensitivity.csv and summary.txt")
    p.add_argument("--ratios", help="failure probabilities shown in accuracy_vs_ticks.png, e.g. 0.5,0.9 "
                                    "(default: every nonzero ratio of the study)")
    p.add_argument("--dpi", type=int, default=200)
    p.add_argument("--energy-models", help="JSON of `quantal energy STUDY.h5 --json`: also draw energy_per_layer.png")
    add_error_prefix_option(p, "plot_study.py")
    args = p.parse_args(argv)
    return run_reporting_input_problems(lambda: plot_study(args), args.error_prefix)


if __name__ == "__main__":
    sys.exit(main())
