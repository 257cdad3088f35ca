"""SIGINT/SIGTERM during a multi-sample `quantal run`: the run stops after the current sample, the
trace is valid HDF5 holding exactly the completed samples (spikes, /samples and ledger agree) and
the exit status is 128 + signal."""
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from nir_reference import QUANTAL, dyadic, write_nir

TICKS = 400


def busy_graph(path):
    """A few hundred IF neurons driven by biases, with synaptic failures so samples differ."""
    rng = np.random.default_rng(11)
    n = 300
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "fc1": {"type": "Affine", "weight": dyadic(rng, (n, 4)), "bias": np.abs(dyadic(rng, n, 0.5)) + 0.125},
             "if1": {"type": "IF", "r": np.ones(n, np.float32), "v_threshold": np.ones(n, np.float32),
                     "v_reset": np.zeros(n, np.float32)},
             "fc2": {"type": "Affine", "weight": dyadic(rng, (n, n), 0.25), "bias": dyadic(rng, n, 0.125)},
             "if2": {"type": "IF", "r": np.ones(n, np.float32), "v_threshold": np.ones(n, np.float32),
                     "v_reset": np.zeros(n, np.float32)},
             "output": {"type": "Output", "shape": np.array([n])}}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "output")]
    write_nir(path, nodes, edges)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_a_valid_trace(tmp_path, sig):
    model, trace = tmp_path / "busy.nir", tmp_path / "trace.h5"
    busy_graph(model)
    samples = 100000
    proc = subprocess.Popen([QUANTAL, "run", "--model", str(model), "--ticks", str(TICKS), "--samples", str(samples),
                             "--mask", "0.3", "--release", "synapse", "--seed", "5", "--trace", str(trace)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out + err
    assert "interrupted" in err and sig.name in err

    with h5py.File(trace, "r") as f:  # a valid HDF5 file
        assert f["run"].attrs["status"] == "interrupted"
        index = f["samples/index"][()]
        completed = len(index)
        assert 1 <= completed < samples
        assert f["run"].attrs["samples_completed"] == completed
        np.testing.assert_array_equal(index, np.arange(completed))
        per_sample = f["energy/per_sample/populations/spikes"][()]
        assert per_sample.shape[0] == completed
        names = [n.decode() if isinstance(n, bytes) else n for n in f["energy/populations/name"][()]]
        total_spikes = 0
        for p, name in enumerate(names):
            if name not in f["spikes"]:
                continue
            ts = f[f"spikes/{name}/timestamps"][()]
            ids = f[f"spikes/{name}/node_ids"][()]
            assert len(ts) == len(ids)
            assert (ts < completed * TICKS).all(), "spikes of an unfinished sample were kept"
            # every completed sample is intact: its spikes in the file equal its ledger row
            per_sample_counts = np.bincount((ts // TICKS).astype(np.int64), minlength=completed)
            np.testing.assert_array_equal(per_sample_counts, per_sample[:, p], err_msg=name)
            total_spikes += len(ts)
        assert total_spikes > 0
        np.testing.assert_array_equal(f["samples/spikes"][()], per_sample.sum(axis=1))
