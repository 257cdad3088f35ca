#!/usr/bin/python3
"""MST-Tiny spike by spike: `quantal run` against examples/mst/reference.py (issue 8, target 1).

Regenerates the table of docs/performance.md, "Spike-level MST-Tiny: quantal vs reference.py",
in one command (about 6 minutes on 2 cores with the defaults and a 0.6 s/image engine):

    bench/mst_vs_reference.py [--quantal build/apps/quantal] [--samples 16] [--reps 3]

For each model (default examples/mst/models/mst_r0.h5) and each configuration — the file as it
is, and `--mask 0.75 --release spike` on every projection (the reference with `--mask 0.75`: the
same masks, per element, per tick and per projection, plus the attention's q, k and scores) —
it runs, interleaved within each repetition (quantal, reference, quantal, reference, ...):
  * `quantal run --model M --input IMAGES --samples N --ticks T --threads 1 [--mask ...]`,
  * `reference.py --model M --samples NR --ticks T --batch NR --threads 1` (float32,
    OMP_NUM_THREADS=1, the same IDX file: FASHION_MNIST_DIR is --input's folder),
  * each once more with `--samples 1 --ticks 1`: the start-up (interpreter/torch import, model
    load, input decode, one tick of one image), subtracted from the whole run to give the
    marginal CPU time per image = (whole − start-up) / N,
all under `/usr/bin/time` (CPU = user + sys of the whole process, peak RSS). Medians over the
repetitions. quantal's ledger (the report `quantal run` prints) gives the work per image:
synaptic events = transmitted events of every projection + the attention operators'
coincidences and deliveries; neuron visits = the populations' `updates`. ns/event and ns/visit
divide the marginal CPU time per image by those (each is the whole cost per unit, not a share).
Finally `quantal run --threads 2` against `--threads 1` on --thread-samples images, wall time
(meaningful only on an otherwise idle machine: the load average is printed with it).

Options: --quantal (default $QUANTAL_BINARY or build/apps/quantal), --model (repeatable),
--samples N (quantal images, default 16), --reference-samples NR (default 64: one batch of 64),
--reps R (default 3), --ticks T (64), --mask RATIO (0.75), --thread-samples (48; 0 skips),
--json FILE (every run's raw numbers).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REFERENCE = os.path.join(ROOT, "examples", "mst", "reference.py")
PYTHON = os.environ.get("REFERENCE_PYTHON", "/usr/bin/python3")  # Debian torch, numpy, h5py
IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, {cpu, user, sys, wall, rss_mb})."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        done = subprocess.run(["/usr/bin/time", "-f", "%U %S %e %M", "-o", t.name] + cmd,
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"mst_vs_reference: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()}")
        user, sys_, wall, rss = t.read().split()[-4:]
    return done.stdout, {"cpu": float(user) + float(sys_), "user": float(user), "sys": float(sys_),
                         "wall": float(wall), "rss_mb": int(rss) / 1024}


def _table(lines, header):
    """Rows of one section of quantal's energy report as dicts keyed by the header's words."""
    try:
        start = next(i for i, l in enumerate(lines) if l.startswith(header))
    except StopIteration:
        return []
    names = lines[start + 1].split()
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("  "):
            break
        rows.append(dict(zip(names, line.split())))
    return rows


def parse_ledger(stdout):
    """Per-sample totals from `quantal run`'s report: events, visits, spikes, samples, accuracy."""
    lines = stdout.splitlines()
    pops = _table(lines, "populations (per sample)")
    projs = _table(lines, "projections (per sample)")
    ops = _table(lines, "operators (per sample)")
    if not pops or not projs:
        sys.exit("mst_vs_reference: cannot find the ledger tables in quantal's output:\n" + stdout[:2000])
    m = re.search(r"(\d+) of (\d+) samples", stdout)
    acc = re.search(r"accuracy: (\d+) / (\d+)", stdout)
    r = {"samples": int(m.group(1)) if m else None,
         "visits": sum(float(p["updates"]) for p in pops),
         "spikes": sum(float(p["spikes"]) for p in pops),
         "transmitted": sum(float(p["transmitted"]) for p in projs),
         "coincidences": sum(float(o["coincidences"]) for o in ops),
         "deliveries": sum(float(o["deliveries"]) for o in ops),
         "accuracy": int(acc.group(1)) / int(acc.group(2)) if acc else None}
    r["events"] = r["transmitted"] + r["coincidences"] + r["deliveries"]
    return r


