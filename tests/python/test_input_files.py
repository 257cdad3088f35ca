"""Inputs from files (issue 12, docs/run.md "Inputs"): `quantal run --input-spikes` drives
spike_source populations from a SONATA spike file, and `--input` takes .npy arrays.

Oracles: a hidden population replaced by a spike_source replaying its own recorded spikes gives the
downstream populations the very same spikes; a hand-written bmtk-style file lands on the ticks the
documented rule computes here in numpy; .npy arrays give the same spikes as the same images in IDX.
The Python module's side (`run(input_spikes=...)`, `run("x.npy")`): test_python_input_files.py."""
import csv as _csv
import gzip
import io
import os
import subprocess

import h5py
import numpy as np
import pytest

from nir_reference import dyadic, run_quantal
from test_run_model_file import LABELS, one_line_error, write_model

TICKS = 25
QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")


# ---- models ----------------------------------------------------------------------------------

def population(pops, name, model, size, **attrs):
    g = pops.create_group(name)
    g.attrs.update(model=model, **attrs)
    g["shape"] = np.array([size], np.int64)
    return g


def dense(prj, name, source, target, weight, delay):
    p = prj.create_group(name)
    p.attrs.update(kind="dense", source=source, target=target, delay=np.int64(delay), release="none", mask_ratio=0.0)
    p["weight"] = weight


def write_layered(path, hidden_is_source, rng):
    """src (Bernoulli, 12) -> hidden IF (16) -d2-> out IF (8) -d1-> logits (readout, 8); with
    `hidden_is_source`, hidden is a spike_source of the same name and shape (and src is gone)."""
    if_attrs = dict(threshold=1.0, comparison=">=", reset="subtract", v0=0.0, spike_value=1.0)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="layered", producer="test",
                       provenance="{}")
        pops, prj = f.create_group("populations"), f.create_group("projections")
        order = ["hidden", "out", "logits"]
        if hidden_is_source:
            population(pops, "hidden", "spike_source", 16, spike_value=1.0)
        else:
            order.insert(0, "src")
            src = population(pops, "src", "bernoulli_source", 12, spike_value=1.0)
            src["probability"] = np.full(1, 0.3)
            population(pops, "hidden", "IF", 16, **if_attrs)
            dense(prj, "in", "src", "hidden", dyadic(rng, (16, 12), 0.75), 1)
        pops.attrs["order"] = order
        population(pops, "out", "IF", 8, **if_attrs)
        population(pops, "logits", "readout", 8)
        dense(prj, "hidden_out", "hidden", "out", dyadic(np.random.default_rng(5), (8, 16), 0.75), 2)
        dense(prj, "readout", "out", "logits", dyadic(np.random.default_rng(6), (8, 8), 1.0), 1)
        f.create_group("readout").attrs.update(population="logits", accumulate="sum")


