"""`quantal run` on a model file (docs/model-format.md) written with h5py, fed Fashion-MNIST
images through its /inputs analog map: spike counts equal a numpy time-stepped reference of the
model-file semantics; labels and predictions land in the trace; --mask overrides every release."""
import os

import h5py
import numpy as np
import pytest

from nir_reference import dyadic, run_quantal

DATA = "/usr/share/datasets/fashion-mnist"
IMAGES, LABELS = f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz"
TICKS = 32


def write_model(path, rng):
    """image (1, 28, 28) -> dense analog input -> hidden IF (24) -> dense -> readout (10)."""
    w_in = dyadic(rng, (24, 784), 0.125, bits=6)
    b_in = dyadic(rng, 24, 0.25)
    w_out = dyadic(rng, (10, 24), 1.0)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="tiny", producer="test",
                       provenance="{}")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["hidden", "logits"]
        h = pops.create_group("hidden")
        h.attrs.update(model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.5, spike_value=1.0)
        h["shape"] = np.array([24], np.int64)
        o = pops.create_group("logits")
        o.attrs.update(model="readout")
        o["shape"] = np.array([10], np.int64)
        o["bias"] = np.full(10, 0.0625, np.float32)
        prj = f.create_group("projections")
        p = prj.create_group("out")
        p.attrs.update(kind="dense", source="hidden", target="logits", delay=np.int64(0), release="none",
                       mask_ratio=0.0)
        p["weight"] = w_out
        ins = f.create_group("inputs").create_group("image")
        ins.attrs.update(target="hidden", kind="dense", scale=1.0 / 256.0, offset=0.0)
        ins["shape"] = np.array([1, 28, 28], np.int64)
        ins["weight"] = w_in
        ins["bias"] = b_in
        f.create_group("readout").attrs.update(population="logits", accumulate="sum")
    return w_in, b_in, w_out


def read_idx(path, offset, count):
    import gzip
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    header = 16 if magic == 0x803 else 8
    item = 784 if magic == 0x803 else 1
    return np.frombuffer(data[header + offset * item:header + (offset + count) * item], np.uint8).reshape(count, -1)


def reference(w_in, b_in, w_out, image):
    current = w_in.astype(np.float64) @ (image.astype(np.float64) / 256.0) + b_in
    v = np.full(24, 0.5)
    counts = np.zeros(24, np.int64)
    logits = np.zeros(10)
    for _ in range(TICKS):
        v += current
        z = v >= 1.0
        v[z] -= 1.0
        counts += z
        logits += 0.0625 + w_out.astype(np.float64) @ z
    return counts, logits


@pytest.mark.skipif(not os.path.exists(IMAGES), reason="Fashion-MNIST (dataset-fashion-mnist) is not installed")
def test_images_through_analog_input(tmp_path):
    rng = np.random.default_rng(21)
    model, trace = tmp_path / "tiny.h5", tmp_path / "trace.h5"
    w_in, b_in, w_out = write_model(model, rng)
    offset, count = 3, 5
    proc = run_quantal("--model", model, "--ticks", TICKS, "--input", IMAGES, "--labels", LABELS,
                       "--samples", count, "--offset", offset, "--trace", trace)
    assert "accuracy:" in proc.stdout
    images, labels = read_idx(IMAGES, offset, count), read_idx(LABELS, offset, count).reshape(-1)
    with h5py.File(trace, "r") as f:
        np.testing.assert_array_equal(f["samples/index"][()], np.arange(offset, offset + count))
        np.testing.assert_array_equal(f["samples/label"][()], labels)
        ts, ids = f["spikes/hidden/timestamps"][()], f["spikes/hidden/node_ids"][()]
        predictions = f["samples/prediction"][()]
        macs = f["energy/per_sample/populations/macs"][()]
    assert ts.size > 0
    for k in range(count):
        expected, logits = reference(w_in, b_in, w_out, images[k])
        in_sample = (ts >= (offset + k) * TICKS) & (ts < (offset + k + 1) * TICKS)
        np.testing.assert_array_equal(np.bincount(ids[in_sample].astype(np.int64), minlength=24), expected)
        assert predictions[k] == int(np.argmax(logits))
        assert macs[k, 0] == 784 * 24 * TICKS  # the analog map is charged every tick


