"""`quantal inspect`: the JSON summary agrees with the trace read by h5py; --plot writes PNG
raster/rate/energy plots; bad trace files give one line naming the file and object, exit 2."""
import json
import os
import subprocess

import h5py
import pytest

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("inspect") / "demo.h5"
    subprocess.run([QUANTAL, "demo", "--samples", "3", "--ticks", "30", "--seed", "5", "--trace", str(path)],
                   check=True, capture_output=True)
    return path


def inspect(*args):
    return subprocess.run([QUANTAL, "inspect", *map(str, args)], capture_output=True, text=True)


def test_json_summary_matches_the_file(trace):
    r = inspect(trace, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    with h5py.File(trace, "r") as f:
        assert [p["name"] for p in s["populations"]] == list(f["spikes"])
        for p in s["populations"]:
            n = f["spikes"][p["name"]]["node_ids"].shape[0]
            assert p["spikes"] == n
            assert p["rate_hz"] == pytest.approx(n / p["neurons"] / (3 * 30 * 1.0 / 1000.0))
        assert s["total_spikes"] == sum(f["spikes"][k]["node_ids"].shape[0] for k in f["spikes"])
        assert len(s["samples"]) == 3
        assert s["energy"]["samples"] == 3
        transmitted = f["energy/total/projections/transmitted"][()]
        for p, t in zip(s["energy"]["projections"], transmitted):
            assert p["transmitted"] == int(t)
            assert p["energy_pj"] == pytest.approx(0.9 * int(t))
    assert s["run"]["status"] == "complete"


def test_text_summary(trace):
    r = inspect(trace)
    assert r.returncode == 0, r.stderr
    for word in ("hidden1", "rate Hz", "energy per layer", "fc1", "samples: 3"):
        assert word in r.stdout


def test_plot_writes_pngs(trace, tmp_path):
    out = tmp_path / "plots"
    r = inspect(trace, "--plot", out)
    assert r.returncode == 0, r.stderr
    for name in ("raster.png", "rates.png", "energy_per_layer.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG), name
        assert len(data) > 10_000, f"{name} is only {len(data)} bytes"


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_missing_dataset(trace, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(trace.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["spikes/hidden1/node_ids"]
    one_line_error(inspect(bad), str(bad), "/spikes/hidden1", "node_ids")


def test_missing_units(trace, tmp_path):
    bad = tmp_path / "bad_units.h5"
    bad.write_bytes(trace.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["spikes/input/timestamps"].attrs["units"]
    one_line_error(inspect(bad), str(bad), "/spikes/input/timestamps", "units")


def test_length_mismatch(trace, tmp_path):
    bad = tmp_path / "bad_length.h5"
    bad.write_bytes(trace.read_bytes())
    with h5py.File(bad, "r+") as f:
        ids = f["spikes/input/node_ids"][()]
        del f["spikes/input/node_ids"]
        f["spikes/input/node_ids"] = ids[:-1]
    one_line_error(inspect(bad), str(bad), "/spikes/input", "lengths")


def test_truncated_and_not_hdf5(trace, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(trace.read_bytes()[:3000])
    one_line_error(inspect(truncated), str(truncated))
    text = tmp_path / "text.h5"
    text.write_text("not hdf5\n")
    one_line_error(inspect(text), str(text))
    one_line_error(inspect(tmp_path / "missing.h5"), "missing.h5")


def test_bmtk_style_string_sorting_is_accepted(tmp_path):
    """bmtk writes `sorting` as a string and no /samples or /energy: still a readable trace."""
    path = tmp_path / "bmtk.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes/cortex")
        g.attrs["sorting"] = "by_time"
        g.create_dataset("timestamps", data=[0.5, 1.0, 2.5]).attrs["units"] = "ms"
        g.create_dataset("node_ids", data=[3, 1, 3], dtype="u8")
    r = inspect(path, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["populations"][0]["spikes"] == 3 and s["populations"][0]["sorting"] == "by_time"


def test_plot_many_populations(tmp_path):
    """A transformer has dozens of populations: one stacked raster and a rate heat map."""
    import numpy as np
    rng = np.random.default_rng(1)
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        for p in range(20):
            g = f.create_group("spikes/block%d.layer" % p)
            g.attrs["sorting"] = "by_time"
            times = np.sort(rng.integers(0, 64, 500)).astype("f8")
            g.create_dataset("timestamps", data=times).attrs["units"] = "ms"
            g.create_dataset("node_ids", data=rng.integers(0, 100, 500).astype("u8"))
    out = tmp_path / "plots"
    r = inspect(path, "--plot", out)
    assert r.returncode == 0, r.stderr
    for name in ("raster.png", "rates.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name


def test_spikes_that_disagree_with_the_ledger(trace, tmp_path):
    """A trace cut short (both datasets, same length) no longer matches its energy ledger."""
    bad = tmp_path / "cut.h5"
    bad.write_bytes(trace.read_bytes())
    with h5py.File(bad, "r+") as f:
        g = f["spikes/hidden2"]
        for name in ("timestamps", "node_ids"):
            data = g[name][()][:-10]
            del g[name]
            g[name] = data
        g["timestamps"].attrs["units"] = "ms"
    one_line_error(inspect(bad), str(bad), "/spikes/hidden2", "ledger")


def test_one_damaged_byte_in_the_root_group(tmp_path):
    """Byte 133 of a fresh trace lies in the root group's link-info message (the address of its
    dense-link heap, undefined = all 0xff). Set to 0xA9, it becomes an address near 2^64 that
    libhdf5 1.10's metadata accumulator copied from without a bounds check: a segfault. Reading
    with the accumulator off (SWMR-read mode) turns it into an HDF5 error, so one line, exit 2."""
    trace = tmp_path / "fresh.h5"
    subprocess.run([QUANTAL, "demo", "--samples", "1", "--ticks", "10", "--trace", str(trace)], check=True,
                   capture_output=True)
    data = bytearray(trace.read_bytes())
    assert data[133] == 0xFF
    data[133] = 0xA9
    bad = tmp_path / "damaged.h5"
    bad.write_bytes(bytes(data))
    r = inspect(bad)
    one_line_error(r, str(bad))
