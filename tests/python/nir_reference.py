"""NIR files written with h5py (the layout of nir/serialization.py) and a time-stepped numpy
reference of quantal's documented discretisation (docs/nir.md), independent of the C++ code.

Reference, per tick t (dt in ms; the input I[t] of a tick is held over the tick):
  I:   v += dt*r*I                     IF:  the same, then z = v > v_threshold, v[z] = v_reset
  LI:  v += dt/tau*(v_leak - v + r*I)  LIF: the same, then threshold and reset
  CubaLI: I_syn += dt/tau_syn*(-I_syn + w_in*I); v += dt/tau_mem*(v_leak - v + r*I_syn)
  CubaLIF: the same, then threshold and reset
  Threshold: z = I > threshold (no state);  Delay: y[t] = x[t - delay/dt]
Nodes are evaluated in topological order within a tick: a spike reaches the next neuron layer in
the same tick (weight nodes have no delay of their own).
"""
import os
import subprocess

import h5py
import numpy as np

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")


# ---- writing ---------------------------------------------------------------------------------

def write_nir(path, nodes, edges, compression="gzip", version="1.0.6"):
    """nodes: {name: {"type": ..., field: value}}; a nested graph is {"type": "NIRGraph",
    "nodes": {...}, "edges": [...]}. Arrays keep their dtype; strings become vlen strings."""
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        _write_graph(f.create_group("node"), nodes, edges, compression)


def _write_graph(g, nodes, edges, compression):
    g.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
    edge_array = np.array(edges, dtype=object).reshape(-1, 2) if edges else np.empty((0, 2), dtype=object)
    g.create_dataset("edges", data=edge_array, dtype=h5py.string_dtype())
    ng = g.create_group("nodes")
    for name, node in nodes.items():
        sub = ng.create_group(name)
        if node["type"] == "NIRGraph":
            _write_graph(sub, node["nodes"], node["edges"], compression)
            continue
        for key, value in node.items():
            if isinstance(value, str):
                sub.create_dataset(key, data=value, dtype=h5py.string_dtype())
            elif isinstance(value, np.ndarray):
                sub.create_dataset(key, data=value, dtype=value.dtype, compression=compression)
            else:
                sub.create_dataset(key, data=value)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def dyadic(rng, shape, scale=1.0, bits=5):
    """Random values on a 2^-bits grid: sums of a few stay exact in float32 and float64, so the
    reference and the simulator cannot disagree by rounding."""
    return (np.round(rng.uniform(-1, 1, size=shape) * scale * 2 ** bits) / 2 ** bits).astype(np.float32)


# ---- the reference ----------------------------------------------------------------------------

def flatten_graph(nodes, edges, prefix=""):
    """Flattens nested graphs: names become outer.inner; edges into a graph go to its Input nodes,
    edges out of it leave from its Output nodes. Returns ({name: node}, [(src, dst)], top_level)."""
    flat, flat_edges, top = {}, [], {}
    ends = {}
    for name, node in nodes.items():
        full = prefix + name
        if node["type"] == "NIRGraph":
            inner, inner_edges, inner_top = flatten_graph(node["nodes"], node["edges"], full + ".")
            flat.update(inner)
            top.update(inner_top)
            flat_edges += inner_edges
            ins = [full + "." + n for n, v in node["nodes"].items() if v["type"] == "Input"]
            outs = [full + "." + n for n, v in node["nodes"].items() if v["type"] == "Output"]
            ends[full] = (ins, outs)
        else:
            flat[full] = node
            top[full] = prefix == ""
    for s, d in edges:
        srcs = ends[prefix + s][1] if prefix + s in ends else [prefix + s]
        dsts = ends[prefix + d][0] if prefix + d in ends else [prefix + d]
        flat_edges += [(a, b) for a in srcs for b in dsts]
    return flat, flat_edges, top


def conv2d(x, w, stride, padding, dilation, groups):
    c_in, h, wd = x.shape
    c_out, cin_g, kh, kw = w.shape
    xp = np.zeros((c_in, h + 2 * padding[0], wd + 2 * padding[1]))
    xp[:, padding[0]:padding[0] + h, padding[1]:padding[1] + wd] = x
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((c_out, ho, wo))
    cout_g = c_out // groups
    for co in range(c_out):
        g = co // cout_g
        for ci in range(cin_g):
            for a in range(kh):
                for b in range(kw):
                    patch = xp[g * cin_g + ci, a * dilation[0]:a * dilation[0] + stride[0] * (ho - 1) + 1:stride[0],
                               b * dilation[1]:b * dilation[1] + stride[1] * (wo - 1) + 1:stride[1]]
                    y[co] += float(w[co, ci, a, b]) * patch
    return y


