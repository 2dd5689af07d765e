"""The set-up every build and evaluation notebook starts with, in one call."""

import faiss
import psutil

from . import dataset, groundtruth, plots
from .files import format_bytes
from .vectors import read_rows


def notebook(data_dir, gt_k=100, threads=0, ram_budget_gib=0.0):
    """Open the dataset in `data_dir` with its queries and exact ground truth.

    Sets faiss's OpenMP threads for the notebook (0: faiss's default) and the
    plotly renderer, prints one line saying what was opened, and returns
    (ds, xq float32 (nq, d), gt_D float32 (nq, gt_k), gt_I int64 (nq, gt_k),
    ram_budget bytes: ram_budget_gib, or 0 for the memory available now).
    """
    plots.setup_renderer()
    if threads:
        faiss.omp_set_num_threads(threads)
    ram_budget = int(ram_budget_gib * 2**30) or psutil.virtual_memory().available
    ds = dataset.load_dataset(data_dir)
    gt_D, gt_I = groundtruth.ground_truth(ds, gt_k)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    print(f"{ds.n:,} x {ds.d} {ds.metric}, {len(xq)} queries, RAM budget {format_bytes(ram_budget)} "
          f"({'set' if ram_budget_gib else 'available now'}), {faiss.omp_get_max_threads()} threads")
    return ds, xq, gt_D, gt_I, ram_budget
