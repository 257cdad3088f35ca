"""`quantal run --checkpoint/--resume` (docs/checkpoints.md). The oracle is the same run never
stopped: a run stopped by SIGINT/SIGTERM inside a sample (or killed by SIGKILL after a checkpoint)
and resumed must leave a trace whose every dataset equals the uninterrupted run's, and print the
same report. Split points come from signal timing, so each test tries several delays and requires
at least one stop inside a sample: each stop waits for the first checkpoint, then for a random
fraction of the uninterrupted run's measured time, so it does not depend on the machine's speed. Damaged, truncated and mismatched checkpoints are refused."""
import os
import random
import re
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from nir_reference import QUANTAL, dyadic, f32, write_nir

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MST = os.path.join(SOURCE, "examples", "mst", "models", "mst_r0.h5")
IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"


def recurrent_graph(path, n=200):
    """Two IF layers driven by biases, the second fed back to the first through a 3-tick delay:
    with per-synapse release, deliveries and random streams are pending at every tick boundary."""
    rng = np.random.default_rng(7)

    def if_node():
        return {"type": "IF", "r": np.ones(n, np.float32), "v_threshold": np.ones(n, np.float32),
                "v_reset": np.zeros(n, np.float32)}
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "fc1": {"type": "Affine", "weight": dyadic(rng, (n, 4)), "bias": np.abs(dyadic(rng, n, 0.25)) + 0.0625},
             "if1": if_node(),
             "fc2": {"type": "Affine", "weight": dyadic(rng, (n, n), 0.25), "bias": dyadic(rng, n, 0.125)},
             "if2": if_node(),
             "delay": {"type": "Delay", "delay": f32(np.full(n, 3.0))},
             "fcr": {"type": "Linear", "weight": dyadic(rng, (n, n), 0.2)},
             "output": {"type": "Output", "shape": np.array([n])}}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "output"),
             ("if2", "delay"), ("delay", "fcr"), ("fcr", "if1")]
    write_nir(path, nodes, edges)


def datasets(path):
    """Every dataset of a trace by name, and its /run status."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out, f["run"].attrs["status"]


def assert_same_trace(expected, actual):
    a, status_a = datasets(expected)
    b, status_b = datasets(actual)
    assert status_a == status_b == "complete"
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def run(args, **kw):
    return subprocess.run([QUANTAL, "run", *args], capture_output=True, text=True, timeout=600, **kw)


def report(stdout):
    """`quantal run`'s report without its timing lines (docs/run.md), the only ones that differ
    between identical runs."""
    return "".join(line for line in stdout.splitlines(True) if not line.startswith(("time: ", "speed: ")))


def stop_and_resume(args, tmp_path, tag, delay, sig, every):
    """Runs `args` with checkpoints, sends `sig` after `delay` s, resumes until done. Returns the
    resumed run's stdout, the trace and whether the stop fell inside a sample."""
    trace, ckpt = tmp_path / f"{tag}.h5", tmp_path / f"{tag}.ckpt"
    full = [*args, "--trace", str(trace), "--checkpoint", str(ckpt)]
    if every:  # without it the checkpoints come after each sample and where a signal stops the run
        full += ["--checkpoint-every", str(every)]
    proc = subprocess.Popen([QUANTAL, "run", *full], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not ckpt.exists() and proc.poll() is None:  # past model loading and the first checkpoint
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=600)
    inside = False
    if proc.returncode == 0:  # finished before the signal: nothing to resume, still a valid split
        return report(out), trace, inside
    if proc.returncode == -sig and sig != signal.SIGKILL:  # before the handler was installed (model loading)
        assert not ckpt.exists()
        return None, trace, False
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        inside = True  # unknown: the checkpoint is wherever the last one was written
    else:
        assert proc.returncode == 128 + sig, out + err
        assert f"continue with --resume {ckpt}" in err, err
        inside = "stopped at tick" in err
        with h5py.File(trace, "r") as f:
            assert f["run"].attrs["status"] == "interrupted"
    if not ckpt.exists():  # killed before the first checkpoint: start again
        return None, trace, False
    resumed = run([*full, "--resume", str(ckpt)])
    assert resumed.returncode == 0, resumed.stderr
    return report(resumed.stdout), trace, inside


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "recurrent.nir"
    recurrent_graph(path)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopped_inside_a_sample_then_resumed_equals_uninterrupted(recurrent, tmp_path, sig):
    args = ["--model", str(recurrent), "--ticks", "20000", "--samples", "3", "--mask", "0.3", "--release", "synapse",
            "--seed", "5"]
    began = time.monotonic()
    expected = run([*args, "--trace", str(tmp_path / "full.h5")])
    took = time.monotonic() - began
    assert expected.returncode == 0, expected.stderr
    rng = random.Random(int(sig))
    stops_inside = 0
    for trial, delay in enumerate([rng.random() * took / 2 for _ in range(3)]):
        every = None if sig == signal.SIGTERM and trial == 0 else rng.randint(500, 4000)
        out, trace, inside = stop_and_resume(args, tmp_path, f"t{trial}", delay, sig, every=every)
        if out is None:
            continue
        stops_inside += inside
        assert out == report(expected.stdout)
        assert_same_trace(tmp_path / "full.h5", trace)
    assert stops_inside >= 1, "no stop fell inside a sample"


