"""Figures of a run (docs/python.md "Plot"): the module `quantal inspect --plot` draws with
(traces/trace_figures.py, copied into this package), given a quantal.Result or a trace file.

    import quantal.plot
    fig = quantal.plot.raster(result, populations=["hid", "lif"], neurons=50, samples=(0, 2))
    fig.savefig("raster.png", dpi=110)

Every function returns a matplotlib Figure (not registered with pyplot: save it, or show it in a
notebook); fig.quantal is a dict of what was drawn. A name, range or id that the recording does
not have raises ValueError naming it.
"""
import contextlib
import os

from . import trace_figures as _figures

__all__ = ["raster", "rates", "energy", "membrane", "accuracy"]


@contextlib.contextmanager
def _recording(source):
    """A Result, or a trace file's path: the recording the figures read."""
    if isinstance(source, (str, os.PathLike)):
        import h5py
        from . import InputError
        try:
            f = h5py.File(source, "r")
        except OSError as e:
            raise InputError(f"{source}: cannot be read as HDF5 ({e})") from None
        with f:
            if "spikes" not in f:
                raise InputError(f"{source}: has no /spikes group (not a SONATA spike file)")
            yield _figures.TraceRecording(f, os.path.basename(os.fspath(source)))
    else:
        yield _figures.ResultRecording(source)


def raster(source, *, populations=None, neurons=None, samples=(0, 1), ticks=None, width=10.0):
    """Spikes of chosen populations, one panel each with its own neuron axis.

    source: a quantal.Result or a trace file. populations: names (default: all up to 8, else 8
    spread over the network). neurons: rows per panel, evenly spaced (default up to 100), or a
    range/slice/array of ids, or {population: ...}. samples: (first, last) positions among the
    recorded samples, last excluded (default the first); their boundaries are marked. ticks:
    (first, last) ticks within each sample (default all)."""
    with _recording(source) as rec:
        return _figures.raster(rec, populations=populations, neurons=neurons, samples=samples, ticks=ticks,
                               width=width)


def rates(source, *, populations=None, width=10.0):
    """Firing rate per neuron (Hz) per population vs time within a sample, averaged over the
    recorded samples: lines for up to 8 populations, else a heat map with a colour bar."""
    with _recording(source) as rec:
        return _figures.rates(rec, populations=populations, width=width)


def energy(source):
    """Energy per layer under each energy model (docs/energy.md: proxy measured, the papers' way,
    memory-inclusive), a panel each, layers grouped and coloured by role: the numbers of `quantal
    energy --json` for the run or the trace, the figure `quantal inspect --plot` saves as
    energy_per_layer.png. source: a quantal.Result or a trace file with /energy."""
    import json
    if isinstance(source, (str, os.PathLike)):
        from . import _quantal
        doc, name = json.loads(_quantal.trace_energy_json(os.fspath(source))), os.path.basename(os.fspath(source))
    else:
        doc, name = source.ledger.energy_models(), "the run of '%s'" % source.model
    title = "Energy per layer under each model, %s, mean over %d samples, T = %d" % (name, doc["samples"], doc["ticks"])
    return _figures.energy([("", _figures.energy_rows(doc))], title)


def membrane(source, *, populations=None, neurons=None, samples=(0, 1), ticks=None, width=10.0):
    """Membrane potentials (run(record_v=...) or `quantal run --record-v`): a panel per reported
    population, a line per neuron (default up to 8; or ids, {population: ids}); samples and ticks
    as for raster."""
    with _recording(source) as rec:
        return _figures.membrane(rec, populations=populations, neurons=neurons, samples=samples, ticks=ticks,
                                 width=width)


def accuracy(results, *, width=7.0):
    """Accuracy (%) vs ticks simulated, with 95 % intervals. results: a Result run with labels and
    observe=[...], or {label: Result} for several lines (e.g. one per mask ratio)."""
    if not isinstance(results, dict):
        results = {"accuracy": results}
    curves, dt = {}, 1.0
    for label, r in results.items():
        if r.labels is None or r.readout is None:
            raise ValueError(f"{label}: accuracy needs a run with labels= and a readout")
        correct = (r.readout.argmax(axis=2) == r.labels[:, None]).sum(axis=0)
        curves[label] = (r.observed, correct, len(r.samples))
        dt = r.dt_ms
    return _figures.accuracy(curves, dt_ms=dt, width=width)
