"""The `quantal` Python module (docs/python.md, issue 12): its results equal `quantal run`'s printed
report and trace; a network built in Python gives the same spikes as the same network written
with h5py (docs/model-format.md) and run by the command line; errors raise with the command
line's messages; read_trace returns a trace's contents; the GIL is released while simulating; the
example runs. The module comes from the build tree (ctest sets PYTHONPATH=build/python)."""
import os
import re
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

import quantal
from nir_reference import dyadic, f32, run_quantal, write_nir
from test_run_model_file import IMAGES, LABELS, read_idx, write_model

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")


def trace_contents(path):
    with h5py.File(path, "r") as f:
        spikes = {name: (g["timestamps"][()], g["node_ids"][()]) for name, g in f["spikes"].items()}
        samples = {k: f["samples"][k][()] for k in f["samples"]}
        per_sample = {table: {k: f[f"energy/per_sample/{table}/{k}"][()] for k in f[f"energy/per_sample/{table}"]}
                      for table in ("populations", "projections", "operators")}
        per_sample["snn_pj"] = f["energy/per_sample/snn_pj"][()]
    return spikes, samples, per_sample


def assert_result_equals_trace(result, path):
    spikes, samples, per_sample = trace_contents(path)
    assert sorted(spikes) == sorted(result.spikes)
    for name, (ts, ids) in spikes.items():
        np.testing.assert_array_equal(result.timestamps(name), ts, err_msg=name)
        np.testing.assert_array_equal(result.spikes[name].node_id, ids, err_msg=name)
    np.testing.assert_array_equal(result.samples, samples["index"])
    np.testing.assert_array_equal(result.predictions, samples["prediction"])
    for table in ("populations", "projections", "operators"):
        for field, values in per_sample[table].items():
            np.testing.assert_array_equal(getattr(result.ledger, table)[field], values, err_msg=f"{table}/{field}")
    np.testing.assert_array_equal(result.ledger.snn_pj, per_sample["snn_pj"])


def report_rows(stdout, section):
    """{name: [numbers]} of one table of `quantal run`'s report ("populations", "projections")."""
    rows, inside = {}, False
    for line in stdout.splitlines():
        if line.startswith(section + " (per sample)"):
            inside = True
        elif inside and not line.startswith("  "):
            break
        elif inside and not line.split()[0] == "name":
            parts = line.split()
            rows[parts[0]] = parts[1:]
    return rows


def test_results_equal_the_cli_report_and_trace(tmp_path):
    """Images through the model's analog input, masked, labelled: the same spikes, predictions,
    ledger and accuracy as `quantal run` with the same seed (and with another thread count)."""
    model, trace = tmp_path / "tiny.h5", tmp_path / "trace.h5"
    write_model(model, np.random.default_rng(31))
    offset, count, ticks = 3, 6, 32
    proc = run_quantal("--model", model, "--ticks", ticks, "--input", IMAGES, "--labels", LABELS, "--samples", count,
                       "--offset", offset, "--mask", 0.5, "--release", "synapse", "--seed", 7, "--trace", trace)
    images = read_idx(IMAGES, offset, count).reshape(count, 28, 28)
    labels = read_idx(LABELS, offset, count).reshape(-1)

    net = quantal.load(model)
    result = net.run(images, ticks=ticks, labels=labels, first_sample=offset, mask=0.5, release="synapse", seed=7,
                     threads=2)
    assert_result_equals_trace(result, trace)
    assert f"accuracy: {result.correct} / {count}" in proc.stdout
    assert result.readout.shape == (count, 1, 10)
    np.testing.assert_array_equal(result.predictions, result.readout[:, -1].argmax(axis=1))
    populations = report_rows(proc.stdout, "populations")
    assert float(populations["hidden"][1]) == pytest.approx(result.ledger.populations["spikes"][:, 0].mean(), abs=0.05)
    hidden_rate = result.ledger.populations["spikes"][:, 0].mean() / result.ledger.population_sizes[0] / ticks
    assert float(populations["hidden"][3]) == pytest.approx(hidden_rate * 1000.0, abs=5e-4)  # Hz at dt = 1 ms
    projections = report_rows(proc.stdout, "projections")
    assert projections["out"][0] == "synapse"
    assert float(projections["out"][2]) == pytest.approx(result.ledger.projections["transmitted"][:, 0].mean(), abs=0.05)
    assert float(projections["out"][3]) == pytest.approx(result.ledger.projections["failed"][:, 0].mean(), abs=0.05)
    assert result.release == [("synapse", 0.5)]
    assert result.ledger.table() in proc.stdout


