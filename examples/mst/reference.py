"""Time-stepped PyTorch reference for quantal model files (docs/model-format.md).

Reads the exported HDF5 file (not the PyTorch module) and runs it with the MST authors'
SNN-validation semantics: IF neurons with soft reset, v0 = theta/2, spike value lambda, the same
analog image at every tick, logits summed over ticks, a prediction (argmax) at every tick, RSM
masks drawn per element and per tick, fresh state for every sample. `--ann` instead evaluates the
same weights as the quantised ANN (every IF population as QCFS with its `meta:qcfs_levels`), one pass.

    /usr/bin/python3 examples/mst/reference.py --model examples/mst/models/mst_r0.h5 \
        --samples 1000 --offset 0 --ticks 128 --json

Supports zero-delay networks of IF and readout populations, the projection kinds dense, conv2d,
one_to_one, avg_pool2d, sum_pool2d and sparse, release "none" and "spike" (and "synapse" where
it equals "spike": one_to_one), analog conv2d/dense inputs and the softmax_attention operator.

`--mask RATIO` overrides the file's release settings as `quantal run --mask RATIO --release spike`
does: every projection and every attention operator's q, k and score inputs are masked per
element and per tick with that ratio (RSM on all spiking inputs; 0 turns every mask off). This is
wider than the training option `mask_all` (q, k, scores and the inputs of fc1, fc2 and proj): it
also masks the q/k/v maps' inputs, the residual stream's projections, patch merging and the head.
"""
import argparse
import json
import os
import sys
import time

# Idle OpenMP threads must sleep, not spin (shared machine); set before torch starts its pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from qcfs import qcfs  # noqa: E402

CHECKPOINTS = (8, 16, 32, 64, 128, 256)