def pool2d(x, kernel, stride, padding, average):
    c, h, w = x.shape
    xp = np.zeros((c, h + 2 * padding[0], w + 2 * padding[1]))
    xp[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    ho = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    y = np.zeros((c, ho, wo))
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            y += xp[:, a:a + stride[0] * (ho - 1) + 1:stride[0], b:b + stride[1] * (wo - 1) + 1:stride[1]]
    return y / (kernel[0] * kernel[1]) if average else y


def _pair(v):
    v = np.asarray(v).reshape(-1)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def simulate(nodes, edges, ticks, dt=1.0):
    """Spike counts per spiking node (name -> array of per-neuron counts) over `ticks` ticks."""
    flat, flat_edges, top = flatten_graph(nodes, edges)
    preds = {n: [s for s, d in flat_edges if d == n] for n in flat}
    order, done = [], set()
    while len(order) < len(flat):
        ready = [n for n in flat if n not in done and all(p in done for p in preds[n])]
        assert ready, "the reference handles acyclic graphs only"
        order += ready
        done |= set(ready)
    state, counts, delay_lines, out = {}, {}, {}, {}
    for t in range(ticks):
        for n in order:
            node = flat[n]
            typ = node["type"]
            inputs = [out[p] for p in preds[n] if p in out]
            x = sum(inputs) if inputs else None
            if typ == "Input":
                y = np.zeros(tuple(np.asarray(node["shape"]).astype(int))) if top[n] else x
            elif typ == "Output":
                y = x
            elif typ in ("Affine", "Linear"):
                w = node["weight"].astype(np.float64)
                y = w @ (np.zeros(w.shape[1]) if x is None else x.reshape(-1))
                if typ == "Affine":
                    y = y + node["bias"].astype(np.float64)
            elif typ == "Scale":
                y = node["scale"].astype(np.float64) * x
            elif typ in ("Conv2d", "Conv1d"):
                w = node["weight"]
                if typ == "Conv1d":
                    w = w[:, :, None, :]
                    xi = x.reshape(w.shape[1] * int(node.get("groups", 1)), 1, -1)
                    geom = [(1, _pair(node[k])[0]) if k != "padding" else (0, _pair(node[k])[0])
                            for k in ("stride", "padding", "dilation")]
                elif isinstance(node["padding"], str):  # "same" (odd kernels, stride 1) or "valid"
                    c_in = w.shape[1] * int(node.get("groups", 1))
                    hw = x.shape[-2:]
                    xi = x.reshape(c_in, int(hw[0]), int(hw[1]))
                    dil = _pair(node["dilation"])
                    pad = ((dil[0] * (w.shape[2] - 1) // 2, dil[1] * (w.shape[3] - 1) // 2)
                           if node["padding"] == "same" else (0, 0))
                    geom = [_pair(node["stride"]), pad, dil]
                else:
                    c_in = w.shape[1] * int(node.get("groups", 1))
                    hw = np.asarray(node["input_shape"]).reshape(-1)[-2:] if "input_shape" in node else x.shape[-2:]
                    xi = x.reshape(c_in, int(hw[0]), int(hw[1]))
                    geom = [_pair(node[k]) for k in ("stride", "padding", "dilation")]
                y = conv2d(xi, w, *geom, int(node.get("groups", 1)))
                bias = node.get("bias")
                if bias is not None:
                    y = y + bias.astype(np.float64).reshape(-1, 1, 1)
                if typ == "Conv1d":
                    y = y.reshape(y.shape[0], -1)
            elif typ in ("SumPool2d", "AvgPool2d"):
                y = pool2d(x, _pair(node["kernel_size"]), _pair(node["stride"]), _pair(node["padding"]),
                           typ == "AvgPool2d")
            elif typ == "Flatten":
                y = x.reshape(-1)
            elif typ == "Delay":
                steps = int(round(float(np.asarray(node["delay"]).reshape(-1)[0]) / dt))
                line = delay_lines.setdefault(n, [])
                line.append(x)
                y = line[-1 - steps] if len(line) > steps else np.zeros_like(x)
            else:
                y = _neuron(n, node, x, state, dt)
                if typ in ("IF", "LIF", "Threshold", "CubaLIF"):
                    counts[n] = counts.get(n, 0) + y.reshape(-1).astype(np.int64)
            out[n] = y
    return counts


def _neuron(n, node, x, state, dt):
    """Neuron state is kept flat; parameters are per neuron (or one for all)."""
    typ = node["type"]
    shape = x.shape if x is not None else np.asarray(node.get("v_threshold", node.get("r"))).shape
    return _flat_neuron(n, node, np.zeros(shape).reshape(-1) if x is None else x.reshape(-1), state, dt).reshape(shape)


def _flat_neuron(n, node, i, state, dt):
    typ = node["type"]
    shape = i.shape
    if typ == "Threshold":
        return (i > node["threshold"].astype(np.float64).reshape(-1)).astype(np.float64)
    v = state.get(n, np.zeros(shape))
    r = node["r"].astype(np.float64).reshape(-1)
    if typ in ("I", "IF"):
        v = v + dt * r * i
    elif typ in ("CubaLI", "CubaLIF"):
        syn = state.get(n + "/syn", np.zeros(shape))
        w_in = node["w_in"].astype(np.float64).reshape(-1) if "w_in" in node else 1.0
        syn = syn + dt / node["tau_syn"].astype(np.float64).reshape(-1) * (-syn + w_in * i)
        state[n + "/syn"] = syn
        tau = node["tau_mem"].astype(np.float64).reshape(-1)
        v = v + dt / tau * (node["v_leak"].astype(np.float64).reshape(-1) - v + r * syn)
    else:
        tau = node["tau"].astype(np.float64).reshape(-1)
        v = v + dt / tau * (node["v_leak"].astype(np.float64).reshape(-1) - v + r * i)
    if typ in ("I", "LI", "CubaLI"):
        state[n] = v
        return v
    z = v > node["v_threshold"].astype(np.float64).reshape(-1)
    v = np.where(z, node["v_reset"].astype(np.float64).reshape(-1) if "v_reset" in node else 0.0, v)
    state[n] = v
    return z.astype(np.float64)


# ---- running quantal and reading its trace ------------------------------------------------------

def run_quantal(*args, check=True):
    proc = subprocess.run([QUANTAL, "run", *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"quantal run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def trace_counts(trace_path, sizes):
    """Per-neuron spike counts per population, from the SONATA layout."""
    counts = {}
    with h5py.File(trace_path, "r") as f:
        for name, size in sizes.items():
            ids = f[f"spikes/{name}/node_ids"][()] if f"spikes/{name}" in f else np.array([], np.uint64)
            counts[name] = np.bincount(ids.astype(np.int64), minlength=size)
    return counts
