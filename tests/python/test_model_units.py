"""What NEST and Brian2 users expect of a model description (issue 12): the model file's dt is the
run's default (`--dt` overrides it with a one-line warning when they differ; without one, 1 ms),
trace times and rates in Hz follow it; per-neuron values of every neuron parameter; Poisson
sources in Hz. The networks are written with h5py after docs/model-format.md and built with the
Python module, and compared spike for spike through `quantal run`'s traces."""
import math
import os
import subprocess

import h5py
import numpy as np
import pytest

import quantal
from nir_reference import run_quantal

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
TICKS, SAMPLES, SEED = 60, 2, 7


def ramp(n, a, b):
    """n dyadic values from a to about a + b (exact in binary: sums do not depend on order)."""
    return a + b * np.arange(n) / 32.0


def write_model(path, dt=None, poisson=True, rate=200.0, **root):
    """drive (Poisson at `rate` Hz, or Bernoulli p = 0.2) -dense-> hid (IF, per-neuron threshold and
    v0) -dense, delay 1-> lif (LIF, per-neuron tau, v_leak, v_reset) -> cuba (CubaLIF, per-neuron
    tau_syn, v0)."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="units", **root)
        if dt is not None:
            f.attrs["dt"] = dt
        pops = f.create_group("populations")
        pops.attrs["order"] = ["drive", "hid", "lif", "cuba"]
        g = pops.create_group("drive")
        g["shape"] = np.array([12], np.int64)
        if poisson:
            g.attrs["model"] = "poisson_source"
            g["rate"] = np.full(12, rate)
        else:
            g.attrs["model"] = "bernoulli_source"
            g["probability"] = np.array([0.2])
        g = pops.create_group("hid")
        g.attrs.update(model="IF", comparison=">=", reset="subtract")
        g["shape"] = np.array([10], np.int64)
        g["threshold"], g["v0"] = ramp(10, 0.5, 1.0), ramp(10, 0.0, 0.25)
        g = pops.create_group("lif")
        g.attrs.update(model="LIF", comparison=">", reset="value", threshold=0.75, v0=0.0)
        g["shape"] = np.array([6], np.int64)
        g["tau_ticks"], g["v_leak"], g["v_reset"] = ramp(6, 2.0, 16.0), ramp(6, -0.125, 0.25), ramp(6, -0.25, 0.5)
        g = pops.create_group("cuba")
        g.attrs.update(model="CubaLIF", comparison=">=", reset="subtract", threshold=0.5, tau_ticks=6.0)
        g["shape"] = np.array([4], np.int64)
        g["tau_syn_ticks"], g["v0"] = ramp(4, 1.0, 4.0), ramp(4, 0.0, 0.5)
        prj = f.create_group("projections")
        prj.attrs["order"] = ["in", "hid->lif", "lif->cuba"]
        weights = {"in": (12, 10), "hid->lif": (10, 6), "lif->cuba": (6, 4)}
        ends = {"in": ("drive", "hid"), "hid->lif": ("hid", "lif"), "lif->cuba": ("lif", "cuba")}
        for name, (n_in, n_out) in weights.items():
            g = prj.create_group(name)
            g.attrs.update(kind="dense", source=ends[name][0], target=ends[name][1], delay=np.int64(name == "hid->lif"))
            g["weight"] = (np.round(rng.uniform(0.0, 0.5, (n_out, n_in)) * 64) / 64).astype(np.float32)
    return weights


def built_network(dt):
    """The network of write_model, built in Python from numpy arrays."""
    rng = np.random.default_rng(3)
    b = quantal.NetworkBuilder(dt=dt)
    b.add_population("drive", 12, quantal.PoissonSource(np.full(12, 200.0)))
    b.add_population("hid", 10, quantal.IF(threshold=ramp(10, 0.5, 1.0), v0=ramp(10, 0.0, 0.25)))
    b.add_population("lif", 6, quantal.LIF(threshold=0.75, v0=0.0, tau_ticks=ramp(6, 2.0, 16.0),
                                           v_leak=ramp(6, -0.125, 0.25), comparison=">", reset="value",
                                           v_reset=ramp(6, -0.25, 0.5)))
    b.add_population("cuba", 4, quantal.CubaLIF(threshold=0.5, v0=ramp(4, 0.0, 0.5), tau_ticks=6.0,
                                                tau_syn_ticks=ramp(4, 1.0, 4.0)))
    for name, (src, dst, n_in, n_out) in {"in": ("drive", "hid", 12, 10), "hid->lif": ("hid", "lif", 10, 6),
                                          "lif->cuba": ("lif", "cuba", 6, 4)}.items():
        w = (np.round(rng.uniform(0.0, 0.5, (n_out, n_in)) * 64) / 64).astype(np.float32)
        b.connect(src, dst, quantal.Dense(w), delay=int(name == "hid->lif"), name=name)
    return b.build()


def trace(path):
    with h5py.File(path, "r") as f:
        spikes = {n: (g["timestamps"][()], g["node_ids"][()]) for n, g in f["spikes"].items()}
        return spikes, float(f["run"].attrs["dt_ms"]), f["run"].attrs["dt_source"]


def report_rates(stdout):
    """{population: (rate per tick, rate Hz)} from quantal run's report."""
    rates, table = {}, False
    for line in stdout.splitlines():
        if line.startswith("populations (per sample)"):
            table = True
            continue
        if table and line.startswith("  ") and not line.split()[0] == "name":
            f = line.split()
            rates[f[0]] = (float(f[3]), float(f[4]))
        elif table and not line.startswith("  "):
            break
    return rates


