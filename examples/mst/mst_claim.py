"""MST's ×0.82 / ×0.74 claim, checked (docs/energy.md): the shipped models run with RSM on each
target set at 0.5 and 0.75 (`quantal run --mask R --release spike --targets T`), priced by
`quantal energy` under every model; and a Swin-T-shaped network estimated the papers' way:
export.py's untrained Swin-T-shaped file, its synapses per projection as quantal counts them,
each population firing at its kind's rate measured on MST-Tiny, written as an estimate study file
that `quantal energy` prices under every model.

    PYTHONPATH=build/python /usr/bin/python3 examples/mst/mst_claim.py --quantal build/apps/quantal \
        --out traces/mst_claim [--samples 200] [--ticks 64]

Runs that already have a trace in --out are not run again. Prints the markdown tables."""
import argparse
import json
import os
import subprocess

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
DATA = "/usr/share/datasets/fashion-mnist"
MODELS = ("r0", "r50", "r75")
RATIOS = ("0.5", "0.75")
CONFIGS = [("0", "none")] + [(r, t) for r in RATIOS for t in ("attention", "attention,fc1_in", "linear", "all")]
KEYS = [("tick", "proxy, input every tick"), ("once", "proxy, input once"), ("papers", "papers' way"),
        ("local", "memory, local"), ("global", "memory, global")]


def name(v):
    return v.decode() if isinstance(v, bytes) else v


def run_all(args):
    for m in MODELS:
        for ratio, targets in CONFIGS:
            path = os.path.join(args.out, f"{m}-{ratio}-{targets.replace(',', '+')}.h5")
            if os.path.exists(path):
                continue
            mask = ["--mask", "0"] if targets == "none" else ["--mask", ratio, "--release", "spike", "--targets", targets]
            subprocess.run([args.quantal, "run", "--model", os.path.join(HERE, f"models/mst_{m}.h5"),
                            "--input", f"{DATA}/t10k-images-idx3-ubyte.gz", "--labels", f"{DATA}/t10k-labels-idx1-ubyte.gz",
                            "--samples", str(args.samples), "--ticks", str(args.ticks), "--trace", path,
                            "--record-samples", "1", *mask], check=True, stdout=subprocess.DEVNULL)


def energies(args):
    out = {}
    for m in MODELS:
        model = os.path.join(HERE, f"models/mst_{m}.h5")
        for ratio, targets in CONFIGS:
            path = os.path.join(args.out, f"{m}-{ratio}-{targets.replace(',', '+')}.h5")
            e = lambda *extra: json.loads(subprocess.run([args.quantal, "energy", path, "--model", model, "--json", *extra],
                                                         capture_output=True, text=True, check=True).stdout)
            local = e()
            glob = e("--profile", os.path.join(SOURCE, "examples/energy-profiles/45nm-global.json"))
            with h5py.File(path, "r") as f:
                acc = float((f["samples/label"][()] == f["samples/prediction"][()]).mean())
            out[(m, ratio, targets)] = dict(
                acc=acc, tick=local["models"][0]["input_every_tick_pj"], once=local["models"][0]["input_once_pj"],
                papers=local["models"][1]["input_every_tick_pj"], local=local["models"][2]["input_every_tick_pj"],
                glob=glob["models"][2]["input_every_tick_pj"])
            out[(m, ratio, targets)]["global"] = out[(m, ratio, targets)].pop("glob")
    return out


# Target sets as `quantal run --targets` reads them (docs/run.md): roles of masked projections, and
# whether the attention operators' q, k and score inputs are masked (v never is).
TARGETS = {"attention": (set(), True), "attention,fc1_in": ({"fc1_in"}, True),
           "linear": ({"qkv_in", "proj_in", "fc1_in", "fc2_in"}, True), "all": (None, True)}  # None: every role


def kind(population):
    """What a population is in a block or stage: 's2.b3.fc1' -> 'fc1', 'merge1' -> 'merge'."""
    return population.rsplit(".", 1)[1] if "." in population else population.rstrip("0123456789")


