"""NIR graphs written with h5py run with `quantal run` and give the spike counts of the numpy
reference of docs/nir.md (nir_reference.py). Inputs stay silent (no --input): Affine biases and
negative thresholds drive the activity."""
import h5py
import numpy as np
import pytest

from nir_reference import dyadic, f32, run_quantal, simulate, trace_counts, write_nir

TICKS = 60


def check_graph(tmp_path, nodes, edges, ticks=TICKS, dt=1.0, min_spikes=1, **write_options):
    path = tmp_path / "model.nir"
    write_nir(path, nodes, edges, **write_options)
    trace = tmp_path / "trace.h5"
    run_quantal("--model", path, "--ticks", ticks, "--dt", dt, "--trace", trace, "--force")  # dt loops reuse it
    expected = simulate(nodes, edges, ticks, dt)
    got = trace_counts(trace, {name: c.size for name, c in expected.items()})
    for name, counts in expected.items():
        np.testing.assert_array_equal(got[name], counts, err_msg=f"population {name}")
    assert sum(int(c.sum()) for c in expected.values()) >= min_spikes
    return expected


def if_node(n, threshold=1.0, v_reset=0.0, r=1.0):
    return {"type": "IF", "r": f32(np.full(n, r)), "v_threshold": f32(np.full(n, threshold)),
            "v_reset": f32(np.full(n, v_reset))}


def lif_node(n, tau=8.0, v_leak=0.0, threshold=1.0, v_reset=0.0, r=1.0):
    return {"type": "LIF", "tau": f32(np.full(n, tau)), "r": f32(np.full(n, r)), "v_leak": f32(np.full(n, v_leak)),
            "v_threshold": f32(np.full(n, threshold)), "v_reset": f32(np.full(n, v_reset))}


def affine(rng, n_out, n_in, bias_scale=0.5, w_scale=1.0):
    return {"type": "Affine", "weight": dyadic(rng, (n_out, n_in), w_scale), "bias": dyadic(rng, n_out, bias_scale)}


def test_affine_if_chain(tmp_path):
    rng = np.random.default_rng(1)
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "fc1": affine(rng, 8, 4), "if1": if_node(8),
             "fc2": affine(rng, 6, 8, 0.25), "if2": if_node(6, threshold=0.75),
             "fc3": affine(rng, 3, 6, 0.125), "if3": if_node(3, v_reset=-0.5),
             "output": {"type": "Output", "shape": np.array([3])}}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "fc3"), ("fc3", "if3"),
             ("if3", "output")]
    counts = check_graph(tmp_path, nodes, edges, min_spikes=50)
    assert counts["if2"].sum() > 0 and counts["if3"].sum() > 0


