"""Operators (softmax_attention, layer_norm_head) in a network built in Python: the same run as
the same network written by hand as a model file (docs/model-format.md, "Operators") and run by
`quantal run --trace`; bad shapes raise with the model file's words."""
import h5py
import numpy as np
import pytest

import quantal
from nir_reference import dyadic, run_quantal
from test_python_module import assert_result_equals_trace

C, H, W, HEADS, WINDOW, SHIFT = 4, 2, 2, 2, 2, 1
TOKENS = WINDOW * WINDOW
SCORES = (1, HEADS, TOKENS, TOKENS)


def arrays(rng):
    """Weights on a dyadic grid; the shift mask of one window: tokens of the rolled-in row apart."""
    mask = np.where(np.add.outer([0, 0, 1, 1], [0, 0, 1, 1]) == 1, -100.0, 0.0)[None].astype(np.float32)
    return dict(w_q=dyadic(rng, (16, 16), 1.5), w_k=dyadic(rng, (16, 16), 1.5), w_v=dyadic(rng, (16, 16), 1.5),
                w_out=dyadic(rng, (3, 16)), bias=dyadic(rng, (HEADS, TOKENS, TOKENS), 2.0), mask=mask,
                source_weight=dyadic(rng, (2, C)), offset=dyadic(rng, C), gamma=dyadic(rng, C),
                beta=dyadic(rng, C), head_weight=dyadic(rng, (3, C)))


def releases(masked):
    return dict(q=quantal.Release("spike", 0.25), k=quantal.Release("spike", 0.25),
                score=quantal.Release("spike", 0.5)) if masked else dict(q=None, k=None, score=None)


def build(a, masked):
    b = quantal.NetworkBuilder()
    b.add_population("src", 16, quantal.BernoulliSource(0.5))
    for name in ("q", "k", "v", "av"):
        b.add_population(name, (C, H, W), quantal.IF(threshold=1.0, v0=0.0))
    b.add_population("scores", SCORES, quantal.IF(threshold=0.5, v0=0.0))
    b.add_population("out", 3, quantal.Readout())
    for name in ("q", "k", "v"):
        b.connect("src", name, quantal.Dense(a["w_" + name]))
    b.connect("av", "out", quantal.Dense(a["w_out"]))
    r = releases(masked)
    b.add_attention("attn", q="q", k="k", v="v", scores="scores", output="av", scale=0.5, heads=HEADS,
                    window=WINDOW, shift=SHIFT, bias=a["bias"], mask=a["mask"], q_release=r["q"],
                    k_release=r["k"], score_release=r["score"])
    b.add_layer_norm_head("head", sources=["q", "av"], output="out", eps=1e-5, source_weight=a["source_weight"],
                          offset=a["offset"], gamma=a["gamma"], beta=a["beta"], weight=a["head_weight"])
    return b.build()