def kind_rates(path):
    """Measured on a trace of MST-Tiny: spikes per neuron per tick by population kind, and softmax
    evaluations per score neuron per tick (the operator evaluates the rows v's spikes touch)."""
    with h5py.File(path, "r") as h:
        e, t = h["energy"], h["energy/total"]
        n, ticks = int(t.attrs["samples"]), int(e.attrs["ticks_per_sample"])
        pops = [name(p) for p in e["populations/name"][()]]
        size, spikes = e["populations/size"][()], t["populations/spikes"][()]
        num, den = {}, {}
        for p, sz, sp in zip(pops, size, spikes):
            num[kind(p)] = num.get(kind(p), 0) + float(sp)
            den[kind(p)] = den.get(kind(p), 0) + float(sz) * ticks * n
        rate = {k: num[k] / den[k] for k in num}
        ops = [name(x).rsplit(".", 1)[0] for x in e["operators/name"][()]]
        scores = sum(float(size[pops.index(o + ".scores")]) for o in ops)
        softmax = float(t["operators/macs"][()].sum()) / (scores * ticks * n)
        return rate, softmax


def swin_t_model(args):
    """The untrained Swin-T-shaped file of export.py (written once, ~280 MB)."""
    path = os.path.join(args.out, "swin_t.h5")
    if not os.path.exists(path):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "export.py"), "--untrained", "swin-t", path], check=True)
    return path


def swin_t_synapses(path):
    """Synapses per projection as quantal counts them (its compiled fan-out), by role, and the
    populations in network order: the export's own network, residual stream and all."""
    import quantal
    net = quantal.load(path)
    return net.populations, net.projections


def estimate_study(path, model, populations, projections, rate, softmax, ticks, ratios):
    """A study file (docs/sweep.md layout, format version 2: no neuron visits) whose per-layer
    counts are *estimated*, not simulated: every population fires at its kind's MST-Tiny rate,
    every spike reaches its projection's mean fan-out (the papers' rate x T x FLOPs), a masked
    input loses the ratio r of its spikes, q k^T keeps (1 - r)^2 when q and k are masked, softmax v
    is not reduced (the masked scores still go through softmax). `quantal energy` prices it under
    every model, exactly as it prices a sweep."""
    pops = {p.name: p for p in populations}
    with h5py.File(model, "r") as f:
        ops = [(o, name(f["operators"][o].attrs["q"]), name(f["operators"][o].attrs["scores"]),
                int(f["operators"][o].attrs["heads"])) for o in f["operators"].attrs["order"]]
        analog = sum(int(m) for m, k in zip(f["ann/macs"][()], f["ann"].attrs["kinds"]) if name(k) == "analog_input")
    spikes = [rate[kind(p.name)] * ticks * p.size for p in populations]
    spike = {p.name: s for p, s in zip(populations, spikes)}
    configs = [(0.0, "none")] + [(r, t) for r in ratios for t in TARGETS]
    rows = {k: [] for k in ("population_spikes", "projection_attempted", "projection_transmitted",
                            "projection_masked_spikes", "operator_coincidences", "operator_deliveries",
                            "operator_macs", "operator_masked_spikes")}
    macs = []
    for r, targets in configs:
        roles, attention = TARGETS.get(targets, (set(), False))
        masked_role = lambda role: targets != "none" and (roles is None or role in roles)
        rows["population_spikes"].append(spikes)
        att, tr, ms = [], [], []
        for j in projections:
            src = spike[j.source]
            m = r * src if masked_role(j.role) else 0.0
            att.append((src - m) * j.synapses / pops[j.source].size)
            tr.append(att[-1])
            ms.append(m)
        rows["projection_attempted"].append(att)
        rows["projection_transmitted"].append(tr)
        rows["projection_masked_spikes"].append(ms)
        kept = (1 - r) if attention and targets != "none" else 1.0
        co, de, mc, om = [], [], [], []
        for o, q, scores, heads in ops:
            c, head_dim = pops[q].shape[0], pops[q].shape[0] // heads
            products = pops[scores].size * head_dim     # q k^T MACs per tick = A v MACs per tick
            co.append(rate["q"] * ticks * products * kept ** 2)
            de.append(rate["v"] * ticks * products)
            mc.append(softmax * ticks * pops[scores].size)
            om.append((1 - kept) * (spike[q] + spike[q[:-1] + "k"] + spike[scores]))
        rows["operator_coincidences"].append(co)
        rows["operator_deliveries"].append(de)
        rows["operator_macs"].append(mc)
        rows["operator_masked_spikes"].append(om)
        macs.append(analog * ticks + sum(mc))
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-study", format_version=2, models=[model], samples=1, ticks=ticks,
                       e_ac_pj=0.9, e_mac_pj=4.6, version="estimate",
                       command_line="examples/mst/mst_claim.py: counts ESTIMATED from MST-Tiny's rates, not simulated")
        g = f.create_group("models/0")
        g.attrs.update(populations=[p.name for p in populations], projections=[p.name for p in projections],
                       operators=[o[0] for o in ops])
        c = f.create_group("configurations")
        c.create_dataset("model", data=[0] * len(configs))
        c.create_dataset("ratio", data=[r for r, _ in configs])
        c.create_dataset("baseline", data=[0] * len(configs))
        c.attrs.update(release=["spike"] * len(configs), targets=[t for _, t in configs])
        res = f.create_group("results")
        res.create_dataset("macs", data=macs)
        res.create_dataset("accuracy", data=[[float("nan")]] * len(configs))
        for key, value in rows.items():
            res.create_dataset("layers/" + key, data=value)
    return configs


