"""examples/python/mst_accuracy_energy.py runs (on 8 images, to stay fast), writes its two figures,
and its unmasked accuracy at T = 64 is what `quantal run` reports for the same images."""
import os
import re
import subprocess
import sys

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")
DATA = "/usr/share/datasets/fashion-mnist"
IMAGES = 8


def test_mst_accuracy_energy_example_runs(tmp_path):
    out = tmp_path / "plots"
    proc = subprocess.run([sys.executable, os.path.join(SOURCE, "examples", "python", "mst_accuracy_energy.py"),
                           "--out", str(out), "--images", str(IMAGES)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("accuracy_vs_ticks.png", "energy_per_layer.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    row = next(line for line in proc.stdout.splitlines() if line.startswith("no failures"))
    at_64 = float(row.split()[-2])  # the last accuracy column (T=64), before the energy
    cli = subprocess.run([QUANTAL, "run", "--model", os.path.join(SOURCE, "examples", "mst", "models", "mst_r0.h5"),
                          "--input", f"{DATA}/t10k-images-idx3-ubyte.gz", "--labels",
                          f"{DATA}/t10k-labels-idx1-ubyte.gz", "--samples", str(IMAGES), "--ticks", "64",
                          "--seed", "1"], capture_output=True, text=True, check=True)
    correct = int(re.search(r"^accuracy: (\d+) / 8$", cli.stdout, re.M).group(1))
    assert at_64 == round(correct / IMAGES, 3)
