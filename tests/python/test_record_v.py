"""Membrane reports (docs/traces.md, "Membrane reports"; issue 12): `quantal run --record-v` writes
SONATA's frame-oriented report layout, read back here with h5py; its values equal a naive numpy
time-stepped simulation of the same network (IF and LIF, bias and synaptic input) fed the spikes
the trace recorded; recording changes no spike; `net.run(record_v=...)` returns the same values;
`net.run(trace=...)` writes the trace `quantal run --trace` writes; `quantal run` reports its
timing; bad --record-v values fail with one line and exit code 2."""
import os
import re
import subprocess

import h5py
import numpy as np
import pytest

import quantal
from nir_reference import dyadic

BINARY = os.environ["QUANTAL_BINARY"]
TICKS, SAMPLES, SEED = 24, 3, 5
TAU = 4.0


def build(tmp_path):
    rng = np.random.default_rng(8)
    b = quantal.NetworkBuilder()
    b.add_population("src", 16, quantal.BernoulliSource(0.3))
    b.add_population("if", 6, quantal.IF(threshold=1.0, v0=0.5), bias=0.0625)
    b.add_population("lif", 5, quantal.LIF(threshold=1.0, v0=0.0, tau_ticks=TAU), bias=0.125)
    b.add_population("out", 3, quantal.Readout())
    w_if, w_lif, w_out = dyadic(rng, (6, 16), 0.6), dyadic(rng, (5, 16), 0.6), dyadic(rng, (3, 6))
    b.connect("src", "if", quantal.Dense(w_if))
    b.connect("src", "lif", quantal.Dense(w_lif))
    b.connect("if", "out", quantal.Dense(w_out))
    net = b.build()
    path = tmp_path / "net.h5"
    net.save(path)
    return net, str(path), (w_if, w_lif, w_out)


def quantal_run(*args):
    return subprocess.run([BINARY, "run", *args], capture_output=True, text=True)


def run_cli(model, trace, *extra):
    proc = quantal_run("--model", model, "--ticks", str(TICKS), "--samples", str(SAMPLES), "--seed", str(SEED),
                       "--trace", str(trace), *extra)
    assert proc.returncode == 0, proc.stderr
    return proc


def naive_potentials(source_spikes, weights):
    """Per sample, every tick: v after input, threshold (>=) and reset by subtraction."""
    w_if, w_lif, w_out = (w.astype(np.float64) for w in weights)
    alpha = np.exp(-1.0 / TAU)
    out = {"if": [], "lif": [], "out": []}
    for k in range(SAMPLES):
        v_if, v_lif, v_out = np.full(6, 0.5), np.zeros(5), np.zeros(3)
        for t in range(TICKS):
            s = source_spikes[k * TICKS + t]
            v_if = v_if + 0.0625 + w_if @ s
            fired = v_if >= 1.0
            v_if = np.where(fired, v_if - 1.0, v_if)
            v_lif = alpha * v_lif + 0.125 + w_lif @ s
            v_lif = np.where(v_lif >= 1.0, v_lif - 1.0, v_lif)
            v_out = v_out + w_out @ fired.astype(np.float64)
            for name, v in (("if", v_if), ("lif", v_lif), ("out", v_out)):
                out[name].append(v.copy())
    return {name: np.array(frames) for name, frames in out.items()}


def source_spikes(f):
    spikes = np.zeros((SAMPLES * TICKS, 16))
    ts, ids = f["spikes/src/timestamps"][()], f["spikes/src/node_ids"][()]
    spikes[ts.astype(np.int64), ids.astype(np.int64)] = 1.0  # dt = 1 ms: the timestamp is the tick
    return spikes