def test_the_files_dt_is_the_default_and_sets_times_and_rates(tmp_path):
    model, out = tmp_path / "m.h5", tmp_path / "t.h5"
    write_model(model, dt=0.1)
    proc = run_quantal("--model", model, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED, "--trace", out)
    assert "warning" not in proc.stderr
    spikes, dt_ms, source = trace(out)
    assert dt_ms == 0.1 and source == "the model file"
    ts = np.concatenate([t for t, _ in spikes.values()])
    ticks = np.rint(ts / 0.1)
    assert ts.size > 100 and np.allclose(ts, ticks * 0.1, rtol=0, atol=1e-9) and ticks.max() < TICKS * SAMPLES
    # the report's rates: spikes per neuron and tick, and in Hz = per tick / 0.1 ms
    rates = report_rates(proc.stdout)
    for name, size in (("hid", 10), ("lif", 6), ("drive", 12)):
        per_tick = spikes[name][0].size / SAMPLES / size / TICKS
        assert rates[name][0] == pytest.approx(per_tick, abs=5e-6)
        assert rates[name][1] == pytest.approx(per_tick * 1000 / 0.1, abs=1e-3)
    # quantal inspect reports Hz on the same time axis
    inspect = subprocess.run([QUANTAL, "inspect", str(out)], capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    assert "dt_source: the model file" in inspect.stdout
    line = next(l for l in inspect.stdout.splitlines() if l.split()[:1] == ["hid"])
    hz = float(line.split()[3])
    assert hz == pytest.approx(spikes["hid"][0].size / 10 / (SAMPLES * TICKS * 0.1e-3), rel=1e-3)


def test_dt_on_the_command_line_warns_only_when_it_differs(tmp_path):
    model = tmp_path / "m.h5"
    write_model(model, dt=0.1)
    same, other, base = tmp_path / "same.h5", tmp_path / "other.h5", tmp_path / "base.h5"
    run_quantal("--model", model, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED, "--trace", base)
    proc = run_quantal("--model", model, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED, "--dt", 0.1,
                       "--trace", same)
    assert proc.stderr == ""
    assert trace(same)[0].keys() == trace(base)[0].keys()
    for name, (ts, ids) in trace(base)[0].items():
        np.testing.assert_array_equal(trace(same)[0][name][0], ts)
    proc = run_quantal("--model", model, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED, "--dt", 0.5,
                       "--trace", other)
    warnings = [l for l in proc.stderr.splitlines() if "warning" in l]
    assert len(warnings) == 1 and "0.10000000000000001 ms" in warnings[0] and "--dt 0.5" in warnings[0], proc.stderr
    assert str(model) in warnings[0]
    spikes, dt_ms, source = trace(other)
    assert dt_ms == 0.5 and source.startswith("--dt, over the model file's")
    ts = np.concatenate([t for t, _ in spikes.values()])
    assert np.allclose(ts, np.rint(ts / 0.5) * 0.5, rtol=0, atol=1e-9)
    # the Poisson drive runs at 200 Hz x 0.5 ms = 0.1 per tick, not 0.02: five times the spikes
    base_drive, other_drive = trace(base)[0]["drive"][0].size, spikes["drive"][0].size
    expected = 12 * SAMPLES * TICKS
    assert abs(base_drive - expected * 0.02) < 5 * math.sqrt(expected * 0.02)
    assert abs(other_drive - expected * 0.1) < 5 * math.sqrt(expected * 0.1)


def test_a_file_without_dt_uses_the_documented_default(tmp_path):
    model, out = tmp_path / "m.h5", tmp_path / "t.h5"
    write_model(model, dt=None)
    proc = run_quantal("--model", model, "--ticks", TICKS, "--trace", out)
    assert proc.stderr == ""
    _, dt_ms, source = trace(out)
    assert dt_ms == 1.0 and source == "default 1 ms (the model file gives no dt)"
    inspect = subprocess.run([QUANTAL, "inspect", str(out)], capture_output=True, text=True, timeout=120)
    assert "dt_source: default 1 ms (the model file gives no dt)" in inspect.stdout
    # --dt on a file without one: used, no warning (nothing to differ from)
    proc = run_quantal("--model", model, "--ticks", TICKS, "--dt", 0.25, "--trace", tmp_path / "u.h5")
    assert proc.stderr == "" and trace(tmp_path / "u.h5")[1] == 0.25


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "1e400"])
def test_a_bad_dt_on_the_command_line_is_refused(tmp_path, value):
    model = tmp_path / "m.h5"
    write_model(model, dt=0.1)
    proc = run_quantal("--model", model, "--ticks", 5, f"--dt={value}", check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--dt" in proc.stderr


@pytest.mark.parametrize("value, words", [(math.nan, "attribute 'dt' is not finite"), (0.0, "attribute 'dt' is 0, expected > 0"),
                                          (-0.5, "attribute 'dt' is -0.5"), (math.inf, "attribute 'dt' is not finite")])
def test_a_bad_dt_in_the_file_is_refused(tmp_path, value, words):
    model = tmp_path / "m.h5"
    write_model(model, dt=value)
    proc = run_quantal("--model", model, "--ticks", 5, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(model) in proc.stderr and words in proc.stderr


def test_a_poisson_rate_above_one_spike_per_tick_is_refused(tmp_path):
    model = tmp_path / "m.h5"
    write_model(model, dt=1.0, rate=1500.0)
    proc = run_quantal("--model", model, "--ticks", 5, check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "population 'drive'" in proc.stderr and "rate[0] 1500 Hz at dt 1 ms" in proc.stderr
    # the same file at a finer --dt is a valid run: p = 1500 Hz x 0.5 ms = 0.75
    proc = run_quantal("--model", model, "--ticks", 5, "--dt", 0.5, check=False)
    assert proc.returncode == 0, proc.stderr


def test_per_neuron_arrays_built_in_python_equal_the_model_file(tmp_path):
    model, out = tmp_path / "m.h5", tmp_path / "t.h5"
    write_model(model, dt=0.1)
    run_quantal("--model", model, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED, "--trace", out)
    net = built_network(dt=0.1)
    assert net.dt_ms == 0.1
    np.testing.assert_array_equal(net.population("lif").parameters["tau_ticks"], ramp(6, 2.0, 16.0))
    assert net.population("lif").parameters["threshold"] == 0.75
    result = net.run(ticks=TICKS, samples=SAMPLES, seed=SEED)
    spikes, _, _ = trace(out)
    assert sorted(spikes) == sorted(result.spikes)
    for name, (ts, ids) in spikes.items():
        np.testing.assert_array_equal(result.timestamps(name), ts, err_msg=name)
        np.testing.assert_array_equal(result.spikes[name].node_id, ids, err_msg=name)
    assert all(len(result.spikes[p].tick) > 0 for p in ("drive", "hid", "lif", "cuba"))
    # Network.save keeps the arrays and dt; quantal.load reads them back
    saved = tmp_path / "saved.h5"
    net.save(saved)
    with h5py.File(saved, "r") as f:
        assert f.attrs["dt"] == 0.1 and f["populations/hid/threshold"].shape == (10,)
        np.testing.assert_array_equal(f["populations/drive/rate"][()], np.full(12, 200.0))
    again = quantal.load(saved).run(ticks=TICKS, samples=SAMPLES, seed=SEED)
    for name in spikes:
        np.testing.assert_array_equal(again.timestamps(name), result.timestamps(name))


def test_python_load_warns_when_dt_overrides_the_files(tmp_path):
    model = tmp_path / "m.h5"
    write_model(model, dt=0.1)
    assert quantal.load(model).dt_ms == 0.1
    with pytest.warns(UserWarning, match=r"--dt 0.5 overrides it"):
        assert quantal.load(model, dt=0.5).dt_ms == 0.5
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert quantal.load(model, dt=0.1).dt_ms == 0.1
    with pytest.raises(ValueError, match="dt"):
        quantal.load(model, dt=float("nan"))


def test_float64_weights_are_rounded_with_a_warning_and_run_as_their_float32(tmp_path):
    """quantal holds weights in float32 (docs/model-format.md): a float64 file's weights are rounded
    to nearest, said once per load, and run exactly as the same file written in float32."""
    wide, narrow = tmp_path / "f64.h5", tmp_path / "f32.h5"
    for path in (wide, narrow):
        write_model(path, dt=1.0)
    w = np.random.default_rng(5).uniform(0.0, 0.5, (10, 12))   # not representable in float32
    with h5py.File(wide, "a") as f:
        del f["projections/in/weight"]
        f["projections/in/weight"] = w
    with h5py.File(narrow, "a") as f:
        f["projections/in/weight"][...] = w.astype(np.float32)
    largest = np.max(np.abs(w.astype(np.float32) - w) / w)
    with pytest.warns(UserWarning, match=r"120 float64 values rounded to float32") as caught:
        quantal.load(wide)
    assert "projection 'in', dataset 'weight'" in str(caught[0].message)
    assert f"{largest:.2g}" in str(caught[0].message)
    traces = {}
    for path in (wide, narrow):
        traces[path] = str(tmp_path / (path.stem + ".trace.h5"))
        proc = run_quantal("--model", path, "--ticks", TICKS, "--samples", SAMPLES, "--seed", SEED,
                           "--trace", traces[path])
        assert ("120 float64 values rounded to float32" in proc.stderr) == (path == wide), proc.stderr
    with h5py.File(traces[wide], "r") as a, h5py.File(traces[narrow], "r") as b:
        for name in ("hid", "lif", "cuba"):
            np.testing.assert_array_equal(a[f"spikes/{name}/timestamps"][()], b[f"spikes/{name}/timestamps"][()])
            np.testing.assert_array_equal(a[f"spikes/{name}/node_ids"][()], b[f"spikes/{name}/node_ids"][()])
        assert len(a["spikes/hid/node_ids"]) > 0


@pytest.mark.parametrize("make, words", [
    (lambda q: q.IF(threshold=np.ones(9), v0=0.0), "threshold has 9 values, expected 1 or 10"),
    (lambda q: q.IF(threshold=1.0, v0=np.array([0.0] * 9 + [np.nan])), "v0[9] is not finite"),
    (lambda q: q.LIF(threshold=1.0, v0=0.0, tau_ticks=np.r_[np.ones(9), -2.0]), "tau_ticks[9] is -2"),
    (lambda q: q.LIF(threshold=1.0, v0=0.0, tau_ticks=4.0, v_leak=np.zeros(3)), "v_leak has 3 values"),
    (lambda q: q.CubaLIF(threshold=1.0, v0=0.0, tau_ticks=4.0, tau_syn_ticks=np.zeros(10)), "tau_syn_ticks[0] is 0"),
    (lambda q: q.PoissonSource(np.full(10, 2000.0)), "rate[0] 2000 Hz at dt 1 ms"),
    (lambda q: q.PoissonSource(-1.0), "rate is -1 Hz"),
])
def test_python_refuses_wrong_per_neuron_values_naming_population_and_parameter(make, words):
    b = quantal.NetworkBuilder()
    b.add_population("pop", 10, make(quantal))
    with pytest.raises(ValueError) as e:
        b.build()
    assert "population 'pop'" in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