def test_threads_checkpoint_at_sample_boundaries(recurrent, tmp_path):
    args = ["--model", str(recurrent), "--ticks", "3000", "--samples", "12", "--mask", "0.3", "--seed", "8",
            "--threads", "2"]
    expected = run([*args, "--trace", str(tmp_path / "full.h5")])
    assert expected.returncode == 0, expected.stderr
    out, trace, inside = stop_and_resume(args, tmp_path, "threads", 1.0, signal.SIGINT, every=1000)
    assert not inside  # batches stop at sample boundaries
    assert out == report(expected.stdout)
    assert_same_trace(tmp_path / "full.h5", trace)


@pytest.mark.skipif(not os.path.exists(IMAGES), reason="needs dataset-fashion-mnist (scripts/install-deps.sh)")
def test_mst_stopped_inside_a_sample_then_resumed_equals_uninterrupted(tmp_path):
    args = ["--model", MST, "--ticks", "12", "--samples", "2", "--input", IMAGES, "--labels", LABELS,
            "--mask", "0.5", "--seed", "3"]
    began = time.monotonic()
    expected = run([*args, "--trace", str(tmp_path / "full.h5")])
    took = time.monotonic() - began
    assert expected.returncode == 0, expected.stderr
    stops_inside = 0
    for trial, delay in enumerate(f * took for f in [0.05, 0.1, 0.2, 0.3, 0.45, 0.6]):
        out, trace, inside = stop_and_resume(args, tmp_path, f"m{trial}", delay, signal.SIGINT, every=1)
        if out is None:
            continue
        stops_inside += inside
        assert out == report(expected.stdout)
        assert_same_trace(tmp_path / "full.h5", trace)
        if stops_inside >= 2:
            break
    assert stops_inside >= 1, "no stop fell inside a sample"


def test_refused_checkpoints(recurrent, tmp_path):
    trace, ckpt = tmp_path / "t.h5", tmp_path / "c.ckpt"
    args = ["--model", str(recurrent), "--ticks", "200", "--samples", "2", "--mask", "0.3", "--seed", "5",
            "--trace", str(trace)]
    first = run([*args, "--checkpoint", str(ckpt)])
    assert first.returncode == 0, first.stderr

    def refused(extra, *fragments, base=args):
        r = run([*base, *extra])
        assert r.returncode == 2, r.stdout + r.stderr
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith("quantal: "), line
        for f in fragments:
            assert f in line, line
        return line

    # options that differ from the checkpoint's run, one named at a time
    base = [a if a != "5" else "6" for a in args]
    refused(["--resume", str(ckpt)], str(ckpt), "--seed 5", "--seed 6", base=base)
    refused(["--resume", str(ckpt), "--ticks", "201"], "--ticks 200", base=args[:2] + args[4:])
    refused(["--resume", str(ckpt), "--threads", "2"], "--threads 1")
    refused(["--resume", str(ckpt), "--record", "if1"], "--record all")
    other = tmp_path / "other.nir"
    recurrent_graph(other, n=201)
    refused(["--resume", str(ckpt)], "--model file had SHA-256", base=["--model", str(other)] + args[2:])
    # no silent defaults, no overwriting
    refused(["--checkpoint-every", "10"], "--checkpoint-every 10 needs --checkpoint", base=args[:-2])
    refused(["--resume", str(ckpt), "--force"], "--force has no meaning with --resume")
    refused(["--checkpoint", str(ckpt), "--force"], "--checkpoint", "same file as --trace",
            base=args[:-1] + [str(ckpt)])
    refused(["--checkpoint", str(ckpt)], "already exists", base=args[:-1] + [str(tmp_path / "new.h5")])
    # damaged and truncated files
    data = ckpt.read_bytes()
    for at in [3, 10, 16, len(data) // 2, len(data) - 5]:
        bad = bytearray(data)
        bad[at] ^= 0x01
        (tmp_path / "bad.ckpt").write_bytes(bytes(bad))
        refused(["--resume", str(tmp_path / "bad.ckpt")], "bad.ckpt", "damaged" if at >= 8 else "not a quantal checkpoint")
    for keep in [0, 7, 40, len(data) - 1]:
        (tmp_path / "cut.ckpt").write_bytes(data[:keep])
        refused(["--resume", str(tmp_path / "cut.ckpt")], "cut.ckpt")
    refused(["--resume", str(tmp_path / "missing.ckpt")], "missing.ckpt", "cannot be read")
    # a checkpoint whose trace was replaced by another run's
    run(["--model", str(recurrent), "--ticks", "200", "--samples", "1", "--seed", "5", "--trace", str(trace), "--force"])
    refused(["--resume", str(ckpt)], str(trace), "is not the trace of this run")
    # and the untouched checkpoint of a complete run resumes to the same complete trace
    (tmp_path / "t.h5").unlink()
    assert run([*args, "--checkpoint", str(tmp_path / "c2.ckpt")]).returncode == 0
    again = run([*args, "--resume", str(tmp_path / "c2.ckpt")])
    assert again.returncode == 0, again.stderr
    assert datasets(trace)[1] == "complete"