def write_relay(path, sources=("in",)):
    """Each spike_source (4 neurons) relays one to one into an IF population that spikes on every
    input spike, one tick later: post = in shifted by the delay."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="relay", producer="test",
                       provenance="{}")
        pops, prj = f.create_group("populations"), f.create_group("projections")
        pops.attrs["order"] = [*sources, "post"]
        for s in sources:
            population(pops, s, "spike_source", 4, spike_value=1.0)
            dense(prj, f"{s}_post", s, "post", np.eye(4, dtype=np.float32), 1)
        population(pops, "post", "IF", 4, threshold=1.0, comparison=">=", reset="subtract", v0=0.0, spike_value=1.0)


def trace_spikes(path, name):
    with h5py.File(path, "r") as f:
        g = f[f"spikes/{name}"]
        return g["timestamps"][()], g["node_ids"][()]


def trace_predictions(path):
    with h5py.File(path, "r") as f:
        return f["samples/prediction"][()]


def write_spike_file(path, populations, sorting=b"by_time", units="ms", samples_start=None):
    """A SONATA spike file as bmtk writes one: string `sorting`, root magic and version."""
    with h5py.File(path, "w") as f:
        f.attrs["magic"] = np.uint32(0x0A7A)
        f.attrs["version"] = np.array([0, 1], np.uint32)
        for name, (ts, ids) in populations.items():
            g = f.create_group(f"spikes/{name}")
            if sorting is not None:
                g.attrs["sorting"] = sorting
            g["timestamps"] = np.asarray(ts, np.float64)
            if units is not None:
                g["timestamps"].attrs["units"] = units
            g["node_ids"] = np.asarray(ids, np.uint64)
        if samples_start is not None:
            f["samples/start_ms"] = np.asarray(samples_start, np.float64)


def grid_tick(ms, dt):
    """The documented rule: the last tick g whose time g*dt (as the writer computes it) is <= ms."""
    g = int(np.floor(ms / dt))
    while float(g + 1) * dt <= ms:
        g += 1
    while g > 0 and float(g) * dt > ms:
        g -= 1
    return g


# ---- spike inputs: the replay oracle ----------------------------------------------------------

@pytest.mark.parametrize("dt", [1.0, 0.1])
def test_replayed_hidden_spikes_give_the_same_downstream_spikes(tmp_path, dt):
    full, replay = tmp_path / "full.h5", tmp_path / "replay.h5"
    write_layered(full, False, np.random.default_rng(3))
    write_layered(replay, True, np.random.default_rng(3))
    common = ("--ticks", TICKS, "--samples", 5, "--offset", 2, "--seed", 9, "--dt", dt)
    hidden, out, again = tmp_path / "hidden.h5", tmp_path / "out.h5", tmp_path / "again.h5"
    run_quantal("--model", full, *common, "--record", "hidden", "--trace", hidden)
    run_quantal("--model", full, *common, "--record", "out", "--trace", out)
    # The file says which samples it holds: no --samples needed (all of them, from its first).
    run_quantal("--model", replay, "--ticks", TICKS, "--offset", 2, "--seed", 9, "--dt", dt,
                "--input-spikes", hidden, "--record", "out,hidden", "--trace", again)
    ts, ids = trace_spikes(out, "out")
    assert ts.size > 20 and np.unique(np.floor(ts / (TICKS * dt) + 1e-9)).size == 5  # every sample has some
    replayed_ts, replayed_ids = trace_spikes(again, "out")
    np.testing.assert_array_equal(replayed_ts, ts)
    np.testing.assert_array_equal(replayed_ids, ids)
    np.testing.assert_array_equal(trace_spikes(again, "hidden")[0], trace_spikes(hidden, "hidden")[0])
    np.testing.assert_array_equal(trace_predictions(again), trace_predictions(out))
    with h5py.File(again, "r") as f:
        np.testing.assert_array_equal(f["samples/index"][()], np.arange(2, 7))


def test_a_window_of_the_files_samples(tmp_path):
    full, replay = tmp_path / "full.h5", tmp_path / "replay.h5"
    write_layered(full, False, np.random.default_rng(4))
    write_layered(replay, True, np.random.default_rng(4))
    hidden, out, part = tmp_path / "hidden.h5", tmp_path / "out.h5", tmp_path / "part.h5"
    run_quantal("--model", full, "--ticks", TICKS, "--samples", 4, "--record", "hidden", "--trace", hidden)
    run_quantal("--model", full, "--ticks", TICKS, "--samples", 4, "--record", "out", "--trace", out)
    # --offset 1 --samples 2: the file's samples 1 and 2, run as samples 1 and 2.
    run_quantal("--model", replay, "--ticks", TICKS, "--offset", 1, "--samples", 2, "--input-spikes", hidden,
                "--record", "out", "--trace", part)
    ts, ids = trace_spikes(out, "out")
    window = (ts >= TICKS) & (ts < 3 * TICKS)
    np.testing.assert_array_equal(trace_spikes(part, "out")[0], ts[window])
    np.testing.assert_array_equal(trace_spikes(part, "out")[1], ids[window])
    # More samples than its /samples table holds: refused.
    proc = run_quantal("--model", replay, "--ticks", TICKS, "--offset", 1, "--samples", 4, "--input-spikes", hidden,
                       check=False)
    one_line_error(proc, hidden, "sample 4", "--samples 4", "not in its /samples", "from 0 to 3")
    # The file holds samples 0..3: a run from sample 0 needs no --offset, one from 5 is refused.
    proc = run_quantal("--model", replay, "--ticks", TICKS, "--offset", 5, "--input-spikes", hidden, check=False)
    one_line_error(proc, hidden, "--offset 5", "past its last sample (3)")


# ---- spike inputs: a hand-written bmtk-style file --------------------------------------------

def test_bmtk_style_file_lands_on_the_documented_ticks(tmp_path):
    model, spikes, trace = tmp_path / "relay.h5", tmp_path / "bmtk.h5", tmp_path / "trace.h5"
    write_relay(model)
    dt, T = 0.5, 10  # a sample is 5 ms
    # Unsorted, off the grid, at a sample's first and last tick, and on the boundary of a sample.
    times = np.array([7.3, 0.3, 4.99, 2.74, 5.0, 0.0, 12.25, 3.0 * 0.1 * 10, 9.5])
    ids = np.array([1, 0, 3, 2, 0, 2, 1, 3, 0])
    write_spike_file(spikes, {"in": (times, ids)}, sorting=b"none")
    run_quantal("--model", model, "--ticks", T, "--dt", dt, "--input-spikes", spikes, "--trace", trace)
    ticks = np.array([grid_tick(t, dt) for t in times])
    assert list(ticks) == [14, 0, 9, 5, 10, 0, 24, 6, 19]  # the rule by hand: floor onto the grid
    order = np.lexsort((ids, ticks))
    in_ts, in_ids = trace_spikes(trace, "in")
    np.testing.assert_array_equal(in_ts, ticks[order] * dt)
    np.testing.assert_array_equal(in_ids, ids[order])
    # post relays each input spike one tick later, within its sample (a spike at a last tick is lost).
    relayed = (ticks % T) < T - 1
    post_ts, post_ids = trace_spikes(trace, "post")
    o2 = np.lexsort((ids[relayed], ticks[relayed]))
    np.testing.assert_array_equal(post_ts, (ticks[relayed][o2] + 1) * dt)
    np.testing.assert_array_equal(post_ids, ids[relayed][o2])
    with h5py.File(trace, "r") as f:
        assert f["samples/index"].size == 3  # samples [0, 5), [5, 10), [10, 15) ms: the last spike's is the last
    # --samples: that many from --offset; more than the spikes reach are silent (the file cannot say
    # that trailing samples are silent), fewer leave the later samples' spikes out.
    for samples, offset in [(5, 0), (2, 0), (1, 1)]:
        part = tmp_path / f"part{samples}{offset}.h5"
        run_quantal("--model", model, "--ticks", T, "--dt", dt, "--input-spikes", spikes, "--samples", samples,
                    "--offset", offset, "--trace", part)
        kept = (in_ts >= offset * T * dt) & (in_ts < (offset + samples) * T * dt)
        np.testing.assert_array_equal(trace_spikes(part, "in")[0], in_ts[kept])
        with h5py.File(part, "r") as f:
            np.testing.assert_array_equal(f["samples/index"][()], np.arange(offset, offset + samples))


def test_units_in_seconds_are_converted(tmp_path):
    model, spikes, trace = tmp_path / "relay.h5", tmp_path / "s.h5", tmp_path / "trace.h5"
    write_relay(model)
    write_spike_file(spikes, {"in": ([0.002, 0.0035], [1, 2])}, units="s")
    run_quantal("--model", model, "--ticks", 10, "--input-spikes", spikes, "--trace", trace)
    np.testing.assert_array_equal(trace_spikes(trace, "in")[0], [2.0, 3.0])


# ---- spike inputs: errors --------------------------------------------------------------------

def spike_error(tmp_path, populations, *words, model_sources=("in",), extra=(), **file_options):
    model, spikes = tmp_path / "relay.h5", tmp_path / "bad.h5"
    write_relay(model, model_sources)
    write_spike_file(spikes, populations, **file_options)
    proc = run_quantal("--model", model, "--ticks", 10, "--input-spikes", spikes, *extra, check=False)
    one_line_error(proc, spikes, *words)


def test_population_the_model_lacks(tmp_path):
    spike_error(tmp_path, {"in": ([1.0], [0]), "ghost": ([1.0], [0])}, "/spikes/ghost", "has no population 'ghost'")


def test_population_that_is_not_a_spike_source(tmp_path):
    spike_error(tmp_path, {"in": ([1.0], [0]), "post": ([1.0], [0])}, "/spikes/post", "is IF, not a spike_source")


def test_spike_source_without_input(tmp_path):
    spike_error(tmp_path, {"in": ([1.0], [0])}, "spike_source population 'other'", "no /spikes/other",
                model_sources=("in", "other"))


def test_node_id_outside_the_population(tmp_path):
    spike_error(tmp_path, {"in": ([1.0, 2.0], [0, 4])}, "/spikes/in/node_ids[1]", "node id 4", "4 neurons")


@pytest.mark.parametrize("bad, words", [(np.nan, ["/spikes/in/timestamps", "element 1", "not finite"]),
                                        (np.inf, ["/spikes/in/timestamps", "element 1", "not finite"]),
                                        (-0.5, ["/spikes/in/timestamps[1]", "negative"])])
def test_bad_times(tmp_path, bad, words):
    spike_error(tmp_path, {"in": ([1.0, bad], [0, 1])}, *words, sorting=b"none")


def test_lengths_that_differ(tmp_path):
    spike_error(tmp_path, {"in": ([1.0, 2.0], [0])}, "/spikes/in", "different lengths")


def test_units_missing_or_not_a_time(tmp_path):
    spike_error(tmp_path, {"in": ([1.0], [0])}, "/spikes/in/timestamps", "'units' is missing", units=None)
    spike_error(tmp_path, {"in": ([1.0], [0])}, "/spikes/in/timestamps", "units 'us'", units="us")


def test_two_spikes_of_one_neuron_in_one_tick(tmp_path):
    spike_error(tmp_path, {"in": ([1.2, 1.7], [3, 3])}, "node 3 spikes twice in tick 1", "smaller --dt")


def test_unsorted_times_under_by_time(tmp_path):
    spike_error(tmp_path, {"in": ([2.0, 1.0], [0, 1])}, "goes back in time", sorting=b"by_time")


def test_spikes_outside_every_sample_of_the_table(tmp_path):
    # A trace of 20-tick samples replayed with --ticks 10: ticks 10..19 of each sample lie in none.
    spike_error(tmp_path, {"in": ([1.0, 15.0], [0, 1])}, "/spikes/in/timestamps[1]", "lies in sample 1",
                "which /samples does not list", samples_start=[0.0, 20.0])


def test_samples_that_do_not_start_on_a_sample_boundary(tmp_path):
    spike_error(tmp_path, {"in": ([1.0], [0])}, "/samples/start_ms[1]", "is not where a sample of --ticks 10",
                samples_start=[0.0, 5.0])


def test_input_spikes_for_a_model_without_spike_sources(tmp_path):
    model, spikes = tmp_path / "tiny.h5", tmp_path / "s.h5"
    write_model(model, np.random.default_rng(1))
    write_spike_file(spikes, {"hidden": ([1.0], [0])})
    one_line_error(run_quantal("--model", model, "--ticks", 4, "--input-spikes", spikes, check=False),
                   spikes, "/spikes/hidden", "not a spike_source")


# ---- .npy inputs ------------------------------------------------------------------------------

def write_idx(path, images):
    n, h, w = images.shape
    header = (0x803).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in (n, h, w))
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def run_trace(model, trace, *args):
    proc = run_quantal("--model", model, "--ticks", 16, "--trace", trace, *args)
    with h5py.File(trace, "r") as f:
        return proc, f["spikes/hidden/timestamps"][()], f["spikes/hidden/node_ids"][()], f["samples/prediction"][()]


def test_npy_arrays_equal_the_same_idx_images(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(31))
    rng = np.random.default_rng(32)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6).astype(np.uint8)
    write_idx(tmp_path / "images.gz", images)
    with gzip.open(tmp_path / "labels.gz", "wb") as f:
        f.write((0x801).to_bytes(4, "big") + (6).to_bytes(4, "big") + labels.tobytes())
    np.save(tmp_path / "labels.npy", labels.astype(np.int64))
    args = ("--samples", 4, "--offset", 1)
    proc, ts, ids, pred = run_trace(model, tmp_path / "idx.h5", "--input", tmp_path / "images.gz",
                                    "--labels", tmp_path / "labels.gz", *args)
    assert ts.size > 50
    accuracy = [line for line in proc.stdout.splitlines() if line.startswith("accuracy:")]
    assert accuracy == ["accuracy: " + str(int(np.sum(pred == labels[1:5]))) + " / 4"]
    # uint8 is the IDX bytes; float arrays hold the same numbers (the model's scale applies to both).
    for name, array in [("u8", images), ("u8_c", images[:, None]), ("f4", images.astype(np.float32)),
                        ("f8", images[:, None].astype(np.float64))]:
        np.save(tmp_path / f"{name}.npy", array)
        p, t2, i2, pr2 = run_trace(model, tmp_path / f"{name}.h5", "--input", tmp_path / f"{name}.npy",
                                   "--labels", tmp_path / "labels.npy", *args)
        np.testing.assert_array_equal(t2, ts, err_msg=name)
        np.testing.assert_array_equal(i2, ids, err_msg=name)
        np.testing.assert_array_equal(pr2, pred, err_msg=name)
        assert [line for line in p.stdout.splitlines() if line.startswith("accuracy:")] == accuracy


@pytest.mark.parametrize("make, words", [
    (lambda a: b"\x93NUMPX" + npy_bytes(a)[6:], ["not a .npy file"]),
    (lambda a: npy_bytes(a)[:-100], ["truncated"]),
    (lambda a: npy_bytes(a).replace(b"'descr'", b"'dscr' "), ["header is malformed"]),
    (lambda a: npy_bytes(a.reshape(3, 784)), ["2 dimensions", "(N, H, W) or (N, C, H, W)"]),
    (lambda a: npy_bytes(a[:, :27]), ["27 x 28", "input 'image'"]),
    (lambda a: npy_bytes(a[..., None]), ["28 x 28 x 1", "input 'image'"]),
    (lambda a: npy_bytes(np.asfortranarray(a.astype(np.float32))), ["Fortran order"]),
    (lambda a: npy_bytes(a.astype(">f8")), ["big-endian"]),
    (lambda a: npy_bytes(a.astype(np.int16)), ["dtype '<i2'", "uint8"]),
    (lambda a: npy_bytes(np.where(np.arange(a.size).reshape(a.shape) == 5, np.nan, a)), ["sample 0", "not finite"]),
])
def test_malformed_npy_is_refused(tmp_path, make, words):
    model, path = tmp_path / "tiny.h5", tmp_path / "bad.npy"
    write_model(model, np.random.default_rng(33))
    path.write_bytes(make(np.zeros((3, 28, 28), np.uint8)))
    one_line_error(run_quantal("--model", model, "--ticks", 4, "--input", path, "--samples", 3, check=False),
                   path, *words)


def test_malformed_npy_labels_are_refused(tmp_path):
    model, images, labels = tmp_path / "tiny.h5", tmp_path / "x.npy", tmp_path / "y.npy"
    write_model(model, np.random.default_rng(34))
    np.save(images, np.zeros((3, 28, 28), np.uint8))
    for array, words in [(np.zeros((3, 1), np.int64), ["expected a 1-d array"]),
                         (np.array([1, -1, 2]), ["label -1 at index 1", "negative"]),
                         (np.zeros(3), ["dtype '<f8'", "integer"]),
                         (np.array([1, 10, 2]), ["label 10 at index 1", "10 classes"])]:
        np.save(labels, array)
        one_line_error(run_quantal("--model", model, "--ticks", 4, "--input", images, "--labels", labels,
                                   "--samples", 3, check=False), labels, *words)


def test_sweep_takes_npy_arrays_as_run_does(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(35))
    rng = np.random.default_rng(36)
    images, labels = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6).astype(np.uint8)
    write_idx(tmp_path / "images.gz", images)
    with gzip.open(tmp_path / "labels.gz", "wb") as f:
        f.write((0x801).to_bytes(4, "big") + (6).to_bytes(4, "big") + labels.tobytes())
    np.save(tmp_path / "images.npy", images.astype(np.float32))
    np.save(tmp_path / "labels.npy", labels)
    tables = []
    for images_file, labels_file in [("images.gz", "labels.gz"), ("images.npy", "labels.npy")]:
        csv = tmp_path / f"{images_file}.csv"
        proc = subprocess.run([QUANTAL, "sweep", "--model", str(model), "--input", str(tmp_path / images_file),
                               "--labels", str(tmp_path / labels_file), "--samples", "6", "--ticks", "16",
                               "--ratios", "0,0.5", "--release", "synapse", "--targets", "all",
                               "--out", str(tmp_path / f"{images_file}.study.h5"), "--csv", str(csv)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        with open(csv, newline="") as f:
            tables.append([{k: v for k, v in row.items() if k != "command_line"} for row in _csv.DictReader(f)])
    assert len(tables[0]) == 3 and float(tables[0][0]["spikes"]) > 0
    assert tables[0] == tables[1]


def test_images_and_spike_inputs_together(tmp_path):
    """Images drive the analog input, the file the spike source; both must give the same samples."""
    model = tmp_path / "both.h5"
    write_model(model, np.random.default_rng(37))
    with h5py.File(model, "a") as f:
        population(f["populations"], "in", "spike_source", 24, spike_value=1.0)
        f["populations"].attrs["order"] = ["in", "hidden", "logits"]
        dense(f["projections"], "in_hidden", "in", "hidden", np.eye(24, dtype=np.float32), 1)
    np.save(tmp_path / "x.npy", np.random.default_rng(38).integers(0, 256, (3, 28, 28), dtype=np.uint8))
    write_spike_file(tmp_path / "silent.h5", {"in": ([], [])}, samples_start=[0.0, 16.0, 32.0])
    write_spike_file(tmp_path / "two.h5", {"in": ([1.0, 20.0], [0, 5])})
    write_spike_file(tmp_path / "some.h5", {"in": ([1.0, 20.0, 40.0], [0, 5, 7])})
    _, ts, ids, _ = run_trace(model, tmp_path / "images.h5", "--input", tmp_path / "x.npy", "--samples", 3)
    _, t2, i2, _ = run_trace(model, tmp_path / "silent.trace.h5", "--input", tmp_path / "x.npy",
                             "--input-spikes", tmp_path / "silent.h5")
    np.testing.assert_array_equal(t2, ts)
    np.testing.assert_array_equal(i2, ids)
    run_trace(model, tmp_path / "some.trace.h5", "--input", tmp_path / "x.npy", "--input-spikes", tmp_path / "some.h5")
    in_ts, in_ids = trace_spikes(tmp_path / "some.trace.h5", "in")
    np.testing.assert_array_equal(in_ts, [1.0, 20.0, 40.0])
    np.testing.assert_array_equal(in_ids, [0, 5, 7])
    proc = run_quantal("--model", model, "--ticks", 16, "--input", tmp_path / "x.npy", "--input-spikes",
                       tmp_path / "two.h5", check=False)
    one_line_error(proc, tmp_path / "x.npy", "3 images", "gives 2 samples")