def write_model(path, a, masked):
    """The network of build(), written by hand after docs/model-format.md."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="ops", producer="test")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["src", "q", "k", "v", "av", "scores", "out"]
        def population(name, shape, **attrs):
            g = pops.create_group(name)
            g.attrs.update(attrs)
            g["shape"] = np.array(shape, np.int64)
            return g
        population("src", [16], model="bernoulli_source")["probability"] = np.array([0.5])
        for name in ("q", "k", "v", "av"):
            population(name, [C, H, W], model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.0)
        population("scores", list(SCORES), model="IF", threshold=0.5, comparison=">=", reset="subtract", v0=0.0)
        population("out", [3], model="readout")
        prj = f.create_group("projections")
        prj.attrs["order"] = ["src->q", "src->k", "src->v", "av->out"]
        for source, target, w in (("src", "q", "w_q"), ("src", "k", "w_k"), ("src", "v", "w_v"),
                                  ("av", "out", "w_out")):
            g = prj.create_group(f"{source}->{target}")
            g.attrs.update(kind="dense", source=source, target=target)
            g["weight"] = a[w]
        ops = f.create_group("operators")
        ops.attrs["order"] = ["attn", "head"]
        g = ops.create_group("attn")
        g.attrs.update(op="softmax_attention", layout="image", q="q", k="k", v="v", scores="scores", output="av",
                       heads=np.int64(HEADS), window=np.int64(WINDOW), shift=np.int64(SHIFT), scale=0.5)
        if masked:
            g.attrs.update(q_release="spike", q_mask_ratio=0.25, k_release="spike", k_mask_ratio=0.25,
                           score_release="spike", score_mask_ratio=0.5)
        g["bias"], g["mask"] = a["bias"], a["mask"]
        g = ops.create_group("head")
        g.attrs.update(op="layer_norm_head", sources=["q", "av"], output="out", eps=1e-5)
        for key in ("source_weight", "offset", "gamma", "beta"):
            g[key] = a[key]
        g["weight"] = a["head_weight"]
        f.create_group("readout").attrs.update(population="out", accumulate="sum")


@pytest.mark.parametrize("masked", [False, True])
def test_operators_built_in_python_equal_the_model_file(tmp_path, masked):
    a = arrays(np.random.default_rng(71))
    net = build(a, masked)
    assert "attn" in net.operators
    model, trace = tmp_path / "ops.h5", tmp_path / "trace.h5"
    write_model(model, a, masked)
    run_quantal("--model", model, "--ticks", 12, "--samples", 3, "--seed", 9, "--trace", trace)
    result = net.run(ticks=12, samples=3, seed=9)
    assert_result_equals_trace(result, trace)  # spikes, predictions, every ledger table
    from_file = quantal.load(model).run(ticks=12, samples=3, seed=9)
    np.testing.assert_array_equal(result.readout, from_file.readout)
    assert all(len(result.spikes[p].tick) > 0 for p in ("q", "k", "v", "scores", "av"))
    ops = result.ledger.operators
    assert ops["coincidences"].sum() > 0 and ops["deliveries"].sum() > 0 and ops["macs"].sum() > 0
    assert (ops["masked_spikes"].sum() > 0) == masked
    # Network.save writes the operators: the command line runs the saved file to the same trace.
    saved, again = tmp_path / "saved.h5", tmp_path / "again.h5"
    net.save(saved)
    with h5py.File(saved, "r") as f:
        assert sorted(f["operators"]) == ["attn", "head"]
    run_quantal("--model", saved, "--ticks", 12, "--samples", 3, "--seed", 9, "--trace", again)
    assert_result_equals_trace(result, again)


def model_error(tmp_path, a, edit):
    """The model file's message for an edited copy of the file, without the file's prefix."""
    path = tmp_path / "bad.h5"
    write_model(path, a, False)
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(ValueError) as e:
        quantal.load(path)
    return str(e.value).split(": ", 1)[1]


def test_bad_operator_shapes_raise_the_model_file_messages(tmp_path):
    a = arrays(np.random.default_rng(72))
    cases = [
        ("bias", dict(bias=a["bias"][:1]), lambda f: f["operators/attn"].__delitem__("bias")
         or f["operators/attn"].create_dataset("bias", data=a["bias"][:1])),
        ("mask", dict(mask=a["mask"][0]), lambda f: f["operators/attn"].__delitem__("mask")
         or f["operators/attn"].create_dataset("mask", data=a["mask"][0])),
        ("heads", dict(heads=3), None),
        ("gamma", dict(gamma=a["gamma"][:3]), lambda f: f["operators/head"].__delitem__("gamma")
         or f["operators/head"].create_dataset("gamma", data=a["gamma"][:3])),
        ("head_weight", dict(head_weight=a["head_weight"].T), lambda f: f["operators/head"].__delitem__("weight")
         or f["operators/head"].create_dataset("weight", data=a["head_weight"].T)),
    ]
    for what, change, edit in cases:
        bad = dict(a)
        if what == "heads":
            b = quantal.NetworkBuilder()
            b.add_population("src", 16, quantal.BernoulliSource(0.5))
            for name in ("q", "k", "v", "av"):
                b.add_population(name, (C, H, W), quantal.IF(threshold=1.0, v0=0.0))
            b.add_population("scores", (1, 3, TOKENS, TOKENS), quantal.IF(threshold=0.5, v0=0.0))
            b.add_attention("attn", q="q", k="k", v="v", scores="scores", output="av", scale=0.5, heads=3,
                            window=WINDOW, bias=np.zeros((3, TOKENS, TOKENS)))
            with pytest.raises(ValueError, match=r"operator 'attn': heads 3 does not divide 4 channels"):
                b.build()
            continue
        bad.update({k if k != "head_weight" else "head_weight": v for k, v in change.items()})
        expected = model_error(tmp_path, a, edit)
        with pytest.raises(ValueError) as e:
            build(bad, False)
        assert str(e.value) == expected, what
    with pytest.raises(ValueError, match="operator 'attn': names population 'nope', which does not exist"):
        b = quantal.NetworkBuilder()
        b.add_attention("attn", q="nope", k="k", v="v", scores="s", output="o", scale=1.0, heads=1, window=1,
                        bias=np.zeros((1, 1, 1)))
    with pytest.raises(ValueError, match="must be a spiking neuron population"):
        b = quantal.NetworkBuilder()
        for name in ("q", "k", "v", "av"):
            b.add_population(name, (C, H, W), quantal.IF(threshold=1.0, v0=0.0))
        b.add_population("scores", SCORES, quantal.Readout())
        b.add_attention("attn", q="q", k="k", v="v", scores="scores", output="av", scale=0.5, heads=HEADS,
                        window=WINDOW, bias=a["bias"], q_release=quantal.Release("synapse", 0.5))
        b.build()
