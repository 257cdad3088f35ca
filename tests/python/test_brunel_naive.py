"""The Brunel benchmark's network (bench/brunel/generate.py), small: quantal's spikes must equal a
naive time-stepped numpy simulation of the same model file, driven by the same drive spikes
(bench/brunel/naive.py), spike for spike; and quantal's ledger must count the events the
benchmark reports. Without Brian2 (that comparison is bench/brunel/compare.py's)."""
import os
import subprocess
import sys

import pytest

SRC = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("QUANTAL_BINARY", os.path.join(SRC, "build", "apps", "quantal"))
sys.path.insert(0, os.path.join(SRC, "bench", "brunel"))
import common  # noqa: E402
import generate  # noqa: E402
import naive  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(BIN), reason="quantal binary not built")


@pytest.mark.parametrize("regime, extra", [("B", []), ("A", ["--theta-over-j", "60", "--rate", "100"])])
def test_small_brunel_equals_naive(tmp_path, regime, extra):
    ticks = 2000  # 200 ms
    model, trace = str(tmp_path / "brunel.h5"), str(tmp_path / "trace.h5")
    generate.main([model, "--regime", regime, "--n-exc", "400", "--n-inh", "100", "--seed", "3", *extra])
    subprocess.run([BIN, "run", "--model", model, "--ticks", str(ticks), "--dt", "0.1", "--trace", trace],
                   check=True, stdout=subprocess.DEVNULL)
    params, projections = common.read_model(model)
    q = common.read_trace(trace, params["dt"])
    ref = naive.simulate(params, projections, q["drive"], ticks)
    for name in common.SPIKING:
        assert len(ref[name]) > 100, f"{name} nearly silent: the check would be weak"
        assert common.first_difference(q[name], ref[name]) is None, common.first_difference(q[name], ref[name])
    import h5py
    with h5py.File(trace, "r") as f:
        ledger = int(f["energy/total/projections/transmitted"][()].sum())
    assert common.events(q, projections, params, ticks) == ledger
