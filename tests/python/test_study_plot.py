"""`quantal plot STUDY.h5 --out DIR` (docs/sweep.md, "Plots"): on a synthetic study file laid out
as docs/sweep.md says (plus /configurations/each and /configurations/compensate), every figure is
written; the sensitivity ranking in sensitivity.csv equals one computed here from the datasets;
summary.txt carries the file's numbers; a real (tiny) sweep plots too; the installed layout is
found; a file that is not a study, a missing dataset, an unwritable DIR, a ratio the study lacks
are refused with one line and exit 2."""
import csv
import math
import os
import re
import shutil
import stat
from pathlib import Path
import subprocess

import h5py
import numpy as np
import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ["accuracy_vs_ratio.png", "energy_vs_ratio.png", "accuracy_energy_front.png", "accuracy_vs_ticks.png"]
GROUPS = ["embed", "qkv_in", "q", "k", "score", "proj_in", "fc1_in", "fc2_in", "head"]
N, OBSERVE = 40, [4, 8]


def plot(study, out, *args):
    return subprocess.run([BINARY, "plot", str(study), "--out", str(out), *map(str, args)], capture_output=True,
                          text=True)


def synthetic_study(path, each=True, compensate=True, seeds=(1,), ratios=(0.0, 0.5, 0.9)):
    """Two models, one seed; the grid (ratios 0, 0.5, 0.9 x spike, synapse x attention, all), `all`
    compensated too, and per model one-group configurations at 0.5 and 0.9 (spike). Repeats as a sweep
    marks them: ratio 0 repeats the baseline, synapse on `attention` repeats spike, and the group `fc1`
    repeats `fc1_in`. Results are random but consistent (accuracy from /results/correct)."""
    rng = np.random.default_rng(7)
    rows = []  # model, ratio, release, targets, compensate, each, same_as, seed
    for m, seed in ((m, seed) for m in range(2) for seed in seeds):
        base = len(rows)
        rows.append((m, 0.0, "none", "none", 0, 0, -1))
        for r in ratios:
            for rel in ("spike", "synapse"):
                for t in ("attention", "all"):
                    for comp in ((0, 1) if compensate and t == "all" and r > 0 else (0,)):
                        same = -1
                        if r == 0:
                            same = base
                        elif rel == "synapse" and t == "attention":
                            same = next(k for k, x in enumerate(rows)
                                        if k >= base and x[:5] == (m, r, "spike", t, comp))
                        rows.append((m, r, rel, t, comp, 0, same))
        if each:
            for r in (r for r in ratios if r > 0):
                for g in GROUPS + ["fc1"]:
                    same = next(k for k, x in enumerate(rows)
                                if k >= base and x[:4] == (m, r, "spike", "fc1_in")) if g == "fc1" else -1
                    rows.append((m, r, "spike", g, 0, 1, same))
        rows[base:] = [x + (seed,) for x in rows[base:]]
    C, O = len(rows), len(OBSERVE)
    baseline = [next(k for k, x in enumerate(rows) if x[0] == row[0] and x[7] == row[7] and x[2] == "none")
                for row in rows]
    correct = np.zeros((C, O, N), dtype=np.uint32)
    energy = np.zeros(C)
    for i, (m, r, rel, t, comp, e, same, _) in enumerate(rows):
        if same >= 0:
            correct[i], energy[i] = correct[same], energy[same]
            continue
        p = 0.9 - (0.6 * r if t == "all" else 0.15 * r) - (0.2 * r * rng.random() if e else 0.0)
        correct[i] = rng.random((O, N)) < p
        energy[i] = 4.0e7 * (1 - (0.7 * r if t == "all" else 0.05 * r) - (rng.uniform(0.01, 0.1) * r if e else 0.0))
        if t == "head":
            energy[i] = 4.0e7 * 1.01  # saves nothing: ranked last (+inf)
    ann = {0: 3.0e7, 1: 3.2e7}
    acc = correct.mean(axis=2)
    change = np.zeros((C, O))
    p_value = np.ones((C, O))
    for i in range(C):
        mine, ref = correct[i].astype(int), correct[baseline[i]].astype(int)
        change[i] = (mine & (1 - ref)).sum(axis=1) / N - (ref & (1 - mine)).sum(axis=1) / N
        p_value[i] = np.clip(1 - np.abs(change[i]) * 3, 1e-6, 1)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "quantal-study"
        f.attrs["format_version"] = 1
        f.attrs["version"] = "test"
        f.attrs["command_line"] = "synthetic"
        f.attrs["models"] = ["models/m_r0.h5", "models/m_r75.h5"]
        f.attrs["input"], f.attrs["labels"] = "images", "labels"
        f.attrs["offset"], f.attrs["samples"], f.attrs["ticks"] = 0, N, max(OBSERVE)
        f.attrs["e_ac_pj"], f.attrs["e_mac_pj"] = 0.9, 4.6
        f["observe"] = np.array(OBSERVE, dtype=np.uint64)
        c = f.create_group("configurations")
        c["model"] = np.array([x[0] for x in rows], dtype=np.uint32)
        c["seed"] = np.array([x[7] for x in rows], dtype=np.uint64)
        c["ratio"] = np.array([x[1] for x in rows])
        c["baseline"] = np.array(baseline, dtype=np.uint64)
        c["same_as"] = np.array([x[6] for x in rows], dtype=np.int64)
        c.attrs["release"] = [x[2] for x in rows]
        c.attrs["targets"] = [x[3] for x in rows]
        if compensate:
            c["compensate"] = np.array([x[4] for x in rows], dtype=np.uint8)
        if each:
            c["each"] = np.array([x[5] for x in rows], dtype=np.uint8)
        r = f.create_group("results")
        r["correct"] = correct
        r["accuracy"] = acc
        r["accuracy_low"] = np.clip(acc - 0.12, 0, 1)
        r["accuracy_high"] = np.clip(acc + 0.1, 0, 1)
        r["change"] = change
        r["change_low"] = change - 0.15
        r["change_high"] = change + 0.13
        r["p_value"] = p_value
        r["energy_pj"] = energy
        r["energy_vs_baseline"] = energy / energy[baseline]
        r["energy_vs_ann"] = energy / np.array([ann[x[0]] for x in rows])
        for name in ("sops", "macs", "spikes", "attempted", "transmitted", "masked_spikes"):
            r[name] = np.zeros(C)
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return synthetic_study(tmp_path_factory.mktemp("study") / "study.h5")


