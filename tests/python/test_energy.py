"""Energy baselines and models on the shipped MST-Tiny (docs/energy.md):
- the /ann record of each shipped model equals summary.py's MAC count and a count from the
  architecture by hand (the formula below, from the model_config in the file's provenance);
- `quantal run` prices the ANN from that record and says so;
- `quantal energy --json` on a short run: the measured accumulates equal the trace's ledger, and
  the papers'-way estimate equals rate x T x FLOPs computed here from the trace with h5py;
- bad input to `quantal energy` is one line naming the file, exit code 2."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODELS = [os.path.join(SOURCE, f"examples/mst/models/mst_r{r}.h5") for r in (0, 50, 75)]
DATA = "/usr/share/datasets/fashion-mnist"


def macs_by_hand(cfg):
    """Swin-style MST-Tiny: patch conv, per block qkv + q k^T + A v + proj + fc1 + fc2, merging, head."""
    res, dim, hidden = cfg["image_size"] // cfg["patch"], cfg["embed_dim"], None
    total = res * res * dim * cfg["in_channels"] * cfg["patch"] ** 2
    for s, depth in enumerate(cfg["depths"]):
        tokens, n = res * res, cfg["window"] ** 2
        hidden = int(dim * cfg["mlp_ratio"])
        per_block = tokens * dim * 3 * dim + 2 * tokens * n * dim + tokens * dim * dim + 2 * tokens * dim * hidden
        total += depth * per_block
        if s < len(cfg["depths"]) - 1:
            total += (tokens // 4) * (4 * dim) * (2 * dim)
            res, dim = res // 2, dim * 2
    return total + dim * cfg["classes"]


@pytest.mark.parametrize("model", MODELS)
def test_ann_record_equals_summary_and_hand_count(model):
    with h5py.File(model, "r") as f:
        cfg = json.loads(f.attrs["provenance"])["model_config"]
        recorded = int(f["ann/macs"][()].sum())
        assert int(f["ann"].attrs["levels"]) == cfg["levels"]
        kinds = list(f["ann"].attrs["kinds"])
    checkpoint = model[:-3] + ".pt"
    out = subprocess.run([sys.executable, os.path.join(SOURCE, "examples/mst/summary.py"), checkpoint, "--json"],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)["ann_macs_per_image"]["total"]
    assert recorded == summary == macs_by_hand(cfg) == 5358528
    assert kinds.count("analog_input") == 1 and kinds.count("attention") == sum(cfg["depths"])


def test_run_prices_the_ann_from_the_record():
    out = subprocess.run([BINARY, "run", "--model", MODELS[0], "--input", f"{DATA}/t10k-images-idx3-ubyte.gz",
                          "--samples", "1", "--ticks", "4"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("energy per sample"))
    assert "ANN (own MACs, from the model file)" in line
    assert f"{4.6 * 5358528:.4g} pJ" in line
    assert "quantised ANN (4-bit activations, 8-bit weights)" in out  # L = 8 -> ceil(log2 9) = 4 bits
    for needed in ("q.k^T coincidences", "softmax evaluations", "softmax.v deliveries", "clocked T x N",
                   "the papers' way", "memory-inclusive", "LOCAL MEMORIES", "break-even"):
        assert needed in out, needed


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("energy") / "mst.h5")
    subprocess.run([BINARY, "run", "--model", MODELS[0], "--input", f"{DATA}/t10k-images-idx3-ubyte.gz",
                    "--samples", "2", "--ticks", "8", "--mask", "0.5", "--release", "spike", "--targets", "attention,fc1_in",
                    "--trace", path], capture_output=True, text=True, check=True)
    return path


def test_energy_json_against_the_trace(trace):
    r = json.loads(subprocess.run([BINARY, "energy", trace, "--json"], capture_output=True, text=True,
                                  check=True).stdout)
    with h5py.File(trace, "r") as f:
        e, t = f["energy"], f["energy/total"]
        n, ticks = int(t.attrs["samples"]), int(e.attrs["ticks_per_sample"])
        pops = [p.decode() if isinstance(p, bytes) else p for p in e["populations/name"][()]]
        size = dict(zip(pops, e["populations/size"][()]))
        spikes = dict(zip(pops, t["populations/spikes"][()]))
        rate = {p: spikes[p] / (size[p] * ticks * n) for p in pops}  # per neuron per tick
        name = lambda v: v.decode() if isinstance(v, bytes) else v
        sources = [name(s) for s in e["projections/source"][()]]
        flops = e["projections/synapses"][()]
        # the input's rate after per-spike masks: the spikes the projection delivered
        delivered = t["projections/spikes_in"][()] - t["projections/masked_spikes"][()]
        papers = sum(d / (size[s] * ticks * n) * ticks * fl for s, d, fl in zip(sources, delivered, flops))
        half = e["operators/ann_macs"][()] / 2
        for q, v, h in zip(e["operators/q"][()], e["operators/v"][()], half):
            papers += (rate[name(q)] + rate[name(v)]) * ticks * h
        measured = (t["projections/transmitted"][()].sum() + t["operators/coincidences"][()].sum()
                    + t["operators/deliveries"][()].sum()) / n
        macs = (t["populations/macs"][()].sum() + t["operators/macs"][()].sum()) / n
        input_macs = t["populations/macs"][()].sum() / n
    assert r["counts"]["sops"] == pytest.approx(measured, rel=1e-12)
    assert r["counts"]["papers_sops"] == pytest.approx(papers, rel=1e-9)
    proxy, papers_model = r["models"][0], r["models"][1]
    assert proxy["input_every_tick_pj"] == pytest.approx(0.9 * measured + 4.6 * macs, rel=1e-9)
    assert proxy["input_once_pj"] == pytest.approx(0.9 * measured + 4.6 * (macs - input_macs * (1 - 1 / ticks)), rel=1e-9)
    assert papers_model["input_every_tick_pj"] == pytest.approx(0.9 * papers + 4.6 * macs, rel=1e-9)
    assert r["ann"]["baseline"] == "ANN (own MACs, from the model file)"
    assert r["ann"]["macs"] == 5358528
    assert r["ann"]["activation_bits"] == 4
    # the masked q, k and score spikes: fewer coincidences than unmasked is all one can say here
    assert r["counts"]["masked_spikes"] > 0


def test_energy_text_prints_assumptions_first_and_the_global_profile(trace):
    out = subprocess.run([BINARY, "energy", trace, "--profile", os.path.join(SOURCE, "examples/energy-profiles/45nm-global.json")],
                         capture_output=True, text=True, check=True).stdout
    assert out.index("assumptions") < out.index("counts per sample by class") < out.index("energy per layer")
    assert "ONE GLOBAL MEMORY" in out


def test_energy_bad_input(trace, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text('{"e_add": 0.1}')
    r = subprocess.run([BINARY, "energy", trace, "--profile", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and str(bad) in r.stderr and "'e_add'" in r.stderr and len(r.stderr.splitlines()) == 1
    r = subprocess.run([BINARY, "energy", trace, "--model", os.path.join(SOURCE, "tests/data/does-not-exist.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "does-not-exist.h5" in r.stderr


def test_plots_of_the_energy_models(trace, tmp_path):
    out = tmp_path / "energy"
    r = subprocess.run([BINARY, "energy", trace, "--plot", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["energy_models.json", "energy_models.png", "energy_per_layer.png"]
    layers = json.loads((out / "energy_models.json").read_text())["layers"]
    assert {"attention (qkv_in, proj_in)", "MLP (fc1_in, fc2_in)", "stream"} <= {l["group"] for l in layers}
    out = tmp_path / "inspect"
    r = subprocess.run([BINARY, "inspect", trace, "--plot", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {"raster.png", "rates.png", "energy_models.png", "energy_per_layer.png"} <= {p.name for p in out.iterdir()}


def test_energy_of_a_study_equals_its_runs(tmp_path):
    """`quantal energy STUDY.h5`: the proxy equals the study's own /results/energy_pj, and a
    configuration priced from the study equals the same configuration run alone and priced from
    its trace, under every model (the sweep's configurations equal separate runs: docs/sweep.md)."""
    images, labels = f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz"
    study = str(tmp_path / 'study "quoted" \\ \t.h5')  # JSON must escape what a path may hold
    subprocess.run([BINARY, "sweep", "--model", MODELS[0], "--input", images, "--labels", labels, "--samples", "3",
                    "--ticks", "8", "--ratios", "0,0.75", "--release", "spike", "--targets", "attention,linear",
                    "--out", study], capture_output=True, text=True, check=True)
    doc = json.loads(subprocess.run([BINARY, "energy", study, "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    assert doc["study"] == study and doc["models"] == [MODELS[0]]
    rows = doc["configurations"]
    with h5py.File(study, "r") as f:
        np.testing.assert_allclose([r["proxy_pj"] for r in rows], f["results/energy_pj"][()], rtol=1e-12)
        seed = int(f["configurations/seed"][()][-1])
    last = rows[-1]
    assert (last["ratio"], last["targets"], last["ann_own"]) == (0.75, "linear", True)
    trace = str(tmp_path / "run.h5")
    subprocess.run([BINARY, "run", "--model", MODELS[0], "--input", images, "--labels", labels, "--samples", "3",
                    "--ticks", "8", "--mask", "0.75", "--release", "spike", "--targets", "linear", "--seed", str(seed),
                    "--trace", trace], capture_output=True, text=True, check=True)
    models = json.loads(subprocess.run([BINARY, "energy", trace, "--json"], capture_output=True, text=True,
                                       check=True).stdout)["models"]
    assert last["proxy_pj"] == pytest.approx(models[0]["input_every_tick_pj"], rel=1e-12)
    assert last["proxy_once_pj"] == pytest.approx(models[0]["input_once_pj"], rel=1e-12)
    assert last["papers_pj"] == pytest.approx(models[1]["input_every_tick_pj"], rel=1e-12)
    assert last["memory_pj"] == pytest.approx(models[2]["input_every_tick_pj"], rel=1e-12)
    # format version 3 keeps the neuron visits: the event-driven memory model from the study equals the
    # run's, and the visits per image equal the trace's ledger
    profile = json.load(open(os.path.join(SOURCE, "examples/energy-profiles/45nm.json")))
    profile["neuron_updates"] = "event_driven"
    event = tmp_path / "event.json"
    event.write_text(json.dumps(profile))
    traced = json.loads(subprocess.run([BINARY, "energy", trace, "--json", "--profile", str(event)],
                                       capture_output=True, text=True, check=True).stdout)["models"]
    assert last["memory_clocked_pj"] == pytest.approx(models[2]["input_every_tick_pj"], rel=1e-12)
    assert last["memory_event_driven_pj"] == pytest.approx(traced[2]["input_every_tick_pj"], rel=1e-12)
    assert last["memory_event_driven_pj"] < last["memory_clocked_pj"]  # MST-Tiny: most neurons idle most ticks
    with h5py.File(trace, "r") as t, h5py.File(study, "r") as f:
        assert int(f.attrs["format_version"]) == 3
        n = int(t["energy/total"].attrs["samples"])
        np.testing.assert_allclose(f["results/layers/population_updates"][()][-1],
                                   t["energy/total/populations/updates"][()] / n, rtol=1e-12)
        sizes = t["energy/populations/size"][()]
        clocked = f["results/layers/population_clocked_updates"][()][-1]
        assert clocked.max() == 8 * sizes.max() and set(clocked / 8) <= set(sizes) | {0}


def test_energy_of_a_version_2_study(tmp_path):
    """A study without neuron visits (format version 2) is priced with clocked updates; an
    event-driven profile is refused with one line naming the file and the version."""
    study = str(tmp_path / "study.h5")
    subprocess.run([BINARY, "sweep", "--model", MODELS[0], "--input", f"{DATA}/t10k-images-idx3-ubyte.gz", "--labels",
                    f"{DATA}/t10k-labels-idx1-ubyte.gz", "--samples", "1", "--ticks", "4", "--ratios", "0,0.5",
                    "--release", "spike", "--targets", "attention", "--out", study],
                   capture_output=True, text=True, check=True)
    new = json.loads(subprocess.run([BINARY, "energy", study, "--json"], capture_output=True, text=True,
                                    check=True).stdout)["configurations"]
    with h5py.File(study, "r+") as f:  # as a version-2 sweep wrote it
        f.attrs["format_version"] = 2
        del f["results/layers/population_updates"], f["results/layers/population_clocked_updates"]
    old = json.loads(subprocess.run([BINARY, "energy", study, "--json"], capture_output=True, text=True,
                                    check=True).stdout)["configurations"]
    assert [r["memory_pj"] for r in old] == [r["memory_pj"] for r in new]
    assert all(r["memory_event_driven_pj"] is None for r in old)
    profile = json.load(open(os.path.join(SOURCE, "examples/energy-profiles/45nm.json")))
    profile["neuron_updates"] = "event_driven"
    event = tmp_path / "event.json"
    event.write_text(json.dumps(profile))
    r = subprocess.run([BINARY, "energy", study, "--profile", str(event)], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert study in r.stderr and "format version 2" in r.stderr and "no neuron visits" in r.stderr
    with h5py.File(study, "r+") as f:
        f.attrs["format_version"] = 4
    r = subprocess.run([BINARY, "energy", study], capture_output=True, text=True)
    assert r.returncode == 2 and "format version 4 is newer" in r.stderr
