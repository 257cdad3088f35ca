#!/usr/bin/env python3
"""Rewrites a quantal model file of format version 1 as version 2 (docs/model-format.md, "Versions"),
keeping what version 1's reader made of it, and saying every change on stdout:

- `qcfs_levels` (v1's documented metadata) becomes `meta:qcfs_levels`;
- a value v1's reader filled in silently is written out: `comparison` ">=", `reset` "subtract",
  `threshold` 1, `v0` 0 (spiking populations), `mask_ratio` 0 (releasing projections), an
  operator's `scale` 1 and its `*_mask_ratio` 0;
- a `groups` dataset (which v1's reader also took) becomes the `groups` attribute.

Anything else v1's reader ignored (unknown or misspelt attributes and datasets, `v_reset` with a
subtracting reset, a projection `delay` beside per-synapse delays) is refused, named, because it
is most likely a mistake; `--keep-unknown` moves such items into the metadata namespace instead
(`meta:<name>`), where they stay ignored. Shapes are not rewritten: quantal checks them on load.

    /usr/bin/python3 scripts/migrate-model-v1.py OLD.h5 [NEW.h5]     (default: in place)
"""
import argparse
import os
import shutil
import sys

import h5py
import numpy as np

RULE = {"threshold", "comparison", "reset", "v0", "spike_value"}
POPULATION_ATTRS = {
    "IF": RULE, "LIF": RULE | {"tau_ticks", "v_leak"}, "CubaLIF": RULE | {"tau_ticks", "tau_syn_ticks", "v_leak"},
    "readout": {"v0"}, "spike_source": {"spike_value"}, "bernoulli_source": {"spike_value"}}
PROJECTION_DATA = {"dense": {"weight"}, "conv2d": {"weight", "stride", "padding", "dilation"},
                   "sum_pool2d": {"kernel_size", "stride", "padding"}, "avg_pool2d": {"kernel_size", "stride", "padding"},
                   "one_to_one": {"weight"}, "sparse": {"row_begin", "target", "weight", "delay", "probability"}}
OPERATOR_ATTRS = {"op", "layout", "q", "k", "v", "scores", "output", "heads", "window", "shift", "scale"} | {
    f"{p}_{s}" for p in ("q", "k", "score") for s in ("release", "mask_ratio")}


class Refused(Exception):
    pass


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


