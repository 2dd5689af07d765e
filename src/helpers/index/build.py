"""Building indexes from disk-resident data: creation, training, batched adds."""

import glob
import math
import os
import re
import time
import warnings

import faiss
import numpy as np
import psutil

from ..core import disk, keyed_files, limits, quiet, rss
from ..core.files import check_disk_space, format_bytes, locked, read_json
from ..core.heuristics import ADD_BATCH
from ..core.index_files import load_index
from ..data.vectors import check_finite, iter_blocks, take_rows, train_sample_ids
from . import coarse, factory_tree, memory
from .indexes import (add_preassigned, final_index, load_space, new_index, omp_threads,
        replay_hnsw_levels, reserve, set_ef_construction, work_index)


class BuildError(ValueError):
    """A build cannot start or resume as asked."""


class BuildRefused(BuildError):
    """The memory model says the build will not fit its budget."""


REFUSED = "REFUSED"  # how build_all prints a refused build (the runner reports them)


def _check_arguments(ds, n_train, add_batch, checkpoint_seconds, ef_construction, threads):
    limits.check("add_batch", add_batch)
    if n_train is not None:
        limits.check("n_train", n_train, 1, ds.n, f"the dataset has {ds.n:,} rows")
    if ef_construction is not None:
        limits.check("ef_construction", ef_construction)
    if threads is not None:
        limits.check("threads", threads)
    if not isinstance(checkpoint_seconds, (int, float)) or checkpoint_seconds < 0:
        raise BuildError(f"checkpoint_seconds={checkpoint_seconds!r} is invalid: it must be >= 0")


def _key(ds, factory, n_train, ef_construction):
    """Everything a built index depends on; reuse and resume need all of it equal."""
    return {"dataset": ds.fingerprint, "metric": ds.metric, "factory": factory,
            "n_train": int(n_train), "ef_construction": ef_construction, "n": ds.n, "d": ds.d}


def train(ds, node, n_train, ef_construction, space=None):
    """Phase 1: a new index for the parsed factory `node` (factory_tree.parse),
    trained on a random sample of n_train rows. With `space` (a trained coarse
    space, helpers.index.coarse) it is the work index that preassigned adds fill
    (indexes.work_index), with the space's transforms and centroids: only its
    codes are trained. Returns (index, what faiss printed while training)."""
    if space is None:
        index = new_index(node["factory"], ds.d, ds.metric)
    else:
        index = load_space(work_index(node), space)
    if ef_construction:
        set_ef_construction(index, ef_construction)
    xt = take_rows(ds.base, train_sample_ids(ds.n, n_train))
    check_finite(xt, 0, f"the training sample of {ds.base.path}")
    with quiet.captured() as said:
        index.train(xt)
    return index, quiet.summary(said)


