"""quantal from Python (docs/python.md): load a model file or NIR graph, or build a network from
numpy arrays, run it on numpy inputs and get numpy arrays back; read SONATA spike traces.

    import quantal
    net = quantal.load("examples/mst/models/mst_r0.h5")
    result = net.run(images, ticks=64, mask=0.75, release="spike", targets="attention")
    result.predictions, result.readout, result.ledger.projections["transmitted"], result.spikes["s0.b0.q"]

The simulation is the C++ engine's (quantal._quantal), run with the GIL released. What the library
checks it checks here too, with the messages `quantal run` prints (without its "quantal: "
prefix); quantal.InputError and quantal.ModelError are ValueErrors.
"""
import csv as _csv
import math
import os
import tempfile
import warnings
from collections import namedtuple
from types import SimpleNamespace

import numpy as np

from . import _quantal
from ._quantal import InputError, ModelError

InputError.__module__ = ModelError.__module__ = __name__  # shown as quantal.InputError in tracebacks

__all__ = [
    "load", "Network", "NetworkBuilder", "Result", "Ledger", "read_trace", "Trace", "Report", "sweep", "Study",
    "InputError", "ModelError",
    "IF", "LIF", "CubaLIF", "Readout", "SpikeSource", "BernoulliSource", "PoissonSource",
    "Dense", "Sparse", "OneToOne", "Conv2d", "SumPool2d", "AvgPool2d", "Release",
]

MAX_RUN_TICKS = 2 ** 53  # the last tick of a run must be exact in a trace timestamp (as the CLI)
MAX_THREADS = 1024
MAX_RELEASE_SPREAD = 1e6


# ---- neuron models: names and parameters as in docs/model-format.md ------------------------------

class _Neuron:
    def __init__(self, model, **parameters):
        self.spec = {"model": model, **parameters}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k != "model")
        return f"quantal.{type(self).__name__}({args})"


def _value(x, name):
    """A neuron parameter: a number (one for the population) or a 1-d array (one per neuron; its
    length and values are checked when the network is built, naming the population)."""
    if np.ndim(x) == 0:
        return float(x)
    a = np.asarray(x, np.float64)
    if a.ndim != 1:
        raise ModelError(f"{name} must be a number or a 1-d array (one value per neuron), got shape {a.shape}")
    return a


def _rule(threshold, v0, comparison, reset, v_reset):
    """The threshold rule and v0 are required, as in a model file: the conventions disagree
    (QCFS: >=, subtract, v0 = threshold/2; NIR: >, reset to a value, v0 = 0). threshold, v0 and
    v_reset are numbers or arrays (one per neuron)."""
    if comparison not in (">=", ">"):
        raise ModelError(f"comparison '{comparison}' is not '>=' or '>'")
    if reset not in ("subtract", "value"):
        raise ModelError(f"reset '{reset}' is not 'subtract' or 'value'")
    if (reset == "value") != (v_reset is not None):
        raise ModelError("v_reset is required with reset='value' and an error with reset='subtract'")
    return dict(threshold=_value(threshold, "threshold"), v0=_value(v0, "v0"), comparison=comparison, reset=reset,
                v_reset=None if v_reset is None else _value(v_reset, "v_reset"))


class IF(_Neuron):
    """Integrate-and-fire: v <- v + bias + input, then one threshold check per tick."""
    def __init__(self, *, threshold, v0, comparison=">=", reset="subtract", v_reset=None, spike_value=1.0):
        super().__init__("IF", **_rule(threshold, v0, comparison, reset, v_reset), spike_value=float(spike_value))


class LIF(_Neuron):
    """Leaky: v <- v_leak + exp(-1/tau_ticks) (v - v_leak) + bias + input."""
    def __init__(self, *, threshold, v0, tau_ticks, v_leak=0.0, comparison=">=", reset="subtract", v_reset=None,
                 spike_value=1.0):
        super().__init__("LIF", **_rule(threshold, v0, comparison, reset, v_reset),
                         tau_ticks=_value(tau_ticks, "tau_ticks"), v_leak=_value(v_leak, "v_leak"),
                         spike_value=float(spike_value))


class CubaLIF(_Neuron):
    """Current-based: i <- exp(-1/tau_syn_ticks) i + bias + input; v <- v_leak + exp(-1/tau_ticks) (v - v_leak) + i."""
    def __init__(self, *, threshold, v0, tau_ticks, tau_syn_ticks, v_leak=0.0, comparison=">=", reset="subtract",
                 v_reset=None, spike_value=1.0):
        super().__init__("CubaLIF", **_rule(threshold, v0, comparison, reset, v_reset),
                         tau_ticks=_value(tau_ticks, "tau_ticks"), tau_syn_ticks=_value(tau_syn_ticks, "tau_syn_ticks"),
                         v_leak=_value(v_leak, "v_leak"), spike_value=float(spike_value))


class Readout(_Neuron):
    """Non-spiking integrator; its values at the observed ticks are the network's output."""
    def __init__(self, *, v0=0.0):
        super().__init__("readout", v0=_value(v0, "v0"))


class SpikeSource(_Neuron):
    """Emits the spikes run(spikes={name: ...}) gives it; silent without."""
    def __init__(self, *, spike_value=1.0):
        super().__init__("spike_source", spike_value=float(spike_value))


class BernoulliSource(_Neuron):
    """Each neuron spikes with its own probability per tick (one value, or one per neuron)."""
    def __init__(self, probability, *, spike_value=1.0):
        super().__init__("bernoulli_source", probability=np.atleast_1d(np.asarray(probability, np.float64)),
                         spike_value=float(spike_value))


class PoissonSource(_Neuron):
    """Each neuron spikes at its own rate in Hz (one value, or one per neuron): probability
    rate * dt / 1000 per tick at the network's dt (refused above 1)."""
    def __init__(self, rate, *, spike_value=1.0):
        super().__init__("poisson_source", rate=np.atleast_1d(np.asarray(rate, np.float64)),
                         spike_value=float(spike_value))


