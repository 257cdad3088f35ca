"""`quantal run` on the exported MST model file with Fashion-MNIST images gives the predictions
of examples/mst/reference.py (the independent time-stepped PyTorch reader of the same file), and
the same spike counts up to float rounding: checks the model reader, the analog input and the run
command end to end."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from nir_reference import run_quantal

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CHECKPOINT = os.path.join(SOURCE, "examples/mst/models/mst_r0.pt")
DATA = "/usr/share/datasets/fashion-mnist"
SAMPLES, TICKS = 12, 16


@pytest.mark.skipif(not os.path.exists(CHECKPOINT) or not os.path.exists(f"{DATA}/t10k-images-idx3-ubyte.gz"),
                    reason="needs the trained MST checkpoint and Fashion-MNIST")
def test_mst_predictions_match_the_reference(tmp_path):
    pytest.importorskip("torch")
    model, trace = tmp_path / "mst.h5", tmp_path / "trace.h5"
    mst = os.path.join(SOURCE, "examples/mst")
    subprocess.run([sys.executable, f"{mst}/export.py", CHECKPOINT, str(model)], check=True, capture_output=True,
                   timeout=600)
    ref = subprocess.run([sys.executable, f"{mst}/reference.py", "--model", str(model), "--samples", str(SAMPLES),
                          "--ticks", str(TICKS), "--json", "--predictions", "--threads", "1"],
                         check=True, capture_output=True, text=True, timeout=600)
    expected = json.loads(ref.stdout)
    run_quantal("--model", model, "--ticks", TICKS, "--input", f"{DATA}/t10k-images-idx3-ubyte.gz",
                "--labels", f"{DATA}/t10k-labels-idx1-ubyte.gz", "--samples", SAMPLES, "--trace", trace)
    with h5py.File(trace, "r") as f:
        assert f["samples/prediction"][()].tolist() == expected["predictions"]
        for name, per_sample in expected["spikes_per_sample"].items():
            got = len(f[f"spikes/{name}/node_ids"]) / SAMPLES
            # a spike may move by a tick (or out of the window) in rare float-rounding cases
            assert got == pytest.approx(per_sample, rel=2e-3, abs=1.0), name
