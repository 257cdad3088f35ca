"""`quantal run --compensate` and `--release-spread K` (docs/run.md, docs/engine.md "Release variants")
on the shipped MST-Tiny: refusals, the report line, the trace's /run attributes, thread-count
independence, and a resume with another setting refused."""
import os
import re
import subprocess

import h5py
import pytest

SOURCE = os.environ.get("QUANTAL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ["QUANTAL_BINARY"]
MODEL = os.path.join(SOURCE, "examples/mst/models/mst_r0.h5")
IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
BASE = ["run", "--model", MODEL, "--ticks", "4", "--samples", "1"]


def quantal(*args):
    return subprocess.run([BINARY, *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, words", [
    (["--compensate"], "--compensate needs --mask"),
    (["--release-spread", "2"], "--release-spread 2 needs --mask"),
    (["--mask", "1", "--compensate"], "--compensate with --mask 1"),
    (["--mask", "0.5", "--release-spread", "0"], "--release-spread"),
    (["--mask", "0.5", "--release-spread", "-1"], "--release-spread"),
    (["--mask", "0.5", "--release-spread", "nan"], "--release-spread"),
    (["--mask", "0.5", "--release-spread", "inf"], "--release-spread"),
    (["--mask", "0.5", "--release-spread", "2e6"], "--release-spread"),
    (["--mask", "0.5", "--release-spread", "wide"], "--release-spread"),
])
def test_meaningless_release_variants_are_refused(args, words):
    out = quantal(*BASE, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert words in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("quantal: "), out.stderr


def masked_line(stdout):
    return next(line for line in stdout.splitlines() if line.startswith("masked:"))


def test_report_and_trace_name_the_variants(tmp_path):
    trace = tmp_path / "t.h5"
    out = quantal(*BASE, "--mask", "0.5", "--release", "synapse", "--targets", "linear", "--compensate",
                  "--release-spread", "4", "--trace", str(trace))
    assert out.returncode == 0, out.stderr
    line = masked_line(out.stdout)
    assert line.startswith("masked: ratio 0.5, release synapse, compensated (surviving weights x 2), "
                           "release spread 4 (Beta), targets linear = "), line
    with h5py.File(trace, "r") as f:
        run = f["run"].attrs
        assert run["compensate"] == 1 and run["release_spread"] == 4.0
        assert "--compensate --release-spread 4" in run["command_line"]
    plain = tmp_path / "p.h5"
    out = quantal(*BASE, "--mask", "0.5", "--trace", str(plain))
    assert out.returncode == 0, out.stderr
    assert "compensated" not in masked_line(out.stdout) and "spread" not in masked_line(out.stdout)
    with h5py.File(plain, "r") as f:
        assert f["run"].attrs["compensate"] == 0 and f["run"].attrs["release_spread"] == 0.0


def test_variants_change_results_and_not_with_the_thread_count():
    args = ["run", "--model", MODEL, "--input", IMAGES, "--labels", LABELS, "--ticks", "8", "--samples", "6",
            "--mask", "0.5", "--targets", "all"]
    runs = {}
    for name, extra in (("plain", []), ("compensate", ["--compensate"]), ("spread", ["--release-spread", "2"]),
                        ("both", ["--compensate", "--release-spread", "2"])):
        one = quantal(*args, *extra, "--threads", "1")
        two = quantal(*args, *extra, "--threads", "2")
        assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
        # everything but the command line printed nowhere: the reports are identical (but for the timing lines)
        one_report, two_report = (re.sub(r"^(time|speed): .*\n", "", o.stdout, flags=re.M) for o in (one, two))
        assert one_report == two_report, name
        runs[name] = one_report
    report = {k: v.split("\n", 2)[2] for k, v in runs.items()}  # without the run and masked lines
    assert len(set(report.values())) == 4, "every variant changes what the network does"


def test_resume_with_another_variant_is_refused(tmp_path):
    ckpt = tmp_path / "c.ckpt"
    args = [*BASE, "--mask", "0.5", "--compensate", "--release-spread", "3"]
    first = quantal(*args, "--checkpoint", str(ckpt))
    assert first.returncode == 0, first.stderr
    for other, words in (([*BASE, "--mask", "0.5", "--release-spread", "3"], "--compensate yes"),
                         ([*BASE, "--mask", "0.5", "--compensate", "--release-spread", "5"], "--release-spread 3"),
                         ([*BASE, "--mask", "0.5", "--compensate"], "--release-spread 3")):
        out = quantal(*other, "--resume", str(ckpt))
        assert out.returncode == 2, out.stdout + out.stderr
        assert words in out.stderr and out.stderr.count("\n") == 1, out.stderr
    same = quantal(*args, "--resume", str(ckpt))
    assert same.returncode == 0, same.stderr
