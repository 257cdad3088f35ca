"""Issue 10, full disk: a trace whose disk fills up is reported with its path and the system's reason,
and the file is left valid up to the last completed sample (io/journal_driver.hpp). Before: "cannot
flush /", then a segfault in libhdf5's close; the file was unreadable, or a completed sample held
zeros.

The full disk is injected, not mounted: tests/fault/full_disk.c, preloaded, lets the trace grow to N
bytes and fails further writes with ENOSPC (rewriting existing bytes still works, as on a real disk).
"""
import os
import subprocess

import h5py
import numpy as np
import pytest

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
LIBRARY = os.environ.get("QUANTAL_FULL_DISK_LIBRARY", "")
TICKS, SAMPLES = 50, 12


def busy_model(path):
    """Two IF populations driven by biases: about 17,000 spikes per sample, delays, synapse release."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="busy", producer="test")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["a", "b", "logits"]
        for name, n in (("a", 300), ("b", 200)):
            g = pops.create_group(name)
            g.attrs.update(model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.0, spike_value=1.0)
            g["shape"] = np.array([n], np.int64)
            g["bias"] = np.linspace(0.05, 1.0, n)
        o = pops.create_group("logits")
        o.attrs.update(model="readout")
        o["shape"] = np.array([2], np.int64)
        prj = f.create_group("projections")
        p = prj.create_group("ab")
        p.attrs.update(kind="dense", source="a", target="b", delay=np.int64(1), release="synapse", mask_ratio=0.5)
        p["weight"] = np.full((200, 300), 0.01, np.float32)
        p = prj.create_group("out")
        p.attrs.update(kind="dense", source="b", target="logits", delay=np.int64(0), release="none", mask_ratio=0.0)
        p["weight"] = np.full((2, 200), 0.5, np.float32)
        f.create_group("readout").attrs.update(population="logits", accumulate="sum")


def run(model, trace, *extra, disk_bytes=None):
    env = dict(os.environ)
    if disk_bytes is not None:
        assert LIBRARY and os.path.exists(LIBRARY), "QUANTAL_FULL_DISK_LIBRARY (built by CMake) is required"
        env.update(LD_PRELOAD=LIBRARY, QUANTAL_FULL_DISK_FILE=str(trace.resolve()),
                   QUANTAL_FULL_DISK_BYTES=str(disk_bytes))
    return subprocess.run([QUANTAL, "run", "--model", str(model), "--ticks", str(TICKS), "--samples", str(SAMPLES),
                           "--trace", str(trace), *extra], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full_disk")
    model, trace = tmp / "busy.h5", tmp / "reference.h5"
    busy_model(model)
    r = run(model, trace)
    assert r.returncode == 0, r.stderr
    return model, trace, trace.stat().st_size


def check_kept_samples(trace, reference):
    """The trace holds k completed samples, exactly as the uninterrupted run wrote them."""
    with h5py.File(trace, "r") as f, h5py.File(reference, "r") as ref:
        assert f["run"].attrs["status"] in ("incomplete", "running")  # "running" if not even that fits
        k = int(f["run"].attrs["samples_completed"])
        assert len(f["samples/index"]) == k and f["energy/per_sample/snn_pj"].shape == (k,)
        assert f["energy/per_sample/populations/spikes"].shape[0] == k
        for j, name in enumerate(["a", "b"]):
            n = int(f["energy/per_sample/populations/spikes"][:, j].sum()) if k else 0
            for column in ("timestamps", "node_ids"):
                kept = f[f"spikes/{name}/{column}"][()]
                assert len(kept) == n  # no spikes of the failed sample, none missing
                assert np.array_equal(kept, ref[f"spikes/{name}/{column}"][:n])  # no zeros, no damage
        for column in ("index", "start_ms", "spikes"):
            assert np.array_equal(f[f"samples/{column}"][()], ref[f"samples/{column}"][:k])
        return k


@pytest.mark.parametrize("fraction", [0.002, 0.05, 0.2, 0.45, 0.7, 0.93])
def test_full_disk_keeps_the_completed_samples(tmp_path, reference, fraction):
    model, ref, size = reference
    trace = tmp_path / "t.h5"
    r = run(model, trace, disk_bytes=int(size * fraction))
    assert r.returncode == 2, (r.returncode, r.stderr)  # no crash in libhdf5's close
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(trace) in lines[0] and "No space left on device" in lines[0], r.stderr
    if not trace.exists():  # the disk filled before the first flush: no trace at all
        assert fraction < 0.01
        return
    k = check_kept_samples(trace, ref)
    assert 0 < k < SAMPLES or fraction < 0.1
    i = subprocess.run([QUANTAL, "inspect", str(trace)], capture_output=True, text=True, timeout=60)
    assert i.returncode == 0, i.stderr


def test_full_disk_with_threads(tmp_path, reference):
    model, ref, size = reference
    trace = tmp_path / "t.h5"
    r = run(model, trace, "--threads", "2", disk_bytes=int(size * 0.5))
    assert r.returncode == 2 and "No space left on device" in r.stderr, r.stderr
    assert 0 < check_kept_samples(trace, ref) < SAMPLES


def test_unwritable_trace_names_the_reason(tmp_path, reference):
    model = reference[0]
    trace = tmp_path / "no" / "such" / "dir.h5"
    r = run(model, trace)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(trace) in lines[0] and "No such file or directory" in lines[0], r.stderr
