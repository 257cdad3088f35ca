"""The Python module's inputs from files (docs/python.md): `run(input_spikes=PATH or dict)` and
`run("x.npy")` go through `quantal run`'s C++ readers, so they give the command line's spikes and
predictions, and its error messages word for word (as ValueError)."""
import numpy as np
import pytest

import quantal
from nir_reference import run_quantal
from test_input_files import (TICKS, npy_bytes, run_trace, trace_spikes, write_layered, write_relay,
                              write_spike_file)
from test_run_model_file import write_model


def cli_error(*args):
    proc = run_quantal(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("quantal: ") and "\n" not in line, line
    return line[len("quantal: "):]


def test_replay_from_a_file_or_arrays_equals_the_command_line(tmp_path):
    full, replay = tmp_path / "full.h5", tmp_path / "replay.h5"
    write_layered(full, False, np.random.default_rng(3))
    write_layered(replay, True, np.random.default_rng(3))
    hidden, again = tmp_path / "hidden.h5", tmp_path / "again.h5"
    run_quantal("--model", full, "--ticks", TICKS, "--samples", 4, "--offset", 2, "--seed", 9, "--dt", 0.1,
                "--record", "hidden", "--trace", hidden)
    run_quantal("--model", replay, "--ticks", TICKS, "--offset", 2, "--seed", 9, "--dt", 0.1,
                "--input-spikes", hidden, "--record", "out", "--trace", again)
    ts, ids = trace_spikes(again, "out")
    assert ts.size > 20
    net = quantal.load(replay, dt=0.1)
    from_file = net.run(ticks=TICKS, first_sample=2, seed=9, input_spikes=hidden, record=["out"])
    assert len(from_file.samples) == 4
    np.testing.assert_array_equal(from_file.timestamps("out"), ts)
    np.testing.assert_array_equal(from_file.spikes["out"].node_id, ids)
    recorded = quantal.load(full, dt=0.1).run(ticks=TICKS, samples=4, first_sample=2, seed=9, record=["hidden"])
    from_arrays = net.run(ticks=TICKS, samples=4, first_sample=2, seed=9,
                          input_spikes={"hidden": recorded.spikes["hidden"]}, record=["out"])
    np.testing.assert_array_equal(from_arrays.timestamps("out"), ts)
    with pytest.raises(ValueError, match="give one of the two"):
        net.run(ticks=TICKS, input_spikes=hidden, spikes={"hidden": recorded.spikes["hidden"]})


def test_bmtk_style_file_equals_the_command_line(tmp_path):
    model, spikes, trace = tmp_path / "relay.h5", tmp_path / "bmtk.h5", tmp_path / "trace.h5"
    write_relay(model)
    write_spike_file(spikes, {"in": ([7.3, 0.3, 4.99, 2.74, 5.0, 12.25], [1, 0, 3, 2, 0, 1])}, sorting=b"none")
    run_quantal("--model", model, "--ticks", 10, "--dt", 0.5, "--input-spikes", spikes, "--trace", trace)
    result = quantal.load(model, dt=0.5).run(ticks=10, input_spikes=spikes)
    for name in ("in", "post"):
        np.testing.assert_array_equal(result.timestamps(name), trace_spikes(trace, name)[0])
        np.testing.assert_array_equal(result.spikes[name].node_id, trace_spikes(trace, name)[1])


@pytest.mark.parametrize("populations, options", [
    ({"in": ([1.0], [0]), "ghost": ([1.0], [0])}, {}),
    ({"in": ([1.0], [0]), "post": ([1.0], [0])}, {}),
    ({"in": ([1.0, 2.0], [0, 4])}, {}),
    ({"in": ([1.0, -0.5], [0, 1])}, {"sorting": b"none"}),
    ({"in": ([1.0, 2.0], [0])}, {}),
    ({"in": ([1.0], [0])}, {"units": None}),
    ({"in": ([1.2, 1.7], [3, 3])}, {}),
    ({"in": ([1.0, 15.0], [0, 1])}, {"samples_start": [0.0, 20.0]}),
])
def test_spike_file_errors_are_the_command_lines(tmp_path, populations, options):
    model, spikes = tmp_path / "relay.h5", tmp_path / "bad.h5"
    write_relay(model)
    write_spike_file(spikes, populations, **options)
    message = cli_error("--model", model, "--ticks", 10, "--input-spikes", spikes)
    with pytest.raises(ValueError) as raised:
        quantal.load(model).run(ticks=10, input_spikes=spikes)
    # The CLI names the model by its path, Python by its origin: the same file here.
    assert str(raised.value) == message


def test_npy_path_equals_the_command_line(tmp_path):
    model = tmp_path / "tiny.h5"
    write_model(model, np.random.default_rng(31))
    images = np.random.default_rng(32).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images.astype(np.float32))
    _, ts, ids, predictions = run_trace(model, tmp_path / "t.h5", "--input", tmp_path / "x.npy", "--samples", 5)
    result = quantal.load(model).run(str(tmp_path / "x.npy"), ticks=16)
    np.testing.assert_array_equal(result.predictions, predictions)
    np.testing.assert_array_equal(result.timestamps("hidden"), ts)
    np.testing.assert_array_equal(result.spikes["hidden"].node_id, ids)
    np.testing.assert_array_equal(quantal.load(model).run(images, ticks=16).predictions, predictions)


@pytest.mark.parametrize("make", [
    lambda a: b"\x93NUMPX" + npy_bytes(a)[6:],
    lambda a: npy_bytes(a)[:-100],
    lambda a: npy_bytes(np.asfortranarray(a.astype(np.float32))),
    lambda a: npy_bytes(a.astype(">f8")),
    lambda a: npy_bytes(a.reshape(3, 784)),
])
def test_malformed_npy_raises_the_command_lines_message(tmp_path, make):
    model, path = tmp_path / "tiny.h5", tmp_path / "bad.npy"
    write_model(model, np.random.default_rng(33))
    path.write_bytes(make(np.zeros((3, 28, 28), np.uint8)))
    message = cli_error("--model", model, "--ticks", 4, "--input", path, "--samples", 3)
    with pytest.raises(ValueError) as raised:
        quantal.load(model).run(str(path), ticks=4)
    assert str(raised.value) == message
