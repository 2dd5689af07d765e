"""The set-up every build and evaluation notebook starts with, in one call."""

import warnings

import faiss
import psutil

from ..core import progress
from ..core.files import format_bytes, parse_size
from ..data import dataset, groundtruth
from ..data.vectors import read_rows
from . import plots


def outputs():
    """Make a notebook's outputs fit to be read and saved: figures as plotly's JSON
    (plots.setup_renderer), Python warnings as one printed "note:" line each instead
    of a red stderr box, and in batch faiss's C++ messages to the progress log
    (progress.c_stderr_to_log)."""
    plots.setup_renderer()
    warnings.showwarning = show_as_note
    progress.c_stderr_to_log()


def show_as_note(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning's signature: one line on stdout, what was warned about."""
    print(f"note: {message} ({category.__name__})")


def budgets(ram_budget="", build_budget=""):
    """(ram_budget, build_budget) in bytes from sizes as written ("16G", "500M");
    "" or 0: the memory available now. ram_budget is what the finished index
    may use when serving, build_budget what building it may use."""
    available = psutil.virtual_memory().available
    return parse_size(ram_budget) or available, parse_size(build_budget) or available


def notebook(data_dir, gt_k=100, threads=0, ram_budget="", build_budget=""):
    """Open the dataset in `data_dir` with its queries and exact ground truth.

    Sets faiss's OpenMP threads for the notebook (0: faiss's default) and the
    plotly renderer, prints one line saying what was opened, and returns
    (ds, xq float32 (nq, d), gt_D float32 (nq, gt_k), gt_I int64 (nq, gt_k),
    ram_budget bytes, build_budget bytes) (see budgets).
    """
    outputs()
    if threads:
        faiss.omp_set_num_threads(threads)
    ram, build = budgets(ram_budget, build_budget)
    ds = dataset.load_dataset(data_dir)
    gt_D, gt_I = groundtruth.ground_truth(ds, gt_k)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    said = {True: "set", False: "available now"}
    print(f"{ds.n:,} x {ds.d} {ds.metric}, {len(xq)} queries, RAM budget {format_bytes(ram)} "
          f"({said[bool(parse_size(ram_budget))]}), build budget {format_bytes(build)} "
          f"({said[bool(parse_size(build_budget))]}), {faiss.omp_get_max_threads()} threads")
    return ds, xq, gt_D, gt_I, ram, build