def test_conv_if_sumpool_flatten_affine(tmp_path):
    rng = np.random.default_rng(2)
    nodes = {"input": {"type": "Input", "shape": np.array([1, 6, 6])},
             "conv": {"type": "Conv2d", "weight": dyadic(rng, (3, 1, 3, 3)), "bias": dyadic(rng, 3, 0.5),
                      "stride": np.array([1, 1]), "padding": np.array([1, 1]), "dilation": np.array([1, 1]),
                      "groups": 1, "input_shape": np.array([6, 6])},
             "if1": if_node(3 * 36),
             "conv2": {"type": "Conv2d", "weight": dyadic(rng, (4, 3, 3, 3), 0.5), "bias": dyadic(rng, 4, 0.25),
                       "stride": np.array([1, 1]), "padding": np.array([1, 1]), "dilation": np.array([1, 1]),
                       "groups": 1},
             "if2": if_node(4 * 36),
             "pool": {"type": "SumPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                      "padding": np.array([0, 0])},
             "flat": {"type": "Flatten", "start_dim": 1, "end_dim": -1, "input_type": np.array([4, 3, 3])},
             "fc": affine(rng, 5, 36, 0.25, 0.5), "if3": if_node(5),
             "output": {"type": "Output", "shape": np.array([5])}}
    edges = [("input", "conv"), ("conv", "if1"), ("if1", "conv2"), ("conv2", "if2"), ("if2", "pool"),
             ("pool", "flat"), ("flat", "fc"), ("fc", "if3"), ("if3", "output")]
    counts = check_graph(tmp_path, nodes, edges, min_spikes=100)
    assert counts["if3"].sum() > 0


def test_lif_layers(tmp_path):
    rng = np.random.default_rng(3)
    nodes = {"input": {"type": "Input", "shape": np.array([3])},
             "fc1": affine(rng, 10, 3, 4.0), "lif1": lif_node(10, tau=8.0, v_leak=0.25),
             "fc2": affine(rng, 4, 10, 2.0, 8.0), "lif2": lif_node(4, tau=4.0, threshold=0.5, v_reset=-0.25, r=2.0),
             "output": {"type": "Output", "shape": np.array([4])}}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    counts = check_graph(tmp_path, nodes, edges, ticks=120, min_spikes=20)
    assert counts["lif1"].sum() > 0


def test_lif_dt_scales_time_constants(tmp_path):
    """With dt = 0.5 ms the same graph is stepped twice as finely (alpha = 1 - dt/tau, gain dt r/tau)."""
    rng = np.random.default_rng(4)
    nodes = {"input": {"type": "Input", "shape": np.array([2])},
             "fc1": affine(rng, 6, 2, 4.0), "lif1": lif_node(6, tau=4.0, v_leak=0.5),
             "output": {"type": "Output", "shape": np.array([6])}}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")]
    check_graph(tmp_path, nodes, edges, ticks=100, dt=0.5, min_spikes=5)


def test_per_neuron_parameters(tmp_path):
    """Per-neuron tau, v_leak, thresholds and resets of LIF, IF and CubaLIF nodes (NIR's arrays) run
    as the reference steps each neuron with its own values, at two dt."""
    rng = np.random.default_rng(12)
    n = 8
    lif = {"type": "LIF", "tau": f32(4.0 + np.arange(n)), "r": f32(np.ones(n)), "v_leak": f32(np.arange(n) / 16.0),
           "v_threshold": f32(0.5 + np.arange(n) / 8.0), "v_reset": f32(-np.arange(n) / 32.0)}
    ifn = {"type": "IF", "r": f32(np.full(5, 0.5)), "v_threshold": f32([0.5, 1.0, 1.5, 2.0, 0.75]),
           "v_reset": f32([0.0, -0.25, 0.0, 0.25, 0.0])}
    cuba = {"type": "CubaLIF", "tau_syn": f32([2.0, 3.0, 4.0]), "tau_mem": f32([4.0, 6.0, 8.0]), "r": f32(np.ones(3)),
            "v_leak": f32(np.zeros(3)), "w_in": f32(np.ones(3)), "v_threshold": f32([0.25, 0.5, 0.75]),
            "v_reset": f32(np.zeros(3))}
    nodes = {"input": {"type": "Input", "shape": np.array([3])},
             "fc1": affine(rng, n, 3, 4.0), "lif": lif, "fc2": affine(rng, 5, n, 1.0, 4.0), "if": ifn,
             "fc3": affine(rng, 3, 5, 0.5, 2.0), "cuba": cuba, "output": {"type": "Output", "shape": np.array([3])}}
    nodes["fc1"]["bias"] = np.abs(nodes["fc1"]["bias"]) + np.float32(0.5)
    nodes["fc3"]["bias"] = np.abs(nodes["fc3"]["bias"]) + np.float32(0.75)
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "if"), ("if", "fc3"), ("fc3", "cuba"),
             ("cuba", "output")]
    for dt in (1.0, 0.5):
        counts = check_graph(tmp_path, nodes, edges, ticks=150, dt=dt, min_spikes=30)
        assert len(set(counts["lif"].tolist())) > 2  # neurons with their own rates
        assert counts["if"].sum() > 0 and counts["cuba"].sum() > 0