# ---- projections: connectivity from numpy arrays --------------------------------------------------

def _shape_text(shape):
    """A shape as the C++ side writes it: (2,), (2, 3)."""
    return str(tuple(int(d) for d in shape))


def _integers(a, what, where, low, high):
    """An array of whole numbers in [low, high): integer dtype, or floats that are integral."""
    a = np.asarray(a)
    if a.dtype.kind not in "iuf" or (a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a)))):
        raise ModelError(f"{where}: {what} must be whole numbers")
    if a.size and (a.min() < low or a.max() >= high):
        bad = a[(a < low) | (a >= high)][0]
        raise ModelError(f"{where}: {what} {int(bad)} is out of range [{low}, {high})")
    return a.astype(np.int64)


class Dense:
    """weight: (target size, source size), PyTorch's Linear layout."""
    def __init__(self, weight):
        self.weight = np.asarray(weight, np.float32)

    def _lower(self, n_source, n_target, where):
        if self.weight.shape != (n_target, n_source):
            raise ModelError(f"{where}: dense weight has shape {self.weight.shape}, expected (target, source) = "
                             f"({n_target}, {n_source})")
        return {"kind": "dense", "weight": self.weight}


class OneToOne:
    """weight: one value for all (default 1: the identity) or one per neuron."""
    def __init__(self, weight=1.0):
        self.weight = np.atleast_1d(np.asarray(weight, np.float32))

    def _lower(self, n_source, n_target, where):
        return {"kind": "one_to_one", "weight": self.weight}


class Sparse:
    """Explicit synapses: parallel arrays pre, post, weight and optionally per-synapse delay (ticks)
    and release probability. Synapses keep their order within a source neuron."""
    def __init__(self, pre, post, weight, delay=None, probability=None):
        self.pre, self.post = np.asarray(pre), np.asarray(post)
        self.weight = np.broadcast_to(np.asarray(weight, np.float32), self.pre.shape)
        self.delay = None if delay is None else np.broadcast_to(np.asarray(delay), self.pre.shape)
        self.probability = None if probability is None else np.broadcast_to(np.asarray(probability, np.float32),
                                                                             self.pre.shape)
        if not (self.pre.ndim == 1 and self.post.shape == self.pre.shape):
            raise ModelError(f"sparse: pre and post must be 1-d arrays of one length, got {self.pre.shape} and "
                             f"{self.post.shape}")

    @classmethod
    def from_csr(cls, indptr, indices, data, delay=None, probability=None):
        """scipy.sparse.csr_matrix layout with rows = source neurons (the transpose of a weight matrix)."""
        indptr = np.asarray(indptr, np.int64)
        pre = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
        return cls(pre, indices, data, delay, probability)

    def _lower(self, n_source, n_target, where):
        pre = _integers(self.pre, "pre", where, 0, n_source)
        post = _integers(self.post, "post", where, 0, n_target)
        order = np.argsort(pre, kind="stable")
        row_begin = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=n_source))]).astype(np.uint64)
        delay = None
        if self.delay is not None:
            delay = _integers(self.delay, "delay", where, 0, 2 ** 24 + 1)[order].astype(np.uint32)
        return {"kind": "sparse", "row_begin": row_begin, "target": post[order].astype(np.uint32),
                "weight": self.weight[order], "delay": delay,
                "probability": None if self.probability is None else self.probability[order]}