def test_observe_record_and_unmasked_defaults(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(32))
    net = quantal.load(model)
    images = read_idx(IMAGES, 0, 4).reshape(4, 28, 28)
    full = net.run(images, ticks=16)
    part = net.run(images, ticks=16, observe=[16, 4, 8], record=["hidden"], record_samples=2)
    np.testing.assert_array_equal(part.observed, [4, 8, 16])
    assert part.readout.shape == (4, 3, 10)
    np.testing.assert_array_equal(part.readout[:, -1], full.readout[:, 0])
    assert np.all(np.diff(part.readout, axis=1) != 0)  # the readout integrates between observations
    assert list(part.spikes) == ["hidden"] and set(part.spikes["hidden"].sample.tolist()) == {0, 1}
    assert net.run(images, ticks=16, record=[]).spikes == {}
    assert full.release == [("none", 0.0)]
    assert net.run(images[:1].astype(np.float64), ticks=16).predictions[0] == full.predictions[0]  # uint8 or float alike


def test_nir_graph_runs_as_the_cli_runs_it(tmp_path):
    rng = np.random.default_rng(33)
    nodes = {"input": {"type": "Input", "shape": np.array([2])},
             "fc1": {"type": "Affine", "weight": dyadic(rng, (6, 2)), "bias": f32(np.full(6, 1.5))},
             "a": {"type": "LIF", "tau": f32(np.full(6, 4.0)), "r": f32(np.ones(6)), "v_leak": f32(np.zeros(6)),
                   "v_threshold": f32(np.full(6, 0.5)), "v_reset": f32(np.zeros(6))},
             "fc2": {"type": "Linear", "weight": np.abs(dyadic(rng, (3, 6), 2.0))},
             "b": {"type": "IF", "r": f32(np.ones(3)), "v_threshold": f32(np.ones(3)), "v_reset": f32(np.zeros(3))}}
    path, trace = tmp_path / "m.nir", tmp_path / "t.h5"
    write_nir(path, nodes, [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b")])
    run_quantal("--model", path, "--ticks", 40, "--samples", 2, "--dt", 0.5, "--trace", trace)
    net = quantal.load(path, dt=0.5)
    assert sorted(p.name for p in net.populations) == ["a", "b", "input"]
    result = net.run(ticks=40, samples=2)
    assert_result_equals_trace(result, trace)
    assert len(result.spikes["b"].tick) > 0


def build_network(rng, release=True):
    """src (Bernoulli) -dense-> hid (IF) -sparse, delays 1-3-> lif (LIF, reset to value)
    hid -one_to_one, delay 1-> copy (IF); lif, copy -dense-> out (readout)."""
    w = {"src_hid": dyadic(rng, (16, 20), 0.75), "lif_out": dyadic(rng, (4, 8)), "copy_out": dyadic(rng, (4, 16))}
    pre, post = rng.integers(0, 16, 40), rng.integers(0, 8, 40)
    sparse = dict(pre=pre, post=post, weight=dyadic(rng, 40, 1.5), delay=rng.integers(1, 4, 40))
    bias = dyadic(rng, 16, 0.25)
    b = quantal.NetworkBuilder()
    b.add_population("src", 20, quantal.BernoulliSource(0.3))
    b.add_population("hid", (16,), quantal.IF(threshold=1.0, v0=0.5), bias=bias)
    b.add_population("lif", 8, quantal.LIF(threshold=0.5, v0=0.0, tau_ticks=4.0, comparison=">", reset="value",
                                           v_reset=0.0))
    b.add_population("copy", 16, quantal.IF(threshold=0.5, v0=0.0))
    b.add_population("out", 4, quantal.Readout())
    syn = quantal.Release("synapse", 0.25) if release else None
    b.connect("src", "hid", quantal.Dense(w["src_hid"]), release=syn, name="in")
    b.connect("hid", "lif", quantal.Sparse(**sparse))
    b.connect("hid", "copy", quantal.OneToOne(0.75), delay=1)
    b.connect("lif", "out", quantal.Dense(w["lif_out"]))
    b.connect("copy", "out", quantal.Dense(w["copy_out"]), release=quantal.Release("spike", 0.5) if release else None)
    return b.build(), w, sparse, bias


def write_built_network(path, w, sparse, bias):
    """The network of build_network, written by hand after docs/model-format.md."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="built", producer="test")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["src", "hid", "lif", "copy", "out"]
        def population(name, n, **attrs):
            g = pops.create_group(name)
            g.attrs.update(attrs)
            g["shape"] = np.array([n], np.int64)
            return g
        population("src", 20, model="bernoulli_source")["probability"] = np.array([0.3])
        population("hid", 16, model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.5)["bias"] = bias
        population("lif", 8, model="LIF", threshold=0.5, comparison=">", reset="value", v_reset=0.0, v0=0.0,
                   tau_ticks=4.0)
        population("copy", 16, model="IF", threshold=0.5, comparison=">=", reset="subtract", v0=0.0)
        population("out", 4, model="readout")
        prj = f.create_group("projections")
        prj.attrs["order"] = ["in", "hid->lif", "hid->copy", "lif->out", "copy->out"]
        def projection(name, kind, source, target, **attrs):
            g = prj.create_group(name)
            g.attrs.update(kind=kind, source=source, target=target, **attrs)
            return g
        projection("in", "dense", "src", "hid", release="synapse", mask_ratio=0.25)["weight"] = w["src_hid"]
        g = projection("hid->lif", "sparse", "hid", "lif")
        order = np.argsort(sparse["pre"], kind="stable")
        g["row_begin"] = np.concatenate([[0], np.cumsum(np.bincount(sparse["pre"], minlength=16))]).astype(np.uint64)
        g["target"] = sparse["post"][order].astype(np.uint32)
        g["weight"] = sparse["weight"][order]
        g["delay"] = sparse["delay"][order].astype(np.uint32)
        projection("hid->copy", "one_to_one", "hid", "copy", delay=np.int64(1))["weight"] = np.array([0.75], np.float32)
        projection("lif->out", "dense", "lif", "out")["weight"] = w["lif_out"]
        projection("copy->out", "dense", "copy", "out", release="spike", mask_ratio=0.5)["weight"] = w["copy_out"]
        f.create_group("readout").attrs.update(population="out", accumulate="sum")


def test_network_built_in_python_equals_the_model_file_run_by_the_cli(tmp_path):
    net, w, sparse, bias = build_network(np.random.default_rng(34))
    assert [p.kind for p in net.projections] == ["dense", "sparse", "one_to_one", "dense", "dense"]
    assert net.readout == "out" and net.population("lif").parameters["tau_ticks"] == 4.0
    np.testing.assert_array_equal(net.connectivity("in")["weight"], w["src_hid"])
    np.testing.assert_array_equal(net.connectivity("hid->copy")["weight"], [0.75])
    model, trace = tmp_path / "built.h5", tmp_path / "trace.h5"
    write_built_network(model, w, sparse, bias)
    run_quantal("--model", model, "--ticks", 40, "--samples", 3, "--seed", 5, "--trace", trace)
    result = net.run(ticks=40, samples=3, seed=5)
    assert_result_equals_trace(result, trace)
    assert all(len(result.spikes[p].tick) > 0 for p in ("src", "hid", "lif", "copy"))
    assert result.ledger.projections["masked_spikes"][:, 4].sum() > 0  # spike release on copy->out
    # Network.save writes a file the command line runs to the same trace.
    saved, again = tmp_path / "saved.h5", tmp_path / "again.h5"
    net.save(saved)
    run_quantal("--model", saved, "--ticks", 40, "--samples", 3, "--seed", 5, "--trace", again)
    assert_result_equals_trace(result, again)


def test_network_build_from_lists_equals_the_builder():
    rng = np.random.default_rng(35)
    w = dyadic(rng, (5, 10))
    a = quantal.Network.build(
        [dict(name="s", shape=10, model=quantal.BernoulliSource(np.linspace(0, 0.5, 10))),
         dict(name="o", shape=5, model=quantal.IF(threshold=1.0, v0=0.0), bias=0.125)],
        [dict(source="s", target="o", connectivity=quantal.Sparse.from_csr(*csr(w)))])
    b = quantal.NetworkBuilder()
    b.add_population("s", 10, quantal.BernoulliSource(np.linspace(0, 0.5, 10)))
    b.add_population("o", 5, quantal.IF(threshold=1.0, v0=0.0), bias=0.125)
    b.connect("s", "o", quantal.Dense(w))
    ra, rb = a.run(ticks=50, samples=2, seed=3), b.build().run(ticks=50, samples=2, seed=3)
    for p in ("s", "o"):
        np.testing.assert_array_equal(ra.spikes[p].tick, rb.spikes[p].tick)
        np.testing.assert_array_equal(ra.spikes[p].node_id, rb.spikes[p].node_id)
    assert len(ra.spikes["o"].tick) > 0


def csr(w):
    """scipy.sparse.csr_matrix(w.T)'s (indptr, indices, data), without scipy."""
    rows = [np.flatnonzero(w[:, i]) for i in range(w.shape[1])]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return indptr, np.concatenate(rows), np.concatenate([w[r, i] for i, r in enumerate(rows)])


# ---- errors: the command line's messages ---------------------------------------------------------

def cli_error(*args):
    proc = run_quantal(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("quantal: ")
    return line[len("quantal: "):]


def test_errors_raise_with_the_cli_messages(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(36))
    # A file the library refuses: the same line.
    bad = tmp_path / "bad.h5"
    write_model(bad, np.random.default_rng(36))
    with h5py.File(bad, "a") as f:
        f["populations/hidden"].attrs["threshhold"] = 1.0
    with pytest.raises(ValueError) as e:
        quantal.load(bad)
    assert str(e.value) == cli_error("--model", bad, "--ticks", 4)
    assert isinstance(e.value, (quantal.ModelError, quantal.InputError))
    missing = tmp_path / "missing.h5"
    with pytest.raises(quantal.InputError) as e:
        quantal.load(missing)
    assert str(e.value) == cli_error("--model", missing, "--ticks", 4)
    # A --targets set the model cannot resolve: the library's line.
    net = quantal.load(model)
    with pytest.raises(quantal.InputError) as e:
        net.run(ticks=4, mask=0.5, targets="linear")
    assert str(e.value) == cli_error("--model", model, "--ticks", 4, "--mask", 0.5, "--targets", "linear")
    # A zero-delay cycle: the builder's line, as for a model file.
    b = quantal.NetworkBuilder()
    b.add_population("a", 2, quantal.IF(threshold=1.0, v0=0.0))
    b.add_population("b", 2, quantal.IF(threshold=1.0, v0=0.0))
    b.connect("a", "b", quantal.OneToOne())
    b.connect("b", "a", quantal.OneToOne())
    with pytest.raises(quantal.ModelError, match=r"^zero-delay cycle between populations 'a' -> 'b' -> 'a'"):
        b.build()
    # Python's own checks, in the CLI's words.
    with pytest.raises(quantal.InputError, match=r"^release='spike' needs mask=R"):
        net.run(ticks=4, release="spike")
    with pytest.raises(quantal.InputError, match=r"images of 27 x 28 = 756 values do not fit .*input 'image', which takes 784"):
        net.run(np.zeros((1, 27, 28), np.uint8), ticks=4)
    with pytest.raises(quantal.InputError, match="label 10 at index 1 is not one of the 10 classes"):
        net.run(np.zeros((2, 28, 28)), ticks=4, labels=[0, 10])
    with pytest.raises(quantal.InputError, match="record names population 'nope'"):
        net.run(ticks=4, record=["nope"])
    with pytest.raises(quantal.InputError, match=r"^observe 5 is not a whole number from 1 to 4"):
        net.run(ticks=4, observe=[5])
    with pytest.raises(quantal.ModelError, match=r"^projection 'x': dense weight has shape \(3, 2\), expected \(target, source\) = \(2, 2\)"):
        b.connect("a", "b", quantal.Dense(np.zeros((3, 2))), name="x")


# ---- read_trace ---------------------------------------------------------------------------------

def test_read_trace_returns_the_files_spikes(tmp_path):
    net, w, sparse, bias = build_network(np.random.default_rng(37))
    model, trace = tmp_path / "built.h5", tmp_path / "trace.h5"
    net.save(model)
    run_quantal("--model", model, "--ticks", 30, "--samples", 2, "--trace", trace)
    spikes, _, _ = trace_contents(trace)
    read = quantal.read_trace(trace)
    assert list(read) == list(spikes)
    for name, (ts, ids) in spikes.items():
        np.testing.assert_array_equal(read[name].timestamps, ts)
        np.testing.assert_array_equal(read[name].node_ids, ids)
        assert read[name].timestamps.dtype == np.float64 and read[name].node_ids.dtype == np.uint64
    # A file as bmtk writes it, in seconds: times come back in ms.
    other = tmp_path / "bmtk.h5"
    with h5py.File(other, "w") as f:
        g = f.create_group("spikes/v1")
        g.attrs["sorting"] = "by_time"
        g["timestamps"] = np.array([0.001, 0.0025])
        g["timestamps"].attrs["units"] = "s"
        g["node_ids"] = np.array([3, 1], np.int64)
    read = quantal.read_trace(other)
    np.testing.assert_allclose(read["v1"].timestamps, [1.0, 2.5])
    np.testing.assert_array_equal(read["v1"].node_ids, [3, 1])
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(quantal.InputError, match="has no /spikes group"):
        quantal.read_trace(tmp_path / "empty.h5")


# ---- the GIL, the example ------------------------------------------------------------------------

def test_the_gil_is_released_while_simulating():
    rng = np.random.default_rng(38)
    b = quantal.NetworkBuilder()
    b.add_population("src", 400, quantal.BernoulliSource(0.2))
    b.add_population("hid", 400, quantal.IF(threshold=4.0, v0=0.0))
    b.connect("src", "hid", quantal.Dense(dyadic(rng, (400, 400))), release=quantal.Release("synapse", 0.5))
    net = b.build()
    start = time.perf_counter()
    net.run(ticks=200, samples=2, record=[])
    per_sample = (time.perf_counter() - start) / 2
    samples = max(2, int(0.5 / per_sample))  # about half a second of simulation
    worker = threading.Thread(target=lambda: net.run(ticks=200, samples=samples, record=[]))
    ticks_seen = 0
    worker.start()
    while worker.is_alive():
        ticks_seen += 1
        time.sleep(0.005)
    worker.join()
    assert ticks_seen >= 10  # the main thread ran while the worker simulated


def test_failure_study_example_runs():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, os.path.join(SOURCE, "examples", "python", "failure_study.py")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if re.match(r"^\s*\d", line)]
    assert len(rows) >= 4
    ratios = [float(r[0]) for r in rows]
    transmitted = [float(r[2]) for r in rows]
    assert ratios == sorted(ratios) and transmitted == sorted(transmitted, reverse=True)


MST = os.path.join(SOURCE, "examples", "mst", "models", "mst_r0.h5")


def test_mst_with_attention_masks_equals_the_cli(tmp_path):
    """The shipped MST-Tiny (operators, roles): --mask 0.75 --release spike --targets attention."""
    trace = tmp_path / "mst.h5"
    proc = run_quantal("--model", MST, "--ticks", 12, "--input", IMAGES, "--labels", LABELS, "--samples", 3,
                       "--mask", 0.75, "--release", "spike", "--targets", "attention", "--seed", 3, "--trace", trace)
    net = quantal.load(MST)
    assert net.readout == "logits" and len(net.operators) > 0 and net.inputs[0].shape == (1, 28, 28)
    images, labels = read_idx(IMAGES, 0, 3).reshape(3, 28, 28), read_idx(LABELS, 0, 3).reshape(-1)
    result = net.run(images, labels=labels, ticks=12, mask=0.75, release="spike", targets="attention", seed=3,
                     threads=2)
    assert_result_equals_trace(result, trace)
    assert f"accuracy: {result.correct} / 3" in proc.stdout
    assert result.ledger.operators["masked_spikes"].sum() > 0
    assert all(mode == "none" for mode, _ in result.release)  # attention: only the operators' inputs
    assert f"targets attention = {result.targeted}" in proc.stdout
    assert result.ledger.table() in proc.stdout  # the report's tables, character for character


def test_conv_pool_cuba_and_sparse_probabilities_equal_the_model_file(tmp_path):
    """The other kinds: conv2d (with synapse release), sum and average pools, CubaLIF, sparse
    per-synapse release probabilities; the same network written with h5py and run by the CLI."""
    rng = np.random.default_rng(39)
    kernel, img_bias = np.abs(dyadic(rng, (2, 1, 3, 3), 0.5)), np.abs(dyadic(rng, 36, 0.5))
    pre, post = rng.integers(0, 18, 30), rng.integers(0, 3, 30)
    syn_w, syn_p = dyadic(rng, 30, 2.0), np.round(rng.uniform(0, 1, 30) * 8) / 8
    b = quantal.NetworkBuilder()
    b.add_population("img", (1, 6, 6), quantal.IF(threshold=1.0, v0=0.0), bias=img_bias)
    b.add_population("c", (2, 6, 6), quantal.CubaLIF(threshold=0.5, v0=0.0, tau_ticks=5.0, tau_syn_ticks=2.0))
    b.add_population("p", (2, 3, 3), quantal.IF(threshold=1.0, v0=0.0))
    b.add_population("q", (2, 1, 1), quantal.IF(threshold=0.25, v0=0.0))
    b.add_population("out", 3, quantal.Readout())
    b.connect("img", "c", quantal.Conv2d(kernel, padding=(1, 1)), release=quantal.Release("synapse", 0.25))
    b.connect("c", "p", quantal.SumPool2d((2, 2)), delay=1)
    b.connect("p", "q", quantal.AvgPool2d((3, 3)))
    b.connect("p", "out", quantal.Sparse(pre, post, syn_w, probability=syn_p), delay=2)
    net = b.build()
    model, trace = tmp_path / "conv.h5", tmp_path / "trace.h5"
    with h5py.File(model, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="conv", producer="test")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["img", "c", "p", "q", "out"]
        for name, shape, attrs in [
                ("img", (1, 6, 6), dict(model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.0)),
                ("c", (2, 6, 6), dict(model="CubaLIF", threshold=0.5, comparison=">=", reset="subtract", v0=0.0,
                                      tau_ticks=5.0, tau_syn_ticks=2.0)),
                ("p", (2, 3, 3), dict(model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.0)),
                ("q", (2, 1, 1), dict(model="IF", threshold=0.25, comparison=">=", reset="subtract", v0=0.0)),
                ("out", (3,), dict(model="readout"))]:
            g = pops.create_group(name)
            g.attrs.update(attrs)
            g["shape"] = np.array(shape, np.int64)
        pops["img"]["bias"] = img_bias
        prj = f.create_group("projections")
        prj.attrs["order"] = ["img->c", "c->p", "p->q", "p->out"]
        g = prj.create_group("img->c")
        g.attrs.update(kind="conv2d", source="img", target="c", release="synapse", mask_ratio=0.25)
        g["weight"], g["padding"] = kernel, np.array([1, 1], np.int64)
        g = prj.create_group("c->p")
        g.attrs.update(kind="sum_pool2d", source="c", target="p", delay=np.int64(1))
        g["kernel_size"] = np.array([2, 2], np.int64)
        g = prj.create_group("p->q")
        g.attrs.update(kind="avg_pool2d", source="p", target="q")
        g["kernel_size"] = np.array([3, 3], np.int64)
        g = prj.create_group("p->out")
        g.attrs.update(kind="sparse", source="p", target="out", delay=np.int64(2))
        order = np.argsort(pre, kind="stable")
        g["row_begin"] = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=18))]).astype(np.uint64)
        g["target"], g["weight"] = post[order].astype(np.uint32), syn_w[order]
        g["probability"] = syn_p[order].astype(np.float32)
        f.create_group("readout").attrs.update(population="out", accumulate="sum")
    run_quantal("--model", model, "--ticks", 30, "--samples", 3, "--seed", 2, "--trace", trace)
    result = net.run(ticks=30, samples=3, seed=2)
    assert_result_equals_trace(result, trace)
    assert all(len(result.spikes[p].tick) > 0 for p in ("img", "c", "p", "q"))
    np.testing.assert_array_equal(net.connectivity("img->c")["weight"], kernel)
    assert net.connectivity("c->p")["kernel"] == (2, 2)
    got = net.connectivity("p->out")
    assert sorted(zip(got["pre"], got["post"], got["weight"], got["probability"])) == \
        sorted(zip(pre, post, syn_w.astype(np.float32), syn_p.astype(np.float32)))
    assert set(got["delay"].tolist()) == {2}
    assert 0 < result.ledger.projections["transmitted"][:, 3].sum() < result.ledger.projections["attempted"][:, 3].sum()