def test_nested_graph(tmp_path):
    rng = np.random.default_rng(5)
    block = {"type": "NIRGraph",
             "nodes": {"input": {"type": "Input", "shape": np.array([4])},
                       "fc": affine(rng, 6, 4, 3.0), "lif": lif_node(6, tau=5.0),
                       "output": {"type": "Output", "shape": np.array([6])}},
             "edges": [("input", "fc"), ("fc", "lif"), ("lif", "output")]}
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "block": block,
             "fc2": affine(rng, 3, 6, 0.25), "if2": if_node(3),
             "output": {"type": "Output", "shape": np.array([3])}}
    edges = [("input", "block"), ("block", "fc2"), ("fc2", "if2"), ("if2", "output")]
    counts = check_graph(tmp_path, nodes, edges, min_spikes=20)
    assert "block.lif" in counts
    with h5py.File(tmp_path / "trace.h5", "r") as f:
        assert "block.lif" in f["spikes"]


def test_every_other_node_type(tmp_path):
    """Linear, Scale, Threshold, Delay, Conv1d, I (readout), float64, old IF without v_reset,
    uncompressed datasets."""
    rng = np.random.default_rng(6)
    old_if = if_node(5)
    del old_if["v_reset"]
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             # Threshold below zero fires every tick on silent input: a clock
             "clock": {"type": "Threshold", "threshold": f32(np.full(4, -0.5))},
             "lin": {"type": "Linear", "weight": dyadic(rng, (5, 4)).astype(np.float64)},
             "scale": {"type": "Scale", "scale": dyadic(rng, 5, 1.0)},
             "delay": {"type": "Delay", "delay": f32(np.full(5, 3.0))},
             "if1": old_if,
             "fc": affine(rng, 2 * 8, 5, 0.5),
             "if2": if_node(16),
             "unflat_conv": {"type": "Conv1d", "weight": dyadic(rng, (3, 2, 3)), "bias": dyadic(rng, 3, 0.25),
                             "stride": np.array([1]), "padding": np.array([1]), "dilation": np.array([1]),
                             "groups": 1, "input_shape": np.array([8])},
             "if3": if_node(24),
             "fc4": affine(rng, 4 * 4 * 4, 24, 0.5), "if4": if_node(64),
             "lin5": {"type": "Linear", "weight": dyadic(rng, (3, 64), 2.0)},
             "integrator": {"type": "I", "r": f32(np.ones(3))},
             "output": {"type": "Output", "shape": np.array([3])}}
    edges = [("input", "clock"), ("clock", "lin"), ("lin", "scale"), ("scale", "delay"), ("delay", "if1"),
             ("if1", "fc"), ("fc", "if2"), ("if2", "unflat_conv"), ("unflat_conv", "if3"), ("if3", "fc4"),
             ("fc4", "if4"), ("if4", "lin5"), ("lin5", "integrator"), ("integrator", "output")]
    counts = check_graph(tmp_path, nodes, edges, ticks=50, min_spikes=50, compression=None)
    assert counts["clock"].sum() == 4 * 50
    assert counts["if1"].sum() > 0 and counts["if3"].sum() > 0


