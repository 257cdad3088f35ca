"""The converted MST, spike by spike: quantal's event-driven engine against the time-stepped
PyTorch reference (float64) on the same exported file and images. Without masking both are
deterministic, so spike counts and predictions must agree up to float rounding."""
import os
import sys

import pytest
import torch

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "mst"))
import compare_engine  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
from test_mst_export import small_model  # noqa: E402

QUANTAL = os.environ.get("QUANTAL_BINARY")
pytestmark = [
    pytest.mark.skipif(not QUANTAL, reason="QUANTAL_BINARY not set (run through ctest)"),
    pytest.mark.skipif(not os.path.exists(os.path.join(data.DATA_DIR, "t10k-labels-idx1-ubyte.gz")),
                       reason="Fashion-MNIST (dataset-fashion-mnist) not installed"),
]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    images, _ = data.load("test")
    path = str(tmp_path_factory.mktemp("mst") / "small.h5")
    export.export(small_model(images[:256]), path)
    return path


def test_engine_matches_reference_spike_counts(model_file):
    samples, ticks = 6, 24
    engine = compare_engine.run_engine(QUANTAL, model_file, samples, 0, ticks, seed=0, threads=1)
    ref = compare_engine.run_reference(model_file, samples, 0, ticks, seed=0)
    result = compare_engine.compare(engine, ref)
    assert result["total_spikes"]["reference"] > 1000            # the network is active
    assert set(engine["spikes"]) >= set(ref["spikes"])             # same populations
    # Rounding may move a spike near threshold by a tick; the counts may differ by a hair only.
    assert result["total_spikes"]["relative_difference"] < 1e-3, result["total_spikes"]
    assert result["max_population_difference"] < 1e-2, result["populations"]
    assert result["prediction_agreement"] == 1.0
