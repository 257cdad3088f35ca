#!/usr/bin/python3
"""Markdown tables of a study file (docs/sweep.md) for docs/study.md: per model, accuracy at the
last observed tick with its 95 % interval, the paired change against the baseline with its
interval and McNemar p, and energy relative to the baseline and to the ANN.

    /usr/bin/python3 examples/mst/study_table.py STUDY.h5 [--tick T]
"""
import argparse
import os

import h5py
import numpy as np


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--tick", type=int, help="observed tick (default: the last)")
    a = ap.parse_args()
    with h5py.File(a.study, "r") as f:
        c, r = f["configurations"], f["results"]
        observe = list(f["observe"][()])
        t = observe.index(a.tick) if a.tick else len(observe) - 1
        models = [os.path.basename(text(m)) for m in f.attrs["models"]]
        release, targets = [text(x) for x in c.attrs["release"]], [text(x) for x in c.attrs["targets"]]
        same_as = c["same_as"][()]
        comp = c["compensate"][()] if "compensate" in c else np.zeros(len(release), int)
        print("%d images per configuration, T = %d, seed(s) %s" % (f.attrs["samples"], observe[t],
                                                                 sorted(set(int(s) for s in c["seed"][()]))))
        for m, name in enumerate(models):
            print("\n**%s**\n" % name)
            print("| targets | release | ratio | accuracy [95 % CI] | change vs ratio 0 [95 % CI] | McNemar p | energy / ratio 0 | energy / ANN |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for i in range(len(release)):
                if c["model"][i] != m or same_as[i] >= 0:  # a repeat: its results are listed once
                    continue
                pct = lambda x: "%.1f" % (100 * x)
                rel = release[i] + (" comp." if comp[i] else "")
                print("| %s | %s | %g | %s [%s, %s] | %+.1f [%+.1f, %+.1f] | %.2g | %.3f | %.2f |" % (
                    targets[i], rel, c["ratio"][i], pct(r["accuracy"][i, t]), pct(r["accuracy_low"][i, t]),
                    pct(r["accuracy_high"][i, t]), 100 * r["change"][i, t], 100 * r["change_low"][i, t],
                    100 * r["change_high"][i, t], r["p_value"][i, t], r["energy_vs_baseline"][i],
                    r["energy_vs_ann"][i]))


if __name__ == "__main__":
    main()