def test_report_layout_and_values_equal_a_naive_simulation(tmp_path):
    net, model, weights = build(tmp_path)
    trace = tmp_path / "v.h5"
    run_cli(model, trace, "--record-v", "if", "--record-v", "lif:1-3", "--record-v", "out:2")
    with h5py.File(trace, "r") as f:
        assert set(f["report"]) == {"if", "lif", "out"}
        frames = SAMPLES * TICKS
        for name, ids in (("if", range(6)), ("lif", range(1, 4)), ("out", [2])):
            g = f["report"][name]
            data = g["data"]
            assert data.dtype == np.float32 and data.shape == (frames, len(ids))
            assert data.maxshape[0] is None and data.chunks is not None  # streamed: chunked, extendible
            assert data.attrs["units"] == "dimensionless"
            m = g["mapping"]
            assert m["node_ids"].dtype == np.uint64 and list(m["node_ids"][()]) == list(ids)
            assert m["index_pointers"].dtype == np.uint64 and list(m["index_pointers"][()]) == list(range(len(ids) + 1))
            assert m["element_ids"].dtype == np.uint32 and list(m["element_ids"][()]) == [1] * len(ids)
            assert m["element_pos"].dtype == np.float32 and list(m["element_pos"][()]) == [1.0] * len(ids)
            assert m["time"].dtype == np.float64 and list(m["time"][()]) == [0.0, float(frames), 1.0]
            assert m["time"].attrs["units"] == "ms"
        want = naive_potentials(source_spikes(f), weights)
        assert f["spikes/if/node_ids"].size > 10  # the neurons spike: resets are in the values
        np.testing.assert_array_equal(f["report/if/data"][()], want["if"].astype(np.float32))
        np.testing.assert_allclose(f["report/lif/data"][()], want["lif"][:, 1:4].astype(np.float32), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(f["report/out/data"][()], want["out"][:, 2:3].astype(np.float32))


def spikes_of(path):
    with h5py.File(path, "r") as f:
        return {name: (g["timestamps"][()], g["node_ids"][()]) for name, g in f["spikes"].items()}


@pytest.mark.parametrize("path", ["lazy", "sweep"])
def test_recording_changes_no_spike_and_threads_write_the_same_report(tmp_path, path):
    _, model, _ = build(tmp_path)
    run_cli(model, tmp_path / "plain.h5", "--update-path", path)
    run_cli(model, tmp_path / "v1.h5", "--update-path", path, "--record-v", "if:0-5", "--record-v", "lif")
    run_cli(model, tmp_path / "v2.h5", "--update-path", path, "--record-v", "if:0-5", "--record-v", "lif",
            "--threads", "2")
    plain, v1, v2 = (spikes_of(tmp_path / n) for n in ("plain.h5", "v1.h5", "v2.h5"))
    for name in plain:
        for a, b, c in zip(plain[name], v1[name], v2[name]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    with h5py.File(tmp_path / "v1.h5", "r") as f1, h5py.File(tmp_path / "v2.h5", "r") as f2:
        for name in ("if", "lif"):
            np.testing.assert_array_equal(f1[f"report/{name}/data"][()], f2[f"report/{name}/data"][()])


def test_record_samples_limits_the_frames(tmp_path):
    _, model, _ = build(tmp_path)
    run_cli(model, tmp_path / "v.h5", "--record-v", "lif", "--record-samples", "2")
    with h5py.File(tmp_path / "v.h5", "r") as f:
        assert f["report/lif/data"].shape == (2 * TICKS, 5)
        assert list(f["report/lif/mapping/time"][()]) == [0.0, 2.0 * TICKS, 1.0]


def test_python_record_v_equals_the_trace_and_read_trace_returns_it(tmp_path):
    net, model, _ = build(tmp_path)
    run_cli(model, tmp_path / "cli.h5", "--record-v", "if", "--record-v", "lif:1-3")
    result = net.run(ticks=TICKS, samples=SAMPLES, seed=SEED, record_v={"if": range(6), "lif": [1, 2, 3]})
    assert result.potentials["if"].shape == (SAMPLES, TICKS, 6)
    assert result.potentials["lif"].shape == (SAMPLES, TICKS, 3)
    trace = quantal.read_trace(tmp_path / "cli.h5")
    for name in ("if", "lif"):
        report = trace.report[name]
        np.testing.assert_array_equal(report.data, result.potentials[name].reshape(SAMPLES * TICKS, -1).astype(np.float32))
        np.testing.assert_array_equal(report.times_ms, np.arange(SAMPLES * TICKS, dtype=np.float64))
    assert list(trace.report["lif"].node_ids) == [1, 2, 3]
    assert set(trace) == set(spikes_of(tmp_path / "cli.h5"))  # still the spikes' dict


def test_python_trace_equals_the_command_lines(tmp_path):
    net, model, _ = build(tmp_path)
    cli = tmp_path / "cli.h5"
    run_cli(model, cli, "--record-v", "lif:0-4", "--record-samples", "2")
    py = tmp_path / "py.h5"
    result = net.run(ticks=TICKS, samples=SAMPLES, seed=SEED, record_samples=2, record_v={"lif": range(5)}, trace=py)
    assert not result.interrupted
    with h5py.File(cli, "r") as a, h5py.File(py, "r") as b:
        def datasets(f, group):
            names = []
            f[group].visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            return sorted(names)
        for group in ("spikes", "samples", "energy", "report"):
            assert datasets(a, group) == datasets(b, group), group
            for name in datasets(a, group):
                np.testing.assert_array_equal(a[group][name][()], b[group][name][()], err_msg=f"{group}/{name}")
        assert b["run"].attrs["status"] == "complete"
        assert a["spikes/if/node_ids"].size > 0
    with pytest.raises(quantal.InputError, match="already exists"):
        net.run(ticks=TICKS, samples=1, trace=py)


def test_run_prints_its_timing(tmp_path):
    _, model, _ = build(tmp_path)
    proc = run_cli(model, tmp_path / "t.h5")
    time_line = re.search(r"^time: loading (\S+) s, simulating (\S+) s$", proc.stdout, re.M)
    speed_line = re.search(r"^speed: (\S+) spikes/s, (\S+) synaptic events/s$", proc.stdout, re.M)
    assert time_line and speed_line, proc.stdout
    for value in time_line.groups() + speed_line.groups():
        assert float(value) >= 0.0


@pytest.mark.parametrize("spec, message", [
    ("nothere", "population 'nothere' is not in the model"),
    ("src", "'src' is a spike source and has no membrane potential"),
    ("if:3-6", "neuron 6 is outside population 'if' (neurons 0-5)"),
    ("if:4-2", "last neuron 2 is before its first 4"),
    ("if:a-b", "expected POP, POP:k or POP:first-last"),
    ("if:-1", "expected POP, POP:k or POP:first-last"),
])
def test_bad_record_v_is_one_line_and_exit_code_2(tmp_path, spec, message):
    _, model, _ = build(tmp_path)
    trace = tmp_path / "bad.h5"
    proc = quantal_run("--model", model, "--ticks", "5", "--trace", str(trace), "--record-v", spec)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--record-v '{spec}'" in lines[0] and message in lines[0], lines
    assert model in lines[0]
    assert not trace.exists()  # refused before the trace was created


def test_record_v_needs_a_trace_and_one_range_per_population(tmp_path):
    _, model, _ = build(tmp_path)
    proc = quantal_run("--model", model, "--ticks", "5", "--record-v", "if")
    assert proc.returncode == 2 and "--record-v if needs --trace FILE" in proc.stderr
    proc = quantal_run("--model", model, "--ticks", "5", "--trace", str(tmp_path / "x.h5"), "--record-v", "if:0",
                       "--record-v", "if:2")
    assert proc.returncode == 2 and "'if' is given twice" in proc.stderr


def test_python_record_v_errors(tmp_path):
    net, _, _ = build(tmp_path)
    with pytest.raises(quantal.InputError, match="record_v: .* has no population 'nothere'"):
        net.run(ticks=5, record_v={"nothere": [0]})
    with pytest.raises(quantal.InputError, match=r"neuron ids must be in \[0, 6\)"):
        net.run(ticks=5, record_v={"if": [0, 6]})
    with pytest.raises(ValueError, match="'src' is a spike source"):
        net.run(ticks=5, record_v={"src": [0]})
    with pytest.raises(ValueError, match="ascending and distinct"):
        net.run(ticks=5, record_v={"if": [3, 1]})