def build_index(ds, factory, path, n_train=None, add_batch=None, threads=None,
                build_budget=None, checkpoint_seconds=600, progress=True, overwrite=False,
                ef_construction=None, shared_coarse=True, load=True, disk_budget=None):
    """Train and fill `factory` from dataset `ds`, write it to `path`, return the report.

    Trains on a random sample of n_train database rows (default from the
    memory model), adds the database in batches of `add_batch` rows (default
    heuristics.ADD_BATCH) read from disk, with `threads` OpenMP threads (restored
    afterwards); HNSW graphs get `ef_construction` (default faiss's 40).
    IVF indexes use the dataset's shared coarse space and assignment
    (helpers.index.coarse, kept in <dir of path>/coarse/) unless shared_coarse=False:
    same index, trained and assigned once per space. The report's "index" is
    the index in RAM; load=False leaves a reused one on disk (None). Before anything is
    allocated the memory model's build peak is checked against `build_budget`
    (bytes the build may use; default: memory available now), and its file
    against `disk_budget` (bytes the index's folder may hold, coarse spaces and
    checkpoints included; default: the free disk).

    The phases, as faiss's bench_all_ivf has them: plan (key, prediction,
    reuse, refusal), train, add (from disk, checkpointed: a rerun resumes after
    the last checkpoint), commit (the index and its JSON report, `path`.json,
    as one unit: keyed_files). A checkpoint, and the final index, go beside the
    previous checkpoint where the disk and the budget hold both, else in its place
    (Checkpoints.fall_back). An existing index is reused only if
    built from the same inputs and intact.
    """
    path = os.fspath(path)
    add_batch = ADD_BATCH if add_batch is None else add_batch
    _check_arguments(ds, n_train, add_batch, checkpoint_seconds, ef_construction, threads)  # before any write
    _make_folder(path)
    # one writer per index: a second build of it waits, then reuses it (or resumes it)
    with locked(path, what=f"the index {path}"), omp_threads(threads) as threads:
        plan = _plan(ds, factory, path, n_train, add_batch, threads, build_budget,
                     ef_construction, shared_coarse, disk_budget)
        reused = None if overwrite else keyed_files.reusable(path, plan["key"])
        if reused is not None:
            return _reused(path, factory, plan, reused, load)
        ckpts = keyed_files.Checkpoints(path, plan["key"])
        if overwrite:
            ckpts.clear()
        _refuse_or_warn(ds, factory, path, plan, build_budget, ckpts)
        report = dict(plan["key"], add_batch=add_batch, threads=threads,
                      preassigned=plan["preassigned"], predicted=plan["predicted"])
        work, start_row, assign, train_trace = _train_phase(ds, plan, ckpts, overwrite, report, progress)
        index = _add_phase(ds, plan, work, start_row, assign, ckpts, checkpoint_seconds, report,
                           progress, train_trace)
        if not _room(plan, plan["pred"]["disk"]):
            ckpts.fall_back()  # the final index takes the last checkpoint's place
        keyed_files.commit(index, path, report)
        ckpts.clear()
    report["index"], report["reused"] = index, False
    report["summary"] = _summary_line(factory, plan, report)
    return report


def _make_folder(path):
    """The folder of `path`, created if missing; a BuildError if a file has its name."""
    out_dir = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(out_dir):
        raise BuildError(f"cannot write {path}: {out_dir} is a file, not a folder")
    os.makedirs(out_dir, exist_ok=True)


def _reused(path, factory, plan, reused, load):
    """The report of an index built before from the same inputs."""
    keyed_files.Checkpoints(path, plan["key"]).clear()  # left by a kill just after a commit
    return dict(reused, index=load_index(path) if load else None, reused=True,
                summary=f"{factory}: reused {path} (built from this dataset, checksum verified)")


def _summary_line(factory, plan, report):
    return (f"{factory}: trained on {plan['key']['n_train']:,}, added "
            f"{report['rows_added_this_run']:,} in {report['add_s']:.1f} s "
            f"({report['add_vectors_per_s'] or 0:,.0f} vec/s); file "
            f"{format_bytes(report['measured']['disk'])}; build peak "
            f"{format_bytes(report['measured']['build_peak'])} (predicted "
            f"{format_bytes(plan['predicted']['build_peak'])})")


def _plan(ds, factory, path, n_train, add_batch, threads, build_budget, ef_construction,
          shared_coarse, disk_budget):
    """What the build will be: the parsed factory, its key, the coarse space whose
    assignment it shares (None: it assigns its own rows), the memory model's
    prediction, and the disk budget of its folder."""
    tree = factory_tree.parse(factory, ds.d, ds.metric)
    space = factory_tree.coarse_factory(factory) if shared_coarse else None
    pred = memory.predict_tree(tree, ds.n, n_train=n_train, add_batch=add_batch, threads=threads,
                               preassigned=space is not None, build_budget=build_budget)
    return {"factory": factory, "tree": tree, "path": path, "coarse": space,
            "preassigned": space is not None, "pred": pred, "disk_budget": disk_budget,
            "out_dir": os.path.dirname(os.path.abspath(path)),
            "key": _key(ds, factory, pred["n_train"], ef_construction),
            "min_train": memory.min_train_size(tree),
            "predicted": {k: pred[k] for k in ("index_ram", "disk", "train_peak", "add_peak",
                                               "build_peak")}}


