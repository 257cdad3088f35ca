"""quantal.sweep (docs/python.md, issue 12): the command line's sweep run in this process returns
the study table; it equals what `quantal sweep --csv` (the executable, run separately) writes for
the same grid, and the study file's datasets; bad options raise with the command line's message."""
import csv
import os
import subprocess

import h5py
import numpy as np
import pytest

import quantal

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODEL = os.path.join(SOURCE, "examples/mst/models/mst_r0.h5")
DATA = "/usr/share/datasets/fashion-mnist"
IMAGES, LABELS = f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz"

GRID = dict(input=IMAGES, labels=LABELS, samples=10, offset=20, ticks=10, observe=[5, 10], ratios=[0, 0.5],
            release=["spike", "synapse"], targets=["attention", "fc1_in+fc2_in"], seeds=[2], threads=2)


def cli_csv(tmp_path):
    out, table = tmp_path / "cli.h5", tmp_path / "cli.csv"
    subprocess.run([BINARY, "sweep", "--model", MODEL, "--input", IMAGES, "--labels", LABELS, "--samples", "10",
                    "--offset", "20", "--ticks", "10", "--observe", "5,10", "--ratios", "0,0.5", "--release",
                    "spike,synapse", "--targets", "attention,fc1_in+fc2_in", "--seeds", "2", "--threads", "2",
                    "--out", str(out), "--csv", str(table)], check=True, capture_output=True)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def test_sweep_equals_the_command_lines_csv_and_study_file(tmp_path):
    rows = cli_csv(tmp_path)
    study = quantal.sweep(MODEL, out=tmp_path / "py.h5", **GRID)
    assert len(study) == len(rows) == 9 * 2  # (baseline + 2 ratios x 2 releases x 2 targets) x 2 observed ticks
    assert study.path == str(tmp_path / "py.h5")
    for name in rows[0]:
        if name == "command_line":  # names the output files, which differ
            continue
        column = study.table[name]
        for i, row in enumerate(rows):
            expected = row[name]
            if column.dtype == object:
                assert column[i] == expected, (name, i)
            elif column.dtype.kind == "f":
                assert column[i] == float(expected), (name, i)  # 17 digits: the same double
            else:
                assert column[i] == (int(expected) if expected else -1), (name, i)
    assert all(c.startswith("quantal sweep --model") for c in study.table["command_line"])
    # The study file's (C, O) accuracy, configuration by configuration and observed tick.
    with h5py.File(study.path, "r") as f:
        accuracy = f["results/accuracy"][()]
        observe = list(f["observe"][()])
    t = np.array([observe.index(o) for o in study.table["observe"]])
    np.testing.assert_array_equal(study.table["accuracy"], accuracy[study.table["configuration"], t])


def test_without_out_the_study_file_is_temporary():
    study = quantal.sweep([MODEL], **{**GRID, "ratios": 0.5, "release": "spike", "targets": "attention",
                                      "observe": None, "samples": 4})
    assert study.path is None
    assert list(study.table["ratio"]) == [0.0, 0.5] and list(study.table["observe"]) == [10, 10]
    assert list(study.table["same_as"]) == [-1, -1]


def cli_error(*args):
    proc = subprocess.run([BINARY, "sweep", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("quantal: ")
    return line[len("quantal: "):].removesuffix(" (see --help)")


@pytest.mark.parametrize("change, cli_args", [
    ({"ratios": [0, 1.5]}, ["--ratios", "0,1.5"]),
    ({"release": "sometimes"}, ["--release", "sometimes"]),
    ({"targets": "nothing_matches"}, ["--targets", "nothing_matches"]),
    ({"observe": [11]}, ["--observe", "11"]),
])
def test_bad_options_raise_the_command_lines_message(tmp_path, change, cli_args):
    common = ["--model", MODEL, "--input", IMAGES, "--labels", LABELS, "--samples", "10", "--ticks", "10"]
    base = {"--ratios": "0,0.5", "--release": "spike", "--targets": "attention"}
    for option, value in zip(cli_args[::2], cli_args[1::2]):
        base[option] = value
    message = cli_error(*common, *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "cli.h5"))
    grid = {**GRID, "ratios": [0, 0.5], "release": "spike", "targets": "attention", "observe": None, **change}
    with pytest.raises(quantal.InputError) as raised:
        quantal.sweep(MODEL, out=tmp_path / "py.h5", **grid)
    # The same words, but for the output path each names
    assert str(raised.value).replace(str(tmp_path / "py.h5"), "OUT") == message.replace(str(tmp_path / "cli.h5"), "OUT")
    assert not (tmp_path / "py.h5").exists()
