"""`quantal sweep` (docs/sweep.md): each configuration equals a `quantal run` with the same mask,
release, targets and seed (the independent oracle: another command, run separately); repeats are
marked, not rerun; the paired statistics follow from the per-sample results; bad grids are
refused with one line and leave no file."""
import math
import os
import re
import subprocess

import h5py
import numpy as np
import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODEL = os.path.join(SOURCE, "examples/mst/models/mst_r0.h5")
DATA = "/usr/share/datasets/fashion-mnist"
IMAGES, LABELS = f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz"
COMMON = ["--model", MODEL, "--input", IMAGES, "--labels", LABELS, "--samples", "12", "--offset", "40",
          "--ticks", "12"]


def sweep(tmp_path, *args, check=True):
    out = tmp_path / "study.h5"
    proc = subprocess.run([BINARY, "sweep", *COMMON, *args, "--out", str(out)], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return out, proc


def run(mask, release, targets, seed):
    proc = subprocess.run([BINARY, "run", *COMMON, "--mask", str(mask), "--release", release, "--targets", targets,
                           "--seed", str(seed)], capture_output=True, text=True, check=True)
    correct = int(re.search(r"^accuracy: (\d+) / 12$", proc.stdout, re.M).group(1))
    energy = float(re.search(r"energy per sample: SNN ([0-9.e+]+) pJ", proc.stdout).group(1))
    return correct, energy


def binomial_p(gained, lost):
    d = gained + lost
    if d == 0:
        return 1.0
    tail = sum(math.comb(d, i) for i in range(min(gained, lost) + 1)) / 2 ** d
    return min(1.0, 2 * tail)


def test_each_configuration_equals_a_separate_run(tmp_path):
    out, _ = sweep(tmp_path, "--ratios", "0,0.5", "--release", "spike,synapse", "--targets", "attention,fc1_in+fc2_in",
                   "--seeds", "3", "--observe", "6,12", "--threads", "2")
    with h5py.File(out, "r") as f:
        c, r = f["configurations"], f["results"]
        releases, targets = list(c.attrs["release"]), list(c.attrs["targets"])
        assert list(f["observe"][()]) == [6, 12]
        assert len(releases) == 1 + 2 * 2 * 2
        same_as = list(c["same_as"][()])
        # ratio 0 repeats the baseline; synapse release on operators only repeats spike release
        assert same_as == [-1, 0, 0, 0, 0, -1, -1, 5, -1]
        for i in range(1, len(releases)):
            if c["ratio"][i] == 0:
                continue
            correct, energy = run(c["ratio"][i], releases[i], targets[i].replace("+", ","), 3)
            assert round(r["accuracy"][i, 1] * 12) == correct, (releases[i], targets[i])
            assert r["energy_pj"][i] == pytest.approx(energy, rel=1e-3)
        # the statistics follow from the per-sample results
        ok = r["correct"][()].astype(int)
        for i in range(len(releases)):
            for t in range(2):
                mine, base = ok[i, t], ok[c["baseline"][i], t]
                gained, lost = int(np.sum(mine & (1 - base))), int(np.sum(base & (1 - mine)))
                assert r["accuracy"][i, t] == pytest.approx(mine.mean())
                assert r["change"][i, t] == pytest.approx((gained - lost) / 12)
                assert r["p_value"][i, t] == pytest.approx(binomial_p(gained, lost))
                assert r["accuracy_low"][i, t] <= mine.mean() <= r["accuracy_high"][i, t]
        assert r["energy_vs_baseline"][0] == 1.0


@pytest.mark.parametrize("args, words", [
    (["--ratios", "0,1.5", "--release", "spike", "--targets", "all"], "1.5"),
    (["--ratios", "0.5", "--release", "spike", "--targets", "atention"], "'atention'"),
    (["--ratios", "0.5,0.5", "--release", "spike", "--targets", "all"], "0.5 is given twice"),
    (["--ratios", "0.5", "--release", "sometimes", "--targets", "all"], "'sometimes'"),
    (["--ratios", "0.5", "--release", "spike", "--targets", "all", "--observe", "13"], "--observe 13"),
])
def test_a_bad_grid_is_refused_and_writes_nothing(tmp_path, args, words):
    out, proc = sweep(tmp_path, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists() and not (tmp_path / "study.h5.tmp").exists()


def test_an_existing_study_is_kept_without_force(tmp_path):
    out, _ = sweep(tmp_path, "--ratios", "0.5", "--release", "spike", "--targets", "attention")
    before = out.read_bytes()
    _, proc = sweep(tmp_path, "--ratios", "0.75", "--release", "spike", "--targets", "attention", check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert out.read_bytes() == before


def test_compensated_and_spread_configurations_equal_separate_runs(tmp_path):
    """--compensate and --release-spread reach every masked configuration exactly as `quantal run`'s
    options do (the oracle: separate runs)."""
    out, _ = sweep(tmp_path, "--ratios", "0,0.5", "--release", "spike,synapse", "--targets", "all",
                   "--compensate", "--release-spread", "8", "--seeds", "4")
    with h5py.File(out, "r") as f:
        c, r = f["configurations"], f["results"]
        assert f.attrs["release_spread"] == 8.0
        assert list(c["compensate"][()]) == [0, 0, 0, 1, 1]  # baseline and ratio-0 repeats are not compensated
        releases, targets = list(c.attrs["release"]), list(c.attrs["targets"])
        for i in (3, 4):
            proc = subprocess.run([BINARY, "run", *COMMON, "--mask", "0.5", "--release", releases[i], "--targets",
                                   "all", "--compensate", "--release-spread", "8", "--seed", "4"],
                                  capture_output=True, text=True, check=True)
            correct = int(re.search(r"^accuracy: (\d+) / 12$", proc.stdout, re.M).group(1))
            energy = float(re.search(r"energy per sample: SNN ([0-9.e+]+) pJ", proc.stdout).group(1))
            assert round(r["accuracy"][i, 0] * 12) == correct, releases[i]
            assert r["energy_pj"][i] == pytest.approx(energy, rel=1e-3)
    refused = sweep(tmp_path, "--ratios", "0.5,1", "--release", "spike", "--targets", "all", "--compensate",
                    "--force", check=False)[1]
    assert refused.returncode == 2 and "--compensate: ratio 1" in refused.stderr