def test_spike_and_current_inputs_reproduce_the_network_that_made_them():
    """A network driven by another run's spikes (spikes=) and by currents (currents=) spikes as
    the network whose Bernoulli source and bias made them."""
    rng = np.random.default_rng(40)
    w, bias = dyadic(rng, (12, 20), 0.75), np.abs(dyadic(rng, 12, 0.25))
    a = quantal.NetworkBuilder()
    a.add_population("src", 20, quantal.BernoulliSource(0.3))
    a.add_population("hid", 12, quantal.IF(threshold=1.0, v0=0.5), bias=bias)
    a.connect("src", "hid", quantal.Dense(w))
    original = a.build().run(ticks=30, samples=4, first_sample=10, seed=8)
    b = quantal.NetworkBuilder()
    b.add_population("in", 20, quantal.SpikeSource())
    b.add_population("hid", 12, quantal.IF(threshold=1.0, v0=0.5))
    b.connect("in", "hid", quantal.Dense(w))
    net = b.build()
    replayed = net.run(ticks=30, samples=4, first_sample=10, spikes={"in": original.spikes["src"]},
                       currents={"hid": np.tile(bias, (4, 1))})
    for mine, theirs in (("in", "src"), ("hid", "hid")):
        for field in ("sample", "tick", "node_id"):
            np.testing.assert_array_equal(getattr(replayed.spikes[mine], field), getattr(original.spikes[theirs], field))
    assert len(replayed.spikes["hid"].tick) > 0
    same = net.run(ticks=30, samples=4, first_sample=10, spikes={"in": original.spikes["src"]}, currents={"hid": bias})
    np.testing.assert_array_equal(same.spikes["hid"].tick, replayed.spikes["hid"].tick)
    with pytest.raises(quantal.InputError, match=r"^spikes: given for population 'hid', which is not a spike source"):
        net.run(ticks=30, spikes={"hid": ([0], [0], [0])})
    with pytest.raises(quantal.InputError, match=r"^spikes for 'in': sample 13 is out of range \[10, 13\)"):
        net.run(ticks=30, samples=3, first_sample=10, spikes={"in": original.spikes["src"]})
    with pytest.raises(quantal.InputError, match=r"^spikes for 'in': tick 30 is out of range \[0, 30\)"):
        net.run(ticks=30, spikes={"in": ([0], [30], [0])})
    with pytest.raises(quantal.InputError, match=r"^currents for 'hid': shape \(3,\), expected \(1, 12\) or \(12,\)"):
        net.run(ticks=30, currents={"hid": [1.0, 2.0, 3.0]})
    with pytest.raises(quantal.InputError, match=r"^stimulus: population 'in' is a spike source and takes no current"):
        net.run(ticks=30, currents={"in": np.zeros(20)})