def test_without_input_the_model_runs_silent_inputs(tmp_path):
    model, trace = tmp_path / "tiny.h5", tmp_path / "trace.h5"
    write_model(model, np.random.default_rng(22))
    run_quantal("--model", model, "--ticks", TICKS, "--samples", 2, "--trace", trace)
    with h5py.File(trace, "r") as f:
        assert len(f["samples/index"]) == 2
        assert len(f["spikes/hidden/timestamps"]) == 0  # no drive at all: v0 = 0.5 < threshold


@pytest.mark.skipif(not os.path.exists(IMAGES), reason="Fashion-MNIST is not installed")
def test_mask_overrides_every_projection(tmp_path):
    model, trace = tmp_path / "tiny.h5", tmp_path / "trace.h5"
    write_model(model, np.random.default_rng(23))
    run_quantal("--model", model, "--ticks", TICKS, "--input", IMAGES, "--samples", 2, "--mask", 0.5, "--release",
                "spike", "--trace", trace)
    with h5py.File(trace, "r") as f:
        release = [r.decode() if isinstance(r, bytes) else r for r in f["energy/projections/release"][()]]
        assert release == ["spike"]
        assert f["energy/projections/mask_ratio"][()].tolist() == [0.5]
        assert f["energy/total/projections/masked_spikes"][()][0] > 0


def test_input_for_a_model_without_inputs_is_an_error(tmp_path):
    from nir_reference import write_nir
    path = tmp_path / "m.nir"
    write_nir(path, {"input": {"type": "Input", "shape": np.array([2])}}, [])
    proc = run_quantal("--model", path, "--ticks", 5, "--input", IMAGES, check=False)
    assert proc.returncode == 2
    assert "m.nir" in proc.stderr and "/inputs" in proc.stderr


@pytest.mark.skipif(not os.path.exists(IMAGES), reason="Fashion-MNIST is not installed")
def test_threads_write_the_same_trace(tmp_path):
    """--threads N simulates samples in parallel and writes them in order: the same file content."""
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(24))
    traces = []
    for threads in (1, 3):
        trace = tmp_path / f"trace{threads}.h5"
        run_quantal("--model", model, "--ticks", TICKS, "--input", IMAGES, "--samples", 7, "--mask", 0.25,
                    "--threads", threads, "--seed", 9, "--trace", trace)
        traces.append(trace)
    with h5py.File(traces[0], "r") as a, h5py.File(traces[1], "r") as b:
        for key in ("spikes/hidden/timestamps", "spikes/hidden/node_ids", "samples/index", "samples/prediction",
                    "energy/per_sample/projections/transmitted"):
            np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)