@pytest.fixture(scope="module")
def plotted(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "figures"
    r = plot(study, out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_every_figure_is_written(plotted):
    out, r = plotted
    for name in FIGURES + ["sensitivity.png"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG), name
        assert len(data) > 20_000, f"{name} is only {len(data)} bytes"
    for name in FIGURES + ["sensitivity.png", "sensitivity.csv", "summary.txt"]:
        assert str(out / name) in r.stdout.splitlines(), name
    assert r.stderr == ""
    assert sorted(os.listdir(out)) == sorted(FIGURES + ["sensitivity.png", "sensitivity.csv", "summary.txt"])


def expected_ranking(path):
    """docs/sweep.md, "Plots": per (model, seed, ratio, release, compensate) block of `each`
    configurations with ratio > 0, lost = -change at the last observed tick, saved = 1 -
    energy_vs_baseline, ascending lost / saved (+inf when saved <= 0), ties in file order; a
    configuration that repeats another of its block is listed once."""
    with h5py.File(path, "r") as f:
        c, r = f["configurations"], f["results"]
        last = int(np.argmax(f["observe"][()]))
        each, ratio, same_as = c["each"][()], c["ratio"][()], c["same_as"][()]
        comp = c["compensate"][()] if "compensate" in c else np.zeros(len(ratio))
        release = [x.decode() if isinstance(x, bytes) else x for x in c.attrs["release"]]
        targets = [x.decode() if isinstance(x, bytes) else x for x in c.attrs["targets"]]
        blocks = {}
        for i in range(len(ratio)):
            if each[i] and ratio[i] > 0:
                key = (int(c["model"][i]), int(c["seed"][i]), float(ratio[i]), release[i], int(comp[i]))
                blocks.setdefault(key, []).append(i)
        expected = []
        for key, members in blocks.items():
            kept = [i for i in members if not (same_as[i] >= 0 and same_as[i] in members)]
            scored = []
            for i in kept:
                lost = -float(r["change"][i, last])
                saved = 1.0 - float(r["energy_vs_baseline"][i])
                scored.append((lost / saved if saved > 0 else math.inf, i, lost, saved))
            scored.sort(key=lambda x: x[0])
            for rank, (q, i, lost, saved) in enumerate(scored, 1):
                expected.append((key, rank, targets[i], i, lost, saved, q, float(r["change_low"][i, last]),
                                 float(r["change_high"][i, last])))
    return expected


def test_sensitivity_ranking_equals_one_computed_from_the_datasets(study, plotted):
    out, _ = plotted
    with open(out / "sensitivity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = expected_ranking(study)
    assert len(expected) == 2 * 2 * len(GROUPS)  # 2 models x 2 ratios; `fc1` repeats `fc1_in`
    assert any(math.isinf(e[6]) for e in expected), "the synthetic study should have a group saving nothing"
    with h5py.File(study, "r") as f:
        models = list(f.attrs["models"])
    assert len(rows) == len(expected)
    for row, (key, rank, group, i, lost, saved, q, low, high) in zip(rows, expected):
        model, seed, ratio, release, comp = key
        assert (row["model"], int(row["seed"]), float(row["ratio"]), row["release"], int(row["compensate"])) == \
            (models[model], seed, ratio, release, comp)
        assert (int(row["rank"]), row["group"], int(row["configuration"])) == (rank, group, i)
        assert float(row["lost"]) == lost and float(row["saved"]) == saved
        assert float(row["lost_per_saved"]) == q
        assert (float(row["change_low"]), float(row["change_high"])) == (low, high)


def test_summary_numbers_equal_the_files(study, plotted):
    out, _ = plotted
    text = (out / "summary.txt").read_text()
    with h5py.File(study, "r") as f:
        c, r = f["configurations"], f["results"]
        C = len(c["ratio"])
        t = int(np.argmax(f["observe"][()]))
        assert f"T = {max(OBSERVE)} ticks" in text
        table = [line for line in text.splitlines() if re.match(r"^\s*\d+\s{2}", line)]
        assert len(table) == C
        number = r"([-+]?\d+\.\d+(?:e[-+]?\d+)?)"
        for line in table:
            m = re.match(r"^\s*(\d+)\s.*?\s{2}" + number + r" \[" + number + ", " + number + r"\]\s{2,}"
                         + number + r" \[" + number + ", " + number + r"\]\s{2,}(\S+)\s{2,}" + number
                         + r"\s{2,}(\S+)$", line)
            assert m, line
            i = int(m.group(1))
            values = [float(m.group(k)) for k in range(2, 8)]
            assert values == pytest.approx([r["accuracy"][i, t], r["accuracy_low"][i, t], r["accuracy_high"][i, t],
                                            r["change"][i, t], r["change_low"][i, t], r["change_high"][i, t]],
                                           abs=5.1e-5)
            assert float(m.group(8)) == pytest.approx(r["p_value"][i, t], rel=1e-3)
            assert float(m.group(9)) == pytest.approx(r["energy_vs_baseline"][i], abs=5.1e-5)
            same = int(c["same_as"][i])
            assert m.group(10) == (str(same) if same >= 0 else "-")
            targets = c.attrs["targets"][i]
            assert f"  {targets.decode() if isinstance(targets, bytes) else targets}  " in line


def test_older_file_without_each_or_compensate(tmp_path):
    study = synthetic_study(tmp_path / "old.h5", each=False, compensate=False)
    r = plot(study, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == sorted(FIGURES + ["summary.txt"])  # no sensitivity


def test_several_seeds_and_ratio_zero_only(tmp_path):
    """A row of panels per seed (the sensitivity ranking per seed too); a grid of ratio 0 alone is all baseline."""
    study = synthetic_study(tmp_path / "seeds.h5", seeds=(1, 2))
    r = plot(study, tmp_path / "seeds")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "seeds" / "sensitivity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(expected_ranking(study)) == 2 * 2 * 2 * len(GROUPS)
    assert {row["seed"] for row in rows} == {"1", "2"}
    study = synthetic_study(tmp_path / "zero.h5", each=False, ratios=(0.0,))
    r = plot(study, tmp_path / "zero")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "zero")) == sorted(FIGURES + ["summary.txt"])


def test_chosen_ratios(study, tmp_path):
    r = plot(study, tmp_path / "one", "--ratios", "0.9")
    assert r.returncode == 0, r.stderr
    r2 = plot(study, tmp_path / "two", "--ratios", "0.5,0.9")
    assert r2.returncode == 0, r2.stderr
    # one panel column per chosen ratio: the two-ratio figure is wider
    width = lambda p: int.from_bytes(p.read_bytes()[16:20], "big")  # noqa: E731  (PNG IHDR)
    assert width(tmp_path / "two" / "accuracy_vs_ticks.png") > width(tmp_path / "one" / "accuracy_vs_ticks.png")


def test_a_real_sweep_plots(tmp_path):
    data = "/usr/share/datasets/fashion-mnist"
    study = tmp_path / "sweep.h5"
    subprocess.run([BINARY, "sweep", "--model", os.path.join(SOURCE, "examples/mst/models/mst_r0.h5"),
                    "--input", f"{data}/t10k-images-idx3-ubyte.gz", "--labels", f"{data}/t10k-labels-idx1-ubyte.gz",
                    "--samples", "4", "--ticks", "4", "--observe", "2,4", "--ratios", "0,0.5",
                    "--release", "spike,synapse", "--targets", "attention,all", "--out", str(study)],
                   check=True, capture_output=True)
    r = plot(study, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    # a real study has per-layer counts and its models: priced under every energy model
    assert sorted(os.listdir(tmp_path / "out")) == sorted(FIGURES + ["summary.txt", "energy_per_layer.png"])


def test_installed_layout_is_found(study, tmp_path):
    """An installed bin/quantal runs <prefix>/share/quantal/plot_study.py (here a stub that records its arguments)."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "quantal").mkdir(parents=True)
    shutil.copy2(BINARY, prefix / "bin" / "quantal")
    record = tmp_path / "arguments"
    stub = prefix / "share" / "quantal" / "plot_study.py"
    stub.write_text(f"import sys\nopen({str(record)!r}, 'w').write(repr(sys.argv[1:]))\n")
    env = {k: v for k, v in os.environ.items() if k != "QUANTAL_PLOT_DIR"}
    r = subprocess.run([str(prefix / "bin" / "quantal"), "plot", str(study), "--out", str(tmp_path / "o"),
                        "--ratios", "0.5"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert eval(record.read_text()) == [str(study), "--out", str(tmp_path / "o"), "--error-prefix", "quantal",
                                        "--ratios", "0.5"]


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def script(study, out, *args):
    return subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "traces", "plot_study.py"), str(study),
                           "--out", str(out), *args], capture_output=True, text=True)


def damaged(study, tmp_path, change):
    bad = tmp_path / "bad.h5"
    shutil.copy(study, bad)
    with h5py.File(bad, "r+") as f:
        change(f)
    return bad


@pytest.mark.parametrize("change, words", [
    (lambda f: f.attrs.__setitem__("format", "quantal-trace"), ["not a quantal study", "'quantal-trace'"]),
    (lambda f: f.attrs.__delitem__("format"), ["not a quantal study", "format"]),
    (lambda f: f.__delitem__("results/accuracy_high"), ["/results/accuracy_high", "missing"]),
    (lambda f: f.__delitem__("configurations/same_as"), ["/configurations/same_as", "missing"]),
    (lambda f: f.__delitem__("observe"), ["/observe", "missing"]),
    (lambda f: f["configurations"].attrs.__delitem__("targets"), ["targets", "/configurations", "missing"]),
    (lambda f: f["results"].__delitem__("energy_vs_ann") or f["results"].create_dataset("energy_vs_ann", data=[1.0]),
     ["/results/energy_vs_ann", "shape"]),
    (lambda f: f["configurations"].__delitem__("each") or f["configurations"].create_dataset("each", data=[1, 0]),
     ["/configurations/each", "shape"]),
    (lambda f: f["configurations/same_as"].__setitem__(3, 10_000), ["/configurations/same_as[3]", "outside"]),
])
def test_bad_study_is_refused(study, tmp_path, change, words):
    bad = damaged(study, tmp_path, change)
    out = tmp_path / "out"
    line = one_line_error(plot(bad, out), str(bad), *words)
    assert line.startswith("quantal: ")
    assert not out.exists(), "nothing is written for a bad study"
    line = one_line_error(script(bad, out), str(bad), *words)
    assert line.startswith("plot_study.py: ")


def test_not_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "study.h5"
    text.write_text("not HDF5")
    one_line_error(plot(text, tmp_path / "o"), str(text), "HDF5")
    one_line_error(plot(tmp_path / "absent.h5", tmp_path / "o"), "absent.h5", "no such file")


def test_a_damaged_study_is_refused_not_waited_on(tmp_path):
    """Bytes flipped inside a real study's metadata: libhdf5 retries its checksums forever, so
    the file is read contained (io/contained.hpp) and refused within its time limit, before the
    plotting script (whose h5py would wait just the same) starts; `quantal energy` likewise."""
    data = bytearray((Path(SOURCE) / "examples/mst/study-results/tier3-combined.h5").read_bytes())
    for i in range(4000, len(data), 997):
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.h5"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    one_line_error(plot(bad, out), str(bad), "damaged")
    assert not out.exists()
    r = subprocess.run([BINARY, "energy", str(bad)], capture_output=True, text=True, timeout=120)
    one_line_error(r, str(bad), "damaged")


def test_unwritable_out_dir(study, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(plot(study, blocker / "plots"), str(blocker / "plots"), "cannot write")
    one_line_error(script(study, blocker), str(blocker), "cannot write")
    if os.geteuid() != 0:  # root writes anywhere; a file under `blocker` covers that case
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        one_line_error(plot(study, ro), str(ro), "cannot write")


def test_ratio_not_in_study(study, tmp_path):
    one_line_error(plot(study, tmp_path / "o", "--ratios", "0.25"), "--ratios", "0.25", str(study))
    one_line_error(plot(study, tmp_path / "o", "--ratios", "1.5"), "--ratios")
