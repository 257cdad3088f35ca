"""Size of MST-Tiny: parameters and ANN multiply-accumulates per image, by layer kind; and, for
an exported file, its populations, neurons, projections and stored weights.

    /usr/bin/python3 examples/mst/summary.py examples/mst/models/mst_r0.pt [--h5 FILE] [--json]
"""
import argparse
import json
import os
import sys
from collections import Counter

import h5py
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import MSTConfig, MSTTiny, WindowAttention, parameter_count  # noqa: E402


def ann_macs(model):
    """MACs of one forward pass on one image: linear maps and the two attention matmuls."""
    macs, hooks = Counter(), []

    def linear_hook(mod, inp, out):
        macs["linear"] += out.numel() * mod.in_features

    def conv_hook(mod, inp, out):
        macs["patch_embed_conv (analog input)"] += out.numel() * mod.weight[0].numel()

    def attn_hook(mod, inp, out):
        bw, n, c = inp[0].shape
        macs["attention q.k^T and a.v"] += 2 * bw * n * n * c   # heads * n * n * head_dim, twice

    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, WindowAttention):
            hooks.append(m.register_forward_hook(attn_hook))
    model.eval()
    with torch.no_grad():
        dtype = next(model.parameters()).dtype
        model(torch.zeros(1, model.cfg.in_channels, model.cfg.image_size, model.cfg.image_size, dtype=dtype))
    for h in hooks:
        h.remove()
    macs["total"] = sum(macs.values())
    return dict(macs)


def ann_layers(model):
    """The ANN's own cost per layer, for the model file's /ann group (docs/model-format.md): name,
    kind, MACs, weights read (the layer's weight memory), activations read and written, for one
    forward pass on one image. The SNN's synapse count is no substitute: the export repeats the
    residual stream once per reader."""
    names = {m: n for n, m in model.named_modules()}
    layers, hooks = [], []

    def hook(kind):
        def record(mod, inp, out):
            if kind == "attention":
                bw, n, c = inp[0].shape
                layers.append(dict(name=names[mod] + ".qk_av", kind=kind, macs=2 * bw * n * n * c, weights=0,
                                   inputs=3 * bw * n * c, outputs=bw * n * c))
            else:
                per_output = mod.weight[0].numel()
                layers.append(dict(name=names[mod], kind=kind, macs=out.numel() * per_output,
                                   weights=mod.weight.numel(), inputs=inp[0].numel(), outputs=out.numel()))
        return record

    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(hook("linear")))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(hook("analog_input")))
        elif isinstance(m, WindowAttention):
            hooks.append(m.register_forward_hook(hook("attention")))
    model.eval()
    with torch.no_grad():
        dtype = next(model.parameters()).dtype
        model(torch.zeros(1, model.cfg.in_channels, model.cfg.image_size, model.cfg.image_size, dtype=dtype))
    for h in hooks:
        h.remove()
    return layers


def file_summary(path):
    with h5py.File(path, "r") as f:
        pops = f["populations"]
        neurons = sum(int(np.prod(pops[n]["shape"][()])) for n in pops)
        kinds = Counter(str(f["projections"][n].attrs["kind"]) for n in f["projections"])
        weights = sum(int(f["projections"][n]["weight"].size) for n in f["projections"]
                      if "weight" in f["projections"][n])
        return {"populations": len(pops), "neurons": neurons, "projections": len(f["projections"]),
                "projection_kinds": dict(kinds), "stored_weights": weights,
                "operators": len(f["operators"]) if "operators" in f else 0,
                "file_bytes": os.path.getsize(path)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a .pt from train.py (default: the default config)")
    p.add_argument("--h5", help="an exported model file")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.checkpoint:
        from train import load_checkpoint
        model = load_checkpoint(args.checkpoint)[0]
    else:
        model = MSTTiny(MSTConfig())
    out = {"parameters": parameter_count(model), "ann_macs_per_image": ann_macs(model)}
    if args.h5:
        out["file"] = file_summary(args.h5)
    print(json.dumps(out, indent=1) if args.json else out)


if __name__ == "__main__":
    main()
