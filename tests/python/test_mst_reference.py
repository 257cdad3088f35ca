"""reference.py on hand-built model files: IF semantics (v0 = theta/2, soft reset, spike value,
logits summed over ticks), the ANN mode, release masks and event counts."""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst"))
import reference  # noqa: E402
from export import ModelFile  # noqa: E402
from qcfs import qcfs  # noqa: E402

LAM, LEVELS, N = 1.5, 8, 200


def one_layer_file(path, ratio=0.0):
    """analog input (identity, dense) -> IF (lam) -> identity -> readout."""
    f = ModelFile("one-layer")
    f.inputs["x"] = dict(attrs=dict(target="if", kind="dense"),
                         data=dict(shape=np.array([1, 1, N], np.int64), weight=np.eye(N, dtype=np.float32)))
    f.add_if("if", (N,), LAM, LEVELS)
    f.add_readout("out", N, None)
    f.add_projection("one_to_one", "if", "out", "stream", ratio, weight=np.ones(N, np.float32))
    f.write(path, {})


def run(path, x, ticks, ann=False, seed=0):
    net = reference.Network(path)
    sim = reference.Simulation(net, ann=ann, seed=seed)
    sim.reset(x.shape[0])
    current = net.analog_current(x)
    total = sum(sim.tick(current) for _ in range(1 if ann else ticks))
    return total, sim


def test_if_rate_equals_qcfs_at_T_equals_L(tmp_path):
    path = str(tmp_path / "m.h5")
    one_layer_file(path)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 2.0, (1, 1, 1, N)))
    total, sim = run(path, x, LEVELS)
    expected = qcfs(x.reshape(1, N).float(), LAM, LEVELS)
    torch.testing.assert_close(total / LEVELS, expected)
    ann, _ = run(path, x, 1, ann=True)
    torch.testing.assert_close(ann, expected)
    assert sim.spikes["if"] == float(total.sum() / LAM)
    assert sim.events["if->out"] == sim.spikes["if"]


def test_spike_release_keeps_one_minus_ratio(tmp_path):
    path = str(tmp_path / "m.h5")
    one_layer_file(path, ratio=0.75)
    x = torch.full((50, 1, 1, N), 10.0)               # saturated: a spike every tick
    total, sim = run(path, x, 40)
    delivered = float(total.sum() / LAM)
    assert sim.spikes["if"] == 50 * N * 40
    assert abs(delivered / sim.spikes["if"] - 0.25) < 0.01
    assert sim.events["if->out"] == delivered


def test_mask_override_masks_every_projection(tmp_path):
    """--mask RATIO (Network.override_release) as quantal run --mask RATIO --release spike."""
    path = str(tmp_path / "m.h5")
    one_layer_file(path)                              # the file itself has no masks
    net = reference.Network(path)
    net.override_release(0.75)
    assert [(p.release, p.ratio) for p in net.projs] == [("spike", 0.75)]
    sim = reference.Simulation(net, seed=0)
    sim.reset(50)
    x = torch.full((50, 1, 1, N), 10.0)               # saturated: a spike every tick
    current = net.analog_current(x)
    total = sum(sim.tick(current) for _ in range(40))
    assert abs(float(total.sum() / LAM) / sim.spikes["if"] - 0.25) < 0.01
    one_layer_file(path, ratio=0.75)                  # and 0 turns the file's masks off
    net = reference.Network(path)
    net.override_release(0.0)
    assert [(p.release, p.ratio) for p in net.projs] == [("none", 0.0)]


MST_MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst", "models", "mst_r0.h5")


@pytest.mark.skipif(not os.path.exists(MST_MODEL), reason="needs the shipped MST model file")
def test_mask_override_covers_the_attention_operators():
    net = reference.Network(MST_MODEL)
    assert all(p.ratio == 0 for p in net.projs) and net.ops
    net.override_release(0.75)
    assert all((p.release, p.ratio) == ("spike", 0.75) for p in net.projs)
    assert all(op.ratio == {"q": 0.75, "k": 0.75, "score": 0.75} for op in net.ops)
    with pytest.raises(reference.ModelError):
        net.override_release(1.5)
