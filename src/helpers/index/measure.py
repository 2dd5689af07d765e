"""Measure a build's real memory and file size, to check the memory model.

Run as ``python -m helpers measure DATASET FACTORY [--n-train N] [--add-batch B]``
in a fresh process (so allocator state from earlier work does not blur the
figures); prints one JSON object with measured and predicted bytes.
"""

import json
import os
import subprocess
import sys
import tempfile

import faiss

from ..core import limits, rss
from ..core.index_files import load_index, to_ondisk
from ..data.dataset import load_dataset
from ..data.vectors import read_rows
from .build import build_index


def measure(ds, factory, n_train=None, add_batch=None, threads=None):
    """Build `factory` on dataset `ds` with the build helper and return its
    measured figures beside the memory model's prediction (all bytes), plus
    the RSS of the index read back from disk.

    RSS figures have the baseline (RSS before the phase) subtracted; peaks come
    from rss.RSSTrace.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.faiss")
        report = build_index(ds, factory, path, n_train=n_train, add_batch=add_batch,
                             threads=threads, build_budget=1 << 62, progress=False)
        index = report.pop("index")
        rss.release_free_memory()
        built = rss.current_rss() - report["rss_baseline"]
        del index
        rss.release_free_memory()
        with rss.RSSTrace() as load:
            index = faiss.read_index(path)
    measured = dict(report["measured"], index_ram_loaded=load.end_delta, index_ram_built=built)
    return {"factory": factory, "n": ds.n, "d": ds.d, "n_train": report["n_train"],
            "add_batch": report["add_batch"], "measured": measured, "predicted": report["predicted"],
            "rss_method": load.method}


def loaded_rss(path, mmap=False, dataset_dir=None, setting=""):
    """Resident memory (bytes above the baseline) after loading the index at
    `path` (mmap=True: index_files.load_index maps it, faiss.IO_FLAG_MMAP_IFC; an on-disk index maps its .ivfdata
    either way), and after searching the dataset's queries once with
    `setting` ("nprobe=16"). Returns {"after_load", "after_search", "file"}.
    """
    out = {"file": os.path.getsize(path)}
    rss.release_free_memory()
    base = rss.current_rss()
    index = load_index(path, mmap=mmap)
    out["after_load"] = rss.current_rss() - base
    if dataset_dir:

        before_queries = rss.current_rss()
        queries = load_dataset(dataset_dir).queries
        xq = read_rows(queries, 0, queries.n)
        base += rss.current_rss() - before_queries  # the queries are not the index's
        if setting:  # checked first: faiss aborts on some values (helpers.core.limits)
            values, _ = limits.check_setting(index, limits.parse_setting(setting))
            faiss.ParameterSpace().set_index_parameters(index, limits.format_setting(values))
        index.search(xq, 10)
        del xq
        out["after_search"] = rss.current_rss() - base
    return out


def loaded_rss_fresh(path, mmap=False, dataset_dir=None, setting=""):
    """loaded_rss() in a fresh Python process (nothing else resident)."""
    cmd = [sys.executable, "-m", "helpers", "measure", "--load", str(path), "--setting", setting]
    cmd += ["--mmap"] if mmap else []
    cmd += ["--dataset", str(dataset_dir)] if dataset_dir else []
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"loading {path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def compare_loads(path, dataset_dir, setting="", ondisk=False, overwrite=False):
    """loaded_rss_fresh for the index at `path` read into RAM and mapped with
    IO_FLAG_MMAP_IFC, and with ondisk=True also with its inverted lists moved to an
    .ivfdata file (index_files.to_ondisk; `overwrite` redoes that file).
    Returns {label: {"file", "after_load", "after_search"}} in bytes."""
    runs = [("read", path, False), ("mapped", path, True)]
    if ondisk:
        ondisk_path = path[:-len(".faiss")] + ".ondisk.faiss"
        to_ondisk(path, ondisk_path, overwrite=overwrite)
        runs.append(("on-disk lists", ondisk_path, False))
    return {label: loaded_rss_fresh(p, mmap, dataset_dir, setting) for label, p, mmap in runs}


def measure_fresh(dataset_dir, factory, n_train=None, add_batch=None, threads=None):
    """Run measure() in a fresh Python process and return its result dict."""
    cmd = [sys.executable, "-m", "helpers", "measure", str(dataset_dir), factory]
    if add_batch:
        cmd += ["--add-batch", str(add_batch)]
    if n_train:
        cmd += ["--n-train", str(n_train)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"measuring {factory} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


if __name__ == "__main__":  # python -m helpers.<wing>.<module>: say the command form
    from ..core.usage import wrong_form

    wrong_form("measure")
