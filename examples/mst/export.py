"""Exports a trained MST-Tiny as a quantal model file (docs/model-format.md).

Conversion, layer by layer (populations are channel-first, shape (C, H, W) for token maps):
- every QCFS becomes an IF population: threshold lam, spike value lam, v0 = lam / 2, soft reset,
  comparison ">="; `meta:qcfs_levels` = L is kept (metadata, ignored by the simulator) so that
  the file can be evaluated as the quantised ANN too;
- patch embedding: an analog input (conv2d on the image) into the `embed` population, with the
  BatchNorm after the conv folded into the conv's weights and bias (exact);
- the residual stream is never a population: every map that reads it gets one projection from
  each spike-carrying population that was added into the stream (the "contributors": the stage's
  first population and every attention and MLP branch output so far). Linearity makes this
  exact. A BatchNorm that reads the stream is folded into those projections (per-channel weights,
  one_to_one) and into the reader's bias; the patch-merging BatchNorm is folded into the merging
  linear map (a 2x2 stride-2 conv2d), exactly, because BN is affine and the linear map reads BN's
  output directly;
- token-wise linear maps (qkv, proj, fc1, fc2) are 1x1 conv2d projections;
- window attention is a `softmax_attention` operator (image layout, see the proposal in
  docs/model-format.md); RSM on q, k and score spikes is its release setting;
- average pooling and the head are one dense projection into the `logits` readout.

The "official" variant (the MST authors' network, model.py) adds: a BatchNorm applied to the
stream itself (the stream becomes per-channel scales on each contributor plus an offset, carried
into every later reader's weights and bias); BatchNorm after fc1 and fc2 (folded into them); no
bias on patch merging; per-channel input normalisation (folded into the patch conv); and the
final per-token LayerNorm + pooling + head as a `layer_norm_head` operator into the readout.

    /usr/bin/python3 examples/mst/export.py examples/mst/models/mst_r0.pt examples/mst/models/mst_r0.h5

An untrained network at Swin-T's (MST's ImageNet model's) dimensions, to count its synapses per
projection (docs/energy.md, "A Swin-T-shaped network"): random weights, BatchNorm at its initial
statistics, every lambda at its initial 2.0; not a classifier.

    /usr/bin/python3 examples/mst/export.py --untrained swin-t traces/swin_t.h5
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from model import MSTConfig, MSTTiny  # noqa: E402
from summary import ann_layers  # noqa: E402
from train import load_checkpoint  # noqa: E402

PRODUCER = "examples/mst/export.py"
# How a sample enters (the `/inputs/image` map): data shape, scale of the raw values, optional
# per-channel mean and std (folded into the patch conv) and centred zero padding.
FASHION_MNIST_INPUT = dict(shape=(1, 28, 28), scale=1.0 / 255.0, mean=None, std=None, pad_to=(32, 32))
FORMAT_VERSION = 2  # docs/model-format.md

# Swin-T as MST builds it for ImageNet (Wang et al. 2023 on Liu et al. 2021): embed 96, depths
# 2-2-6-2, heads 3-6-12-24, window 7, patch 4, MLP ratio 4, 224 x 224 x 3 input, 1000 classes, and
# MST's hard-coded QCFS levels L = 16.
UNTRAINED = {"swin-t": MSTConfig(image_size=224, in_channels=3, patch=4, embed_dim=96, depths=(2, 2, 6, 2),
                                 heads=(3, 6, 12, 24), window=7, mlp_ratio=4.0, classes=1000, levels=16)}


DT_MS = 1.0  # ms per tick of the exported network


def bn_affine(bn):
    """BatchNorm (eval mode) as y = a * x + b, per channel."""
    a = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias.detach() - bn.running_mean * a


class ModelFile:
    """In-memory quantal model graph, written to HDF5 in one go."""

    def __init__(self, name):
        self.name = name
        self.populations, self.projections, self.inputs, self.operators = {}, {}, {}, {}
        self.readout = None
        self.ann, self.levels = [], 0  # the ANN's own cost per layer (summary.ann_layers) and its L

    def add_if(self, name, shape, lam, levels, bias=None):
        lam = float(lam)
        self.populations[name] = dict(
            attrs=dict(model="IF", threshold=lam, comparison=">=", reset="subtract",
                       v0=lam / 2, spike_value=lam, **{"meta:qcfs_levels": np.int64(levels)}),
            data=dict(shape=np.array(shape, np.int64), **_bias(bias, shape)))
        return name

    def add_readout(self, name, n, bias):
        self.populations[name] = dict(attrs=dict(model="readout"),
                                      data=dict(shape=np.array([n], np.int64), **_bias(bias, (n,))))
        self.readout = name
        return name

    def add_projection(self, kind, source, dest, role, ratio=0.0, name=None, **arrays):
        # `dest`, not `target`: a sparse projection has a dataset called "target". `role`: what the
        # projection is in the transformer (docs/model-format.md "Roles"; `quantal run --targets`).
        name = name or f"{source}->{dest}"
        attrs = dict(kind=kind, source=source, target=dest, delay=np.int64(0),
                     release="spike" if ratio > 0 else "none", mask_ratio=float(ratio), role=role)
        groups = arrays.pop("groups", None)
        if groups is not None:
            attrs["groups"] = np.int64(groups)
        self.projections[name] = dict(attrs=attrs, data=arrays)
        return name

    def add_conv1x1(self, linear, source, target, role, ratio=0.0):
        w = linear.weight.detach()
        self.add_projection("conv2d", source, target, role, ratio, weight=w[:, :, None, None],
                            **_conv_geometry(1, 0), groups=1)

    def add_operator(self, name, attrs, arrays):
        self.operators[name] = dict(attrs=attrs, data=arrays)

    def write(self, path, provenance, float_type=np.float32):
        with h5py.File(path, "w") as f:
            # A converted network's step has no physical duration: 1 ms per tick, written out so that
            # times and rates in Hz do not rest on the reader's default (docs/model-format.md "Root").
            f.attrs.update(format="quantal-model", format_version=np.int64(FORMAT_VERSION), name=self.name,
                           producer=PRODUCER, provenance=json.dumps(provenance), dt=DT_MS, time_unit="ms")
            for group, items in (("populations", self.populations), ("projections", self.projections),
                                 ("inputs", self.inputs), ("operators", self.operators)):
                g = f.create_group(group)
                g.attrs["order"] = list(items)
                for name, item in items.items():
                    sub = g.create_group(name)
                    sub.attrs.update(item["attrs"])
                    for key, value in item["data"].items():
                        sub.create_dataset(key, data=_array(value, float_type))
            f.create_group("readout").attrs.update(population=self.readout, accumulate="sum")
            if self.ann:
                write_ann(f, self.ann, self.levels)


def write_ann(f, layers, levels):
    """/ann: the converted-from ANN's own MACs, weights and activations per layer (the energy
    reports' baseline) and its QCFS levels (the quantised-ANN baseline's activation bits)."""
    g = f.create_group("ann")
    g.attrs["layers"] = [l["name"] for l in layers]
    g.attrs["kinds"] = [l["kind"] for l in layers]
    for key in ("macs", "weights", "inputs", "outputs"):
        g.create_dataset(key, data=np.array([l[key] for l in layers], np.int64))
    g.attrs["levels"] = np.int64(levels)


def _array(value, float_type=np.float32):
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    return value.astype(float_type) if value.dtype.kind == "f" else value


def _bias(bias, shape):
    """A per-channel bias of a (C, H, W) population expanded to one value per neuron."""
    if bias is None:
        return {}
    bias = torch.as_tensor(bias)
    bias = (bias if bias.is_floating_point() else bias.float()).reshape(-1)
    n = int(np.prod(shape))
    if bias.numel() != n:
        bias = bias[:, None].expand(-1, n // bias.numel()).reshape(-1)
    return {"bias": bias}


def _conv_geometry(stride, padding):
    return dict(stride=np.array([stride] * 2, np.int64), padding=np.array([padding] * 2, np.int64),
                dilation=np.array([1, 1], np.int64))


def _per_neuron(channel_values, shape):
    """(C,) -> (C*H*W,), for one_to_one weights on channel-first populations."""
    return channel_values[:, None].expand(-1, int(np.prod(shape[1:]))).reshape(-1)


class _WindowLayout:
    """Index maps between a (C, H, W) population and the format-v1 attention layout
    (windows, heads, tokens, head_dim) of the cyclically shifted map, and the sparse (CSR)
    projections that compose a token-wise linear map with that permutation."""

    def __init__(self, shape, heads, window, shift):
        c, h, w = shape
        y, x = np.divmod(np.arange(h * w), w)
        ys, xs = (y - shift) % h, (x - shift) % w
        win = (ys // window) * (w // window) + xs // window
        tok = (ys % window) * window + xs % window
        hd = c // heads
        ch = np.arange(c)[:, None]
        # neuron index in the window layout of channel ch at image position p: [C, H*W]
        self.index = ((win[None] * heads + ch // hd) * window * window + tok[None]) * hd + ch % hd
        self.c, self.positions = c, h * w

    def bias(self, channel_bias):
        out = np.empty(self.c * self.positions, np.float32)
        out[self.index.reshape(-1)] = np.repeat(channel_bias.numpy(), self.positions)
        return out

    def _csr(self, source, target, weight):
        """Synapses given per (source neuron, output channel), sources sorted for CSR."""
        order = np.argsort(source, kind="stable")
        fanout = weight.shape[-1]
        return dict(row_begin=np.arange(len(order) + 1, dtype=np.uint64) * fanout,
                    target=target[order].reshape(-1).astype(np.uint32),
                    weight=weight[order].reshape(-1).astype(np.float32))

    def to_windows(self, w):
        """Token-wise map W [C_out, C_in] from image layout into the window layout."""
        w = w.numpy()
        src = np.arange(self.c * self.positions)                       # (c_in, p) row-major
        tgt = self.index.T[None].repeat(self.c, 0)                      # [C_in, P, C_out]
        weight = np.broadcast_to(w.T[:, None, :], tgt.shape)            # W[o, c_in]
        return self._csr(src, tgt.reshape(len(src), -1), weight.reshape(len(src), -1))

    def from_windows(self, w):
        """Token-wise map W [C_out, C_in] from the window layout back to image layout."""
        w = w.numpy()
        p = np.arange(self.positions)
        src = self.index.reshape(-1)                                    # (c_in, p) row-major
        tgt = (np.arange(w.shape[0])[None, None, :] * self.positions + p[None, :, None])
        tgt = np.broadcast_to(tgt, (self.c, self.positions, w.shape[0]))
        weight = np.broadcast_to(w.T[:, None, :], tgt.shape)
        return self._csr(src, tgt.reshape(len(src), -1), weight.reshape(len(src), -1))


class _Exporter:
    def __init__(self, model, name, layout="image", input_spec=None):
        self.model, self.cfg = model, model.cfg
        self.file = ModelFile(name)
        self.layout = layout
        self.input_spec = input_spec or FASHION_MNIST_INPUT

    def if_pop(self, name, shape, act, bias=None):
        return self.file.add_if(name, shape, act.lam.item(), act.levels, bias)

    def stream_reader(self, name, shape, bn, act, stream):
        """An IF population that reads QCFS(BN(stream)) (bn None: QCFS(stream)): the BN and the
        stream's own scales and offset folded into the projections and the population's bias."""
        a, b = bn_affine(bn) if bn is not None else (torch.ones_like(stream.bias), torch.zeros_like(stream.bias))
        self.if_pop(name, shape, act, bias=b + a * stream.bias)
        for source, scale in stream.parts:
            self.file.add_projection("one_to_one", source, name, "stream", weight=_per_neuron(a * scale, shape))
        return name

    def block(self, prefix, blk, shape, stream):
        f, attn = self.file, blk.attn
        h = self.stream_reader(prefix + "act1", shape, blk.norm1, blk.act1, stream)
        c = shape[0]
        qkv_w, qkv_b = attn.qkv.weight.detach(), attn.qkv.bias.detach()
        windows = (shape[1] // blk.window) ** 2
        tokens = blk.window ** 2
        layout = _WindowLayout(shape, attn.heads, blk.window, blk.shift) if self.layout == "windows" else None
        att_shape = (windows, attn.heads, tokens, c // attn.heads) if layout else shape
        for i, part in enumerate("qkv"):
            w, b = qkv_w[i * c:(i + 1) * c], qkv_b[i * c:(i + 1) * c]
            act = getattr(attn, "act_" + part)
            if layout:    # format v1: token-wise map composed with the shifted window partition
                self.file.add_if(prefix + part, att_shape, act.lam.item(), act.levels, layout.bias(b))
                f.add_projection("sparse", h, prefix + part, "qkv_in", **layout.to_windows(w))
            else:
                self.if_pop(prefix + part, shape, act, b)
                f.add_projection("conv2d", h, prefix + part, "qkv_in", weight=w[:, :, None, None],
                                 **_conv_geometry(1, 0), groups=1)
        scores = self.if_pop(prefix + "scores", (windows, attn.heads, tokens, tokens), attn.act_attn)
        av = self.if_pop(prefix + "av", att_shape, attn.act_av)
        op_attrs = dict(op="softmax_attention", q=prefix + "q", k=prefix + "k", v=prefix + "v",
                        scores=scores, output=av, scale=float(attn.scale))
        if layout:  # not the model format's: reference.py reads it, quantal refuses it by this name
            op_attrs.update(layout="windows")
        else:
            op_attrs.update(layout="image", heads=np.int64(attn.heads), window=np.int64(blk.window),
                            shift=np.int64(blk.shift))
        for part, mask in (("q", attn.mask_q), ("k", attn.mask_k), ("score", attn.mask_attn)):
            op_attrs[part + "_release"] = "spike" if mask.ratio > 0 else "none"
            op_attrs[part + "_mask_ratio"] = float(mask.ratio)
        arrays = dict(bias=attn.position_bias())
        if blk.shift_mask is not None:
            arrays["mask"] = blk.shift_mask
        f.add_operator(prefix + "attention", op_attrs, arrays)
        proj = self.if_pop(prefix + "proj", shape, attn.act_proj, attn.proj.bias)
        if layout:
            f.add_projection("sparse", av, proj, "proj_in", attn.mask_proj.ratio,
                             **layout.from_windows(attn.proj.weight.detach()))
        else:
            f.add_conv1x1(attn.proj, av, proj, "proj_in", attn.mask_proj.ratio)
        stream = stream.plus(proj)

        if blk.official:   # the authors' block: BN2 maps the stream itself (an affine map per channel)
            stream = stream.affine(*bn_affine(blk.norm2))
            h = self.stream_reader(prefix + "act2", shape, None, blk.act2, stream)
        else:
            h = self.stream_reader(prefix + "act2", shape, blk.norm2, blk.act2, stream)
        hidden = (blk.fc1.out_features,) + tuple(shape[1:])
        w1, b1 = _linear_bn(blk.fc1, blk.fc1_norm)
        fc1 = self.if_pop(prefix + "fc1", hidden, blk.act_fc1, b1)
        f.add_projection("conv2d", h, fc1, "fc1_in", blk.mask_fc1.ratio, weight=w1[:, :, None, None],
                         **_conv_geometry(1, 0), groups=1)
        w2, b2 = _linear_bn(blk.fc2, blk.fc2_norm)
        fc2 = self.if_pop(prefix + "fc2", shape, blk.act_fc2, b2)
        f.add_projection("conv2d", fc1, fc2, "fc2_in", blk.mask_fc2.ratio, weight=w2[:, :, None, None],
                         **_conv_geometry(1, 0), groups=1)
        return stream.plus(fc2)

    def merge(self, name, merge, shape, stream):
        """Patch merging: BN folded into the reduction, which is a 2x2 stride-2 conv2d."""
        c = shape[0]
        a, b = bn_affine(merge.norm)
        red = merge.reduction.weight.detach()
        w = red * a[None, :]                                          # [2C, 4C]
        # the stream's own per-channel offset reaches every one of the four neighbours
        bias = red @ (b + a * stream.bias.repeat(4))
        if merge.reduction.bias is not None:
            bias = bias + merge.reduction.bias.detach()
        out_shape = (2 * c, shape[1] // 2, shape[2] // 2)
        self.if_pop(name, out_shape, merge.act, bias)
        for source, scale in stream.parts:
            # Swin's concatenation order of the 2x2 neighbours: (dy, dx) = (0,0), (1,0), (0,1), (1,1)
            kernel = torch.zeros(w.shape[0], c, 2, 2, dtype=w.dtype)
            for part, (dy, dx) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
                kernel[:, :, dy, dx] = w[:, part * c:(part + 1) * c] * scale[None, :]
            self.file.add_projection("conv2d", source, name, "merge", weight=kernel, **_conv_geometry(2, 0), groups=1)
        return out_shape

    def run(self):
        m, cfg, f = self.model, self.cfg, self.file
        res = cfg.image_size // cfg.patch
        shape = (cfg.embed_dim, res, res)
        a, b = bn_affine(m.embed_norm)
        weight = m.patch_embed.weight.detach() * a[:, None, None, None]
        bias = m.patch_embed.bias.detach() * a + b
        spec = self.input_spec
        if spec.get("mean") is not None:
            # x' = (x - mean) / std per channel: exact in the conv, which has no padding to fill
            mean, std = (torch.tensor(spec[k], dtype=weight.dtype) for k in ("mean", "std"))
            bias = bias - (weight * (mean / std)[None, :, None, None]).sum((1, 2, 3))
            weight = weight / std[None, :, None, None]
        data = dict(shape=np.array(spec["shape"], np.int64), weight=weight, bias=bias,
                    **_conv_geometry(cfg.patch, 0))
        if spec.get("pad_to") is not None:
            data["pad_to"] = np.array(spec["pad_to"], np.int64)
        f.inputs["image"] = dict(
            attrs=dict(target="embed", kind="conv2d", scale=float(spec["scale"]), offset=0.0, groups=np.int64(1)),
            data=data)
        self.if_pop("embed", shape, m.embed_act)
        stream = _Stream(shape[0], "embed")
        for s, blocks in enumerate(m.stages):
            for j, blk in enumerate(blocks):
                stream = self.block(f"s{s}.b{j}.", blk, shape, stream)
            if s < len(m.merges):
                shape = self.merge(f"merge{s}", m.merges[s], shape, stream)
                stream = _Stream(shape[0], f"merge{s}")
        if cfg.variant == "official":
            return self.layer_norm_head(shape, stream)
        final = self.stream_reader("final", shape, m.norm, m.act, stream)
        # average pooling then the head: one dense map, weight W[:, c] / (H*W) at every position
        positions = shape[1] * shape[2]
        w = m.head.weight.detach()[:, :, None].expand(-1, -1, positions).reshape(cfg.classes, -1)
        f.add_readout("logits", cfg.classes, m.head.bias.detach())
        f.add_projection("dense", final, "logits", "head", weight=w / positions)
        return f

    def layer_norm_head(self, shape, stream):
        """The authors' ending: LayerNorm of each token of the stream, average pooling and the
        head, every tick. Not a linear map of spikes, so it is a `layer_norm_head` operator that
        reads the stream's contributors (with their per-channel weights and offset) and writes
        into the readout (docs/model-format.md)."""
        m, f = self.model, self.file
        f.add_readout("logits", self.cfg.classes, m.head.bias.detach())
        ln = m.final_norm
        f.add_operator("head", dict(op="layer_norm_head", sources=[n for n, _ in stream.parts], output="logits",
                                    eps=float(ln.eps)),
                       dict(source_weight=torch.stack([sc for _, sc in stream.parts]), offset=stream.bias,
                            gamma=ln.weight.detach(), beta=ln.bias.detach(), weight=m.head.weight.detach()))
        return f


class _Stream:
    """The residual stream as the exporter carries it: sum over contributors of scale (per
    channel) times the contributor's output, plus a per-channel offset. MST-Tiny's stream keeps
    scale 1 and offset 0; the authors' block applies a BatchNorm to the stream, which rescales
    every contributor and adds an offset (exact: BN in eval mode is affine per channel)."""

    def __init__(self, channels, first):
        self.parts = [(first, torch.ones(channels))]
        self.bias = torch.zeros(channels)

    def plus(self, name):
        out = _Stream.__new__(_Stream)
        out.parts, out.bias = self.parts + [(name, torch.ones_like(self.bias))], self.bias
        return out

    def affine(self, a, b):
        out = _Stream.__new__(_Stream)
        out.parts, out.bias = [(n, a * sc) for n, sc in self.parts], a * self.bias + b
        return out


def _linear_bn(linear, bn):
    """A linear map followed by an (optional) BatchNorm as one map: W' = a W, b' = a b + beta'."""
    w, b = linear.weight.detach(), linear.bias.detach()
    if bn is None:
        return w, b
    a, shift = bn_affine(bn)
    return w * a[:, None], b * a + shift


