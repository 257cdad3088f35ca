"""Bad NIR files: one line on stderr naming the file and the object at fault, exit code 2, no
trace presented as complete."""
import h5py
import numpy as np
import pytest

from nir_reference import f32, run_quantal, write_nir


def good_graph():
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "fc1": {"type": "Affine", "weight": f32(np.full((3, 4), 0.5)), "bias": f32(np.full(3, 0.5))},
             "if1": {"type": "IF", "r": f32(np.ones(3)), "v_threshold": f32(np.ones(3)), "v_reset": f32(np.zeros(3))},
             "delay": {"type": "Delay", "delay": f32(np.full(3, 2.0))},
             "fc2": {"type": "Linear", "weight": f32(np.full((2, 3), 0.75))},
             "if2": {"type": "IF", "r": f32(np.ones(2)), "v_threshold": f32(np.ones(2)), "v_reset": f32(np.zeros(2))},
             "output": {"type": "Output", "shape": np.array([2])}}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "delay"), ("delay", "fc2"), ("fc2", "if2"), ("if2", "output")]
    return nodes, edges


def expect_error(tmp_path, path, *fragments):
    trace = tmp_path / "trace.h5"
    proc = run_quantal("--model", path, "--ticks", 10, "--trace", trace, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path.name) in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not trace.exists(), "a trace was written for a model that failed to load"
    return lines[0]


def test_good_graph_runs(tmp_path):
    nodes, edges = good_graph()
    path = tmp_path / "good.nir"
    write_nir(path, nodes, edges)
    run_quantal("--model", path, "--ticks", 10, "--trace", tmp_path / "t.h5")


def test_missing_dataset(tmp_path):
    nodes, edges = good_graph()
    del nodes["fc1"]["weight"]
    path = tmp_path / "missing.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'fc1'", "'weight' is missing")


def test_wrong_shape(tmp_path):
    nodes, edges = good_graph()
    nodes["fc2"]["weight"] = f32(np.full((2, 5), 0.75))
    path = tmp_path / "shape.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'fc2'", "(2, 5)", "(2, 3)")


def test_wrong_bias_shape(tmp_path):
    nodes, edges = good_graph()
    nodes["fc1"]["bias"] = f32(np.full(4, 0.5))
    path = tmp_path / "bias.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'fc1'", "bias")


def test_unknown_node_type(tmp_path):
    nodes, edges = good_graph()
    nodes["if1"]["type"] = "Izhikevich"
    path = tmp_path / "unknown.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'if1'", "unknown node type 'Izhikevich'")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weight(tmp_path, bad):
    nodes, edges = good_graph()
    nodes["fc1"]["weight"][1, 2] = bad
    path = tmp_path / "nan.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'fc1'", "weight[6] is not finite")


def test_negative_delay(tmp_path):
    nodes, edges = good_graph()
    nodes["delay"]["delay"] = f32(np.full(3, -1.0))
    path = tmp_path / "delay.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'delay'", "negative")


def test_delay_off_the_tick_grid(tmp_path):
    nodes, edges = good_graph()
    nodes["delay"]["delay"] = f32(np.full(3, 1.5))
    path = tmp_path / "grid.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'delay'", "whole number of ticks")


def test_edge_to_missing_node(tmp_path):
    nodes, edges = good_graph()
    edges.append(("if2", "ghost"))
    path = tmp_path / "edge.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "'ghost'", "does not exist")


def test_truncated_file(tmp_path):
    nodes, edges = good_graph()
    path = tmp_path / "truncated.nir"
    write_nir(path, nodes, edges)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    expect_error(tmp_path, path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.nir"
    path.write_text("not a graph\n")
    expect_error(tmp_path, path, "not a readable HDF5 file")


def test_missing_file(tmp_path):
    expect_error(tmp_path, tmp_path / "absent.nir", "cannot be opened")


def test_edges_of_wrong_shape(tmp_path):
    nodes, edges = good_graph()
    path = tmp_path / "edges.nir"
    write_nir(path, nodes, edges)
    with h5py.File(path, "a") as f:
        del f["node/edges"]
        f["node"].create_dataset("edges", data=np.array(["input", "fc1", "if1"], dtype=object), dtype=h5py.string_dtype())
    expect_error(tmp_path, path, "'edges'", "(E, 2)")


def test_non_uniform_delay(tmp_path):
    """Per-neuron tau and thresholds are accepted (test_nir_graphs.py); a Delay is one projection's delay."""
    nodes, edges = good_graph()
    nodes["delay"] = {"type": "Delay", "delay": f32([2, 3, 2])}
    path = tmp_path / "delay.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'delay'", "'delay' differs between neurons")