def _str(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _ordered(group):
    names = group.attrs.get("order")
    return [_str(n) for n in names] if names is not None else list(group.keys())


def _tensor(dataset, dtype):
    return torch.from_numpy(np.asarray(dataset[()])).to(dtype)


class ModelError(ValueError):
    pass


class Population:
    def __init__(self, name, g, dtype):
        self.name = name
        self.model = _str(g.attrs["model"])
        if self.model not in ("IF", "readout"):
            raise ModelError(f"population {name}: model {self.model!r} not supported by reference.py")
        self.shape = tuple(int(s) for s in g["shape"][()])
        self.size = int(np.prod(self.shape))
        spiking = self.model == "IF"  # format version 2: a spiking population states its rule and v0
        for key in ("threshold", "comparison", "reset", "v0") if spiking else ():
            if key not in g.attrs:
                raise ModelError(f"population {name}: attribute {key!r} is missing")
        self.threshold = float(g.attrs["threshold"]) if spiking else 1.0
        self.v0 = float(g.attrs.get("v0", 0.0))
        self.spike_value = float(g.attrs.get("spike_value", 1.0))
        self.strict = spiking and _str(g.attrs["comparison"]) == ">"
        if spiking and _str(g.attrs["reset"]) != "subtract":
            raise ModelError(f"population {name}: only reset = 'subtract' is supported")
        # metadata namespace (docs/model-format.md): the simulator ignores it, the ANN evaluation uses it
        self.levels = int(g.attrs["meta:qcfs_levels"]) if "meta:qcfs_levels" in g.attrs else None
        self.bias = _tensor(g["bias"], dtype) if "bias" in g else None


class Projection:
    """A linear map from the source's output (spike value times spike, or QCFS value) to the
    target's input, with its release (masking) setting."""

    def __init__(self, name, g, pops, dtype):
        self.name = name
        self.kind = _str(g.attrs["kind"])
        self.source, self.target = _str(g.attrs["source"]), _str(g.attrs["target"])
        for end in (self.source, self.target):
            if end not in pops:
                raise ModelError(f"projection {name}: unknown population {end!r}")
        if int(g.attrs.get("delay", 0)) != 0:
            raise ModelError(f"projection {name}: reference.py supports zero delays only")
        self.release = _str(g.attrs.get("release", "none"))
        self.ratio = float(g.attrs.get("mask_ratio", 0.0)) if self.release != "none" else 0.0
        if self.release == "synapse" and self.kind != "one_to_one" and self.ratio > 0:
            raise ModelError(f"projection {name}: release 'synapse' on {self.kind} not supported")
        self.src_shape, self.n_target = pops[self.source].shape, pops[self.target].size
        self.params = {k: (_tensor(v, dtype) if v.dtype.kind == "f" else np.asarray(v[()]))
                       for k, v in g.items()}
        self.groups = int(g.attrs.get("groups", 1))
        if self.kind == "sparse":
            rows = np.repeat(np.arange(len(self.params["row_begin"]) - 1),
                             np.diff(self.params["row_begin"].astype(np.int64)))
            index = torch.from_numpy(np.stack([self.params["target"].astype(np.int64), rows]))
            self.params["matrix"] = torch.sparse_coo_tensor(
                index, self.params["weight"], (self.n_target, pops[self.source].size)).coalesce()
        elif self.kind not in ("dense", "conv2d", "one_to_one", "avg_pool2d", "sum_pool2d"):
            raise ModelError(f"projection {name}: kind {self.kind!r} not supported")
        self.fanout = self._fanout(pops[self.source].size, dtype)

    def apply(self, x, weight=None):
        """x: [B, n_source] -> [B, n_target]."""
        p, b = self.params, x.shape[0]
        w = p.get("weight") if weight is None else weight
        if self.kind == "dense":
            return x @ w.t()
        if self.kind == "one_to_one":
            return x * w
        if self.kind == "sparse":
            return torch.sparse.mm(p["matrix"] if weight is None else weight, x.t()).t()
        img = x.reshape(b, *self.src_shape)
        if self.kind == "conv2d":
            out = F.conv2d(img, w, None, tuple(p["stride"]), tuple(p["padding"]),
                           tuple(p["dilation"]), self.groups)
        else:
            k = tuple(p["kernel_size"])
            out = F.avg_pool2d(img, k, tuple(p["stride"]), tuple(p["padding"]), count_include_pad=True)
            if self.kind == "sum_pool2d":
                out = out * (k[0] * k[1])
        return out.reshape(b, -1)

    def _fanout(self, n_source, dtype):
        """Synapses per source neuron (non-zero weights), for counting synaptic events."""
        x = torch.ones(1, n_source, dtype=dtype, requires_grad=True)
        w = self.params.get("weight")
        if self.kind == "sparse":
            m = self.params["matrix"]
            w = torch.sparse_coo_tensor(m.indices(), (m.values() != 0).to(dtype), m.shape)
        elif w is not None:
            w = (w != 0).to(dtype)
        self.apply(x, w).sum().backward()
        return x.grad[0].detach()


class Attention:
    """The softmax_attention operator. Layout "image": q, k, v and output are (C, H, W)
    populations and the operator does the (cyclically shifted) window partition itself; layout
    "windows" (format version 1): they are (windows, heads, tokens, head_dim) already."""

    def __init__(self, name, g, pops, dtype):
        a = g.attrs
        self.name = name
        if _str(a["op"]) != "softmax_attention":
            raise ModelError(f"operator {name}: op {_str(a['op'])!r} not supported")
        self.q, self.k, self.v = _str(a["q"]), _str(a["k"]), _str(a["v"])
        self.scores, self.output = _str(a["scores"]), _str(a["output"])
        self.scale = float(a["scale"])
        self.ratio = {part: (float(a.get(part + "_mask_ratio", 0.0))
                             if _str(a.get(part + "_release", "none")) != "none" else 0.0)
                      for part in ("q", "k", "score")}
        self.bias = _tensor(g["bias"], dtype)                        # [heads, tokens, tokens]
        self.mask = _tensor(g["mask"], dtype) if "mask" in g else None
        self.windows, self.heads, self.tokens, _ = pops[self.scores].shape
        if "layout" not in a:
            raise ModelError(f"operator {name}: attribute 'layout' is missing")
        self.layout = _str(a["layout"])
        if self.layout not in ("image", "windows"):
            raise ModelError(f"operator {name}: layout {self.layout!r} is neither 'image' nor 'windows'")
        if self.layout == "image":
            self.window, self.shift = int(a["window"]), int(a["shift"])
            self.image_shape = pops[self.q].shape
        self.macs_per_tick = self.windows * self.heads * self.tokens * self.tokens

    def to_windows(self, x):
        """[B, n] -> [B, windows, heads, tokens, head_dim]."""
        b = x.shape[0]
        if self.layout != "image":
            return x.reshape(b, self.windows, self.heads, self.tokens, -1)
        c, h, w = self.image_shape
        x = x.reshape(b, c, h, w).permute(0, 2, 3, 1)
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        n = self.window
        x = x.reshape(b, h // n, n, w // n, n, self.heads, c // self.heads)
        return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, self.windows, self.heads, self.tokens, -1)

    def from_windows(self, x):
        """Inverse of to_windows: [B, windows, heads, tokens, head_dim] -> [B, n]."""
        b = x.shape[0]
        if self.layout != "image":
            return x.reshape(b, -1)
        c, h, w = self.image_shape
        n = self.window
        x = x.reshape(b, h // n, w // n, self.heads, n, n, c // self.heads)
        x = x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, h, w, c)
        if self.shift:
            x = torch.roll(x, (self.shift, self.shift), (1, 2))
        return x.permute(0, 3, 1, 2).reshape(b, -1)

    def score_input(self, q, k):
        """Coincidence projection: scale * (masked q)(masked k)^T per window and head."""
        q, k = self.to_windows(q), self.to_windows(k)
        return small_matmul(q, k.transpose(-1, -2).contiguous()).reshape(q.shape[0], -1) * self.scale

    def output_input(self, scores, v):
        """Dynamic projection: softmax(scores + bias (+ shift mask)) delivered by v."""
        b = scores.shape[0]
        s = scores.reshape(b, self.windows, self.heads, self.tokens, self.tokens) + self.bias
        if self.mask is not None:
            s = s + self.mask[None, :, None]
        return self.from_windows(small_matmul(s.softmax(-1), self.to_windows(v)))


class LayerNormHead:
    """The layer_norm_head operator: per tick, the stream z = sum_i source_weight[i] * out_i +
    offset (per channel, on (C, H, W) sources), LayerNorm over the channels of each position,
    mean over positions, then `weight` (n_out, C) into the output population."""

    def __init__(self, name, g, pops, dtype):
        a = g.attrs
        self.name = name
        self.sources = [_str(n) for n in a["sources"]]
        self.output, self.eps = _str(a["output"]), float(a["eps"])
        for key in self.sources + [self.output]:
            if key not in pops:
                raise ModelError(f"operator {name}: unknown population {key!r}")
        self.shape = pops[self.sources[0]].shape
        self.source_weight = _tensor(g["source_weight"], dtype)         # [sources, C]
        self.offset, self.gamma, self.beta = (_tensor(g[k], dtype) for k in ("offset", "gamma", "beta"))
        self.weight = _tensor(g["weight"], dtype)                        # [n_out, C]

    def output_input(self, out):
        b, (c, h, w) = out[self.sources[0]].shape[0], self.shape
        z = self.offset.view(1, c, 1)
        for i, src in enumerate(self.sources):
            z = z + out[src].reshape(b, c, h * w) * self.source_weight[i].view(1, c, 1)
        y = F.layer_norm(z.transpose(1, 2), (c,), self.gamma, self.beta, self.eps)   # [B, P, C]
        return y.mean(1) @ self.weight.t()


def _operator(name, g, pops, dtype):
    op = _str(g.attrs["op"])
    if op == "softmax_attention":
        return Attention(name, g, pops, dtype)
    if op == "layer_norm_head":
        return LayerNormHead(name, g, pops, dtype)
    raise ModelError(f"operator {name}: op {op!r} not supported")


class Network:
    def __init__(self, path, dtype=torch.float32):
        self.path, self.dtype = path, dtype
        with h5py.File(path, "r") as f:
            if _str(f.attrs.get("format", "")) != "quantal-model":
                raise ModelError(f"{path}: not a quantal model file")
            self.name = _str(f.attrs.get("name", ""))
            self.pops = {n: Population(n, f["populations"][n], dtype) for n in _ordered(f["populations"])}
            self.projs = [Projection(n, f["projections"][n], self.pops, dtype)
                          for n in _ordered(f["projections"])]
            ops = ([_operator(n, f["operators"][n], self.pops, dtype) for n in _ordered(f["operators"])]
                   if "operators" in f else [])
            self.ops = [op for op in ops if isinstance(op, Attention)]
            self.heads = [op for op in ops if isinstance(op, LayerNormHead)]
            self.inputs = [self._read_input(n, f["inputs"][n]) for n in _ordered(f["inputs"])]
            self.readout = _str(f["readout"].attrs["population"])
            self.provenance = _str(f.attrs.get("provenance", ""))
        self.incoming = {n: [p for p in self.projs if p.target == n] for n in self.pops}
        self.order = self._topological_order()

    def override_release(self, ratio):
        """As `quantal run --mask RATIO --release spike`: every projection and every attention
        operator's q, k and score inputs get release "spike" with this mask ratio (each spike
        kept with probability 1 - ratio, drawn per element, per tick and per projection);
        ratio 0 turns every mask off."""
        if not 0.0 <= ratio <= 1.0:
            raise ModelError(f"mask ratio {ratio} is not in [0, 1]")
        for proj in self.projs:
            proj.release, proj.ratio = ("spike" if ratio > 0 else "none"), ratio
        for op in self.ops:
            op.ratio = dict.fromkeys(op.ratio, ratio)

    def _read_input(self, name, g):
        a = g.attrs
        inp = dict(target=_str(a["target"]), kind=_str(a["kind"]), scale=float(a.get("scale", 1.0)),
                   offset=float(a.get("offset", 0.0)), groups=int(a.get("groups", 1)),
                   weight=_tensor(g["weight"], self.dtype),
                   bias=_tensor(g["bias"], self.dtype) if "bias" in g else None,
                   pad_to=tuple(int(v) for v in g["pad_to"][()]) if "pad_to" in g else None)
        for key in ("stride", "padding", "dilation"):
            inp[key] = tuple(int(v) for v in g[key][()]) if key in g else (1, 1) if key != "padding" else (0, 0)
        return inp

    def _topological_order(self):
        preds = {n: {p.source for p in self.incoming[n]} for n in self.pops}
        for op in self.ops:
            preds[op.scores] |= {op.q, op.k}
            preds[op.output] |= {op.scores, op.v}
        for op in self.heads:
            preds[op.output] |= set(op.sources)
        order, done = [], set()
        while len(order) < len(self.pops):
            ready = [n for n in self.pops if n not in done and preds[n] <= done]
            if not ready:
                raise ModelError(f"{self.path}: zero-delay cycle among {sorted(set(self.pops) - done)}")
            order += ready
            done |= set(ready)
        return order

    def analog_current(self, images):
        """uint8/float images [B, C, h, w] -> {target: constant input current [B, n]}."""
        out = {}
        for inp in self.inputs:
            x = images.to(self.dtype) * inp["scale"] + inp["offset"]
            if inp["pad_to"]:
                ph, pw = inp["pad_to"][0] - x.shape[-2], inp["pad_to"][1] - x.shape[-1]
                x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            if inp["kind"] == "conv2d":
                y = F.conv2d(x, inp["weight"], None, inp["stride"], inp["padding"], inp["dilation"], inp["groups"])
                if inp["bias"] is not None:
                    bias = inp["bias"]
                    y = y + (bias.view(1, -1, 1, 1) if bias.numel() == y.shape[1] else bias.view(1, *y.shape[1:]))
                y = y.reshape(x.shape[0], -1)
            else:
                y = x.reshape(x.shape[0], -1) @ inp["weight"].t()
                if inp["bias"] is not None:
                    y = y + inp["bias"]
            out[inp["target"]] = out.get(inp["target"], 0) + y
        return out


def _masked(x, ratio, generator):
    if ratio <= 0:
        return x
    return x * (torch.rand(x.shape, generator=generator, dtype=x.dtype) > ratio)


def small_matmul(a, b):
    """a [..., n, m] @ b [..., m, p] for many tiny matrices (16 x 16 windows): a loop over m of
    broadcast multiply-adds is several times faster on CPU than torch's batched GEMM here."""
    out = a[..., :, 0, None] * b[..., None, 0, :]
    for i in range(1, a.shape[-1]):
        out.addcmul_(a[..., :, i, None], b[..., None, i, :])
    return out


class Simulation:
    """Runs a batch of samples through the network, tick by tick (or once, as the ANN)."""

    def __init__(self, net, ann=False, seed=0):
        self.net, self.ann = net, ann
        self.gen = torch.Generator().manual_seed(seed)
        self.op_by_scores = {op.scores: op for op in net.ops}
        self.op_by_output = {op.output: op for op in net.ops}
        self.heads_into = {n: [h for h in net.heads if h.output == n] for n in net.pops}
        self.spikes = {n: 0.0 for n, p in net.pops.items() if p.model == "IF"}
        self.events = {p.name: 0.0 for p in net.projs}
        self.op_counts = {op.name: {"coincidences": 0.0, "dynamic_events": 0.0, "softmax_elements": 0.0}
                          for op in net.ops}

    def reset(self, batch):
        self.v = {n: torch.full((batch, p.size), p.v0, dtype=self.net.dtype)
                  for n, p in self.net.pops.items() if p.model == "IF"}

    def tick(self, current):
        """One tick (or the ANN pass): returns the readout's input [B, classes]."""
        out, count = {}, not self.ann
        for name in self.net.order:
            pop = self.net.pops[name]
            x = current.get(name, 0)
            if pop.bias is not None:
                x = x + pop.bias
            for proj in self.net.incoming[name]:
                src = _masked(out[proj.source], proj.ratio, self.gen)
                x = x + proj.apply(src)
                if count:   # outputs are spike_value or 0, so this counts transmitted spikes
                    spikes_x_fanout = (src @ proj.fanout).sum() / self.net.pops[proj.source].spike_value
                    self.events[proj.name] += float(spikes_x_fanout)
            if name in self.op_by_scores:
                x = x + self._scores(self.op_by_scores[name], out, count)
            if name in self.op_by_output:
                x = x + self._attend(self.op_by_output[name], out, count)
            for head in self.heads_into[name]:
                x = x + head.output_input(out)
            if pop.model == "readout":
                out[name] = x
            elif self.ann:
                if pop.levels is None:
                    raise ModelError(f"population {name}: --ann needs the attribute meta:qcfs_levels")
                out[name] = qcfs(x, pop.threshold, pop.levels)
            else:
                out[name] = self._fire(name, pop, x)
        return out[self.net.readout]

    def _fire(self, name, pop, x):
        v = self.v[name] + x
        spike = (v > pop.threshold) if pop.strict else (v >= pop.threshold)
        spike = spike.to(v.dtype)
        self.v[name] = v - spike * pop.threshold
        self.spikes[name] += float(spike.sum())
        return spike * pop.spike_value

    def _scores(self, op, out, count):
        q = _masked(out[op.q], op.ratio["q"], self.gen)
        k = _masked(out[op.k], op.ratio["k"], self.gen)
        if count:   # pairs of coincident q and k spikes: sum over d of (#q spikes)(#k spikes)
            qs = op.to_windows(q).sum(-2) / self.net.pops[op.q].spike_value
            ks = op.to_windows(k).sum(-2) / self.net.pops[op.k].spike_value
            self.op_counts[op.name]["coincidences"] += float((qs * ks).sum())
        return op.score_input(q, k)

    def _attend(self, op, out, count):
        s = _masked(out[op.scores], op.ratio["score"], self.gen)
        v = out[op.v]
        if count:
            c = self.op_counts[op.name]
            c["dynamic_events"] += float(v.sum()) / self.net.pops[op.v].spike_value * op.tokens
            c["softmax_elements"] += op.macs_per_tick * v.shape[0]
        return op.output_input(s, v)


def evaluate(net, images, labels, ticks=256, ann=False, batch=250, seed=0, progress=None):
    """Accuracy of the network on images/labels. Returns a result dict."""
    sim = Simulation(net, ann, seed)
    checkpoints = [t for t in CHECKPOINTS if t <= ticks] or [ticks]
    if ticks not in checkpoints:
        checkpoints.append(ticks)
    correct = {t: 0 for t in ([1] if ann else checkpoints)}
    predictions = []
    start, cpu_start = time.time(), time.process_time()
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            x, y = images[i:i + batch], labels[i:i + batch]
            current = net.analog_current(x)
            sim.reset(len(y))
            if ann:
                logits = sim.tick(current)
                correct[1] += int((logits.argmax(1) == y).sum())
                predictions.append(logits.argmax(1))
            else:
                logits = 0
                for t in range(1, ticks + 1):
                    logits = logits + sim.tick(current)
                    if t in correct:
                        correct[t] += int((logits.argmax(1) == y).sum())
                predictions.append(logits.argmax(1))
            if progress:
                progress(i + len(y), time.time() - start, correct)
    n = len(labels)
    result = {"model": net.path, "name": net.name, "samples": n, "mode": "ann" if ann else "snn",
              "seconds": time.time() - start, "cpu_seconds": time.process_time() - cpu_start,
              "predictions": torch.cat(predictions).tolist()}
    if ann:
        result["accuracy"] = correct[1] / n
    else:
        result["ticks"] = ticks
        result["accuracy"] = {str(t): c / n for t, c in correct.items()}
        result["spikes_per_sample"] = {k: v / n for k, v in sim.spikes.items()}
        result["synaptic_events_per_sample"] = {k: v / n for k, v in sim.events.items()}
        result["operator_counts_per_sample"] = {op: {k: v / n for k, v in c.items()}
                                                for op, c in sim.op_counts.items()}
        result["total_spikes_per_sample"] = sum(result["spikes_per_sample"].values())
        result["total_synaptic_events_per_sample"] = sum(result["synaptic_events_per_sample"].values())
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True, help="quantal model file (.h5)")
    p.add_argument("--samples", type=int, default=10000, help="number of test images")
    p.add_argument("--offset", type=int, default=0, help="index of the first test image")
    p.add_argument("--ticks", type=int, default=256, help="simulate this many ticks (T)")
    p.add_argument("--ann", action="store_true", help="evaluate as the quantised ANN")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", help="also write the JSON result here (updated after every batch)")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--seed", type=int, default=0, help="seed of the RSM masks")
    p.add_argument("--mask", type=float, metavar="RATIO",
                   help="mask every projection and the operators' q, k, score inputs with this ratio "
                        "(release spike; overrides the file, as quantal run --mask RATIO --release spike)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--predictions", action="store_true", help="include per-sample predictions")
    p.add_argument("--input", help="IDX image file (N, H, W) or (N, C, H, W), as quantal run --input "
                                   "(default: the Fashion-MNIST test set)")
    p.add_argument("--labels", help="IDX label file for --input")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        net = Network(args.model)
        if args.mask is not None:
            net.override_release(args.mask)
    except (OSError, KeyError, ModelError) as e:
        sys.exit(f"reference.py: {args.model}: {e}")
    if args.labels and not args.input:
        sys.exit("reference.py: --labels needs --input")
    if args.input:
        try:
            images = data.read_idx(args.input)
            labels = (data.read_idx(args.labels).astype(np.int64) if args.labels
                      else np.zeros(len(images), np.int64))   # no labels: accuracy is meaningless
        except (OSError, ValueError) as e:
            sys.exit(f"reference.py: {e}")
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or len(labels) != len(images):
            sys.exit(f"reference.py: {args.input}: expected (N, H, W) or (N, C, H, W) images and one label each")
    else:
        images, labels = data.load("test")
        images = images[:, None]
    images = torch.from_numpy(images[args.offset:args.offset + args.samples])
    labels = torch.from_numpy(labels[args.offset:args.offset + args.samples])

    def progress(done, seconds, correct):
        acc = {t: round(c / done, 4) for t, c in correct.items()}
        print(f"[{done}/{len(labels)}] {seconds:.0f}s accuracy {acc}", file=sys.stderr, flush=True)
        if args.out:
            partial = {"samples_done": done, "samples": len(labels), "offset": args.offset,
                       "seconds": seconds, "accuracy_so_far": {str(t): c / done for t, c in correct.items()}}
            with open(args.out + ".partial", "w") as f:
                json.dump(partial, f, indent=1)

    result = evaluate(net, images, labels, args.ticks, args.ann, args.batch, args.seed, progress)
    result["offset"] = args.offset
    result["seed"] = args.seed
    result["mask_override"] = args.mask
    if not args.predictions:
        result.pop("predictions")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        if os.path.exists(args.out + ".partial"):
            os.remove(args.out + ".partial")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        acc = result["accuracy"]
        print(f"{net.name}: {result['samples']} samples, " +
              (f"ANN accuracy {acc:.4f}" if args.ann else
               "accuracy " + ", ".join(f"T={t}: {a:.4f}" for t, a in acc.items())))


if __name__ == "__main__":
    main()