def _refuse_or_warn(ds, factory, path, plan, build_budget, ckpts):
    """Refuse a build the memory model says will not fit (BuildRefused), or whose
    file the disk or the folder's disk budget cannot hold; warn when the training
    sample is below faiss's minimum."""
    pred = plan["pred"]
    reasons = memory.fits(pred, math.inf, build_budget=build_budget or psutil.virtual_memory().available)
    reasons += _over_disk_budget(ds, plan, ckpts)
    if reasons:
        raise BuildRefused(f"refusing to build {factory} on {ds.n:,} x {ds.d}: " + "; ".join(reasons))
    if pred["n_train"] < plan["min_train"]:
        warnings.warn(f"{pred['n_train']:,} training vectors for {factory}: faiss wants at least "
                      f"{plan['min_train']:,} (39 per centroid of its largest "
                      f"k-means); centroids will be poor")
    check_disk_space(os.path.dirname(os.path.abspath(path)), pred["disk"], f"the index {path}")


def _over_disk_budget(ds, plan, ckpts):
    """[reason] when the folder, with this build's files, would hold more than its
    disk budget; [] otherwise. This build's own checkpoints are not counted: its
    final index takes their place."""
    if not plan["disk_budget"]:
        return []
    held = disk.folder_bytes(plan["out_dir"]) - sum(os.path.getsize(f) for f in ckpts.files())
    new = plan["pred"]["disk"]
    if plan["coarse"] and not os.path.exists(coarse.paths(_coarse_dir(plan), plan["coarse"])[1]):
        new += coarse.files_bytes(plan["coarse"], ds.n, ds.d, ds.metric)
    if held + new <= plan["disk_budget"]:
        return []
    return [f"its files ({format_bytes(new)}) would take {plan['out_dir']} to "
            f"{format_bytes(held + new)}, over its disk budget of {format_bytes(plan['disk_budget'])}"]


def _train_phase(ds, plan, ckpts, overwrite, report, progress):
    """The shared coarse assignment (if any) and the trained index, or the last
    checkpoint. Returns (work index, rows already in it, assignment or None,
    the RSS trace of this phase)."""
    assign, space = None, None
    with rss.RSSTrace() as trace:
        if plan["preassigned"]:
            space, assign, info = coarse.coarse_assignment(
                ds, plan["coarse"], plan["key"]["n_train"], _coarse_dir(plan), progress=progress)
            report.update(coarse_train_s=info["train_s"], coarse_assign_s=info["assign_s"],
                          coarse_reused=info["reused"])
        t0 = time.perf_counter()
        work, start_row = ckpts.load(overwrite)
        report["resumed_from"] = "checkpoint" if start_row else ("trained" if work is not None else None)
        if work is None:
            work, report["faiss_said"] = train(ds, plan["tree"], plan["key"]["n_train"],
                                               plan["key"]["ef_construction"], space)
            ckpts.save(work, 0)
            report["train_s"] = time.perf_counter() - t0
        replay_hnsw_levels(work, start_row)
    return work, start_row, assign, trace


def _coarse_dir(plan):
    return os.path.join(plan["out_dir"], "coarse")


