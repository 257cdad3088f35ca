"""Ctrl-C during `net.run` (docs/python.md, issue 12): the run stops after the samples under way and
returns the completed ones, flagged `interrupted`; they equal the same samples of a run that was
not interrupted. The interrupt is a real SIGINT sent to this process from another thread (what a
terminal's Ctrl-C does), or `_thread.interrupt_main()` (what Jupyter's "interrupt" does)."""
import _thread
import os
import signal
import threading
import time

import numpy as np
import pytest

import quantal
from nir_reference import dyadic


def busy_network():
    rng = np.random.default_rng(21)
    b = quantal.NetworkBuilder()
    b.add_population("src", 300, quantal.BernoulliSource(0.2))
    b.add_population("hid", 200, quantal.IF(threshold=2.0, v0=0.0))
    b.add_population("out", 5, quantal.Readout())
    b.connect("src", "hid", quantal.Dense(dyadic(rng, (200, 300))), release=quantal.Release("synapse", 0.5))
    b.connect("hid", "out", quantal.Dense(dyadic(rng, (5, 200))))
    return b.build()


RUN = dict(ticks=100, seed=3, observe=[50, 100])


def samples_for(net, seconds, threads):
    start = time.perf_counter()
    net.run(samples=8, threads=threads, **RUN)
    return max(50, int(seconds / ((time.perf_counter() - start) / 8)))


def run_interrupted(net, samples, threads, interrupt, after=0.3):
    timer = threading.Timer(after, interrupt)
    timer.start()
    try:
        return net.run(samples=samples, threads=threads, **RUN)
    finally:
        timer.cancel()


def assert_prefix_of_full_run(net, part, threads):
    done = len(part.samples)
    full = net.run(samples=done, threads=threads, **RUN)
    assert not full.interrupted
    np.testing.assert_array_equal(part.samples, full.samples)
    np.testing.assert_array_equal(part.readout, full.readout)
    np.testing.assert_array_equal(part.predictions, full.predictions)
    for name in full.spikes:
        for field in ("sample", "tick", "node_id"):
            np.testing.assert_array_equal(getattr(part.spikes[name], field), getattr(full.spikes[name], field))
    for table in ("populations", "projections", "operators"):
        for field, values in getattr(full.ledger, table).items():
            np.testing.assert_array_equal(getattr(part.ledger, table)[field], values, err_msg=f"{table}/{field}")
    np.testing.assert_array_equal(part.ledger.snn_pj, full.ledger.snn_pj)


def send_sigint():
    os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_returns_the_completed_samples(threads):
    net = busy_network()
    samples = samples_for(net, 4.0, threads)  # far more than the 0.3 s before the signal allows
    start = time.perf_counter()
    part = run_interrupted(net, samples, threads, send_sigint)
    assert time.perf_counter() - start < 2.0  # it stopped, rather than running on to the end
    assert part.interrupted and part.requested == samples
    assert 0 < len(part.samples) < samples
    assert part.readout.shape == (len(part.samples), 2, 5)
    assert "interrupted after" in repr(part)
    assert_prefix_of_full_run(net, part, threads)


def test_interrupt_main_stops_the_run_too():
    net = busy_network()
    part = run_interrupted(net, samples_for(net, 4.0, 1), 1, _thread.interrupt_main)
    assert part.interrupted and 0 < len(part.samples) < part.requested
    assert_prefix_of_full_run(net, part, 1)


def test_a_handler_that_raises_something_else_stops_the_run_and_raises_it():
    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop("from the handler")

    net = busy_network()
    samples = samples_for(net, 4.0, 1)
    previous = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(Stop, match="from the handler"):
            run_interrupted(net, samples, 1, send_sigint)
    finally:
        signal.signal(signal.SIGINT, previous)
    # The engine is left as it was: the next run is complete.
    assert not net.run(samples=3, **RUN).interrupted


def test_an_uninterrupted_run_is_not_flagged():
    result = busy_network().run(samples=4, **RUN)
    assert not result.interrupted and result.requested == 4 and len(result.samples) == 4
