"""Collects the evaluation JSON files under examples/mst/models/ into the markdown table of
docs/mst.md: quantised-ANN accuracy on the full test set, and SNN accuracy per T with the ANN's
accuracy on the same images beside it (paired comparison when the SNN saw a subset).

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


def _load(path):
    with open(path) as f:
        return json.load(f)


def _runs(ratio):
    """Finished SNN runs, and partial ones (a run stopped early: the images done so far)."""
    runs = [_load(p) for p in sorted(glob.glob(os.path.join(MODELS, f"mst_r{ratio}.snn*.json")))]
    for path in sorted(glob.glob(os.path.join(MODELS, f"mst_r{ratio}.snn*.json.partial"))):
        part = _load(path)
        runs.append({"samples": part["samples_done"], "offset": part["offset"],
                     "accuracy": part["accuracy_so_far"], "partial": True})
    return [r for r in runs if r.get("samples")]


def snn_runs(ratio):
    """SNN results of one model, merged over disjoint image ranges."""
    runs = _runs(ratio)
    if not runs:
        return None
    n = sum(r["samples"] for r in runs)
    acc = {t: sum(r["accuracy"][t] * r["samples"] for r in runs) / n
           for t in TICKS if all(t in r["accuracy"] for r in runs)}
    images = sorted((r["offset"], r["offset"] + r["samples"]) for r in runs)
    full = [r for r in runs if "total_spikes_per_sample" in r]
    m = sum(r["samples"] for r in full) or 1
    return {"samples": n, "images": images, "accuracy": acc, "partial_runs": sum("partial" in r for r in runs),
            "spikes_per_sample": sum(r["total_spikes_per_sample"] * r["samples"] for r in full) / m,
            "synaptic_events_per_sample": sum(r["total_synaptic_events_per_sample"] * r["samples"]
                                              for r in full) / m}


def collect():
    _, labels = data.load("test")
    rows = []
    for ratio in ("0", "50", "75"):
        path = os.path.join(MODELS, f"mst_r{ratio}.ann.json")
        if not os.path.exists(path):
            continue
        ann = _load(path)
        row = {"ratio": int(ratio) / 100, "ann": ann["accuracy"], "snn": snn_runs(ratio)}
        if row["snn"] and "predictions" in ann:
            pred = np.array(ann["predictions"])
            hit = np.concatenate([pred[a:b] == labels[a:b] for a, b in row["snn"]["images"]])
            row["ann_on_snn_images"] = float(hit.mean())
        rows.append(row)
    return rows


def markdown(rows):
    head = "| mask ratio | ANN (10,000) | SNN images | ANN on those | " + " | ".join(f"T={t}" for t in TICKS) + \
           " | spikes / image | synaptic events / image |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        s = r["snn"] or {"accuracy": {}, "samples": 0}
        cells = [f"{100 * s['accuracy'][t]:.2f}" if t in s["accuracy"] else "–" for t in TICKS]
        lines.append(f"| {r['ratio']:.2f} | {100 * r['ann']:.2f} | {s['samples']} | "
                     f"{100 * r.get('ann_on_snn_images', float('nan')):.2f} | " + " | ".join(cells) +
                     f" | {s.get('spikes_per_sample', 0):,.0f} | {s.get('synaptic_events_per_sample', 0):,.0f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = collect()
    print(json.dumps(rows, indent=1) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