def test_record_a_subset_of_populations(tmp_path):
    from nir_reference import write_nir, f32
    rng = np.random.default_rng(25)
    nodes = {"input": {"type": "Input", "shape": np.array([2])},
             "fc1": {"type": "Affine", "weight": dyadic(rng, (4, 2)), "bias": f32(np.full(4, 0.375))},
             "a": {"type": "IF", "r": f32(np.ones(4)), "v_threshold": f32(np.ones(4)), "v_reset": f32(np.zeros(4))},
             "fc2": {"type": "Affine", "weight": f32(np.ones((3, 4))), "bias": f32(np.zeros(3))},
             "b": {"type": "IF", "r": f32(np.ones(3)), "v_threshold": f32(np.ones(3)), "v_reset": f32(np.zeros(3))}}
    path, trace = tmp_path / "m.nir", tmp_path / "t.h5"
    write_nir(path, nodes, [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b")])
    run_quantal("--model", path, "--ticks", 20, "--record", "b", "--trace", trace)
    with h5py.File(trace, "r") as f:
        assert list(f["spikes"]) == ["b"]
        assert len(f["spikes/b/node_ids"]) > 0
        assert f["energy/total/populations/spikes"][()].sum() > len(f["spikes/b/node_ids"])  # ledger is complete
    proc = run_quantal("--model", path, "--ticks", 20, "--record", "nope", "--trace", tmp_path / "u.h5", check=False)
    assert proc.returncode == 2 and "nope" in proc.stderr
    assert not (tmp_path / "u.h5").exists()


def test_record_samples_and_energy_costs(tmp_path):
    """--record-samples N keeps the spikes of the first N samples (ledger and /samples for all);
    --e-ac/--e-mac price the report and the trace."""
    from nir_reference import write_nir, f32
    rng = np.random.default_rng(26)
    nodes = {"input": {"type": "Input", "shape": np.array([2])},
             "fc1": {"type": "Affine", "weight": dyadic(rng, (6, 2)), "bias": f32(np.full(6, 0.375))},
             "a": {"type": "IF", "r": f32(np.ones(6)), "v_threshold": f32(np.ones(6)), "v_reset": f32(np.zeros(6))}}
    path = tmp_path / "m.nir"
    write_nir(path, nodes, [("input", "fc1"), ("fc1", "a")])
    for threads in (1, 2):
        trace = tmp_path / f"t{threads}.h5"
        proc = run_quantal("--model", path, "--ticks", 16, "--samples", 5, "--offset", 10, "--record-samples", 2,
                           "--threads", threads, "--e-ac", 2.5, "--e-mac", 7.0, "--trace", trace)
        assert "E_AC 2.50 pJ" in proc.stdout and "E_MAC 7.00 pJ" in proc.stdout
        with h5py.File(trace, "r") as f:
            assert f["samples/recorded"][()].tolist() == [1, 1, 0, 0, 0]
            assert f["samples/index"][()].tolist() == [10, 11, 12, 13, 14]
            ts = f["spikes/a/timestamps"][()]
            assert len(ts) > 0 and ts.max() < 12 * 16
            per_sample = f["energy/per_sample/populations/spikes"][()]
            names = [n.decode() if isinstance(n, bytes) else n for n in f["energy/populations/name"][()]]
            assert per_sample.shape[0] == 5 and (per_sample[:, names.index("a")] > 0).all()
            assert f["energy"].attrs["e_ac_pj"] == 2.5 and f["energy"].attrs["e_mac_pj"] == 7.0


# ---- issue 10: wrong models and labels are refused with one line, exit 2 -----------------------

def one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])


def write_labels(path, values):
    import gzip
    header = (0x801).to_bytes(4, "big") + len(values).to_bytes(4, "big")
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(values))


def write_images(path, count):
    import gzip
    header = (0x803).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in (count, 28, 28))
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(range(256)) * (count * 784 // 256) + bytes(count * 784 % 256))


def test_labels_beyond_the_readout_are_refused(tmp_path):
    """A label of 200 for a 10-class readout would count as wrong forever: name the file, index, value."""
    model, images, labels = tmp_path / "tiny.h5", tmp_path / "images.gz", tmp_path / "labels.gz"
    write_model(model, np.random.default_rng(30))
    write_images(images, 4)
    write_labels(labels, [3, 9, 200, 1])
    proc = run_quantal("--model", model, "--ticks", 4, "--input", images, "--labels", labels, "--samples", 4,
                       "--offset", 0, check=False)
    one_line_error(proc, "labels.gz", "label 200", "index 2", "10")
    write_labels(labels, [3, 9, 0, 1])
    run_quantal("--model", model, "--ticks", 4, "--input", images, "--labels", labels, "--samples", 4)


def test_unknown_attribute_is_refused_by_quantal_run(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(31))
    with h5py.File(model, "a") as f:
        f["populations/hidden"].attrs["refractory_ticks"] = np.int64(2)
    one_line_error(run_quantal("--model", model, "--ticks", 4, check=False),
                   "tiny.h5", "population 'hidden'", "'refractory_ticks'")


def test_metadata_namespace_is_ignored_by_quantal_run(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(32))
    with h5py.File(model, "a") as f:
        f["populations/hidden"].attrs["meta:qcfs_levels"] = np.int64(8)
        f["projections/out"].attrs["meta:role"] = "head"
        f.create_group("meta:training")["loss"] = np.arange(5, dtype=np.float32)
    run_quantal("--model", model, "--ticks", 4)


def test_empty_model_is_refused(tmp_path):
    model = tmp_path / "empty.h5"
    with h5py.File(model, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2))
        f.create_group("populations")
    one_line_error(run_quantal("--model", model, "--ticks", 4, check=False), "empty.h5", "no populations")


def test_float_delay_is_refused(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(33))
    with h5py.File(model, "a") as f:
        f["projections/out"].attrs["delay"] = 1.5
    one_line_error(run_quantal("--model", model, "--ticks", 4, check=False), "tiny.h5", "projection 'out'", "1.5")