def test_threads_per_sample_changes_nothing_and_is_checked(tmp_path):
    """Threads within a sample (docs/engine.md, "Threads within a sample"): the CLI with
    --threads-per-sample 2 writes the trace that net.run returns on one thread, and threads over
    samples with threads per sample give the same readouts and ledger; impossible counts are
    refused, in the CLI's words."""
    trace = tmp_path / "mst.h5"
    run_quantal("--model", MST, "--ticks", 12, "--input", IMAGES, "--samples", 3, "--mask", 0.5, "--release", "spike",
                "--seed", 4, "--threads-per-sample", 2, "--trace", trace)
    net = quantal.load(MST)
    images = read_idx(IMAGES, 0, 3).reshape(3, 28, 28)
    one = net.run(images, ticks=12, mask=0.5, release="spike", seed=4)
    assert_result_equals_trace(one, trace)
    both = net.run(images, ticks=12, mask=0.5, release="spike", seed=4, threads=2, threads_per_sample=3)
    assert np.array_equal(one.readout, both.readout) and np.array_equal(one.predictions, both.predictions)
    assert one.ledger.table() == both.ledger.table()
    assert cli_error("--model", MST, "--ticks", 4, "--threads", 3, "--threads-per-sample", 512) == \
        "--threads 3 x --threads-per-sample 512 = 1536 threads, more than 1024"
    with pytest.raises(quantal.InputError, match=r"^threads 3 x threads_per_sample 512 = 1536 threads, more than 1024$"):
        net.run(ticks=4, threads=3, threads_per_sample=512)
    with pytest.raises(quantal.InputError, match=r"^threads_per_sample 0 is not a whole number from 1 to 1024"):
        net.run(ticks=4, threads_per_sample=0)
