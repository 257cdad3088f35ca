"""The figures of a run (traces/trace_figures.py: quantal.plot and `quantal inspect --plot`), checked
for what they must contain: the panels, the axis ranges and labels with units, a colour bar with
ticks, and the numbers drawn, recomputed here from the result's arrays (the oracle). A trace of the
same run, written by `quantal run --trace`, draws the same spikes and energies."""
import os
import subprocess

import numpy as np
import pytest

import quantal
import quantal.plot

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
TICKS, SAMPLES, RECORDED = 40, 6, 4


def layered_network(hidden_layers=2):
    """in.src -> l0.exc -> l1.exc ... -> out.readout, each hidden layer with an inhibitory
    population that feeds back (so activity varies over the ticks); projections carry roles, so
    the energy figure has layers and roles to group."""
    rng = np.random.default_rng(5)
    b = quantal.NetworkBuilder()
    b.add_population("in.src", 60, quantal.BernoulliSource(0.15))
    previous = "in.src"
    for layer in range(hidden_layers):
        exc, inh = f"l{layer}.exc", f"l{layer}.inh"
        b.add_population(exc, 150, quantal.IF(threshold=1.0, v0=0.0))
        b.add_population(inh, 40, quantal.LIF(threshold=1.0, v0=0.0, tau_ticks=5.0))
        n_prev = 60 if previous == "in.src" else 150
        b.connect(previous, exc, quantal.Dense(rng.uniform(0, 0.15, (150, n_prev))), role="fc1_in",
                  release=quantal.Release("synapse", 0.25))
        b.connect(exc, inh, quantal.Dense(rng.uniform(0, 0.03, (40, 150))), role="stream")
        b.connect(inh, exc, quantal.Dense(-rng.uniform(0, 0.1, (150, 40))), delay=1, role="stream")
        previous = exc
    b.add_population("out.readout", 3, quantal.Readout())
    b.connect(previous, "out.readout", quantal.Dense(rng.normal(0, 1, (3, 150))), role="head")
    return b.build()


@pytest.fixture(scope="module")
def run():
    net = layered_network()
    return net, net.run(ticks=TICKS, samples=SAMPLES, seed=4, record_samples=RECORDED, observe=[10, 20, 40],
                        labels=np.array([0, 1, 2, 0, 1, 2]))


def scatter_points(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections]) if ax.collections else np.zeros((0, 2))


def test_raster_panels_window_and_spikes(run, tmp_path):
    net, result = run
    fig = quantal.plot.raster(result, populations=["l0.exc", "l1.inh"], neurons=20, samples=(1, 3), ticks=(5, 25))
    fig.savefig(tmp_path / "raster.png", dpi=110)
    panels = fig.axes
    assert len(panels) == 2
    assert [p["population"] for p in fig.quantal["panels"]] == ["l0.exc", "l1.inh"]
    span = 20 * result.dt_ms
    for ax, name, panel in zip(panels, ["l0.exc", "l1.inh"], fig.quantal["panels"]):
        assert name in ax.get_ylabel() and "neuron id" in ax.get_ylabel()
        assert ax.get_xlim() == (0.0, 2 * span)
        size = net.population(name).size
        ids = np.array(panel["neurons"])
        assert len(ids) == 20 and ids[0] == 0 and ids[-1] == size - 1  # evenly spaced, ends included
        # The oracle: the result's spikes of samples 1 and 2, ticks 5..24, those neurons.
        s = result.spikes[name]
        keep = (s.sample >= 1) & (s.sample < 3) & (s.tick >= 5) & (s.tick < 25) & np.isin(s.node_id, ids)
        points = scatter_points(ax)
        assert len(points) == keep.sum() == panel["spikes"] > 0
        expected_x = (s.sample[keep].astype(float) - 1) * span + (s.tick[keep] - 5 + 0.5) * result.dt_ms
        expected_y = np.searchsorted(ids, s.node_id[keep])
        assert sorted(zip(points[:, 0], points[:, 1])) == sorted(zip(expected_x, expected_y))
        # The boundary between the two samples is marked.
        assert any(line.get_xdata()[0] == span for line in ax.lines)
    assert "ms" in panels[-1].get_xlabel() and "sample boundaries" in panels[-1].get_xlabel()
    assert fig.quantal["samples"] == [1, 2]


