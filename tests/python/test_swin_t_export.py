"""export.py beyond the shipped checkpoints (docs/energy.md, "A Swin-T-shaped network"):
- an untrained network of other dimensions (3 input channels, no padding, two stages) exports, and
  the synapses per role that quantal counts on it equal closed forms written here from the
  architecture (token-wise maps, the residual stream repeated per reader, patch merging per
  contributor, the head);
- the `--untrained swin-t` preset has Swin-T's dimensions, and its ANN record's MACs equal the
  closed form (4.49 G, Swin-T's published ~4.5 G FLOPs)."""
import os
import sys

import h5py
import pytest
import torch

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "examples", "mst"))
import export  # noqa: E402
from model import MSTConfig, MSTTiny  # noqa: E402
from summary import ann_layers  # noqa: E402
import quantal  # noqa: E402  (PYTHONPATH=build/python)


def synapses_by_hand(cfg):
    res, c = cfg.image_size // cfg.patch, cfg.embed_dim
    out = dict(qkv_in=0, proj_in=0, fc1_in=0, fc2_in=0, stream=0, merge=0, head=0)
    for s, k in enumerate(cfg.depths):
        tokens, hidden = res * res, int(c * cfg.mlp_ratio)
        out["qkv_in"] += k * tokens * c * 3 * c
        out["proj_in"] += k * tokens * c * c
        out["fc1_in"] += k * tokens * c * hidden
        out["fc2_in"] += k * tokens * hidden * c
        # block j's act1 reads 1 + 2j contributors, its act2 2 + 2j: one one_to_one projection each
        out["stream"] += sum((1 + 2 * j) + (2 + 2 * j) for j in range(k)) * tokens * c
        contributors = 1 + 2 * k
        if s + 1 < len(cfg.depths):  # a 2 x 2 stride-2 conv (C -> 2C) from every contributor
            out["merge"] += contributors * (tokens // 4) * 2 * c * 4 * c
            res, c = res // 2, 2 * c
        else:                        # the final BN -> QCFS reads the stream too; then the head
            out["stream"] += contributors * tokens * c
            out["head"] += tokens * c * cfg.classes
    return out


def macs_by_hand(cfg):
    res, c = cfg.image_size // cfg.patch, cfg.embed_dim
    total = res * res * c * cfg.in_channels * cfg.patch ** 2
    for s, k in enumerate(cfg.depths):
        tokens, n, hidden = res * res, min(cfg.window, res) ** 2, int(c * cfg.mlp_ratio)
        total += k * (tokens * c * 3 * c + 2 * tokens * n * c + tokens * c * c + 2 * tokens * c * hidden)
        if s + 1 < len(cfg.depths):
            total += (tokens // 4) * 4 * c * 2 * c
            res, c = res // 2, 2 * c
    return total + c * cfg.classes


def test_untrained_export_synapses_per_role(tmp_path):
    cfg = MSTConfig(image_size=32, in_channels=3, patch=4, embed_dim=16, depths=(2, 2), heads=(2, 4), window=4,
                    mlp_ratio=2.0, classes=7, levels=16)
    torch.manual_seed(0)
    path = str(tmp_path / "small.h5")
    spec = dict(shape=(3, 32, 32), scale=1.0 / 255.0, mean=None, std=None, pad_to=None, dataset="none")
    export.export(MSTTiny(cfg), path, "small", input_spec=spec)
    net = quantal.load(path)
    counted = {}
    for p in net.projections:
        counted[p.role] = counted.get(p.role, 0) + p.synapses
    assert counted == synapses_by_hand(cfg)
    with h5py.File(path, "r") as f:
        assert list(f["inputs/image/shape"][()]) == [3, 32, 32]
        assert int(f["ann/macs"][()].sum()) == macs_by_hand(cfg)


def test_swin_t_preset():
    cfg = export.UNTRAINED["swin-t"]
    assert (cfg.image_size, cfg.in_channels, cfg.patch, cfg.embed_dim, cfg.depths, cfg.heads, cfg.window,
            cfg.mlp_ratio, cfg.classes, cfg.levels) == (224, 3, 4, 96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 4.0, 1000, 16)
    macs = sum(l["macs"] for l in ann_layers(MSTTiny(MSTConfig.from_dict(cfg.to_dict()))))
    assert macs == macs_by_hand(cfg) == 4_490_566_656