def export(model, path, name="mst-tiny", provenance=None, layout="image", input_spec=None, float64=False):
    """Writes `model` (an MSTTiny, put in eval mode) to `path`. layout "image" (default): attention
    operators in the proposed image layout, all token-wise maps 1x1 conv2d; "windows": format
    version 1 as written, q/k/v/proj as sparse projections (larger file). input_spec: how a sample
    enters (FASHION_MNIST_INPUT by default). float64: weights stored as float64 (the format accepts
    it; for exactness checks against a float64 forward pass, where float32 rounding would flip
    QCFS levels)."""
    model.eval()
    if model.cfg.variant == "official" and layout != "image":
        raise ValueError("the official variant exports in the image layout only")
    if float64:
        model = model.double()
    with torch.no_grad():
        graph = _Exporter(model, name, layout, input_spec).run()
    graph.ann, graph.levels = ann_layers(model), model.cfg.levels
    info = {"model_config": model.cfg.to_dict(), "dataset": "Fashion-MNIST",
            "input": f"28x28 uint8 image, scaled by 1/255, zero-padded (centred) to {data.IMAGE_SIZE}x{data.IMAGE_SIZE}"}
    if input_spec is not None:
        spec = dict(input_spec)
        info.update(dataset=spec.pop("dataset", None), input=spec)
    info.update(provenance or {})
    graph.write(path, info, np.float64 if float64 else np.float32)
    return graph


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", nargs="?", help="a .pt written by train.py (not with --untrained)")
    p.add_argument("output", help="the .h5 model file to write")
    p.add_argument("--untrained", choices=sorted(UNTRAINED),
                   help="export an untrained network of these dimensions instead of a checkpoint")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed of --untrained")
    p.add_argument("--name", help="model name (default: from the mask ratio)")
    p.add_argument("--layout", choices=("image", "windows"), default="image",
                   help="attention layout: image (proposal, compact) or windows (format v1, sparse)")
    args = p.parse_args(argv)
    if (args.checkpoint is None) == (args.untrained is None):
        p.error("give a checkpoint or --untrained, not both")
    if args.untrained:
        torch.manual_seed(args.seed)
        cfg = UNTRAINED[args.untrained]
        model = MSTTiny(MSTConfig.from_dict(cfg.to_dict()))
        prov = {"untrained": args.untrained, "seed": args.seed,
                "note": "random weights: for counting synapses per projection, not a classifier"}
        spec = dict(shape=(cfg.in_channels, cfg.image_size, cfg.image_size), scale=1.0 / 255.0, mean=None,
                    std=None, pad_to=None, dataset="none (untrained, ImageNet-shaped input)")
        graph = export(model, args.output, args.name or args.untrained, prov, args.layout, input_spec=spec)
        print(f"{args.output}: {len(graph.populations)} populations, {len(graph.projections)} projections, "
              f"{len(graph.operators)} operators")
        return
    model, info = load_checkpoint(args.checkpoint)
    name = args.name or f"mst-tiny-r{model.cfg.mask_ratio:g}"
    prov = {"checkpoint": os.path.basename(args.checkpoint),
            "training": {k: info.get(k) for k in ("parameters", "train_seconds", "test_acc")}}
    graph = export(model, args.output, name, prov, args.layout)
    print(f"{args.output}: {len(graph.populations)} populations, {len(graph.projections)} projections, "
          f"{len(graph.operators)} operators")


if __name__ == "__main__":
    main()