def test_raster_of_many_populations_shows_eight_spread_over_the_network():
    net = layered_network(hidden_layers=5)  # 11 recorded populations
    result = net.run(ticks=10, samples=1, seed=1)
    fig = quantal.plot.raster(result)
    names = [p.name for p in net.populations if p.model != "readout"]
    chosen = fig.quantal["populations"]
    assert len(fig.axes) == len(chosen) == 8
    assert chosen[0] == names[0] and chosen[-1] == names[-1] and chosen == [n for n in names if n in chosen]
    assert "8 of 11 populations" in fig._suptitle.get_text()
    for ax, panel in zip(fig.axes, fig.quantal["panels"]):
        assert len(panel["neurons"]) == min(100, net.population(panel["population"]).size)


def test_raster_refuses_what_the_run_does_not_have(run):
    _, result = run
    with pytest.raises(ValueError, match="no recorded population 'nope'"):
        quantal.plot.raster(result, populations=["nope"])
    with pytest.raises(ValueError, match=r"only 4 samples were recorded"):
        quantal.plot.raster(result, samples=(4, 6))
    with pytest.raises(ValueError, match=r"ticks \(0, 41\)"):
        quantal.plot.raster(result, ticks=(0, 41))
    with pytest.raises(ValueError, match=r"within \[0, 40\)"):
        quantal.plot.raster(result, populations=["l0.inh"], neurons=range(35, 45))


def expected_rates(net, result, names):
    out = []
    for name in names:
        s = result.spikes[name]
        counts = np.bincount(s.tick, minlength=TICKS)
        out.append(counts / (net.population(name).size * RECORDED) / (result.dt_ms / 1000.0))
    return np.array(out)


def test_rates_are_per_tick_means_over_the_recorded_samples(run):
    net, result = run
    names = ["l0.exc", "l0.inh", "l1.exc"]
    fig = quantal.plot.rates(result, populations=names)
    assert fig.quantal["kind"] == "lines" and fig.quantal["samples"] == RECORDED
    np.testing.assert_allclose(fig.quantal["rates_hz"], expected_rates(net, result, names))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    assert ax.get_xlim() == (0.0, TICKS * result.dt_ms)
    assert "(Hz)" in ax.get_ylabel() and "(ms" in ax.get_xlabel()
    for line, rate in zip(ax.lines, expected_rates(net, result, names)):
        np.testing.assert_allclose(line.get_ydata(), rate)


def test_rates_of_many_populations_are_a_heat_map_with_a_ticked_colour_bar():
    net = layered_network(hidden_layers=5)
    result = net.run(ticks=TICKS, samples=2, seed=2)
    fig = quantal.plot.rates(result)
    assert fig.quantal["kind"] == "heat map"
    heat, bar = fig.axes  # the map and its colour bar
    assert "Hz" in bar.get_ylabel()
    assert len(fig.quantal["colorbar_ticks"]) >= 3
    assert [t.get_text() for t in heat.get_yticklabels()] == list(result.spikes)
    assert heat.get_xlim() == (0.0, TICKS * result.dt_ms)


