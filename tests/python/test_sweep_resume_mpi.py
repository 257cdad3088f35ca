"""`quantal sweep` interrupted and distributed (docs/sweep.md, docs/distributed.md). The oracle is
the same sweep run once, in one process, never stopped: a sweep killed mid-way and rerun, and a
sweep shared among 2 MPI ranks, must give a study file whose every dataset equals it. A state file
of another study, or a damaged one, is refused; a complete study is not overwritten without
--force; --csv carries the file's numbers with the model's SHA-256, the version and the command."""
import csv
import hashlib
import os
import re
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODELS = [os.path.join(SOURCE, f"examples/mst/models/{m}.h5") for m in ("mst_r0", "mst_r75")]
DATA = "/usr/share/datasets/fashion-mnist"
IMAGES, LABELS = f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz"
GRID = ["--model", MODELS[0], "--model", MODELS[1], "--input", IMAGES, "--labels", LABELS, "--samples", "20",
        "--offset", "7", "--ticks", "10", "--observe", "5,10", "--ratios", "0,0.5,0.9", "--release", "spike,synapse",
        "--targets", "attention,linear", "--seeds", "2,9", "--block", "3"]


def sweep(out, *extra, launcher=(), **kw):
    return subprocess.run([*launcher, BINARY, "sweep", *GRID, *extra, "--out", str(out)], capture_output=True,
                          text=True, timeout=900, **kw)


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_study(expected, actual):
    a, b = datasets(expected), datasets(actual)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "study.h5"
    began = time.monotonic()
    proc = sweep(out, "--csv", str(out.with_suffix(".csv")))
    assert proc.returncode == 0, proc.stderr
    return out, time.monotonic() - began


def test_two_mpi_ranks_equal_one_process(uninterrupted, tmp_path):
    expected, _ = uninterrupted
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
    launcher = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "2"]
    out = tmp_path / "mpi.h5"
    proc = sweep(out, "--threads", "1", launcher=launcher, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 processes" in proc.stderr
    assert_same_study(expected, out)
    assert not (tmp_path / "mpi.h5.state").exists()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_midway_and_rerun_equals_uninterrupted(uninterrupted, tmp_path, sig):
    expected, took = uninterrupted
    out, state = tmp_path / "study.h5", tmp_path / "study.h5.state"
    stops = 0
    for fraction in (0.25, 0.5, 0.75):
        proc = subprocess.Popen([BINARY, "sweep", *GRID, "--threads", "2", "--out", str(out), "--force"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not state.exists() and proc.poll() is None:  # past loading and the first unit
            time.sleep(0.005)
        time.sleep(fraction * took / 3)
        proc.send_signal(sig)
        proc.communicate(timeout=600)
        if proc.returncode == 0:
            break
        stops += 1
        assert not out.exists(), "a stopped sweep left a study file"
        assert state.exists()
    assert stops >= 1, "every sweep finished before it was stopped"
    rerun = sweep(out, "--threads", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in rerun.stderr
    assert_same_study(expected, out)
    assert not state.exists()


def one_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("quantal: "), line
    return line


def stopped_state(tmp_path):
    """A state file left by a sweep killed after its first units."""
    out, state = tmp_path / "study.h5", tmp_path / "study.h5.state"
    proc = subprocess.Popen([BINARY, "sweep", *GRID, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while not state.exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    assert state.exists()
    return out, state


def test_state_of_another_study_or_damaged_is_refused(tmp_path):
    out, state = stopped_state(tmp_path)
    grid = list(GRID)
    grid[grid.index("--ratios") + 1] = "0,0.5,0.75"
    other = subprocess.run([BINARY, "sweep", *grid, "--out", str(out)], capture_output=True, text=True, timeout=600)
    line = one_line(other)
    assert str(state) in line and "another study" in line and "--ratios was 0,0.5,0.9, now 0,0.5,0.75" in line
    assert not out.exists()

    kept = state.read_bytes()
    damaged = bytearray(kept)
    damaged[len(damaged) // 2] ^= 0x40
    state.write_bytes(bytes(damaged))
    line = one_line(sweep(out))
    assert str(state) in line and "damaged" in line
    state.write_bytes(kept[: len(kept) // 2])
    assert "truncated" in one_line(sweep(out))
    assert not out.exists()


def test_complete_study_is_kept_without_force_and_csv_carries_the_file(uninterrupted, tmp_path):
    expected, _ = uninterrupted
    before = expected.read_bytes()
    line = one_line(sweep(expected))
    assert str(expected) in line
    assert expected.read_bytes() == before

    rows = list(csv.DictReader(open(expected.with_suffix(".csv"))))
    with h5py.File(expected, "r") as f:
        c, r = f["configurations"], f["results"]
        observe = list(f["observe"][()])
        assert len(rows) == len(c["ratio"]) * len(observe)
        sha = [hashlib.sha256(open(m, "rb").read()).hexdigest() for m in MODELS]
        assert list(f.attrs["model_sha256"]) == sha
        for row in rows:
            i, t = int(row["configuration"]), observe.index(int(row["observe"]))
            assert row["model_sha256"] == sha[c["model"][i]]
            assert int(row["seed"]) == c["seed"][i] and float(row["ratio"]) == c["ratio"][i]
            assert float(row["accuracy"]) == r["accuracy"][i, t] and float(row["p_value"]) == r["p_value"][i, t]
            assert float(row["energy_pj"]) == r["energy_pj"][i]
            assert row["version"] == f.attrs["version"] and row["command_line"] == f.attrs["command_line"]
        assert "+" in f.attrs["version"]  # quantal's version + git describe of the build


def test_version_is_the_builds_git_describe():
    proc = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True)
    describe = subprocess.run(["git", "-C", SOURCE, "describe", "--always", "--dirty", "--tags"], capture_output=True,
                              text=True)
    # a clone: the build says which commit it is (rebuild after committing); else "no-git"
    expected = describe.stdout.strip().removesuffix("-dirty") if describe.returncode == 0 else "+no-git"
    assert expected in proc.stdout


def test_unwritable_output_is_refused_before_running(tmp_path):
    target = tmp_path / "no-such-dir" / "study.h5"
    proc = sweep(target)
    assert proc.returncode == 2, proc.stderr
    assert str(target) in proc.stderr.strip().splitlines()[-1]
    assert not target.parent.exists()


def test_bad_input_under_mpirun_ends_every_rank_with_exit_2(tmp_path):
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    grid = list(GRID)
    grid[grid.index("--model") + 1] = str(tmp_path / "missing.h5")
    proc = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "2", BINARY, "sweep", *grid,
                           "--out", str(tmp_path / "study.h5")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # Every rank loads the models; whichever fails first aborts the job, naming itself unless rank 0.
    assert re.search(r"quantal: (rank \d+: )?" + re.escape(str(tmp_path / "missing.h5")) + ": cannot be opened",
                     proc.stderr), proc.stderr
    assert not (tmp_path / "study.h5").exists() and not (tmp_path / "study.h5.state").exists()
