"""Issue 10 ("Reliability"), the command line: nothing on disk is lost, no crash on hostile values,
no silent default. Every refusal is one line naming the file or option at fault, exit code 2
(docs/run.md, "Reliability")."""
import gzip
import os
import subprocess

import h5py
import numpy as np
import pytest

QUANTAL = os.environ.get("QUANTAL_BINARY", "quantal")


def write_idx(path, magic, dims, data):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(data))


def tiny_model(path, side=2):
    """image (1, side, side) -> dense analog input -> IF (3) -> dense -> readout (2)."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="quantal-model", format_version=np.int64(2), name="tiny", producer="test")
        pops = f.create_group("populations")
        pops.attrs["order"] = ["hidden", "logits"]
        h = pops.create_group("hidden")
        h.attrs.update(model="IF", threshold=1.0, comparison=">=", reset="subtract", v0=0.5, spike_value=1.0)
        h["shape"] = np.array([3], np.int64)
        o = pops.create_group("logits")
        o.attrs.update(model="readout")
        o["shape"] = np.array([2], np.int64)
        p = f.create_group("projections").create_group("out")
        p.attrs.update(kind="dense", source="hidden", target="logits", delay=np.int64(0), release="none",
                       mask_ratio=0.0)
        p["weight"] = np.full((2, 3), 0.5, np.float32)
        i = f.create_group("inputs").create_group("image")
        i.attrs.update(target="hidden", kind="dense", scale=1.0 / 256.0, offset=0.0)
        i["shape"] = np.array([1, side, side], np.int64)
        i["weight"] = np.full((3, side * side), 0.25, np.float32)
        f.create_group("readout").attrs.update(population="logits", accumulate="sum")


@pytest.fixture
def files(tmp_path):
    model, images, labels = tmp_path / "model.h5", tmp_path / "images.gz", tmp_path / "labels.gz"
    tiny_model(model)
    write_idx(images, 0x803, (4, 2, 2), range(16))
    write_idx(labels, 0x801, (4,), [0, 1, 0, 1])
    return model, images, labels


def run(*args):
    return subprocess.run([QUANTAL, "run", *map(str, args)], capture_output=True, text=True, timeout=120)


def one_line_error(r, *words, code=2):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


# ---- data loss -------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["--model", "--input", "--labels"])
def test_trace_that_is_an_input_is_refused(files, tmp_path, which):
    """The same file by device and inode: a hard link and a path through '..' both count."""
    model, images, labels = files
    target = {"--model": model, "--input": images, "--labels": labels}[which]
    before = target.read_bytes()
    link = tmp_path / "link.h5"
    os.link(target, link)
    spelled = tmp_path / "sub"
    spelled.mkdir()
    for trace in (target, link, spelled / ".." / target.name):
        for force in ([], ["--force"]):  # --force never replaces an input
            r = run("--model", model, "--ticks", 4, "--input", images, "--labels", labels, "--trace", trace, *force)
            one_line_error(r, trace, which, target)
            assert target.read_bytes() == before


def test_existing_trace_needs_force(files, tmp_path):
    model, images, _ = files
    trace = tmp_path / "trace.h5"
    trace.write_bytes(b"an earlier result")
    one_line_error(run("--model", model, "--ticks", 4, "--input", images, "--trace", trace), trace, "--force")
    assert trace.read_bytes() == b"an earlier result"
    r = run("--model", model, "--ticks", 4, "--input", images, "--trace", trace, "--force")
    assert r.returncode == 0, r.stderr
    with h5py.File(trace, "r") as f:
        assert f["run"].attrs["status"] == "complete"


def test_demo_existing_trace_needs_force(tmp_path):
    trace = tmp_path / "demo.h5"
    trace.write_bytes(b"keep me")
    r = subprocess.run([QUANTAL, "demo", "--samples", "1", "--ticks", "4", "--trace", str(trace)], capture_output=True,
                       text=True)
    one_line_error(r, trace, "--force")
    assert trace.read_bytes() == b"keep me"


# ---- crashes ---------------------------------------------------------------------------------

def test_offset_past_the_timestamp_range_is_refused(files, tmp_path):
    """--offset 2^64 - 1 --samples 2 wrapped the sample index (an uncaught logic_error and a trace
    left 'running'); offsets near 2^61 overflowed k*T into negative timestamps."""
    model = files[0]
    trace = tmp_path / "t.h5"
    for offset in (2 ** 64 - 1, 2 ** 61, 2 ** 53 // 8):
        r = run("--model", model, "--ticks", 8, "--offset", offset, "--samples", 2, "--trace", trace)
        one_line_error(r, "--offset", offset)
        assert not trace.exists()  # refused before the trace is created
    ok = 2 ** 53 // 8 - 2  # its two samples end exactly at tick 2^53
    r = run("--model", model, "--ticks", 8, "--offset", ok, "--samples", 2, "--trace", trace)
    assert r.returncode == 0, r.stderr
    with h5py.File(trace, "r") as f:
        assert f["run"].attrs["status"] == "complete"
        assert f["samples/start_ms"][()].tolist() == [ok * 8.0, (ok + 1) * 8.0]


def test_offset_past_the_images_is_refused(files):
    model, images, _ = files
    one_line_error(run("--model", model, "--ticks", 4, "--input", images, "--offset", 4), images, "offset 4")


@pytest.mark.parametrize("option,value", [("--threads", 100000), ("--threads", 0), ("--threads", -1),
                                          ("--samples", 0), ("--samples", -1), ("--ticks", 0), ("--ticks", -1),
                                          ("--record-samples", -2), ("--offset", -1)])
def test_counts_out_of_range_are_refused(files, option, value):
    r = run("--model", files[0], "--ticks", 4, option, value)
    line = one_line_error(r, option, value)
    assert len(line) < 200, line


def test_threads_up_to_the_maximum_run(files, tmp_path):
    r = run("--model", files[0], "--ticks", 2, "--samples", 3, "--threads", 1024)
    assert r.returncode == 0, r.stderr


def test_demo_counts_out_of_range_are_refused():
    for option, value in (("--threads", 100000), ("--threads", -1), ("--samples", -1), ("--ticks", -5)):
        r = subprocess.run([QUANTAL, "demo", option, str(value)], capture_output=True, text=True)
        one_line_error(r, option, value)


def test_out_of_memory_is_one_line_and_its_own_exit_code():
    """std::bad_alloc (here: the demo's 10^10 stimuli) ends with one line, exit code 3, no abort."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    r = subprocess.run([QUANTAL, "demo", "--samples", "10000000000", "--ticks", "1"], capture_output=True,
                       text=True, preexec_fn=limit, timeout=120)
    one_line_error(r, "out of memory", code=3)


