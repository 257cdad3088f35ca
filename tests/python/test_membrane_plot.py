"""The membrane plot (quantal.plot.membrane, traces/trace_figures.py; `quantal inspect --plot`
draws it when a trace has a membrane report): a panel per reported population, a line per chosen
neuron whose values are the recorded potentials, the same from a Result and from its trace."""
import os
import subprocess

import numpy as np
import pytest

import quantal
import quantal.plot
from test_record_v import TICKS, build

BINARY = os.environ["QUANTAL_BINARY"]


@pytest.fixture
def run(tmp_path):
    net, _, _ = build(tmp_path)
    trace = tmp_path / "v.h5"
    result = net.run(ticks=TICKS, samples=3, seed=5, record_v={"if": range(6), "lif": [0, 2, 4]}, trace=trace)
    return result, trace


def drawn_values(ax):
    """Per line (a label), the values of its stairs in drawing order."""
    lines = {}
    for artist in ax.patches:
        label = artist.get_label()
        label = None if not label or label.startswith("_") else label
        if label:
            lines[label] = [artist]
        else:
            list(lines.values())[-1].append(artist)
    return {label: np.concatenate([a.get_data().values for a in parts]) for label, parts in lines.items()}


def test_panels_lines_and_values_from_a_result_and_its_trace(run):
    result, trace = run
    for source in (result, trace):
        fig = quantal.plot.membrane(source, samples=(0, 2), neurons={"if": [1, 5]})
        q = fig.quantal
        assert q["populations"] == ["if", "lif"] and q["samples"] == [0, 1]
        assert q["xlim_ms"] == [0.0, 2.0 * TICKS]
        axes = fig.axes
        assert len(axes) == 2
        assert axes[1].get_xlim() == (0.0, 2.0 * TICKS)
        assert "time within each sample (ms)" in axes[1].get_xlabel()
        for ax, name, ids in ((axes[0], "if", [1, 5]), (axes[1], "lif", [0, 2, 4])):
            assert ax.get_ylabel() == f"{name}\nmembrane potential"
            panel = next(p for p in q["panels"] if p["population"] == name)
            assert panel["neurons"] == ids
            values = drawn_values(ax)
            assert list(values) == [f"neuron {i}" for i in ids]
            for i in ids:
                column = list(result.potential_neurons[name]).index(i)
                want = result.potentials[name][:2, :, column].ravel()
                tol = 1e-6 if isinstance(source, os.PathLike) else 0.0  # the trace holds float32
                np.testing.assert_allclose(values[f"neuron {i}"], want, rtol=0, atol=tol)


def test_default_neurons_ticks_window_and_errors(run):
    result, _ = run
    fig = quantal.plot.membrane(result, populations=["lif"], ticks=(4, 10))
    assert fig.quantal["panels"][0]["neurons"] == [0, 2, 4]
    assert fig.axes[0].get_xlim() == (0.0, 6.0)
    np.testing.assert_array_equal(fig.quantal["panels"][0]["values"][1], result.potentials["lif"][0, 4:10, 1])
    with pytest.raises(ValueError, match="no membrane report of 'out'"):
        quantal.plot.membrane(result, populations=["out"])
    with pytest.raises(ValueError, match="neuron 1 of 'lif' is not in its membrane report"):
        quantal.plot.membrane(result, neurons={"lif": [1]})
    with pytest.raises(ValueError, match=r"samples \(0, 4\)"):
        quantal.plot.membrane(result, samples=(0, 4))
    plain = quantal.NetworkBuilder()
    plain.add_population("a", 2, quantal.IF(threshold=1.0, v0=0.0), bias=0.5)
    with pytest.raises(ValueError, match="has no membrane report"):
        quantal.plot.membrane(plain.build().run(ticks=4))


def test_inspect_plot_draws_membrane_png(run, tmp_path):
    _, trace = run
    out = tmp_path / "plots"
    r = subprocess.run([BINARY, "inspect", str(trace), "--plot", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = (out / "membrane.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
