"""`quantal run --targets` on the shipped MST-Tiny: every projection carries the role its place in
the transformer gives it (derived here from the population names export.py writes, independently
of the exporter's role code), and each target set reaches exactly the documented projections."""
import os
import re
import subprocess

import h5py

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODEL = os.path.join(SOURCE, "examples/mst/models/mst_r0.h5")


def expected_role(source, target):
    if re.fullmatch(r"s\d+\.b\d+\.[qkv]", target):
        return "qkv_in"
    if source.endswith(".av"):
        return "proj_in"
    if source.endswith(".act2"):
        return "fc1_in"
    if source.endswith(".fc1"):
        return "fc2_in"
    if target.startswith("merge"):
        return "merge"
    if target == "logits":
        return "head"
    if re.fullmatch(r"s\d+\.b\d+\.act[12]|final", target):
        return "stream"
    raise AssertionError(f"no role expected for {source}->{target}")


def projections():
    with h5py.File(MODEL, "r") as f:
        g = f["projections"]
        return [(name, g[name].attrs["source"], g[name].attrs["target"], g[name].attrs["role"])
                for name in g.attrs["order"]]


def masked_line(targets):
    out = subprocess.run([BINARY, "run", "--model", MODEL, "--ticks", "2", "--samples", "1", "--mask", "0.5",
                          "--release", "spike", "--targets", targets], capture_output=True, text=True, check=True)
    return next(line for line in out.stdout.splitlines() if line.startswith("masked:"))


def test_every_shipped_projection_has_the_role_of_its_place():
    rows = projections()
    assert len(rows) == 55
    for name, source, target, role in rows:
        assert role == expected_role(source, target), name


def test_target_sets_reach_the_documented_projections():
    counts = {}
    for _, _, _, role in projections():
        counts[role] = counts.get(role, 0) + 1
    linear = ", ".join(f"{counts[r]} {r}" for r in ("qkv_in", "proj_in", "fc1_in", "fc2_in"))
    assert masked_line("attention").endswith("targets attention = 4 operators (q, k, score)")
    assert masked_line("linear").endswith(f"targets linear = {linear}, 4 operators (q, k, score)")
    assert counts == {"stream": 25, "qkv_in": 12, "proj_in": 4, "fc1_in": 4, "fc2_in": 4, "merge": 5, "head": 1}
    all_line = masked_line("all")
    assert all_line.endswith("25 stream, 12 qkv_in, 4 proj_in, 4 fc1_in, 4 fc2_in, 5 merge, 1 head, "
                             "4 operators (q, k, score)")


def test_unknown_targets_and_targets_without_mask_are_refused():
    for args, words in ((["--mask", "0.5", "--targets", "atention"], "--targets 'atention'"),
                        (["--targets", "linear"], "--targets linear needs --mask")):
        out = subprocess.run([BINARY, "run", "--model", MODEL, "--ticks", "2", "--samples", "1"] + args,
                             capture_output=True, text=True)
        assert out.returncode == 2, out.stderr
        assert words in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_the_trace_records_roles_and_inspect_shows_them(tmp_path):
    trace = tmp_path / "t.h5"
    subprocess.run([BINARY, "run", "--model", MODEL, "--ticks", "2", "--samples", "1", "--trace", str(trace)],
                   capture_output=True, text=True, check=True)
    with h5py.File(trace, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["energy/projections/name"][()]]
        roles = [r.decode() if isinstance(r, bytes) else r for r in f["energy/projections/role"][()]]
    assert dict(zip(names, roles)) == {name: role for name, _, _, role in projections()}
    out = subprocess.run([BINARY, "inspect", str(trace)], capture_output=True, text=True, check=True).stdout
    row = next(line for line in out.splitlines() if line.strip().startswith("s0.b0.act1->s0.b0.q "))
    assert row.split()[1] == "qkv_in", row
