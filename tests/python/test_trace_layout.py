"""A trace written by `quantal demo --trace` read back with h5py: the SONATA spike layout of
FORMATS.md (dtypes, `units`, the `sorting` enum, magic/version) and content consistent with the
run (times on the tick grid, one continuous recording, counts equal to the energy ledger)."""
import os
import subprocess

import h5py
import numpy as np
import pytest

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
TICKS, SAMPLES, DT = 24, 4, 0.25


def write_demo_trace(path, seed=3, *extra):
    args = [QUANTAL, "demo", "--samples", str(SAMPLES), "--ticks", str(TICKS), "--dt", str(DT), "--seed", str(seed),
            "--trace", str(path), *extra]
    subprocess.run(args, check=True, capture_output=True, text=True)
    return path


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return write_demo_trace(tmp_path_factory.mktemp("trace") / "demo.h5")


def test_sonata_layout(trace):
    with h5py.File(trace, "r") as f:
        assert f.attrs["magic"] == 0x0A7A
        assert f.attrs["magic"].dtype == np.uint32
        assert list(f.attrs["version"]) == [0, 1]
        assert f.attrs["version"].dtype == np.uint32
        names = list(f["spikes"])
        assert names == ["input", "hidden1", "hidden2"]  # spiking populations, network order
        for name in names:
            g = f["spikes"][name]
            ts, ids = g["timestamps"], g["node_ids"]
            assert ts.dtype == np.dtype("<f8")
            assert ids.dtype == np.dtype("<u8")
            assert ts.shape == ids.shape and ts.ndim == 1 and ts.shape[0] > 0
            units = ts.attrs["units"]
            assert (units.decode() if isinstance(units, bytes) else units) == "ms"
            enum = h5py.check_enum_dtype(g.attrs.get_id("sorting").dtype)
            assert enum == {"none": 0, "by_id": 1, "by_time": 2}
            assert g.attrs.get_id("sorting").dtype == np.uint8
            assert g.attrs["sorting"] == 2
            assert ts.chunks is not None and ts.maxshape == (None,)  # streamed: chunked, extendible


def test_content_is_one_continuous_recording(trace):
    with h5py.File(trace, "r") as f:
        sizes = dict(zip([n.decode() for n in f["energy/populations/name"][()]], f["energy/populations/size"][()]))
        per_sample = f["energy/per_sample/populations/spikes"][()]
        pop_index = {n.decode(): i for i, n in enumerate(f["energy/populations/name"][()])}
        assert list(f["samples/index"][()]) == list(range(SAMPLES))
        np.testing.assert_array_equal(f["samples/start_ms"][()], np.arange(SAMPLES) * TICKS * DT)
        assert f["run"].attrs["status"] == "complete"
        assert f["run"].attrs["ticks_per_sample"] == TICKS and f["run"].attrs["dt_ms"] == DT
        total = 0
        for name in f["spikes"]:
            t = f["spikes"][name]["timestamps"][()]
            ids = f["spikes"][name]["node_ids"][()]
            assert np.all(np.diff(t) >= 0), "by_time"
            ticks = t / DT
            np.testing.assert_array_equal(ticks, np.round(ticks))  # on the tick grid
            assert ticks.min() >= 0 and ticks.max() < SAMPLES * TICKS
            assert ids.max() < sizes[name]
            # at most one spike per neuron per tick
            assert len(set(zip(ticks.astype(np.int64).tolist(), ids.tolist()))) == len(ids)
            # the ledger counted exactly these spikes, sample by sample
            counts = np.bincount((ticks // TICKS).astype(np.int64), minlength=SAMPLES)
            np.testing.assert_array_equal(counts, per_sample[:, pop_index[name]])
            total += len(ids)
        assert total == int(f["samples/spikes"][()].sum())
        np.testing.assert_array_equal(f["energy/total/populations/spikes"][()], per_sample.sum(axis=0))


def test_same_seed_same_trace_other_seed_differs(trace, tmp_path):
    again = write_demo_trace(tmp_path / "again.h5")
    other = write_demo_trace(tmp_path / "other.h5", 4)
    with h5py.File(trace, "r") as a, h5py.File(again, "r") as b, h5py.File(other, "r") as c:
        for name in a["spikes"]:
            for d in ("timestamps", "node_ids"):
                np.testing.assert_array_equal(a["spikes"][name][d][()], b["spikes"][name][d][()])
        assert a["spikes/input/node_ids"].shape != c["spikes/input/node_ids"].shape or not np.array_equal(
            a["spikes/input/node_ids"][()], c["spikes/input/node_ids"][()])


def test_masked_run_records_release_settings(tmp_path):
    path = write_demo_trace(tmp_path / "masked.h5", 3, "--mask", "0.5", "--release", "synapse")
    with h5py.File(path, "r") as f:
        assert [r.decode() for r in f["energy/projections/release"][()]] == ["synapse"] * 3
        np.testing.assert_array_equal(f["energy/projections/mask_ratio"][()], [0.5] * 3)
        attempted = f["energy/total/projections/attempted"][()]
        transmitted = f["energy/total/projections/transmitted"][()]
        assert np.all(transmitted < attempted)
        assert f["run"].attrs["mask_ratio"] == 0.5