class Conv2d:
    """weight: (C_out, C_in / groups, kh, kw) between (C, H, W) populations."""
    def __init__(self, weight, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        self.weight = np.asarray(weight, np.float32)
        self.spec = dict(stride=tuple(stride), padding=tuple(padding), dilation=tuple(dilation), groups=int(groups))

    def _lower(self, n_source, n_target, where):
        if self.weight.ndim != 4:
            raise ModelError(f"{where}: conv2d weight must be (C_out, C_in / groups, kh, kw), got {self.weight.shape}")
        return {"kind": "conv2d", "weight": self.weight, "kernel": self.weight.shape[2:], **self.spec}


class SumPool2d:
    def __init__(self, kernel, stride=None, padding=(0, 0)):
        self.spec = dict(kernel=tuple(kernel), stride=None if stride is None else tuple(stride), padding=tuple(padding))

    def _lower(self, n_source, n_target, where):
        return {"kind": "sum_pool2d", **self.spec}


class AvgPool2d(SumPool2d):
    def _lower(self, n_source, n_target, where):
        return {"kind": "avg_pool2d", **self.spec}


class Release:
    """mode 'none', 'spike' (MST's RSM: a masked spike fails at all its synapses) or 'synapse'
    (independent failures); mask_ratio is the failure probability."""
    def __init__(self, mode="none", mask_ratio=0.0, *, compensate=False, spread=0.0):
        self.mode, self.mask_ratio, self.compensate, self.spread = mode, float(mask_ratio), bool(compensate), float(spread)

    def __repr__(self):
        return f"quantal.Release({self.mode!r}, {self.mask_ratio})"


# ---- networks ----------------------------------------------------------------------------------

class NetworkBuilder:
    """Collects populations, projections and operators; build() validates them all (NetworkBuilder::build).
    dt: ms per tick (default 1.0), saved with the network: trace times, rates in Hz and Poisson
    sources' per-tick probabilities use it; the dynamics are in ticks."""

    def __init__(self, *, dt=1.0):
        self._populations, self._projections, self._operators, self._sizes = [], [], [], {}
        self._shapes = {}
        self._dt = float(dt)

    def add_population(self, name, shape, model, *, bias=None):
        """shape: an int or a tuple ((C, H, W) for images); bias: one value or one per neuron."""
        if not isinstance(model, _Neuron):
            raise ModelError(f"population '{name}': model must be quantal.IF, LIF, CubaLIF, Readout, SpikeSource, "
                             f"BernoulliSource or PoissonSource, got {model!r}")
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(d) for d in shape)
        if name in self._sizes:
            raise ModelError(f"population '{name}': name is used twice")
        self._sizes[name] = (len(self._populations), math.prod(shape))
        self._shapes[name] = shape
        bias = None if bias is None else np.atleast_1d(np.asarray(bias, np.float64))
        self._populations.append((name, shape, model.spec, bias))
        return name

    def connect(self, source, target, connectivity, *, delay=0, release=None, name="", role=""):
        """connectivity: Dense, Sparse, OneToOne, Conv2d, SumPool2d or AvgPool2d; delay in ticks;
        release: a quantal.Release (default: none). Returns the projection's name."""
        name = name or f"{source}->{target}"
        where = f"projection '{name}'"
        for end in (source, target):
            if end not in self._sizes:
                raise ModelError(f"{where}: '{end}' is not a population")
        if isinstance(connectivity, Sparse) and connectivity.delay is not None and delay:
            raise ModelError(f"{where}: has per-synapse delays, so it takes no delay={delay}")
        (s, n_source), (t, n_target) = self._sizes[source], self._sizes[target]
        self._projections.append(dict(
            name=name, source=s, target=t, connectivity=connectivity._lower(n_source, n_target, where),
            delay=int(_integers(delay, "delay", where, 0, 2 ** 24 + 1)), **self._release(release, ""), role=role))
        return name

    def _population(self, name, where):
        if name not in self._sizes:
            raise ModelError(f"{where}: names population '{name}', which does not exist")
        return self._sizes[name][0]

    @staticmethod
    def _dataset(a, name, expected, where):
        """An operator's array in the model file's layout; its shape is the file's dataset shape."""
        a = np.asarray(a, np.float32)
        if a.shape != tuple(expected):
            raise ModelError(f"{where}: dataset '{name}' has shape {_shape_text(a.shape)}, expected "
                             f"{_shape_text(expected)}")
        return a.ravel()

    @staticmethod
    def _release(r, prefix):
        r = r or Release()
        return {prefix + "release": r.mode, prefix + "mask_ratio": r.mask_ratio,
                prefix + "compensate": r.compensate, prefix + "spread": r.spread}

    def add_attention(self, name, *, q, k, v, scores, output, scale, heads, window, shift=0, bias, mask=None,
                      q_release=None, k_release=None, score_release=None):
        """A softmax_attention operator (docs/model-format.md, "Operators"): q, k, v, output spiking
        populations of one shape (C, H, W); scores of shape (windows, heads, tokens, tokens), tokens =
        window²; bias (heads, tokens, tokens); mask (windows, tokens, tokens) or None; releases of
        mode 'none' or 'spike' (default none). Returns the operator's name."""
        where = f"operator '{name}'"
        ids = {role: self._population(pop, where) for role, pop in
               dict(q=q, k=k, v=v, scores=scores, output=output).items()}
        heads, window, shift = (int(_integers(x, what, where, 0, 2 ** 31)) for x, what in
                                ((heads, "heads"), (window, "window"), (shift, "shift")))
        tokens = window * window
        score_shape = self._shapes[scores]
        op = dict(kind="softmax_attention", name=name, **ids, heads=heads, window=window, shift=shift,
                  scale=float(scale), bias=self._dataset(bias, "bias", (heads, tokens, tokens), where),
                  mask=None if mask is None else self._dataset(
                      mask, "mask", (score_shape[0] if len(score_shape) == 4 else 0, tokens, tokens), where))
        for prefix, r in (("q_", q_release), ("k_", k_release), ("score_", score_release)):
            op.update(self._release(r, prefix))
        self._operators.append(op)
        return name

    def add_layer_norm_head(self, name, *, sources, output, eps, source_weight, offset, gamma, beta, weight):
        """A layer_norm_head operator (docs/model-format.md, "Operators"): the spikes of `sources`
        (token maps (C, H, W) or (C, N) of one shape) summed with source_weight (sources, C) plus
        offset (C), normalised over channels (LayerNorm: eps, gamma (C), beta (C)), averaged over
        positions and mapped by weight (n_out, C) into the readout `output`. Returns its name."""
        where = f"operator '{name}'"
        sources = [sources] if isinstance(sources, str) else list(sources)
        if not sources:
            raise ModelError(f"{where}: attribute 'sources' names no population")
        ids = [self._population(s, where) for s in sources]
        out = self._population(output, where)
        shape = self._shapes[sources[0]]
        if len(shape) < 2:
            raise ModelError(f"{where}: sources must be token maps (C, H, W) or (C, N)")
        c = shape[0]
        self._operators.append(dict(
            kind="layer_norm_head", name=name, sources=ids, output=out, eps=float(eps),
            source_weight=self._dataset(source_weight, "source_weight", (len(ids), c), where),
            offset=self._dataset(offset, "offset", (c,), where), gamma=self._dataset(gamma, "gamma", (c,), where),
            beta=self._dataset(beta, "beta", (c,), where),
            weight=self._dataset(weight, "weight", (self._sizes[output][1], c), where)))
        return name

    def build(self, readout=None):
        """readout: the population whose values are the output (default: the only readout, if one)."""
        if readout is None:
            readouts = [p[0] for p in self._populations if p[2]["model"] == "readout"]
            readout = readouts[0] if len(readouts) == 1 else ""
        elif readout not in self._sizes:
            raise ModelError(f"readout '{readout}' is not a population")
        return Network(_quantal.build(self._populations, self._projections, self._operators, readout, self._dt))


Spikes = namedtuple("Spikes", "sample tick node_id")
SpikeTrain = namedtuple("SpikeTrain", "timestamps node_ids")