def test_energy_per_layer_under_each_model(run):
    net, result = run
    fig = quantal.plot.energy(result)
    drawn = fig.quantal[""]
    assert len(fig.axes) == 3  # proxy measured, the papers' way, memory-inclusive
    # The oracle for the measured proxy: a layer (target population) costs E_AC (0.9 pJ) per
    # transmitted spike of the projections into it, per sample (no MACs, no operators here).
    transmitted = result.ledger.projections["transmitted"].sum(axis=0) / SAMPLES
    expected = dict.fromkeys(result.ledger.population_names, 0.0)
    for p, t in zip(net.projections, transmitted):
        expected[p.target] += 0.9 * t
    proxy = dict(zip(drawn["layers"], drawn["pj"]["proxy_pj"]))
    assert proxy == pytest.approx(expected)
    # Layers grouped by role group, the groups in the order data flows, each group once.
    order = [quantal.plot._figures.ROLE_GROUPS.index(g) for g in drawn["groups"]]
    assert order == sorted(order) and set(drawn["groups"]) >= {"MLP (fc1_in, fc2_in)", "embedding, head"}
    doc = result.ledger.energy_models()
    for ax, (key, _, _) in zip(fig.axes, quantal.plot._figures.ENERGY_MODELS):
        unit = ax.get_xlabel().split(" ")[0]
        scale = {"pJ": 1.0, "nJ": 1e3, "µJ": 1e6}[unit]
        widths = [bar.get_width() * scale for bar in ax.patches]
        assert widths == pytest.approx(drawn["pj"][key], rel=1e-9)
        total = next(m["input_every_tick_pj"] for m, (k, _, _) in zip(doc["models"], quantal.plot._figures.ENERGY_MODELS)
                     if k == key)
        assert f"total {total / scale:.3g} {unit}" in ax.get_title()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == drawn["layers"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == \
        ["role group: " + g for g in dict.fromkeys(drawn["groups"])]


def test_accuracy_vs_ticks(run):
    _, result = run
    other = layered_network().run(ticks=TICKS, samples=SAMPLES, seed=4, observe=[10, 20, 40], mask=0.9,
                                  labels=result.labels)
    fig = quantal.plot.accuracy({"unmasked": result, "mask 0.9": other})
    ax = fig.axes[0]
    for label, r in (("unmasked", result), ("mask 0.9", other)):
        curve = fig.quantal["curves"][label]
        assert curve["observed"] == [10, 20, 40]
        expected = (r.readout.argmax(axis=2) == r.labels[:, None]).mean(axis=0)
        np.testing.assert_allclose(curve["accuracy"], expected)
    assert ax.get_ylim() == (0.0, 100.0) and ax.get_xlim() == (0.0, 40.0)
    assert "accuracy (%)" in ax.get_ylabel() and "ticks" in ax.get_xlabel()
    low, high = quantal.plot._figures.wilson_interval(3, 6)
    assert low < 0.5 < high and low == pytest.approx(0.18761, abs=1e-4)  # 95 % Wilson, 3 of 6
    with pytest.raises(ValueError, match="needs a run with labels"):
        quantal.plot.accuracy(layered_network().run(ticks=10, samples=2))


def test_a_trace_of_the_same_run_draws_the_same(run, tmp_path):
    net, result = run
    model, trace = tmp_path / "net.h5", tmp_path / "trace.h5"
    net.save(model)
    subprocess.run([QUANTAL, "run", "--model", str(model), "--ticks", str(TICKS), "--samples", str(SAMPLES),
                    "--seed", "4", "--record-samples", str(RECORDED), "--dt", "0.5", "--trace", str(trace)],
                   check=True, capture_output=True)
    kwargs = dict(populations=["l0.exc", "l1.inh"], neurons=20, samples=(1, 3), ticks=(5, 25))
    from_trace, from_result = quantal.plot.raster(str(trace), **kwargs), quantal.plot.raster(result, **kwargs)
    assert from_trace.quantal["panels"] == from_result.quantal["panels"]
    assert from_trace.axes[0].get_xlim() == (0.0, 2 * 20 * 0.5)  # the trace's dt
    for a, b in zip(from_trace.axes, from_result.axes):
        np.testing.assert_allclose(scatter_points(a) * [2, 1], scatter_points(b))
    rates_trace = quantal.plot.rates(str(trace), populations=["l0.exc", "l0.inh"]).quantal["rates_hz"]
    rates_result = quantal.plot.rates(result, populations=["l0.exc", "l0.inh"]).quantal["rates_hz"]
    np.testing.assert_allclose(np.array(rates_trace) / 2, rates_result)  # ticks of 0.5 ms: twice the rate
    from_trace, from_result = quantal.plot.energy(str(trace)).quantal[""], quantal.plot.energy(result).quantal[""]
    assert from_trace["layers"] == from_result["layers"] and from_trace["groups"] == from_result["groups"]
    for key, values in from_result["pj"].items():
        np.testing.assert_allclose(from_trace["pj"][key], values, rtol=1e-9)


def test_inspect_plot_draws_with_the_shared_figures(run, tmp_path):
    net, _ = run
    model, trace, out = tmp_path / "net.h5", tmp_path / "trace.h5", tmp_path / "plots"
    net.save(model)
    subprocess.run([QUANTAL, "run", "--model", str(model), "--ticks", str(TICKS), "--samples", "3", "--trace",
                    str(trace)], check=True, capture_output=True)
    r = subprocess.run([QUANTAL, "inspect", str(trace), "--plot", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("raster.png", "rates.png", "energy_per_layer.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    script = os.path.join(os.path.dirname(quantal.__file__), "..", "..", "..", "traces", "plot_trace.py")
    source = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    script = os.path.join(source, "traces", "plot_trace.py")
    r = subprocess.run(["/usr/bin/python3", script, str(trace), "--out", str(out), "--populations", "l0.exc,nope"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no recorded population 'nope'" in r.stderr
