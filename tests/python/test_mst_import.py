"""examples/mst/import_official.py: a synthetic checkpoint in the MST authors' layout
(mst_official_layout.py) imported as a quantal model file gives, evaluated by reference.py as the
quantised ANN, the logits of our own PyTorch class (model.py, variant "official") loaded with the
same tensors under our names; `quantal run` on it agrees with reference.py's SNN; and every kind
of content the importer does not support is an error naming it."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from mst_official_layout import official_checkpoint
from nir_reference import run_quantal

MST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst")
sys.path.insert(0, MST_DIR)
import data  # noqa: E402
import import_official  # noqa: E402
import reference  # noqa: E402
from model import MSTConfig, MSTTiny  # noqa: E402

torch.set_num_threads(1)
SMALL = dict(img_size=16, patch=2, in_chans=3, embed_dim=8, depths=[2, 2], heads=[2, 4], window=4, mlp_ratio=2.0,
             classes=5, mlp_norm=True)
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
GREY = dict(img_size=28, patch=2, in_chans=1, embed_dim=8, depths=[2, 2], heads=[2, 4], window=7, mlp_ratio=2.0,
            classes=10, mlp_norm=False)


def overrides(cfg, mean, std):
    return dict(cfg, levels=16, ln_eps=1e-5, mean=mean, std=std)


def our_model(cfg, state):
    model = MSTTiny(MSTConfig(image_size=cfg["img_size"], in_channels=cfg["in_chans"], patch=cfg["patch"],
                              embed_dim=cfg["embed_dim"], depths=tuple(cfg["depths"]), heads=tuple(cfg["heads"]),
                              window=cfg["window"], mlp_ratio=cfg["mlp_ratio"], classes=cfg["classes"], levels=16,
                              variant="official", mlp_norm=cfg["mlp_norm"]))
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_logits(path, images):
    net = reference.Network(path)
    sim = reference.Simulation(net, ann=True)
    sim.reset(len(images))
    with torch.no_grad():
        return sim.tick(net.analog_current(torch.from_numpy(images)))


def normalised(images, mean, std):
    x = torch.from_numpy(images).float() / 255.0
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def synthetic_images(n, cfg, seed=0):
    rng = np.random.default_rng(seed)
    s = cfg["img_size"]
    tint = rng.uniform(0, 1, (n, cfg["in_chans"], 1, 1))
    return np.clip(rng.uniform(0, 255, (n, cfg["in_chans"], s, s)) * 0.5 + 200 * tint, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    theirs, ours = official_checkpoint(SMALL, seed=1)
    folder = tmp_path_factory.mktemp("official")
    ckpt, out = str(folder / "checkpoint.pth"), str(folder / "model.h5")
    torch.save({"model": theirs, "epoch": 3}, ckpt)
    import_official.import_checkpoint(ckpt, out, "custom", 0.0, overrides(SMALL, MEAN, STD))
    return theirs, ours, ckpt, out


def test_imported_file_gives_our_class_logits(small):
    _, ours, _, path = small
    images = synthetic_images(24, SMALL)
    with torch.no_grad():
        expected = our_model(SMALL, ours)(normalised(images, MEAN, STD))
    got = file_logits(path, images)
    assert float((got - expected).abs().max() / expected.abs().max()) <= 1e-4
    assert got.argmax(1).tolist() == expected.argmax(1).tolist()
    assert len(set(expected.argmax(1).tolist())) >= 2   # a check that tells models apart


def test_file_structure(small):
    _, _, _, path = small
    with h5py.File(path, "r") as f:
        ops = f["operators"]
        head = ops["head"]
        assert head.attrs["op"] == "layer_norm_head" and head.attrs["output"] == "logits"
        # stage 2's stream: merge0 and the proj and fc2 of its two blocks
        assert list(head.attrs["sources"]) == ["merge0", "s1.b0.proj", "s1.b0.fc2", "s1.b1.proj", "s1.b1.fc2"]
        assert head["weight"].shape == (5, 16) and head["source_weight"].shape == (5, 16)
        assert f["inputs/image/shape"][()].tolist() == [3, 16, 16] and "pad_to" not in f["inputs/image"]
        assert sum(1 for n in ops if ops[n].attrs["op"] == "softmax_attention") == 4
        assert "bias" not in f["populations/merge0"] or f["populations/merge0/bias"].shape == (16 * 4 * 4,)


def test_grey_fashion_mnist_import(tmp_path):
    theirs, ours = official_checkpoint(GREY, seed=2)
    ckpt, out = str(tmp_path / "grey.pth"), str(tmp_path / "grey.h5")
    torch.save(theirs, ckpt)                       # a bare state_dict is accepted too
    import_official.import_checkpoint(ckpt, out, "custom", 0.0, overrides(GREY, (0.286,), (0.353,)))
    images = data.load("test")[0][:16, None]
    with torch.no_grad():
        expected = our_model(GREY, ours)(normalised(images, (0.286,), (0.353,)))
    got = file_logits(out, images)
    assert float((got - expected).abs().max() / expected.abs().max()) <= 1e-4
    assert got.argmax(1).tolist() == expected.argmax(1).tolist()


def write_idx_images(path, images):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, images.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape))
        f.write(np.ascontiguousarray(images, np.uint8).tobytes())


def test_quantal_run_agrees_with_reference_snn(small, tmp_path):
    """RGB images through a 4-d IDX file (magic 0x0804), 12 images x 16 ticks."""
    _, _, _, path = small
    images = synthetic_images(12, SMALL, seed=3)
    idx, trace = str(tmp_path / "rgb.idx"), str(tmp_path / "trace.h5")
    write_idx_images(idx, images)
    ref = reference.evaluate(reference.Network(path), torch.from_numpy(images), torch.zeros(12, dtype=torch.long),
                             ticks=16, batch=12)
    run_quantal("--model", path, "--ticks", 16, "--input", idx, "--samples", 12, "--trace", trace)
    with h5py.File(trace, "r") as f:
        assert f["samples/prediction"][()].tolist() == ref["predictions"]
        for name, per_sample in ref["spikes_per_sample"].items():
            got = len(f[f"spikes/{name}/node_ids"]) / 12
            assert got == pytest.approx(per_sample, rel=2e-3, abs=1.0), name


def import_error(tmp_path, state, config="custom", cfg=SMALL, top=None):
    ckpt = str(tmp_path / "bad.pth")
    torch.save(top if top is not None else {"model": state}, ckpt)
    with pytest.raises(import_official.ImportError_) as e:
        import_official.import_checkpoint(ckpt, str(tmp_path / "bad.h5"), config, 0.0,
                                          overrides(cfg, MEAN, STD) if config == "custom" else {})
    assert not os.path.exists(tmp_path / "bad.h5")
    return str(e.value)


def test_unknown_key_is_named(small, tmp_path):
    theirs = dict(small[0])
    theirs["layers.0.blocks.0.attn.gate_if.up"] = torch.ones(1)
    assert "unknown key 'layers.0.blocks.0.attn.gate_if.up'" in import_error(tmp_path, theirs)


def test_missing_key_is_named(small, tmp_path):
    theirs = dict(small[0])
    del theirs["layers.1.blocks.1.mlp.fc2_if.up"]
    assert "missing key 'layers.1.blocks.1.mlp.fc2_if.up'" in import_error(tmp_path, theirs)


def test_wrong_shape_is_named(small, tmp_path):
    theirs = dict(small[0])
    theirs["head.weight"] = theirs["head.weight"].t().contiguous()
    msg = import_error(tmp_path, theirs)
    assert "'head.weight' has shape (16, 5)" in msg and "(5, 16)" in msg


def test_mlp_norm_needs_the_imagenet_layout(small, tmp_path):
    msg = import_error(tmp_path, small[0], cfg=dict(SMALL, mlp_norm=False))
    assert "unknown key 'layers.0.blocks.0.mlp.norm1.weight'" in msg and "imagenet" in msg


def test_configuration_of_another_size_is_refused(small, tmp_path):
    # (the presets are Swin-T: building one to compare takes seconds, so a custom width here)
    assert "'patch_embed.proj.weight' has shape (8, 3, 2, 2), the configuration gives (12, 3, 2, 2)" in \
        import_error(tmp_path, small[0], cfg=dict(SMALL, embed_dim=12))


def test_absolute_position_embedding_is_refused(small, tmp_path):
    theirs = dict(small[0], absolute_pos_embed=torch.zeros(1, 64, 8))
    assert "absolute position embedding" in import_error(tmp_path, theirs)


def test_wrong_buffers_are_refused(small, tmp_path):
    theirs = dict(small[0])
    theirs["layers.0.blocks.1.attn_mask"] = torch.zeros_like(theirs["layers.0.blocks.1.attn_mask"])
    assert "'layers.0.blocks.1.attn_mask'" in import_error(tmp_path, theirs)


def test_unknown_top_level_entry_is_refused(small, tmp_path):
    assert "unknown top-level entry 'ema'" in import_error(tmp_path, None, top={"model": small[0], "ema": {}})


def test_command_line_error_exits_2_naming_file_and_key(small, tmp_path):
    theirs = dict(small[0])
    theirs["layers.0.blocks.0.attn.qkv.bias"] = torch.zeros(7)
    ckpt = str(tmp_path / "bad.pth")
    torch.save({"model": theirs}, ckpt)
    args = [sys.executable, os.path.join(MST_DIR, "import_official.py"), ckpt, "--config", "custom",
            "--masking-ratio", "0", "--out", str(tmp_path / "x.h5"), "--img-size", "16", "--patch", "2",
            "--in-chans", "3", "--embed-dim", "8", "--depths", "2", "2", "--heads", "2", "4", "--window", "4",
            "--mlp-ratio", "2", "--levels", "16", "--ln-eps", "1e-5", "--classes", "5", "--mlp-norm",
            "--mean", *map(str, MEAN), "--std", *map(str, STD)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ckpt in lines[0] and "'layers.0.blocks.0.attn.qkv.bias' has shape (7,)" in lines[0]


def test_custom_config_must_be_complete(small, tmp_path):
    with pytest.raises(import_official.ImportError_, match="--config custom: set .*--img-size"):
        import_official.import_checkpoint(small[2], str(tmp_path / "x.h5"), "custom", 0.0, {"patch": 2})
