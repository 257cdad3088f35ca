"""Does quantal's event-driven simulation of an exported model match the time-stepped reference?

Runs the same model file on the same Fashion-MNIST test images twice — spike by spike with
`quantal run` (C++, event-driven) and tick by tick with reference.py (PyTorch) in float64, the
engine's precision — and compares spike counts per population, synaptic events per projection,
and predictions.

Without masking both are deterministic and must agree up to float rounding (a neuron within
rounding distance of its threshold may fire one tick apart: the engine sums a neuron's inputs in
delivery order, the reference per layer). With masking both draw their own random masks, so only
the statistics can agree.

    /usr/bin/python3 examples/mst/compare_engine.py --model examples/mst/models/mst_r0.h5 \
        --samples 20 --ticks 64 [--quantal build/apps/quantal] [--json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import reference  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def _names(dataset):
    return [n.decode() if isinstance(n, bytes) else str(n) for n in dataset[()]]


def run_engine(quantal, model, samples, offset, ticks, seed, threads):
    """quantal run with a trace; returns per-sample-averaged counts and predictions."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.h5")
        cmd = [quantal, "run", "--model", model, "--ticks", str(ticks),
               "--input", os.path.join(data.DATA_DIR, "t10k-images-idx3-ubyte.gz"),
               "--labels", os.path.join(data.DATA_DIR, "t10k-labels-idx1-ubyte.gz"),
               "--samples", str(samples), "--offset", str(offset), "--seed", str(seed),
               "--threads", str(threads), "--trace", trace]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
        with h5py.File(trace, "r") as f:
            energy = f["energy"]
            pops = _names(energy["populations/name"])
            projs = _names(energy["projections/name"])
            spikes = energy["total/populations/spikes"][()] / samples
            events = energy["total/projections/transmitted"][()] / samples
            return {"spikes": dict(zip(pops, spikes.tolist())),
                    "events": dict(zip(projs, events.tolist())),
                    "predictions": f["samples/prediction"][()].tolist(),
                    "labels": f["samples/label"][()].tolist()}


def run_reference(model, samples, offset, ticks, seed):
    net = reference.Network(model, dtype=torch.float64)
    images, labels = data.load("test")
    images = torch.from_numpy(images[offset:offset + samples, None])
    labels = torch.from_numpy(labels[offset:offset + samples])
    r = reference.evaluate(net, images, labels, ticks=ticks, seed=seed)
    return {"spikes": r["spikes_per_sample"], "events": r["synaptic_events_per_sample"],
            "predictions": r["predictions"], "labels": labels.tolist()}


def compare(engine, ref):
    """Per-population relative differences and prediction agreement."""
    rows = []
    for name, ref_spikes in ref["spikes"].items():
        got = engine["spikes"].get(name, float("nan"))
        rows.append({"population": name, "quantal": got, "reference": ref_spikes,
                     "relative_difference": abs(got - ref_spikes) / max(ref_spikes, 1.0)})
    total_q = sum(engine["spikes"].get(r["population"], 0.0) for r in rows)
    total_r = sum(ref["spikes"].values())
    agree = sum(a == b for a, b in zip(engine["predictions"], ref["predictions"]))
    n = len(ref["predictions"])
    return {"populations": rows,
            "total_spikes": {"quantal": total_q, "reference": total_r,
                             "relative_difference": abs(total_q - total_r) / max(total_r, 1.0)},
            "max_population_difference": max((r["relative_difference"] for r in rows), default=0.0),
            "prediction_agreement": agree / n if n else 1.0,
            "accuracy": {"quantal": float(np.mean(np.array(engine["predictions"]) == np.array(engine["labels"]))),
                         "reference": float(np.mean(np.array(ref["predictions"]) == np.array(ref["labels"])))}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--ticks", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quantal", default=os.environ.get("QUANTAL_BINARY", os.path.join(ROOT, "build", "apps", "quantal")))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    engine = run_engine(args.quantal, args.model, args.samples, args.offset, args.ticks, args.seed, args.threads)
    ref = run_reference(args.model, args.samples, args.offset, args.ticks, args.seed)
    result = compare(engine, ref)
    result.update(model=args.model, samples=args.samples, offset=args.offset, ticks=args.ticks)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.model}: {args.samples} images from {args.offset}, T = {args.ticks}")
    print(f"  {'population':<18} {'quantal':>12} {'reference':>12} {'rel. diff':>10}   (spikes per sample)")
    for r in result["populations"]:
        print(f"  {r['population']:<18} {r['quantal']:12.1f} {r['reference']:12.1f} {r['relative_difference']:10.2e}")
    t = result["total_spikes"]
    print(f"  {'total':<18} {t['quantal']:12.1f} {t['reference']:12.1f} {t['relative_difference']:10.2e}")
    print(f"  predictions agree on {result['prediction_agreement']:.1%}; accuracy quantal "
          f"{result['accuracy']['quantal']:.1%}, reference {result['accuracy']['reference']:.1%}")


if __name__ == "__main__":
    main()