class Network:
    """A built or loaded network: introspection, run(), save()."""

    def __init__(self, model):
        self._model = model

    @classmethod
    def build(cls, populations, projections=(), readout=None, dt=1.0):
        """populations: dicts of NetworkBuilder.add_population's arguments (name, shape, model, bias);
        projections: dicts of connect()'s (source, target, connectivity, delay, release, name, role);
        dt: ms per tick (NetworkBuilder's)."""
        b = NetworkBuilder(dt=dt)
        for p in populations:
            b.add_population(**p)
        for p in projections:
            b.connect(**p)
        return b.build(readout)

    name = property(lambda self: self._model.name)
    origin = property(lambda self: self._model.origin, doc="the file it was read from, or '<built>'")
    readout = property(lambda self: self._model.readout or None)
    operators = property(lambda self: self._model.operators)
    ann_macs = property(lambda self: self._model.ann_macs)
    dt_ms = property(lambda self: self._model.dt_ms, doc="ms per tick: the model file's, the builder's or load()'s dt")

    @property
    def populations(self):
        """[namespace(name, shape, size, model, parameters, bias)] in network order."""
        return [SimpleNamespace(**p) for p in self._model.populations()]

    @property
    def projections(self):
        """[namespace(name, source, target, kind, delay, release, mask_ratio, compensate,
        release_spread, role, synapses)] in network order."""
        return [SimpleNamespace(**p) for p in self._model.projections()]

    @property
    def inputs(self):
        """The model's analog inputs: [namespace(name, target, shape, scale, offset)]."""
        return [SimpleNamespace(**p) for p in self._model.inputs()]

    def connectivity(self, projection):
        """A projection's weights as arrays: {"kind", "weight" (dense: (target, source); conv2d:
        (C_out, C_in / groups, kh, kw)), ...}; sparse: "pre", "post", "weight", "delay" and
        "probability" (or None) per synapse, in the compiled order (by source, then delay)."""
        return self._model.connectivity(projection)

    def population(self, name):
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def save(self, path, name="model"):
        """Writes a model file (docs/model-format.md) that `quantal run --model` reads."""
        self._model.save(str(path), name)

    def __repr__(self):
        return (f"<quantal.Network '{self.name}' from {self.origin}: {len(self.populations)} populations, "
                f"{len(self.projections)} projections>")

    def run(self, inputs=None, *, ticks, samples=None, seed=1, threads=1, threads_per_sample=1, mask=None,
            release=None, targets=None, compensate=False, release_spread=None, observe=None, record=None,
            record_samples=None, labels=None, first_sample=0, e_ac=0.9, e_mac=4.6, spikes=None, currents=None,
            input_spikes=None, record_v=None, trace=None):
        """Simulates samples of `ticks` ticks each; returns a Result.

        inputs: None (silent inputs; `samples` of them, default 1) or images (N, ...) through the
          model's analog /inputs, raw values as `quantal run --input` reads IDX bytes (uint8 or
          float; the input's scale and offset apply); at most `samples` of them. A path to a .npy
          file is read as `quantal run --input FILE.npy` reads it.
        seed, threads, threads_per_sample, mask, release, targets, compensate, release_spread: as
          `quantal run`'s options (docs/run.md; threads x threads_per_sample at most 1024); release
          (default 'synapse'), targets (default 'all'), compensate
          and release_spread need a mask, as there.
        observe: tick counts in [1, ticks] after which the readout is read (default [ticks]);
          predictions are the argmax at the last of them.
        record: populations whose spikes are kept (default: every population but readouts);
          record_samples: only the first N samples' spikes (default all).
        labels: per sample, for result.accuracy. first_sample: the index of the first sample
          (random streams are keyed by it: `quantal run --offset`).
        spikes: {spike_source population: (sample, tick, node_id)} arrays of input spikes, e.g.
          another result's spikes[...]; sample is the run's sample index (first_sample + k).
        currents: {population: (samples, size) or (size,)} constant current per neuron and tick,
          added to what images drive.
        input_spikes: a SONATA spike file driving the spike_source populations, read and split into
          samples as `quantal run --input-spikes` does (dt: the network's dt_ms); its sample
          first_sample is the first run, and `samples` (default: all from there) must fit it. A
          dict is the same as `spikes` (give one of the two).
        record_v: {population: neuron ids (a range, list or array; ascending)} whose membrane
          potential is kept at every tick of the recorded samples: result.potentials[population]
          (samples, ticks, neurons), the value after the tick's input, threshold check and reset
          (docs/traces.md, "Membrane reports"). Spike sources have none.
        trace: a path: also writes the trace `quantal run --trace` writes (same writer; an
          existing file is refused), with record, record_samples, record_v and labels as there.

        Ctrl-C (KeyboardInterrupt) stops the run after the samples under way and returns the
        completed ones: result.interrupted is True and result.samples holds fewer than asked."""
        _check_pairs(mask, release, targets, compensate, release_spread)
        ticks = _whole(ticks, "ticks", 1, MAX_RUN_TICKS)
        first_sample = _whole(first_sample, "first_sample", 0, MAX_RUN_TICKS)
        if input_spikes is not None and spikes is not None:
            raise InputError("spikes and input_spikes: give one of the two")
        file_count = None
        if isinstance(input_spikes, dict):
            spikes = input_spikes
        elif input_spikes is not None:
            asked = None if samples is None else _whole(samples, "samples", 1, MAX_RUN_TICKS)
            file_count, spikes = self._model.spike_file(os.fspath(input_spikes), ticks, self.dt_ms, first_sample, asked)
        images = None
        if inputs is not None:
            images = self._images(inputs)
            count = images.shape[0] if samples is None else min(images.shape[0], _whole(samples, "samples", 1, MAX_RUN_TICKS))
            images = images[:count]
            if file_count is not None and file_count != count:
                raise InputError(f"inputs: {count} images, but input_spikes {input_spikes} gives {file_count} samples")
        elif file_count is not None:
            count = file_count
        else:
            count = 1 if samples is None else _whole(samples, "samples", 1, MAX_RUN_TICKS)
        threads = _whole(threads, "threads", 1, MAX_THREADS)
        threads_per_sample = _whole(threads_per_sample, "threads_per_sample", 1, MAX_THREADS)
        if threads * threads_per_sample > MAX_THREADS:
            raise InputError(f"threads {threads} x threads_per_sample {threads_per_sample} = "
                             f"{threads * threads_per_sample} threads, more than {MAX_THREADS}")
        if first_sample + count > MAX_RUN_TICKS // ticks:
            raise InputError(f"first_sample {first_sample} with samples {count} of ticks {ticks} ends beyond tick 2^53 "
                             f"= {MAX_RUN_TICKS}, the last one a trace timestamp holds exactly")
        if mask is not None and not (isinstance(mask, (int, float)) and 0.0 <= mask <= 1.0):
            raise InputError(f"mask {mask} is out of range (a number from 0 to 1)")
        if release is not None and release not in ("spike", "synapse"):
            raise InputError(f"release '{release}' is not one of spike, synapse")
        if release_spread is not None and not (0.0 < release_spread <= MAX_RELEASE_SPREAD):
            raise InputError(f"release_spread {release_spread} is out of range (a number > 0 and <= 1e+06)")
        observe = [ticks] if observe is None else [_whole(t, "observe", 1, ticks) for t in np.atleast_1d(observe)]
        record_samples = count if record_samples is None else _whole(record_samples, "record_samples", 1, MAX_RUN_TICKS)
        label_array = None if labels is None else self._labels(labels, count)
        spike_inputs = [self._spike_input(name, value, first_sample, count, ticks)
                        for name, value in (spikes or {}).items()]
        current_inputs = [self._current_input(name, value, count) for name, value in (currents or {}).items()]
        probes = [self._probe(name, value) for name, value in (record_v or {}).items()]
        trace_labels = [] if label_array is None else [int(x) for x in label_array]
        out = self._model.run(
            images, ticks, count, first_sample, _whole(seed, "seed", 0, 2 ** 64 - 1),
            threads, threads_per_sample, None if mask is None else float(mask), release or "synapse",
            targets or "all", bool(compensate), float(release_spread or 0.0), sorted(t - 1 for t in observe),
            None if record is None else [str(r) for r in record], record_samples, float(e_ac), float(e_mac),
            spike_inputs, current_inputs, probes, None if trace is None else os.fspath(trace), self.dt_ms,
            trace_labels)
        result = Result(self, out, ticks, first_sample, count, sorted(observe), label_array,
                        (float(e_ac), float(e_mac)), record_samples)
        result.potential_neurons = {name: ids.astype(np.int64) for name, ids in probes}
        return result

    def _images(self, inputs):
        if isinstance(inputs, (str, os.PathLike)):
            path, inputs = os.fspath(inputs), _quantal.read_npy_samples(os.fspath(inputs))
            # As `quantal run --input X.npy`: a file's samples also keep their shape (leading 1s aside).
            for i in self.inputs:
                if _squeezed(inputs.shape[1:]) != _squeezed(i.shape):
                    raise InputError(f"{path}: images of {' x '.join(map(str, inputs.shape[1:]))} do not fit "
                                     f"{self.origin}: input '{i.name}', which takes {' x '.join(map(str, i.shape))}")
        images = np.asarray(inputs)
        if images.dtype.kind not in "uif" or images.ndim < 2 or images.shape[0] == 0:
            raise InputError(f"inputs: expected an array of numbers (samples >= 1, ...), got {images.dtype} of shape "
                             f"{images.shape}")
        per_sample = math.prod(images.shape[1:])
        for i in self.inputs:
            values = math.prod(i.shape)
            if values != per_sample:
                extent = " x ".join(str(d) for d in images.shape[1:])
                raise InputError(f"inputs: images of {extent} = {per_sample} values do not fit {self.origin}: input "
                                 f"'{i.name}', which takes {values} values per sample")
        images = images.reshape(images.shape[0], per_sample).astype(np.float64)
        bad = np.flatnonzero(~np.all(np.isfinite(images), axis=1))
        if bad.size:
            raise InputError(f"inputs: image {bad[0]} has a value that is not finite")
        return images

    def _population(self, name, what):
        try:
            return self.population(name)
        except KeyError:
            raise InputError(f"{what}: {self.origin} has no population '{name}'") from None

    def _spike_input(self, name, value, first_sample, count, ticks):
        """(name, per-sample offsets, ticks, neurons), grouped by sample for the engine."""
        pop = self._population(name, "spikes")
        if pop.model != "spike_source":
            raise InputError(f"spikes: given for population '{name}', which is not a spike source")
        sample, tick, node = (np.asarray(a) for a in value)
        if not (sample.ndim == 1 and tick.shape == sample.shape and node.shape == sample.shape):
            raise InputError(f"spikes for '{name}': sample, tick and node_id must be 1-d arrays of one length")
        where = f"spikes for '{name}'"
        try:
            k = _integers(sample, "sample", where, first_sample, first_sample + count) - first_sample
            tick = _integers(tick, "tick", where, 0, ticks)
            node = _integers(node, "node_id", where, 0, pop.size)
        except ModelError as e:
            raise InputError(str(e)) from None
        order = np.argsort(k, kind="stable")
        offsets = np.searchsorted(k[order], np.arange(count + 1)).astype(np.uint64)
        return (name, offsets, tick[order], node[order].astype(np.uint32))

    def _probe(self, name, value):
        pop = self._population(name, "record_v")
        ids = np.asarray(list(value) if isinstance(value, range) else value)
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
            raise InputError(f"record_v for '{name}': expected a range or a 1-d array of neuron ids, got {ids.dtype} "
                             f"of shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= pop.size:
            raise InputError(f"record_v for '{name}': neuron ids must be in [0, {pop.size}), got {ids.min()}..{ids.max()}")
        return (name, ids.astype(np.uint32))

    def _current_input(self, name, value, count):
        pop = self._population(name, "currents")
        values = np.asarray(value, np.float64)
        if values.shape not in ((pop.size,), (count, pop.size)):
            raise InputError(f"currents for '{name}': shape {values.shape}, expected ({count}, {pop.size}) or "
                             f"({pop.size},)")
        return (name, np.ascontiguousarray(np.broadcast_to(values, (count, pop.size))))

    def _labels(self, labels, count):
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.ndim != 1 or labels.size < count:
            raise InputError(f"labels: expected {count} whole numbers, got {labels.dtype} of shape {labels.shape}")
        labels = labels[:count].astype(np.int64)
        if self.readout:
            classes = self.population(self.readout).size
            bad = np.flatnonzero((labels < 0) | (labels >= classes))
            if bad.size:
                raise InputError(f"labels: label {labels[bad[0]]} at index {bad[0]} is not one of the {classes} classes "
                                 f"of {self.origin}'s readout '{self.readout}'")
        return labels


def _whole(value, name, low, high):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InputError(f"{name} {value!r} is not a whole number from {low} to {high}")
    return int(value)


def _check_pairs(mask, release, targets, compensate, release_spread):
    """Arguments that only mean something with another one are refused alone: no silent defaults."""
    if release is not None and mask is None:
        raise InputError(f"release='{release}' needs mask=R (without a mask the model's release settings are used as "
                         "they are)")
    if targets is not None and mask is None:
        raise InputError(f"targets='{targets}' needs mask=R (the ratio to apply)")
    if compensate and mask is None:
        raise InputError("compensate needs mask=R (it scales the weights that survive the mask by 1 / (1 - R))")
    if compensate and mask == 1.0:
        raise InputError("compensate with mask=1: nothing survives, and 1 / (1 - R) is undefined at R = 1")
    if release_spread is not None and mask is None:
        raise InputError(f"release_spread={release_spread} needs mask=R (the spread is around the release "
                         "probability 1 - R)")


def _squeezed(shape):
    """A shape without its leading 1s: (1, 28, 28) and (28, 28) hold the same image."""
    shape = tuple(int(d) for d in shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def load(path, dt=None):
    """A quantal model file (.h5) or a NIR graph (.nir, discretised with dt ms per tick, default 1.0).
    A model file's own dt is used unless dt is given (a warning when they differ), else 1.0 ms;
    float64 values that float32 (quantal's weight precision) cannot hold exactly: a warning."""
    model, messages = _quantal.load(str(path), None if dt is None else float(dt))
    for message in messages:
        warnings.warn(message, stacklevel=2)
    return Network(model)


# ---- results -----------------------------------------------------------------------------------

class Ledger:
    """The energy ledger per sample (docs/energy.md): populations[field] (samples, P) for spikes,
    updates, drift_ticks, wakeups, macs; projections[field] (samples, J) for spikes_in,
    masked_spikes, attempted, transmitted, failed; operators[field] (samples, O) for coincidences,
    deliveries, macs, masked_spikes; snn_pj and ann_pj (samples,) with the costs run() was given;
    energy_models() the run under every energy model."""

    def __init__(self, network, out, ticks, costs):
        self.population_names = [p.name for p in network.populations]
        self.population_sizes = self._sizes = [p.size for p in network.populations]
        self._release = [mode for mode, _ in out["release"]]
        self._ticks, self._costs, self._dt_ms = ticks, costs, network.dt_ms
        self.projection_names = [p.name for p in network.projections]
        self.projection_targets = [p.target for p in network.projections]
        self.projection_roles = [p.role for p in network.projections]
        self.costs = costs  # (e_ac, e_mac) pJ
        self.operator_names = list(network.operators)
        self.populations, self.projections, self.operators = out["populations"], out["projections"], out["operators"]
        self.projections["failed"] = self.projections["attempted"] - self.projections["transmitted"]
        self.snn_pj, self.ann_pj = out["snn_pj"], out["ann_pj"]
        self._energy_json = out["energy_json"]

    def table(self):
        """Per-sample means per population, projection and operator, in the text and layout of
        `quantal run`'s report (its tables before the energy line)."""
        n = max(len(self.snn_pj), 1)
        e_ac, e_mac = self._costs
        pops, prjs, ops = self.populations, self.projections, self.operators
        lines = ["populations (per sample):",
                 "  %-24s %10s %12s %12s %12s %14s" % ("name", "neurons", "spikes", "rate/tick", "rate Hz", "updates")]
        for j, name in enumerate(self.population_names):
            spikes = pops["spikes"][:, j].sum() / n
            per_tick = spikes / self._sizes[j] / self._ticks
            lines.append("  %-24s %10u %12.1f %12.5f %12.3f %14.1f" % (name, self._sizes[j], spikes, per_tick,
                                                                       per_tick * 1000.0 / self._dt_ms,
                                                                       pops["updates"][:, j].sum() / n))
        lines += ["projections (per sample):", "  %-24s %10s %14s %14s %14s %12s" % (
            "name", "release", "attempted", "transmitted", "failed", "energy pJ")]
        for j, name in enumerate(self.projection_names):
            transmitted = prjs["transmitted"][:, j].sum()
            lines.append("  %-24s %10s %14.1f %14.1f %14.1f %12.1f" % (
                name, self._release[j], prjs["attempted"][:, j].sum() / n, transmitted / n,
                prjs["failed"][:, j].sum() / n, e_ac * transmitted / n))
        if self.operator_names:
            lines += ["operators (per sample):", "  %-24s %14s %14s %14s %12s %12s" % (
                "name", "coincidences", "deliveries", "softmax MACs", "masked", "energy pJ")]
            for j, name in enumerate(self.operator_names):
                c, d, m = (ops[k][:, j].sum() for k in ("coincidences", "deliveries", "macs"))
                lines.append("  %-24s %14.1f %14.1f %14.1f %12.1f %12.1f" % (
                    name, c / n, d / n, m / n, ops["masked_spikes"][:, j].sum() / n, (e_ac * (c + d) + e_mac * m) / n))
        return "\n".join(lines) + "\n"

    def energy_models(self):
        """The energy models side by side (docs/energy.md), as a dict: what `quantal energy --json`
        prints for a trace of this run (per-layer values, totals, ANN baselines, assumptions)."""
        import json
        return json.loads(self._energy_json)

    def total(self):
        """Sums over the samples: {"populations": {field: (P,)}, "projections": ..., "operators": ...}."""
        return {table: {k: v.sum(axis=0) for k, v in getattr(self, table).items()}
                for table in ("populations", "projections", "operators")}


class Result:
    """What Network.run() returns; every array is numpy (spikes and ledger without copies).

    samples (S,): the sample indices; observed: the tick counts the readout was read after;
    readout (S, observed, classes) or None; predictions (S,) (-1 without a readout); labels,
    correct, accuracy (with labels); ledger: a Ledger; recorded_samples: spikes are kept
    of the first this many samples; spikes: {population: Spikes(sample, tick,
    node_id)} of the recorded samples in simulation order; potentials: {population: (recorded
    samples, ticks, neurons) float64} for run(record_v=...); release: [(mode, mask_ratio)] per
    projection as run; targeted: with a mask, what it applied to by role (as `quantal run`
    reports it); timestamps(population): their times in ms as a trace writes them;
    interrupted: True if Ctrl-C stopped the run (then every array covers only the completed
    samples, len(samples) < requested)."""

    def __init__(self, network, out, ticks, first_sample, count, observed, labels, costs, record_samples):
        self.ticks, self.dt_ms = ticks, network.dt_ms
        self.model = network.name
        self.requested = count
        self.interrupted = bool(out["interrupted"])
        count = len(out["predictions"])  # the completed samples: fewer than requested if interrupted
        labels = None if labels is None else labels[:count]
        self.samples = np.arange(first_sample, first_sample + count, dtype=np.uint64)
        self.recorded_samples = min(record_samples, count)  # the first this many have their spikes kept
        self.observed = np.asarray(observed, np.int64)
        self.readout, self.predictions = out["readout"], out["predictions"]
        self.ledger = Ledger(network, out, ticks, costs)
        self.spikes = {name: Spikes(*arrays) for name, arrays in out["spikes"].items()}
        self.potentials = dict(out["potentials"])  # {population: (recorded samples, ticks, neurons)}
        self.release = out["release"]
        self.targeted = out["targeted"] or None
        self.labels = labels
        self.correct = None if labels is None else int(np.sum(self.predictions == labels))
        self.accuracy = None if labels is None or count == 0 else self.correct / count

    def timestamps(self, population):
        """(sample·ticks + tick)·dt ms: one continuous time axis, as `quantal run --trace` writes."""
        s = self.spikes[population]
        return (s.sample.astype(np.float64) * self.ticks + s.tick) * self.dt_ms

    def __repr__(self):
        extra = "" if self.accuracy is None else f", accuracy {self.correct}/{len(self.samples)}"
        if self.interrupted:
            extra += f", interrupted after {len(self.samples)} of {self.requested} samples"
        return f"<quantal.Result: {len(self.samples)} samples x {self.ticks} ticks{extra}>"


# ---- traces ------------------------------------------------------------------------------------

Report = namedtuple("Report", "node_ids times_ms data units")


class Trace(dict):
    """{population: SpikeTrain} (a dict, as before), and report: {population: Report(node_ids,
    times_ms (frames,), data (frames, neurons) float32, units)} from /report (membrane potentials,
    SONATA's frame-oriented layout; empty without one)."""

    def __init__(self, spikes, report):
        super().__init__(spikes)
        self.report = report


def _read_report(f, path):
    import h5py

    report = {}
    for name, group in f["report"].items():
        where = f"{path}: /report/{name}"
        if not isinstance(group, h5py.Group) or "data" not in group or "mapping" not in group:
            raise InputError(f"{where} needs data and mapping")
        data, mapping = group["data"], group["mapping"]
        for key in ("node_ids", "time"):
            if key not in mapping:
                raise InputError(f"{where}/mapping has no {key}")
        ids, time = mapping["node_ids"][()], mapping["time"][()]
        if data.ndim != 2 or time.shape != (3,) or data.shape[1] != ids.size:
            raise InputError(f"{where}: data {data.shape}, node_ids {ids.shape} and time {time.shape} do not fit "
                             "(frames x node_ids, and (start, stop, step))")
        start, stop, step = (float(x) for x in time)
        frames = int(round((stop - start) / step)) if step > 0 else -1
        if frames != data.shape[0]:
            raise InputError(f"{where}: time ({start}, {stop}, {step}) gives {frames} frames, data has {data.shape[0]}")
        units = data.attrs.get("units", "")
        units = units.decode() if isinstance(units, bytes) else str(units)
        report[name] = Report(ids.astype(np.uint64), start + step * np.arange(frames), data[()], units)
    return report


def read_trace(path):
    """Any SONATA spike file: a Trace, {population: SpikeTrain(timestamps in ms, node_ids)} as
    stored (timestamps in seconds are converted to ms), with .report: the membrane reports (see
    Trace). Raises InputError naming the file and object."""
    import h5py  # only here: the rest of the module does not need it

    out = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: cannot be read as HDF5 ({e})") from None
    with f:
        if "spikes" not in f or not isinstance(f["spikes"], h5py.Group):
            raise InputError(f"{path}: has no /spikes group (not a SONATA spike file)")
        for name, group in f["spikes"].items():
            where = f"{path}: /spikes/{name}"
            if not isinstance(group, h5py.Group) or "timestamps" not in group or "node_ids" not in group:
                raise InputError(f"{where} needs the datasets timestamps and node_ids")
            ts, ids = group["timestamps"], group["node_ids"]
            if ts.ndim != 1 or ids.shape != ts.shape:
                raise InputError(f"{where}: timestamps {ts.shape} and node_ids {ids.shape} must be 1-d of one length")
            units = ts.attrs.get("units")
            units = units.decode() if isinstance(units, bytes) else units
            if units not in ("ms", "s"):
                raise InputError(f"{where}/timestamps: units {units!r} is not 'ms' or 's'")
            times = ts[()].astype(np.float64)
            out[name] = SpikeTrain(times * 1000.0 if units == "s" else times, ids[()].astype(np.uint64))
        report = _read_report(f, path) if "report" in f else {}
    return Trace(out, report)


# ---- failure-probability studies ------------------------------------------------------------------

# The CSV's columns (docs/sweep.md) by type; every other column is a float64.
_STUDY_INTEGERS = ("configuration", "compensate", "each", "baseline", "same_as", "observe", "samples")
_STUDY_TEXTS = ("model", "model_sha256", "release", "targets", "version", "command_line")


class Study:
    """What quantal.sweep() returns: table, {column: (rows,) array}, one row per configuration and
    observed tick, the columns of `quantal sweep --csv` (docs/sweep.md; same_as is -1 where the CSV
    leaves it empty); path: the study file, or None when sweep() was given no out=.
    interrupted: Ctrl-C stopped the sweep after a work unit; then table is None, message says
    where the completed units are kept, and calling sweep() again with the same arguments (and
    the same out=) continues from there."""

    def __init__(self, table, path, interrupted=False, message=""):
        self.table, self.path, self.interrupted, self.message = table, path, interrupted, message

    def __len__(self):
        return 0 if self.table is None else len(self.table["configuration"])

    def __repr__(self):
        if self.interrupted:
            return f"<quantal.Study: interrupted: {self.message}>"
        configurations = len(np.unique(self.table["configuration"]))
        return f"<quantal.Study: {configurations} configurations, {len(self)} rows>"


def _read_study_csv(path):
    with open(path, newline="") as f:
        rows = list(_csv.reader(f))
    header, rows = rows[0], rows[1:]
    table = {}
    for j, name in enumerate(header):
        column = [row[j] for row in rows]
        if name in _STUDY_TEXTS:
            table[name] = np.array(column, dtype=object)
        elif name == "seed":
            table[name] = np.array([int(v) for v in column], np.uint64)
        elif name in _STUDY_INTEGERS:
            table[name] = np.array([int(v) if v else -1 for v in column], np.int64)
        else:
            table[name] = np.array([float(v) for v in column], np.float64)
    return table


def _option_list(values):
    values = [values] if isinstance(values, (str, int, float, np.number)) else list(values)
    return ",".join(str(v) for v in values)


def sweep(models, *, input, labels, samples, ticks, ratios, release, targets, offset=None, observe=None, seeds=None,
          compensate=False, release_spread=None, block=None, threads=None, e_ac=None, e_mac=None, load_timeout=None,
          out=None, csv=None, force=False):
    """`quantal sweep` in this process (docs/sweep.md), with its options as keyword arguments:
    models (one path or a list: --model each), input and labels (IDX files), samples, ticks, ratios,
    release, targets, observe, seeds (one value or a list: joined with ','; targets as the command
    line spells them, e.g. "fc1_in+fc2_in" or "each"), offset, compensate, release_spread, block,
    threads, e_ac, e_mac, load_timeout; out (the study file; default: a temporary one, removed),
    csv (also kept as a file), force. None leaves an option out, so the command line's default
    applies. Returns a Study; the checks and messages are the command line's (InputError).

    Ctrl-C (KeyboardInterrupt) stops the sweep after the work unit under way, whose result is saved
    in OUT.state: the Study returned has interrupted=True (and no table); calling sweep() again
    with the same arguments continues. Without out= the state lives in a temporary directory and is
    lost, so give out= for a sweep you may interrupt."""
    models = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    args = ["sweep"]
    for m in models:
        args += ["--model", os.fspath(m)]
    options = [("--input", os.fspath(input)), ("--labels", os.fspath(labels)), ("--samples", samples),
               ("--offset", offset), ("--ticks", ticks), ("--observe", observe), ("--ratios", ratios),
               ("--release", release), ("--targets", targets), ("--seeds", seeds),
               ("--release-spread", release_spread), ("--block", block), ("--threads", threads), ("--e-ac", e_ac),
               ("--e-mac", e_mac), ("--load-timeout", load_timeout)]
    for option, value in options:
        if value is not None:
            args += [option, _option_list(value)]
    if compensate:
        args.append("--compensate")
    if force:
        args.append("--force")
    with tempfile.TemporaryDirectory(prefix="quantal-sweep-") as scratch:
        study_path = os.fspath(out) if out is not None else os.path.join(scratch, "study.h5")
        csv_path = os.fspath(csv) if csv is not None else os.path.join(scratch, "study.csv")
        stopped = _quantal.command(args + ["--out", study_path, "--csv", csv_path])
        if stopped:
            if out is None:
                stopped += " (lost: sweep() was given no out=)"
            return Study(None, None, interrupted=True, message=stopped)
        return Study(_read_study_csv(csv_path), study_path if out is not None else None)
