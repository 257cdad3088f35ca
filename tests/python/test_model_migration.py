"""scripts/migrate-model-v1.py: a format-version-1 model file becomes version 2 with its meaning
kept (docs/model-format.md, "Versions"); what version 1 ignored is refused, named, unless kept as
metadata; a refused migration writes nothing."""
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np

from nir_reference import run_quantal

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "migrate-model-v1.py"


def write_v1(path, extra=None):
    """A version-1 file leaning on v1's defaults: no comparison, reset, v0; qcfs_levels as a plain attribute."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(1), name="v1")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["hidden", "logits"]
        h = pops.create_group("hidden")
        h.attrs.update(model="IF", threshold=1.0, qcfs_levels=np.int64(8), **(extra or {}))
        h["shape"] = np.array([3], np.int64)
        h["bias"] = np.full(3, 0.25, np.float32)
        o = pops.create_group("logits")
        o.attrs["model"] = "readout"
        o["shape"] = np.array([2], np.int64)
        p = f.create_group("projections").create_group("out")
        p.attrs.update(kind="dense", source="hidden", target="logits", release="spike")
        p["weight"] = np.full((2, 3), 0.5, np.float32)
        f.create_group("readout").attrs["population"] = "logits"


def migrate(*args):
    return subprocess.run(["/usr/bin/python3", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_version_1_is_refused_by_quantal_and_migrated_with_its_meaning(tmp_path):
    old, new = tmp_path / "old.h5", tmp_path / "new.h5"
    write_v1(old)
    proc = run_quantal("--model", old, "--ticks", 4, check=False)
    assert proc.returncode == 2 and "format_version 1" in proc.stderr and "migrate-model-v1.py" in proc.stderr
    r = migrate(old, new)
    assert r.returncode == 0, r.stderr
    assert "qcfs_levels moved to meta:qcfs_levels" in r.stdout and "comparison = '>='" in r.stdout
    with h5py.File(new, "r") as f:
        h = f["populations/hidden"].attrs
        assert f.attrs["format_version"] == 2 and h["meta:qcfs_levels"] == 8 and "qcfs_levels" not in h
        assert (h["comparison"], h["reset"], h["v0"]) == (">=", "subtract", 0.0)
        assert f["projections/out"].attrs["mask_ratio"] == 0.0
    run_quantal("--model", new, "--ticks", 4)
    with h5py.File(old, "r") as f:
        assert f.attrs["format_version"] == 1  # the original is kept


def test_what_version_1_ignored_is_refused_or_kept_as_metadata(tmp_path):
    old = tmp_path / "old.h5"
    write_v1(old, {"refractory_ticks": np.int64(2)})
    before = old.read_bytes()
    r = migrate(old)
    assert r.returncode == 2 and "'refractory_ticks'" in r.stderr and "/populations/hidden" in r.stderr
    assert old.read_bytes() == before and not list(tmp_path.glob("*.migrating"))
    r = migrate(old, "--keep-unknown")
    assert r.returncode == 0, r.stderr
    with h5py.File(old, "r") as f:
        assert f["populations/hidden"].attrs["meta:refractory_ticks"] == 2
    run_quantal("--model", old, "--ticks", 4)