def _add_phase(ds, plan, work, start_row, assign, ckpts, checkpoint_seconds, report, progress,
               train_trace):
    """Phase 2: add the rows after start_row from disk, in batches, checkpointing
    every checkpoint_seconds; the final index (fast-scan converted). Fills the
    report's add times, add trace and memory peaks."""
    with rss.RSSTrace() as add_trace:
        t0 = time.perf_counter()
        reserve(work, ds.n, np.bincount(assign, minlength=faiss.extract_index_ivf(work).nlist)
                if assign is not None else None)
        trace = [(start_row, 0.0)]
        every = max(report["add_batch"], ds.n // 200)

        def save(rows_done):
            _checkpoint(ckpts, work, rows_done, ds.n, plan, report)

        with keyed_files.StreamedPass(ds.n, start_row, f"add {plan['factory']}", save,
                                      checkpoint_seconds, progress) as stream:
            for i0, x in iter_blocks(ds.base, report["add_batch"], start=start_row, prefetch=True):
                if assign is not None:
                    add_preassigned(work, x, assign[i0:i0 + len(x)])
                else:
                    work.add(x)
                rows_done = i0 + len(x)
                del x  # else this batch, the next and the one being prefetched coexist
                if rows_done - trace[-1][0] >= every or rows_done == ds.n:
                    trace.append((rows_done, round(time.perf_counter() - t0, 3)))
                stream.advance(rows_done)
        index = final_index(work, plan["tree"]) if assign is not None else work
        add_s = time.perf_counter() - t0
    _report_add(report, ds.n - start_row, add_s, trace, train_trace, add_trace)
    return index


def _checkpoint(ckpts, work, rows_done, n, plan, report):
    """A copy of the partial index: beside the previous one where the disk and the
    folder's budget hold both, else in its place (the previous one removed first:
    Checkpoints.fall_back), else skipped (and said once)."""
    size = rows_done / n * plan["pred"]["disk"]
    if not _room(plan, size):
        ckpts.fall_back()
        report["checkpoints_in_place"] = True
    if _room(plan, size):
        ckpts.save(work, rows_done)
    elif "skipped_checkpoints" not in report:
        report["skipped_checkpoints"] = True
        print(f"not enough disk in {plan['out_dir']} for a checkpoint: this build resumes "
              f"only from its trained index")


def _room(plan, nbytes):
    """Whether nbytes more fit on the disk of the index's folder (check_disk_space's
    margin kept) and within its disk budget."""
    if not keyed_files.room_for(plan["out_dir"], nbytes):
        return False
    return not plan["disk_budget"] or disk.folder_bytes(plan["out_dir"]) + nbytes <= plan["disk_budget"]


def _report_add(report, added, add_s, trace, train_trace, add_trace):
    report.update(
        add_s=add_s, add_vectors_per_s=added / add_s if add_s else None, add_trace=trace,
        rows_added_this_run=added,
        measured={"train_peak": train_trace.peak - train_trace.baseline,
                  "add_peak": add_trace.peak - train_trace.baseline,
                  "build_peak": max(train_trace.peak, add_trace.peak) - train_trace.baseline},
        rss_method=add_trace.method, rss_baseline=train_trace.baseline,
        rss_trace=[(round(t, 3), r - train_trace.baseline) for t, r in
                   train_trace.trace + [(train_trace.trace[-1][0] + t, r) for t, r in add_trace.trace]],
    )


def build_name(factory, ef_construction=None):
    """How a build is named everywhere (reports, sweeps, file names): the factory,
    plus " efC=<n>" when HNSW's efConstruction was set."""
    return f"{factory} efC={ef_construction}" if ef_construction else factory


def index_path(index_dir, name):
    """Where build_all keeps a build: index_dir/<its name with safe characters>.faiss."""
    return os.path.join(index_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".faiss")


def build_all(ds, factories, index_dir, build_budget=None, n_train=None, add_batch=None,
              threads=None, overwrite=False, progress=True, ef_construction=None, disk_budget=None):
    """build_index for each factory into index_dir, printing a summary line each.

    Returns {factory: report}, each report with the index's "path" but not the
    index itself: a finished index is freed before the next one is built (at
    10M vectors two of them would not fit), and loaded again where needed
    (as_index). A factory the memory model says will not fit in build_budget
    (default: memory available when its turn comes), or whose file would take
    index_dir over disk_budget (bytes; default: the free disk), is refused before
    anything is allocated: it is printed with the reasons and left out of the
    result. An index already built from this dataset is reused unless
    overwrite=True.
    """
    os.makedirs(index_dir, exist_ok=True)
    reports = {}
    for f in factories:
        path = index_path(index_dir, build_name(f, ef_construction))
        try:
            r = build_index(ds, f, path, n_train=n_train, add_batch=add_batch, threads=threads,
                            build_budget=build_budget, progress=progress, overwrite=overwrite,
                            ef_construction=ef_construction, disk_budget=disk_budget)
        except BuildRefused as e:
            print(f"{REFUSED} {e}")
            continue
        print(r["summary"])
        del r["index"]
        reports[f] = dict(r, path=path)
    return reports


def built_indexes(index_dir, ds):
    """Indexes in index_dir built by build_index from dataset `ds`, found by their
    JSON reports: {name: (path, file size in bytes)}, name being the
    factory (plus ' efC=<n>' when efConstruction was set)."""
    out = {}
    for report_path in sorted(glob.glob(os.path.join(index_dir, "*.faiss.json"))):
        r = read_json(report_path)
        path = report_path[:-len(".json")]
        if r.get("dataset") != ds.fingerprint or not os.path.exists(path):
            continue
        out[build_name(r["factory"], r.get("ef_construction"))] = (path, r["measured"]["disk"])
    return out


if __name__ == "__main__":  # python -m helpers.<wing>.<module>: say the command form
    from ..core.usage import wrong_form

    wrong_form("build")
