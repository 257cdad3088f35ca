"""The MST on Fashion-MNIST from Python (docs/python.md): load the converted model, run the test
images without failures and with Random Spike Masking on the attention (ratio 0.75, the MST's own
"spike" release), and plot accuracy vs simulated ticks and energy per layer.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/mst_accuracy_energy.py --out mst_plots [--images 100]

Writes OUT/accuracy_vs_ticks.png and OUT/energy_per_layer.png and prints the accuracy at each
observed tick count and the energy per image.
"""
import argparse
import gzip
import os

import numpy as np

import quantal
import quantal.plot

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def fashion_mnist(count):
    """The first `count` test images (uint8, N x 28 x 28) and their labels."""
    with gzip.open(f"{DATA}/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)[:count]
    with gzip.open(f"{DATA}/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)[:count]
    return images, labels


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory for the figures")
    p.add_argument("--images", type=int, default=100, help="test images to run (default 100)")
    p.add_argument("--model", default=os.path.join(HERE, "..", "mst", "models", "mst_r0.h5"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    images, labels = fashion_mnist(args.images)
    net = quantal.load(args.model)
    observe = [4, 8, 16, 32, 64]
    common = dict(labels=labels, ticks=64, observe=observe, seed=1, threads=args.threads, record=[])
    runs = {"no failures": net.run(images, **common),
            "RSM 0.75 on attention": net.run(images, mask=0.75, release="spike", targets="attention", **common)}
    print("run                     " + "".join(f"{f'T={t}':>8}" for t in observe) + "   energy pJ/image")
    for label, r in runs.items():
        accuracy = (r.readout.argmax(axis=2) == r.labels[:, None]).mean(axis=0)
        print(f"{label:24}" + "".join(f"{a:8.3f}" for a in accuracy) + f"   {r.ledger.snn_pj.mean():15.4g}")

    os.makedirs(args.out, exist_ok=True)
    quantal.plot.accuracy(runs).savefig(os.path.join(args.out, "accuracy_vs_ticks.png"), dpi=110)
    quantal.plot.energy(runs["no failures"]).savefig(os.path.join(args.out, "energy_per_layer.png"), dpi=110)
    print("wrote", os.path.join(args.out, "accuracy_vs_ticks.png"), "and", os.path.join(args.out, "energy_per_layer.png"))


if __name__ == "__main__":
    main()
