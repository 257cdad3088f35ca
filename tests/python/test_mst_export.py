"""Export exactness: the exported file, evaluated as the quantised ANN by reference.py, gives the
PyTorch module's predictions on 500 test images. Uses the shipped ratio-0 model when present,
otherwise a small untrained model with non-trivial BatchNorm statistics."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

MST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst")
sys.path.insert(0, MST_DIR)
import data  # noqa: E402
import export  # noqa: E402
import reference  # noqa: E402
from model import MSTConfig, MSTTiny  # noqa: E402
from train import load_checkpoint  # noqa: E402

SHIPPED = os.path.join(MST_DIR, "models", "mst_r0.pt")
torch.set_num_threads(1)   # CI may run other jobs beside us; oversubscription is very slow
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(data.DATA_DIR, "t10k-labels-idx1-ubyte.gz")),
                                reason="Fashion-MNIST (dataset-fashion-mnist) not installed")


@pytest.fixture(scope="module")
def test_images():
    images, labels = data.load("test")
    return images[:500], labels[:500]


def small_model(images):
    torch.manual_seed(0)
    model = MSTTiny(MSTConfig(embed_dim=16, heads=(2, 4)))
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(data.to_network_input(images[:256])))   # BN running statistics
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        model.head.weight.normal_(0, 1)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, test_images):
    model = load_checkpoint(SHIPPED)[0] if os.path.exists(SHIPPED) else small_model(test_images[0])
    model.eval()
    path = str(tmp_path_factory.mktemp("mst") / "model.h5")
    export.export(model, path)
    return model, path


def test_ann_predictions_match_module(exported, test_images):
    model, path = exported
    images, labels = test_images
    with torch.no_grad():
        expected = model(torch.from_numpy(data.to_network_input(images))).argmax(1)
    net = reference.Network(path)
    result = reference.evaluate(net, torch.from_numpy(images[:, None]), torch.from_numpy(labels), ann=True)
    assert result["predictions"] == expected.tolist()


def test_file_follows_the_schema(exported):
    _, path = exported
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "quantal-model" and f.attrs["format_version"] == 2
        pops = f["populations"]
        for name in pops.attrs["order"]:
            p = pops[name]
            if p.attrs["model"] == "IF":     # QCFS conversion: theta = lambda, v0 = theta/2
                assert p.attrs["spike_value"] == p.attrs["threshold"] > 0
                assert np.isclose(p.attrs["v0"], p.attrs["threshold"] / 2)
        for name in f["projections"].attrs["order"]:
            pr = f["projections"][name]
            assert pr.attrs["source"] in pops and pr.attrs["target"] in pops
        for name in f["operators"].attrs["order"]:
            op = f["operators"][name]
            assert op.attrs["op"] == "softmax_attention"
            for key in ("q", "k", "v", "scores", "output"):
                assert op.attrs[key] in pops
        assert f["readout"].attrs["population"] in pops


def test_shipped_files_agree_with_their_checkpoints(test_images):
    """Each shipped .h5 equals a fresh export of its .pt (ratio-0 models: same predictions)."""
    path = SHIPPED.replace(".pt", ".h5")
    if not os.path.exists(path):
        pytest.skip("no shipped model")
    images, labels = test_images
    n = 200
    fresh = reference.evaluate(reference.Network(path), torch.from_numpy(images[:n, None]),
                               torch.from_numpy(labels[:n]), ann=True)
    with torch.no_grad():
        model = load_checkpoint(SHIPPED)[0].eval()
        expected = model(torch.from_numpy(data.to_network_input(images[:n]))).argmax(1)
    assert fresh["predictions"] == expected.tolist()


def test_snn_approaches_ann(exported, test_images):
    """A short SNN run: accuracy at T=32 is not far below the ANN on 50 images (sanity)."""
    _, path = exported
    if not os.path.exists(SHIPPED):
        pytest.skip("needs a trained model")
    images, labels = test_images
    net = reference.Network(path)
    x, y = torch.from_numpy(images[:50, None]), torch.from_numpy(labels[:50])
    ann = reference.evaluate(net, x, y, ann=True)["accuracy"]
    snn = reference.evaluate(net, x, y, ticks=32, batch=50)
    assert snn["accuracy"]["32"] >= ann - 0.15
    assert snn["total_spikes_per_sample"] > 0


def test_window_layout_equals_image_layout(tmp_path, test_images):
    """Format-v1 window layout (sparse q/k/v/proj) and the image layout run identically."""
    images, labels = test_images
    model = small_model(images)
    paths = {layout: str(tmp_path / f"{layout}.h5") for layout in ("image", "windows")}
    for layout, path in paths.items():
        export.export(model, path, layout=layout)
    x, y = torch.from_numpy(images[:20, None]), torch.from_numpy(labels[:20])
    runs = {layout: reference.evaluate(reference.Network(path), x, y, ticks=8, batch=20)
            for layout, path in paths.items()}
    assert runs["image"]["predictions"] == runs["windows"]["predictions"]
    assert runs["image"]["spikes_per_sample"] == runs["windows"]["spikes_per_sample"]
    with h5py.File(paths["windows"], "r") as f:
        assert f["operators"]["s0.b1.attention"].attrs["layout"] == "windows"
        assert f["populations"]["s0.b1.q"]["shape"][()].tolist() == [4, 2, 16, 8]
    # not the model format's layout: quantal refuses it by name, in one line
    r = subprocess.run([os.environ["QUANTAL_BINARY"], "run", "--model", paths["windows"], "--ticks", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert paths["windows"] in r.stderr and "layout 'windows' is not supported" in r.stderr
