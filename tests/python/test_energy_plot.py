"""The energy-per-layer figure (traces/trace_figures.py energy(), drawn for `quantal inspect --plot`,
`quantal energy --plot`, `quantal plot STUDY` and quantal.plot.energy): what a reader must find in it, checked on the
matplotlib figure built from real `quantal energy --json` output:
- one panel per energy model (proxy measured, the papers' way, memory-inclusive) per network,
  each titled with the model's name, its total and the ANN's on that model's terms (in the axis
  unit), on an axis whose label names the unit and "per sample";
- every layer of the JSON once, as a bar whose length (times the axis unit) is its energy, the
  layers ordered by the model format's role groups, the groups named in the legend."""
import json
import os
import subprocess
import sys

import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
DATA = "/usr/share/datasets/fashion-mnist"
MODELS = [os.path.join(SOURCE, f"examples/mst/models/mst_r{r}.h5") for r in (0, 75)]
sys.path.insert(0, os.path.join(SOURCE, "traces"))
import plot_common  # noqa: E402
import trace_figures  # noqa: E402
import plot_study  # noqa: E402

# Written out here, not imported: what the reader must see.
PANELS = ["proxy, measured", "proxy, the papers' way", "memory-inclusive"]
KEYS = ["proxy_pj", "papers_pj", "memory_pj"]
GROUPS = ["embedding, head", "attention (qkv_in, proj_in)", "MLP (fc1_in, fc2_in)", "stream",
          "patch merging (merge)", "without role"]
UNITS = {"pJ": 1.0, "nJ": 1e3, "µJ": 1e6, "mJ": 1e9}


def check_row(axes, layers, totals, label):
    order = sorted(layers, key=lambda l: GROUPS.index(l["group"]))  # stable: network order within a group
    names = [t.get_text() for t in axes[0].get_yticklabels()]
    assert names == [l["layer"] for l in order]
    for ax, panel, key in zip(axes, PANELS, KEYS):
        title = ax.get_title()
        unit = ax.get_xlabel().split(" ")[0]
        assert unit in UNITS and "per sample" in ax.get_xlabel(), ax.get_xlabel()
        assert panel in title and label in title and f"total {totals[key] / UNITS[unit]:.3g} {unit}" in title, title
        widths = [p.get_width() for p in ax.patches]
        assert len(widths) == len(order)
        assert [w * UNITS[unit] for w in widths] == pytest.approx([l[key] for l in order], rel=1e-9)
        assert 1 <= totals[key] / UNITS[unit] < 1000  # the unit fits the total


@pytest.fixture(scope="module")
def trace_json(tmp_path_factory):
    trace = str(tmp_path_factory.mktemp("plot") / "mst.h5")
    subprocess.run([BINARY, "run", "--model", MODELS[0], "--input", f"{DATA}/t10k-images-idx3-ubyte.gz",
                    "--samples", "1", "--ticks", "8", "--trace", trace], capture_output=True, text=True, check=True)
    return json.loads(subprocess.run([BINARY, "energy", trace, "--json"], capture_output=True, text=True,
                                     check=True).stdout)


def test_trace_figure(trace_json):
    fig = trace_figures.energy([("", plot_common.energy_rows_from_json(trace_json, "t"))], "title")
    assert len(fig.axes) == 3
    totals = {k: m["input_every_tick_pj"] for k, m in zip(KEYS, trace_json["models"])}
    check_row(fig.axes, trace_json["layers"], totals, "")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    present = {l["group"] for l in trace_json["layers"]}
    assert legend == ["role group: " + g for g in GROUPS if g in present]
    assert {"attention (qkv_in, proj_in)", "MLP (fc1_in, fc2_in)", "stream"} <= present
    for ax, key in zip(fig.axes, KEYS):  # the ANN on each model's terms, and the ratio
        ann = trace_json["ann"]["memory_model_pj" if key == "memory_pj" else "float_pj"]
        unit = ax.get_xlabel().split(" ")[0]
        assert f"ANN {ann / UNITS[unit]:.3g} {unit}, SNN ×{totals[key] / ann:.2f}" in ax.get_title()


def test_study_figure_has_a_row_per_model(tmp_path):
    study = str(tmp_path / "study.h5")
    subprocess.run([BINARY, "sweep", "--model", MODELS[0], "--model", MODELS[1], "--input",
                    f"{DATA}/t10k-images-idx3-ubyte.gz", "--labels", f"{DATA}/t10k-labels-idx1-ubyte.gz",
                    "--samples", "1", "--ticks", "4", "--ratios", "0,0.5", "--release", "spike", "--targets",
                    "attention", "--out", study], capture_output=True, text=True, check=True)
    doc = subprocess.run([BINARY, "energy", study, "--json"], capture_output=True, text=True, check=True).stdout
    (tmp_path / "e.json").write_text(doc)
    rows, doc = plot_study.energy_rows_of_study(str(tmp_path / "e.json"))
    fig = trace_figures.energy(rows, "title")
    assert len(fig.axes) == 6
    for m in range(2):
        base = next(c for c in doc["configurations"] if c["model"] == m and c["ratio"] == 0)
        label = f"model {m} ({os.path.basename(MODELS[m])}), baseline"
        check_row(fig.axes[3 * m:3 * m + 3], base["layers"], {k: base[k] for k in KEYS}, label)
    # and `quantal plot` draws it
    r = subprocess.run([BINARY, "plot", study, "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "out" / "energy_per_layer.png") in r.stdout.splitlines()