def test_conv_same_padding_groups_and_readout_output(tmp_path):
    """padding "same", grouped and dilated convolution, and an Output fed by a weight node (a readout)."""
    rng = np.random.default_rng(9)
    nodes = {"input": {"type": "Input", "shape": np.array([2, 5, 5])},
             "conv": {"type": "Conv2d", "weight": dyadic(rng, (4, 1, 3, 3)), "bias": np.abs(dyadic(rng, 4, 0.5)) + 0.25,
                      "stride": np.array([1, 1]), "padding": "same", "dilation": np.array([2, 2]), "groups": 2},
             "if1": if_node(4 * 25),
             "conv2": {"type": "Conv2d", "weight": dyadic(rng, (2, 4, 3, 3), 0.5), "bias": dyadic(rng, 2, 0.25),
                       "stride": np.array([2, 2]), "padding": "valid", "dilation": np.array([1, 1]), "groups": 1},
             "if2": if_node(2 * 2 * 2, threshold=0.5),
             "head": affine(rng, 3, 8, 0.25),
             "output": {"type": "Output", "shape": np.array([3])}}
    edges = [("input", "conv"), ("conv", "if1"), ("if1", "conv2"), ("conv2", "if2"), ("if2", "head"),
             ("head", "output")]
    check_graph(tmp_path, nodes, edges, min_spikes=50)
    with h5py.File(tmp_path / "trace.h5", "r") as f:
        assert "output" not in f["spikes"]  # a readout never spikes
        assert "output" in [n.decode() if isinstance(n, bytes) else n for n in f["energy/populations/name"][()]]


def test_avgpool_after_conv(tmp_path):
    rng = np.random.default_rng(7)
    nodes = {"input": {"type": "Input", "shape": np.array([2, 4, 4])},
             "conv": {"type": "Conv2d", "weight": dyadic(rng, (2, 2, 1, 1)), "bias": dyadic(rng, 2, 0.5) + 0.5,
                      "stride": np.array([1, 1]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                      "groups": 1},
             "if1": if_node(32),
             "avg": {"type": "AvgPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                     "padding": np.array([0, 0])},
             "if2": if_node(8, threshold=0.5),
             "output": {"type": "Output", "shape": np.array([2, 2, 2])}}
    edges = [("input", "conv"), ("conv", "if1"), ("if1", "avg"), ("avg", "if2"), ("if2", "output")]
    counts = check_graph(tmp_path, nodes, edges, min_spikes=20)
    assert counts["if2"].sum() > 0


def test_cuba_lif(tmp_path):
    """Current-based LIF (and a CubaLI readout): the synaptic current filters the input."""
    rng = np.random.default_rng(8)

    def cuba(n, typ="CubaLIF", tau_syn=4.0, tau_mem=8.0, r=2.0, w_in=1.5, v_leak=0.0, threshold=1.0, v_reset=0.0):
        node = {"type": typ, "tau_syn": f32(np.full(n, tau_syn)), "tau_mem": f32(np.full(n, tau_mem)),
                "r": f32(np.full(n, r)), "v_leak": f32(np.full(n, v_leak)), "w_in": f32(np.full(n, w_in))}
        if typ == "CubaLIF":
            node.update(v_threshold=f32(np.full(n, threshold)), v_reset=f32(np.full(n, v_reset)))
        return node

    nodes = {"input": {"type": "Input", "shape": np.array([3])},
             "fc1": affine(rng, 8, 3, 2.0), "cuba1": cuba(8, v_leak=0.125),
             "fc2": affine(rng, 5, 8, 0.5, 4.0), "cuba2": cuba(5, tau_syn=2.0, tau_mem=4.0, r=1.0, w_in=2.0, v_reset=-0.25),
             "fc3": affine(rng, 2, 5, 0.25), "li": cuba(2, "CubaLI"),
             "output": {"type": "Output", "shape": np.array([2])}}
    nodes["fc1"]["bias"] = np.abs(nodes["fc1"]["bias"]) + np.float32(0.25)
    edges = [("input", "fc1"), ("fc1", "cuba1"), ("cuba1", "fc2"), ("fc2", "cuba2"), ("cuba2", "fc3"), ("fc3", "li"),
             ("li", "output")]
    for dt in (1.0, 0.5):
        counts = check_graph(tmp_path, nodes, edges, ticks=150, dt=dt, min_spikes=30)
        assert counts["cuba1"].sum() > 0 and counts["cuba2"].sum() > 0
