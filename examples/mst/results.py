"""Collects the evaluation JSON files under examples/mst/models/ into the markdown table of
docs/mst.md: quantised-ANN accuracy on the full test set, and for every SNN run (finished, or
stopped early: its `.partial` file) the accuracy per T beside the ANN's accuracy on the same
images (a paired comparison when the SNN saw a subset), with spikes, synaptic events and q·k
coincidences per image and tick; then the gaps the targets of issue 4 are about.

    /usr/bin/python3 examples/mst/results.py [--json]
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
TICKS = ("8", "16", "32", "64", "128", "256")
RATIOS = ("0", "50", "75")


def _load(path):
    with open(path) as f:
        return json.load(f)


def snn_runs(ratio):
    """Every SNN run of one model: image range, accuracy per T, spikes and events per image and tick."""
    runs = []
    for path in sorted(glob.glob(os.path.join(MODELS, f"mst_r{ratio}.snn*.json"))):
        r = _load(path)
        runs.append({"file": os.path.basename(path), "offset": r["offset"], "samples": r["samples"],
                     "accuracy": r["accuracy"], "ticks": r["ticks"],
                     "spikes": r["total_spikes_per_sample"] / r["ticks"],
                     "events": r["total_synaptic_events_per_sample"] / r["ticks"], "seconds": r["seconds"],
                     "coincidences": sum(op["coincidences"] for op in r["operator_counts_per_sample"].values())
                     / r["ticks"]})
    for path in sorted(glob.glob(os.path.join(MODELS, f"mst_r{ratio}.snn*.json.partial"))):
        r = _load(path)
        runs.append({"file": os.path.basename(path), "offset": r["offset"], "samples": r["samples_done"],
                     "accuracy": r["accuracy_so_far"], "partial": True, "seconds": r["seconds"]})
    return [r for r in runs if r["samples"]]


def collect():
    _, labels = data.load("test")
    rows = []
    for ratio in RATIOS:
        path = os.path.join(MODELS, f"mst_r{ratio}.ann.json")
        if not os.path.exists(path):
            continue
        ann = _load(path)
        pred = np.array(ann["predictions"])
        for run in snn_runs(ratio) or [None]:
            row = {"ratio": int(ratio) / 100, "ann": ann["accuracy"], "snn": run}
            if run:
                a, b = run["offset"], run["offset"] + run["samples"]
                row["ann_on_snn_images"] = float((pred[a:b] == labels[a:b]).mean())
            rows.append(row)
    return rows


def markdown(rows):
    head = ("| mask ratio | ANN, 10,000 images | SNN test images | ANN on those | "
            + " | ".join(f"T={t}" for t in TICKS) + " | spikes | synaptic events | q·k coincidences |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        s = r["snn"]
        if not s:
            lines.append(f"| {r['ratio']:.2f} | {100 * r['ann']:.2f} | – | – |" + " – |" * (len(TICKS) + 3))
            continue
        cells = [f"{100 * s['accuracy'][t]:.2f}" if t in s["accuracy"] else "–" for t in TICKS]
        images = f"{s['offset']}–{s['offset'] + s['samples'] - 1}" + (" (partial run)" if s.get("partial") else "")
        spikes = f"{s['spikes']:,.0f}" if "spikes" in s else "–"
        events = f"{s['events']:,.0f}" if "events" in s else "–"
        pairs = f"{s['coincidences']:,.0f}" if "coincidences" in s else "–"
        lines.append(f"| {r['ratio']:.2f} | {100 * r['ann']:.2f} | {images} | {100 * r['ann_on_snn_images']:.2f} | "
                     + " | ".join(cells) + f" | {spikes} | {events} | {pairs} |")
    return "\n".join(lines)


def gaps(rows):
    """The issue's targets: each masked ANN against the ratio-0 ANN, and every SNN run at T = 64
    and 128 against its own ANN on the same images (points; negative = below)."""
    ann0 = next((r["ann"] for r in rows if r["ratio"] == 0), None)
    head = "| mask ratio | ANN − ratio-0 ANN | SNN test images | SNN − ANN at T=64 | at T=128 |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        s = r["snn"]
        if not s or "128" not in s["accuracy"]:
            continue
        d_ann = f"{100 * (r['ann'] - ann0):+.2f}" if ann0 is not None else "–"
        images = f"{s['offset']}–{s['offset'] + s['samples'] - 1}" + (" (partial run)" if s.get("partial") else "")
        d = [f"{100 * (s['accuracy'][t] - r['ann_on_snn_images']):+.2f}" for t in ("64", "128")]
        lines.append(f"| {r['ratio']:.2f} | {d_ann} | {images} | {d[0]} | {d[1]} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = collect()
    print(json.dumps(rows, indent=1) if args.json else markdown(rows) + "\n\n" + gaps(rows))


if __name__ == "__main__":
    main()