# ---- command-line values ---------------------------------------------------------------------

@pytest.mark.parametrize("option,value", [("--e-ac", "nan"), ("--e-mac", "nan"), ("--e-ac", "inf"),
                                          ("--mask", "nan"), ("--dt", "nan"), ("--dt", "inf"), ("--dt", "0"),
                                          ("--mask", "2"), ("--e-ac", "-1")])
def test_reals_must_be_finite_and_in_range(files, tmp_path, option, value):
    """NaN passed CLI11's range checks into the report and the trace; its range messages printed
    DBL_MAX as a 309-digit number."""
    trace = tmp_path / "t.h5"
    r = run("--model", files[0], "--ticks", 4, option, value, "--trace", trace)
    line = one_line_error(r, option, value)
    assert len(line) < 200 and "000000000" not in line, line
    assert not trace.exists()


def test_demo_reals_must_be_finite():
    for option in ("--rate", "--mask", "--dt", "--e-ac"):
        r = subprocess.run([QUANTAL, "demo", option, "nan"], capture_output=True, text=True)
        one_line_error(r, option, "nan")


def test_dt_whose_timestamps_are_not_finite_is_refused(files, tmp_path):
    trace = tmp_path / "t.h5"
    r = run("--model", files[0], "--ticks", 4, "--dt", "1e308", "--trace", trace)
    one_line_error(r, "--dt", "1e+308", "not a finite time")
    assert not trace.exists()


def test_seed_is_a_plain_decimal(files, tmp_path):
    one_line_error(run("--model", files[0], "--ticks", 4, "--seed", -1), "--seed", "-1")
    one_line_error(run("--model", files[0], "--ticks", 4, "--seed", 2 ** 64), "--seed", "out of range")
    trace = tmp_path / "t.h5"  # CLI11 alone read "010" as octal 8
    r = run("--model", files[0], "--ticks", 4, "--seed", "010", "--trace", trace)
    assert r.returncode == 0, r.stderr
    with h5py.File(trace, "r") as f:
        assert int(f["run"].attrs["seed"]) == 10


def test_ticks_out_of_range_is_refused_not_clamped(files):
    line = one_line_error(run("--model", files[0], "--ticks", "99999999999999999999"), "--ticks", "out of range")
    assert len(line) < 200, line


def test_options_that_need_another_are_refused_alone(files):
    model, images, labels = files
    one_line_error(run("--model", model, "--ticks", 4, "--release", "spike"), "--release", "--mask")
    one_line_error(run("--model", model, "--ticks", 4, "--labels", labels), "--labels", labels, "--input")


def test_image_size_mismatch_names_both_files(tmp_path):
    model, images = tmp_path / "m3.h5", tmp_path / "i2.gz"
    tiny_model(model, side=3)
    write_idx(images, 0x803, (2, 2, 2), range(8))
    one_line_error(run("--model", model, "--ticks", 4, "--input", images), model, images, "2 x 2", "'image'")