class Migration:
    def __init__(self, keep_unknown):
        self.keep_unknown, self.refused = keep_unknown, []

    def say(self, where, what):
        print(f"{where}: {what}")

    def default(self, g, where, name, value):
        if name not in g.attrs:
            g.attrs[name] = value
            self.say(where, f"{name} = {value!r} written out (version 1's reader used it when absent)")

    def unused(self, g, where, attrs=(), data=()):
        for kind, names in (("attribute", attrs), ("dataset", data)):
            for name in names:
                if self.keep_unknown:
                    if kind == "attribute":
                        g.attrs["meta:" + name] = g.attrs[name]
                        del g.attrs[name]
                    else:
                        g.move(name, "meta:" + name)
                    self.say(where, f"{kind} {name!r} moved to 'meta:{name}' (version 1's reader ignored it)")
                else:
                    self.refused.append(f"{where}: {kind} {name!r} is ignored by version 1's reader and unknown to "
                                        "version 2 (fix it, or --keep-unknown to keep it as metadata)")

    def check(self, g, where, attrs, data):
        extra_attrs = [a for a in g.attrs if not a.startswith("meta:") and a not in attrs]
        extra_data = [d for d in g if not d.startswith("meta:") and d not in data]
        self.unused(g, where, extra_attrs, extra_data)

    def population(self, g, where):
        model = text(g.attrs.get("model", ""))
        if "qcfs_levels" in g.attrs:
            g.attrs["meta:qcfs_levels"] = g.attrs["qcfs_levels"]
            del g.attrs["qcfs_levels"]
            self.say(where, "qcfs_levels moved to meta:qcfs_levels")
        attrs = {"model"} | POPULATION_ATTRS.get(model, set())
        if model in ("IF", "LIF", "CubaLIF"):
            for name, value in (("threshold", 1.0), ("comparison", ">="), ("reset", "subtract"), ("v0", 0.0)):
                self.default(g, where, name, value)
            if text(g.attrs["reset"]) == "value":
                attrs = attrs | {"v_reset"}
                self.default(g, where, "v_reset", 0.0)
        self.check(g, where, attrs, {"shape", "bias"} | ({"probability"} if model == "bernoulli_source" else set()))

    def groups_attribute(self, g, where):
        if "groups" in g and isinstance(g["groups"], h5py.Dataset):
            value = np.asarray(g["groups"][()]).reshape(-1)
            if value.size != 1:
                self.refused.append(f"{where}: dataset 'groups' holds {value.size} values, not one")
                return
            del g["groups"]
            g.attrs["groups"] = np.int64(value[0])
            self.say(where, f"dataset groups moved to attribute groups = {int(value[0])}")

    def projection(self, g, where):
        kind = text(g.attrs.get("kind", ""))
        attrs = {"kind", "source", "target", "release", "mask_ratio"}
        if kind == "conv2d":
            self.groups_attribute(g, where)
            attrs.add("groups")
        if not (kind == "sparse" and "delay" in g):
            attrs.add("delay")  # per-synapse delays replace the projection's
        if text(g.attrs.get("release", "none")) != "none":
            self.default(g, where, "mask_ratio", 0.0)
        self.check(g, where, attrs, PROJECTION_DATA.get(kind, set()))

    def analog_input(self, g, where):
        kind = text(g.attrs.get("kind", ""))
        attrs, data = {"target", "kind", "scale", "offset"}, {"shape", "weight", "bias", "pad_to"}
        if kind == "conv2d":
            self.groups_attribute(g, where)
            attrs.add("groups")
            data |= {"stride", "padding", "dilation"}
        self.check(g, where, attrs, data)

    def operator(self, g, where):
        self.default(g, where, "scale", 1.0)
        for part in ("q", "k", "score"):
            if text(g.attrs.get(part + "_release", "none")) != "none":
                self.default(g, where, part + "_mask_ratio", 0.0)
        self.check(g, where, OPERATOR_ATTRS, {"bias", "mask"})

    def run(self, f, path):
        if text(f.attrs.get("format", "")) != "quantal-model":
            raise Refused(f"{path}: not a quantal model file (attribute 'format')")
        version = int(f.attrs.get("format_version", 0))
        if version != 1:
            raise Refused(f"{path}: format_version {version}, this script migrates version 1")
        collections = {"populations": self.population, "projections": self.projection, "inputs": self.analog_input,
                       "operators": self.operator}
        for name, migrate in collections.items():
            if name not in f:
                continue
            self.check(f[name], f"{path}: /{name}", {"order"}, set(f[name]))
            for member in f[name]:
                if not member.startswith("meta:"):
                    migrate(f[name][member], f"{path}: /{name}/{member}")
        if "readout" in f:
            self.check(f["readout"], f"{path}: /readout", {"population", "accumulate"}, set())
        self.check(f, path, {"format", "format_version", "name", "producer", "provenance"},
                   set(collections) | {"readout"})
        if self.refused:
            raise Refused("\n".join(self.refused))
        f.attrs["format_version"] = np.int64(2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", help="a version-1 model file")
    p.add_argument("new", nargs="?", help="where to write version 2 (default: OLD, in place)")
    p.add_argument("--keep-unknown", action="store_true",
                   help="move what version 1 ignored into meta: names instead of refusing the file")
    args = p.parse_args(argv)
    target = args.new or args.old
    work = target + ".migrating"  # all or nothing: the result replaces `target` only when complete
    shutil.copyfile(args.old, work)
    try:
        with h5py.File(work, "r+") as f:
            Migration(args.keep_unknown).run(f, args.old)
    except Refused as e:
        os.remove(work)
        print(e, file=sys.stderr)
        print("migrate-model-v1.py: nothing written", file=sys.stderr)
        return 2
    os.replace(work, target)
    print(f"{target}: format_version 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