def test_dt_longer_than_tau(tmp_path):
    nodes, edges = good_graph()
    nodes["if1"] = {"type": "LIF", "tau": f32(np.full(3, 0.5)), "r": f32(np.ones(3)), "v_leak": f32(np.zeros(3)),
                    "v_threshold": f32(np.ones(3)), "v_reset": f32(np.zeros(3))}
    path = tmp_path / "euler.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'if1'", "smaller --dt")


def test_random_corruption_never_crashes(tmp_path):
    """Random byte damage: the file either still loads or gives one line naming it and exit code 2.
    A crash of quantal (a signal, or exit code 4: a crash of its own code while reading) and a hang
    (the test's time bound) are failures. libhdf5's own crashes and endless loops on damaged heaps
    are contained (io/contained.hpp) and count as a damaged file, but a time-out in quantal's own
    code does not."""
    import random
    import subprocess
    from nir_reference import QUANTAL
    nodes, edges = good_graph()
    good = tmp_path / "good.nir"
    write_nir(good, nodes, edges)
    data = good.read_bytes()
    rng = random.Random(3)
    for trial in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path = tmp_path / f"damaged{trial}.nir"
        path.write_bytes(bytes(damaged))
        proc = subprocess.run([QUANTAL, "run", "--model", str(path), "--ticks", "5", "--load-timeout", "2"],
                              capture_output=True, timeout=30)  # a hang fails the test here
        assert proc.returncode in (0, 2), (trial, proc.returncode, proc.stderr)
        if proc.returncode == 2:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and path.name.encode() in lines[0], (trial, proc.stderr)
            assert b"quantal's own code" not in lines[0], (trial, proc.stderr)


# ---- issue 10: no silent acceptance ------------------------------------------------------------

def conv_graph(shape, weight_shape, **conv):
    nodes = {"input": {"type": "Input", "shape": np.array(shape)},
             "conv": {"type": "Conv2d", "weight": f32(np.full(weight_shape, 0.5)), "bias": f32(np.zeros(weight_shape[0])),
                      "stride": np.array([1, 1]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                      "groups": np.array([1]), **conv},
             "a": {"type": "IF", "r": f32(np.ones((weight_shape[0], 2, 2))), "v_threshold": f32(np.ones((weight_shape[0], 2, 2))),
                   "v_reset": f32(np.zeros((weight_shape[0], 2, 2)))}}
    return nodes, [("input", "conv"), ("conv", "a")]


def test_empty_graph_is_refused(tmp_path):
    path = tmp_path / "empty.nir"
    write_nir(path, {}, [])
    expect_error(tmp_path, path, "nothing to simulate")


def test_conv_input_is_checked_by_its_whole_shape(tmp_path):
    """An input of (2, 4, 4) into a conv whose weight takes 8 channels of 2 x 2 (same 32 values)."""
    nodes, edges = conv_graph([2, 4, 4], (3, 8, 1, 1), input_shape=np.array([2, 2]))
    path = tmp_path / "conv.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'conv'", "(8, 2, 2)", "(2, 4, 4)")


def test_integer_fields_are_integral(tmp_path):
    nodes, edges = conv_graph([2, 2, 2], (3, 2, 1, 1), groups=np.array([1.5]))
    path = tmp_path / "groups.nir"
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'conv'", "'groups'", "not an integer")
    nodes, edges = conv_graph([2, 2, 2], (3, 2, 1, 1), stride=np.array([1e30, 1]))
    write_nir(path, nodes, edges)
    expect_error(tmp_path, path, "node 'conv'", "'stride'")