def machine():
    model = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                  .stdout.splitlines() if l.startswith("Model name")), "?")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    return {"nproc": os.cpu_count(), "cpu": model, "commit": commit}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quantal", default=os.environ.get("QUANTAL_BINARY", os.path.join(ROOT, "build", "apps", "quantal")))
    p.add_argument("--model", action="append", help="model file (repeatable; default mst_r0.h5)")
    p.add_argument("--input", default=IMAGES, help="IDX test images (the labels file must sit beside it)")
    p.add_argument("--samples", type=int, default=16, help="images for quantal (N)")
    p.add_argument("--reference-samples", type=int, default=64, help="images for reference.py (one batch)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--ticks", type=int, default=64)
    p.add_argument("--mask", type=float, default=0.75, help="mask ratio of the masked configuration")
    p.add_argument("--thread-samples", type=int, default=48, help="images for --threads 2 vs 1 (0: skip)")
    p.add_argument("--json", help="write every run's numbers here")
    args = p.parse_args(argv)
    models = args.model or [os.path.join(ROOT, "examples", "mst", "models", "mst_r0.h5")]
    if not os.access(args.quantal, os.X_OK):
        sys.exit(f"mst_vs_reference: {args.quantal}: not an executable (build quantal_cli or pass --quantal)")
    labels = args.input.replace("images-idx3", "labels-idx1")
    env = dict(os.environ, OMP_NUM_THREADS="1", FASHION_MNIST_DIR=os.path.dirname(os.path.abspath(args.input)))

    info = machine()
    info.update(quantal=os.path.abspath(args.quantal), load_start=loadavg(), started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    print(f"== machine: nproc {info['nproc']}, {info['cpu']}; load {info['load_start']}; source {info['commit']}; "
          f"quantal {info['quantal']}", flush=True)

    def quantal_cmd(model, extra, samples, ticks, threads=1):
        return [args.quantal, "run", "--model", model, "--input", args.input, "--labels", labels,
                "--samples", str(samples), "--ticks", str(ticks), "--threads", str(threads)] + extra

    def reference_cmd(model, extra, samples, ticks):
        return [PYTHON, REFERENCE, "--model", model, "--samples", str(samples), "--ticks", str(ticks),
                "--batch", str(args.reference_samples), "--threads", "1", "--json"] + extra

    configs = []
    for model in models:
        base = os.path.basename(model)
        configs.append((f"{base}, masks of the file", model, [], []))
        configs.append((f"{base}, --mask {args.mask:g} --release spike, every projection", model,
                        ["--mask", f"{args.mask:g}", "--release", "spike"], ["--mask", f"{args.mask:g}"]))

    runs = {c[0]: {"quantal": [], "quantal_startup": [], "reference": [], "reference_startup": []} for c in configs}
    threads = {1: [], 2: []}
    for rep in range(args.reps):
        for name, model, qx, rx in configs:
            for side in ("quantal", "reference"):
                if side == "quantal":
                    out, t = timed(quantal_cmd(model, qx, args.samples, args.ticks))
                    t.update(parse_ledger(out))
                    _, s = timed(quantal_cmd(model, qx, 1, 1))
                    n = t["samples"]
                else:
                    out, t = timed(reference_cmd(model, rx, args.reference_samples, args.ticks), env)
                    r = json.loads(out)
                    ops = r["operator_counts_per_sample"].values()
                    t.update(samples=r["samples"], eval_cpu=r.get("cpu_seconds"),
                             accuracy=r["accuracy"][str(args.ticks)],
                             events=r["total_synaptic_events_per_sample"]
                             + sum(o["coincidences"] + o["dynamic_events"] for o in ops),
                             spikes=r["total_spikes_per_sample"])
                    _, s = timed(reference_cmd(model, rx, 1, 1), env)
                    n = t["samples"]
                t["marginal"] = (t["cpu"] - s["cpu"]) / n
                runs[name][side].append(t)
                runs[name][side + "_startup"].append(s)
                print(f"  rep {rep + 1} {side:9} {name}: {t['cpu']:.2f} s CPU for {n} images, start-up "
                      f"{s['cpu']:.2f} s -> {t['marginal']:.3f} s/image; load {loadavg()}", flush=True)
        if args.thread_samples:
            for k in (1, 2):
                _, t = timed(quantal_cmd(models[0], [], args.thread_samples, args.ticks, k))
                t["load"] = loadavg()
                threads[k].append(t)
                print(f"  rep {rep + 1} quantal --threads {k}: {t['wall']:.2f} s wall, {t['cpu']:.2f} s CPU "
                      f"({args.thread_samples} images); load {t['load']}", flush=True)

    med = statistics.median
    print(f"\n== {args.reps} repetitions, medians; quantal N = {args.samples}, reference N = "
          f"{args.reference_samples} (batch {args.reference_samples}), T = {args.ticks}, one thread; "
          f"load at the end {loadavg()}")
    print("CPU = user + sys of the whole process; s/image = (whole run − start-up run) / N; "
          "ns/event and ns/visit: quantal's s/image over its ledger's events and visits per image\n")
    print("| configuration | quantal s/image | reference s/image | reference / quantal | synaptic events / image "
          "| ns / event | neuron visits / image | ns / visit | peak RSS quantal / reference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = []
    for name, *_ in configs:
        q, r = runs[name]["quantal"], runs[name]["reference"]
        qs, rs = med(t["marginal"] for t in q), med(t["marginal"] for t in r)
        ev, vis = med(t["events"] for t in q), med(t["visits"] for t in q)
        row = dict(configuration=name, quantal_s_per_image=qs, reference_s_per_image=rs, ratio=rs / qs,
                   events_per_image=ev, ns_per_event=qs / ev * 1e9, visits_per_image=vis,
                   ns_per_visit=qs / vis * 1e9, rss_mb_quantal=med(t["rss_mb"] for t in q),
                   rss_mb_reference=med(t["rss_mb"] for t in r))
        summary.append(row)
        print(f"| {name} | {qs:.3f} | {rs:.3f} | **{rs / qs:.2f}** | {ev:.4g} | {row['ns_per_event']:.2f} | "
              f"{vis:.4g} | {row['ns_per_visit']:.2f} | {row['rss_mb_quantal']:.0f} / {row['rss_mb_reference']:.0f} MB |")
    print("\n| configuration | quantal whole run (N images) | start-up | reference whole run | start-up "
          "| reference evaluation loop CPU / image | events / image quantal / reference | accuracy at T quantal / reference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, *_ in configs:
        d = runs[name]
        q, r = d["quantal"], d["reference"]
        ev_cpu = [t["eval_cpu"] for t in r if t.get("eval_cpu") is not None]
        print(f"| {name} | {med(t['cpu'] for t in q):.2f} s ({q[0]['samples']}) | "
              f"{med(t['cpu'] for t in d['quantal_startup']):.2f} s | {med(t['cpu'] for t in r):.2f} s "
              f"({r[0]['samples']}) | {med(t['cpu'] for t in d['reference_startup']):.2f} s | "
              f"{(med(ev_cpu) / r[0]['samples']) if ev_cpu else float('nan'):.3f} s | "
              f"{med(t['events'] for t in q):.4g} / {med(t['events'] for t in r):.4g} | "
              f"{q[0]['accuracy']} / {r[0]['accuracy']} |")
    speedup = None
    if args.thread_samples:
        w1, w2 = med(t["wall"] for t in threads[1]), med(t["wall"] for t in threads[2])
        speedup = w1 / w2
        print(f"\nquantal --threads 2 vs --threads 1, {args.thread_samples} images of {os.path.basename(models[0])}: "
              f"wall {w1:.2f} s -> {w2:.2f} s, speed-up **{speedup:.2f}** (CPU {med(t['cpu'] for t in threads[1]):.2f} s "
              f"/ {med(t['cpu'] for t in threads[2]):.2f} s; load during the runs "
              f"{', '.join(t['load'] for t in threads[1] + threads[2])})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "summary": summary, "runs": runs,
                       "threads": {str(k): v for k, v in threads.items()}, "thread_speedup": speedup}, f, indent=1)


if __name__ == "__main__":
    main()
