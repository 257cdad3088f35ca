"""One-batch training smoke test (the real training is not part of CI)."""
import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst"))
import data  # noqa: E402
import train  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(data.DATA_DIR, "t10k-labels-idx1-ubyte.gz")),
                                reason="Fashion-MNIST (dataset-fashion-mnist) not installed")


def test_idx_reader():
    images, labels = data.load("test")
    assert images.shape == (10000, 28, 28) and images.dtype.name == "uint8"
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))
    x = data.to_network_input(images[:2])
    assert x.shape == (2, 1, 32, 32) and x[:, :, :2].max() == 0 and 0 < x.max() <= 1


@pytest.mark.parametrize("mask_ratio", [0.0, 0.5])
def test_one_batch(tmp_path, mask_ratio):
    out = str(tmp_path / "smoke")
    model, info = train.main(["--out", out, "--max-batches", "1", "--batch", "32", "--train-limit", "64",
                              "--test-limit", "50", "--embed-dim", "16", "--heads", "2", "4",
                              "--mask-ratio", str(mask_ratio), "--threads", "1"])
    assert math.isfinite(info["epochs"][0]["train_loss"])
    loaded, _ = train.load_checkpoint(out + ".pt")
    assert loaded.cfg.mask_ratio == mask_ratio
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
