"""Ctrl-C during `quantal.sweep` (docs/python.md, issue 12): the sweep stops after the work unit
under way, keeps every completed unit in its state file and returns a Study flagged
`interrupted`; the same call again continues and returns the table an uninterrupted sweep gives.
The interrupt is a real SIGINT sent to this process from another thread (a terminal's Ctrl-C)."""
import os
import signal
import threading
import time

import quantal
from test_python_sweep import IMAGES, LABELS, MODEL

GRID = dict(input=IMAGES, labels=LABELS, samples=32, offset=40, ticks=8, ratios=[0, 0.5], release="spike",
            targets="attention", seeds=[3], block=2, threads=1)


def test_ctrl_c_stops_after_a_work_unit_and_the_same_call_continues(tmp_path):
    start = time.perf_counter()
    full = quantal.sweep(MODEL, out=tmp_path / "full.h5", **GRID)
    seconds = time.perf_counter() - start
    assert not full.interrupted and len(full) == 3  # the ratio-0 baseline, ratio 0 and 0.5

    out = tmp_path / "study.h5"
    timer = threading.Timer(max(0.4, 0.4 * seconds), lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        stopped = quantal.sweep(MODEL, out=out, **GRID)
    finally:
        timer.cancel()
    assert stopped.interrupted and stopped.table is None and len(stopped) == 0
    assert "work units" in stopped.message and str(out) + ".state" in stopped.message, stopped.message
    assert "interrupted" in repr(stopped)
    assert os.path.exists(str(out) + ".state") and not out.exists()  # the study is not complete

    resumed = quantal.sweep(MODEL, out=out, **GRID)
    assert not resumed.interrupted and out.exists() and not os.path.exists(str(out) + ".state")
    for name, column in full.table.items():
        if name == "command_line":  # names the output files, which differ
            continue
        assert list(resumed.table[name]) == list(column), name


def test_an_interrupted_sweep_without_out_says_its_state_is_lost():
    timer = threading.Timer(0.4, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        stopped = quantal.sweep(MODEL, **{**GRID, "samples": 200})
    finally:
        timer.cancel()
    assert stopped.interrupted and "lost: sweep() was given no out=" in stopped.message