def swin_t_table(args):
    """Savings per target set at each ratio on the Swin-T-shaped export, per-kind rates from each
    MST-Tiny model unmasked, under every model (`quantal energy` on the estimate study)."""
    model = swin_t_model(args)
    populations, projections = swin_t_synapses(model)
    by_role = {}
    for j in projections:
        by_role[j.role] = by_role.get(j.role, 0) + j.synapses
    print("Swin-T-shaped export: synapses per role", {k: f"{v:,}" for k, v in sorted(by_role.items())},
          f"total {sum(by_role.values()):,}; populations {len(populations)}, neurons "
          f"{sum(p.size for p in populations):,}")
    head = "| rates from | model | " + " | ".join(f"{t} @ {r}" for r in RATIOS for t in TARGETS) + " |"
    rows = [head, "| --- | --- |" + " --- |" * (len(RATIOS) * len(TARGETS))]
    for m in MODELS:
        rate, softmax = kind_rates(os.path.join(args.out, f"{m}-0-none.h5"))
        study = os.path.join(args.out, f"swin_t-rates-{m}.study.h5")
        configs = estimate_study(study, model, populations, projections, rate, softmax, args.ticks,
                                 [float(r) for r in RATIOS])
        priced = {}
        for label, extra in (("local", []), ("global", ["--profile", os.path.join(SOURCE, "examples/energy-profiles/45nm-global.json")])):
            out = json.loads(subprocess.run([args.quantal, "energy", study, "--json", *extra], capture_output=True,
                                            text=True, check=True).stdout)["configurations"]
            for c in out:
                priced.setdefault(c["configuration"], {}).update(
                    {"tick": c["proxy_pj"], "once": c["proxy_once_pj"], "papers": c["papers_pj"], label: c["memory_pj"]})
        base = priced[0]
        if m == MODELS[0]:
            print(f"Swin-T-shaped, rates from {m}, unmasked, per image: " +
                  ", ".join(f"{k} {base[k]:.4g} pJ" for k, _ in KEYS) + f"; ANN {out[0]['ann_pj']:.4g} pJ")
        for key, label in KEYS:
            cells = [f"×{priced[i][key] / base[key]:.3f}" for i in range(1, len(configs))]
            rows.append(f"| {m} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quantal", default=os.path.join(SOURCE, "build/apps/quantal"))
    p.add_argument("--out", default=os.path.join(SOURCE, "traces/mst_claim"))
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--ticks", type=int, default=64)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run_all(args)
    res = energies(args)
    print("| model | ratio | targets | accuracy | " + " | ".join(k[1] for k in KEYS) + " |")
    print("| --- | --- | --- | --- |" + " --- |" * len(KEYS))
    for (m, ratio, targets), v in res.items():
        b = res[(m, "0", "none")]
        cells = [f"{v[k]:.3g} (×{v[k] / b[k]:.3f})" for k, _ in KEYS]
        print(f"| {m} | {ratio} | {targets.replace(',', ', ')} | {v['acc']:.3f} | " + " | ".join(cells) + " |")
    print()
    print(swin_t_table(args))


if __name__ == "__main__":
    main()
