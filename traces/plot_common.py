"""Helpers shared by quantal's plotting scripts: plot_trace.py (`quantal inspect --plot`) and
plot_study.py (`quantal plot`). They are installed together under <prefix>/share/quantal and found
beside each other (a script's own directory is first on sys.path).

Unusable input (a file that cannot be read, a missing object, an output directory that cannot be
written) is an InputProblem: the script prints one line naming the file or object and exits with
status 2, the same convention as the `quantal` executable (docs/run.md, "Exit codes").
"""
import argparse
import os
import sys
import tempfile

import h5py

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from trace_figures import ENERGY_MODELS, energy, energy_rows  # noqa: E402,F401 (ENERGY_MODELS: plot_study)

EXIT_INPUT = 2


class InputProblem(Exception):
    """The input (a file, an object in it, a command-line value, the output directory) is unusable."""


def as_text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def add_error_prefix_option(parser, default):
    """--error-prefix: the program name an error line starts with (`quantal` passes its own)."""
    parser.add_argument("--error-prefix", default=default, help=argparse.SUPPRESS)


def open_hdf5(path):
    if not os.path.exists(path):
        raise InputProblem("%s: no such file" % path)
    if os.path.isdir(path):
        raise InputProblem("%s: is a directory, not an HDF5 file" % path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputProblem("%s: cannot be opened as HDF5 (%s)" % (path, e)) from None


def prepare_out_dir(path):
    """Creates DIR if needed and checks that a file can be written in it (before anything is drawn;
    os.access alone says yes to root on a read-only mount)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".quantal-write-check-"):
            pass
    except OSError as e:
        raise InputProblem("%s: cannot write plots there (%s)" % (path, e.strerror or e)) from None


def save_figure(fig, path, dpi, tight=False):
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    except OSError as e:
        raise InputProblem("%s: cannot be written (%s)" % (path, e.strerror or e)) from None
    finally:
        plt.close(fig)


def write_text(path, text):
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as e:
        raise InputProblem("%s: cannot be written (%s)" % (path, e.strerror or e)) from None


def run_reporting_input_problems(body, error_prefix):
    """body() -> exit status; an InputProblem becomes one line on stderr and status 2."""
    try:
        return body()
    except InputProblem as e:
        print("%s: %s" % (error_prefix, e), file=sys.stderr)
        return EXIT_INPUT


# Figures meant for a paper: a readable size at a column's width, no chart junk.
PAPER_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "savefig.dpi": 200,
}


# ---- energy per layer under each energy model (quantal inspect / energy --plot, quantal plot) ----
# The figure is trace_figures.energy, the one Python's quantal.plot.energy draws too.


def energy_rows_from_json(doc, where):
    """trace_figures.energy_rows of the JSON read from `where`, an InputProblem if it is not one."""
    try:
        return energy_rows(doc)
    except ValueError as e:
        raise InputProblem("%s: %s" % (where, e)) from None


def plot_energy_per_layer(rows, path, title, dpi):
    save_figure(energy(rows, title), path, dpi, tight=True)
