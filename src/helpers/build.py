"""Building indexes from disk-resident data: creation, training, batched adds."""

import contextlib
import math
import os
import time

import faiss
import numpy as np

from . import quiet
from .indexes import (add_preassigned, components, final_index, load_space, new_index,
                      preassignable, storage, work_index, write_index, write_index_file,
                      write_ondisk)
from .files import (atomic_path, check_disk_space, commit_point, file_sha256,
                    format_bytes, is_partial, locked, read_json, write_json)






def _replay_hnsw_levels(index, rows):
    """HNSW draws each new vector's level from a random generator that is not
    saved with the index. Drawing the levels of the rows already added makes a
    resumed build continue the sequence of an uninterrupted one (~3 s per
    million rows)."""
    for sub in components(index):
        if isinstance(sub, faiss.IndexHNSW):
            for _ in range(rows):
                sub.hnsw.random_level()


class BuildError(ValueError):
    """A build cannot start or resume as asked."""


class BuildRefused(BuildError):
    """The memory model says the build will not fit its budget."""


REFUSED = "REFUSED"  # how build_all prints a refused build (the runner reports them)


def train_sample_ids(n, n_train, seed=0):
    """Sorted ids of a random training sample (not the first rows): int64 (n_train,)."""
    import numpy as np

    rng = np.random.default_rng([seed, 17])
    return np.sort(rng.choice(n, size=n_train, replace=False))


def set_ef_construction(index, ef_construction):
    """Set HNSW's efConstruction (search depth while inserting) on every HNSW
    graph inside `index`; the factory string cannot say it. Returns the index."""
    for sub in components(index):
        if isinstance(sub, faiss.IndexHNSW):
            sub.hnsw.efConstruction = ef_construction
    return index


@contextlib.contextmanager
def omp_threads(threads=None):
    """Run the block with `threads` OpenMP threads (None or 0: unchanged), then
    restore the previous setting. Yields the thread count in force."""
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(int(threads))
    try:
        yield faiss.omp_get_max_threads()
    finally:
        faiss.omp_set_num_threads(before)


def _check_int(name, value, low, high=None, hint=""):
    """Refuse a parameter that is not a whole number in [low, high]."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        rng = f">= {low:,}" if high is None else f"between {low:,} and {high:,}"
        raise BuildError(f"{name}={value!r} is invalid: it must be a whole number {rng}{hint}")


def _check_arguments(ds, n_train, add_batch, checkpoint_seconds, ef_construction):
    _check_int("add_batch", add_batch, 1)
    if n_train is not None:
        _check_int("n_train", n_train, 1, ds.n, f" (the dataset has {ds.n:,} rows)")
    if ef_construction is not None:
        _check_int("ef_construction", ef_construction, 1)
    if not isinstance(checkpoint_seconds, (int, float)) or checkpoint_seconds < 0:
        raise BuildError(f"checkpoint_seconds={checkpoint_seconds!r} is invalid: it must be >= 0")


def _key(ds, factory, n_train, ef_construction):
    """Everything a built index depends on; reuse and resume need all of it equal."""
    return {"dataset": ds.fingerprint, "metric": ds.metric, "factory": factory,
            "n_train": int(n_train), "ef_construction": ef_construction, "n": ds.n, "d": ds.d}


def _recover_pending_report(path):
    """Finish or undo a commit cut short (see _commit): the pending report becomes
    the report if the index file is the one it describes, else it is dropped."""
    pending = path + ".json.pending"
    if not os.path.exists(pending):
        return
    report = read_json(pending)
    if os.path.exists(path) and file_sha256(path) == report.get("sha256"):
        os.replace(pending, path + ".json")
        commit_point()
    else:
        os.remove(pending)


def _reusable(path, key):
    """The report of the index at `path` if it was built from `key` and its file is
    intact (SHA-256 as recorded); None if there is no index. Raises BuildError for
    an index built from other inputs, or one whose file changed since."""
    _recover_pending_report(path)
    if not os.path.exists(path):
        return None
    report = read_json(path + ".json") if os.path.exists(path + ".json") else {}
    if {k: report.get(k) for k in key} != key:
        differs = sorted(k for k in key if report.get(k) != key[k]) or ["no build report"]
        raise BuildError(f"{path} exists and was not built from this dataset with {key['factory']!r}, "
                         f"n_train={key['n_train']:,}, ef_construction={key['ef_construction']} "
                         f"(differs in: {', '.join(differs)}); pass overwrite=True (--force on the "
                         f"command line, force in the notebooks) or choose another path")
    if file_sha256(path) != report.get("sha256"):
        raise BuildError(f"{path} does not match the checksum in its build report: the file was "
                         f"modified or corrupted after it was built; pass overwrite=True (--force on the "
                         f"command line, force in the notebooks) to rebuild it")
    return report


def _commit(index, path, report):
    """Write `index` to `path` and its report to `path`.json as one unit.

    The commit point is the rename of the index file. Just before it the
    complete report, with the new file's SHA-256, is written as
    `path`.json.pending; a kill after the rename leaves that pending report,
    which the next call completes (_recover_pending_report). Before the rename
    the old index and report, if any, are untouched.
    """
    with atomic_path(path) as tmp:
        report["measured"]["disk"] = write_index_file(index, tmp)
        report["sha256"] = file_sha256(tmp)  # read back: what the report vouches for is on disk
        write_json(path + ".json.pending", report)
    # the index's rename (atomic_path) was the commit point; this completes it
    os.replace(path + ".json.pending", path + ".json")
    commit_point()


class _Checkpoints:
    """The partly built index beside `path`, as `path`.checkpoint-<rows>.

    The commit point is `path`.checkpoint.json, which names the current
    checkpoint file and its row count, and the key it was built for. A new
    checkpoint file is complete before the JSON names it, and the file it
    replaces is removed only after, so a kill at any instant leaves one
    consistent pair. The trained, still empty index is checkpoint 0.
    """

    def __init__(self, path, key):
        self.path, self.key, self.state_path = path, key, path + ".checkpoint.json"

    def files(self):
        import glob

        return glob.glob(glob.escape(self.path) + ".checkpoint-*")

    def load(self, overwrite):
        """(index, rows added) of the last checkpoint for this key, or (None, 0)."""
        if not os.path.exists(self.state_path):
            return None, 0
        state = read_json(self.state_path)
        if {k: state.get(k) for k in self.key} != self.key:
            if overwrite:
                self.clear()
                return None, 0
            raise BuildError(f"a checkpoint beside {self.path} was made for other inputs "
                             f"({state.get('factory')}, n_train={state.get('n_train')}); remove "
                             f"{self.state_path} or pass overwrite=True")
        file = os.path.join(os.path.dirname(self.path), state["file"])
        index = load_index(file)
        if index.ntotal != state["rows_added"]:
            raise BuildError(f"{file} holds {index.ntotal:,} vectors but {self.state_path} says "
                             f"{state['rows_added']:,}: the checkpoint is inconsistent; remove both "
                             f"or pass overwrite=True")
        return index, state["rows_added"]

    def save(self, index, rows):
        file = f"{self.path}.checkpoint-{rows}"
        write_index(index, file)
        write_json(self.state_path, dict(self.key, rows_added=rows, file=os.path.basename(file)))
        for old in self.files():
            if old != file and not is_partial(old):
                os.remove(old)

    def clear(self):
        if os.path.exists(self.state_path):
            os.remove(self.state_path)  # first: the files it named are no longer trusted
        for f in self.files():
            os.remove(f)


def _room_for(directory, nbytes):
    """Whether `directory` has nbytes free plus check_disk_space's margin."""
    from .files import NotEnoughDiskError

    try:
        check_disk_space(directory, nbytes)
        return True
    except NotEnoughDiskError:
        return False







def _reserve(index, n, list_sizes=None):
    """Allocate the final size of the index's growing arrays up front, so that
    nothing grows by doubling (a std::vector past 8.6 GB of SQ8 codes would
    briefly hold 8.6 + 17.2 GB): flat code arrays of n vectors, HNSW links for
    n vectors (+2%), and inverted lists of the given sizes (int (nlist,))."""
    for sub in storage(index):
        if isinstance(sub, faiss.IndexFlatCodes):
            have = sub.codes.size()
            sub.codes.resize(max(have, n * sub.code_size))
            sub.codes.resize(have)  # shrinking keeps the capacity
        elif isinstance(sub, faiss.IndexHNSW):
            links = sub.hnsw.neighbors
            have = links.size()
            cum = faiss.vector_to_array(sub.hnsw.cum_nneighbor_per_level)
            probas = faiss.vector_to_array(sub.hnsw.assign_probas)
            slots = sum(p * cum[level + 1] for level, p in enumerate(probas))
            links.resize(max(have, int(n * slots * 1.02) + 1024))
            links.resize(have)
        elif isinstance(sub, faiss.IndexIVF) and list_sizes is not None:
            il = faiss.downcast_InvertedLists(sub.invlists)
            if isinstance(il, faiss.ArrayInvertedLists):
                for list_no, size in enumerate(list_sizes):
                    have = il.list_size(list_no)
                    il.resize(list_no, max(have, int(size)))
                    il.resize(list_no, have)


def _train(ds, factory, n_train, ef_construction, space=None):
    """A new index for `factory`, trained on a random sample of n_train rows. With
    `space` (a trained coarse space, helpers.coarse) it is the work index that
    preassigned adds fill (indexes.work_index), with the space's transforms and
    centroids: only its codes are trained."""
    from .vectors import check_finite, take_rows

    if space is None:
        index = new_index(factory, ds.d, ds.metric)
    else:
        index = load_space(work_index(factory, ds.d, ds.metric), space)
    if ef_construction:
        set_ef_construction(index, ef_construction)
    xt = take_rows(ds.base, train_sample_ids(ds.n, n_train))
    check_finite(xt, 0, f"the training sample of {ds.base.path}")
    with quiet.captured() as said:
        index.train(xt)
    return index, quiet.summary(said)


def build_index(ds, factory, path, n_train=None, add_batch=None, threads=None,
                build_budget=None, checkpoint_seconds=600, progress=True, overwrite=False,
                ef_construction=None, shared_coarse=True):
    """Train and fill `factory` from dataset `ds`, write it to `path`, return the report.

    Trains on a random sample of n_train database rows (default from the
    memory model), adds the database in batches of `add_batch` rows (default
    memory.ADD_BATCH) read from disk, with `threads` OpenMP threads (restored
    afterwards); HNSW graphs get `ef_construction` (default faiss's 40).
    IVF indexes on raw vectors use the dataset's shared coarse quantizer and
    assignment (helpers.coarse, kept in <dir of path>/coarse/) unless
    shared_coarse=False: same index, trained and assigned once per nlist.
    Before anything is allocated the memory model's build peak is checked
    against `build_budget` (bytes the build may use; default: memory available
    now); a budget that is given also caps the default training sample
    (memory.capped_train_size).

    Resumable: checkpoints of the partly filled index are written every
    `checkpoint_seconds` (see _Checkpoints) and a rerun continues after the
    last one. The final index and its JSON report (`path` + '.json': times,
    throughput, add rate against rows, sizes, SHA-256, measured peak RSS beside
    the model's predictions) are committed as one unit. An existing index is
    reused only if built from the same inputs and intact.
    """
    from .memory import ADD_BATCH

    path = os.fspath(path)
    add_batch = ADD_BATCH if add_batch is None else add_batch
    _check_arguments(ds, n_train, add_batch, checkpoint_seconds, ef_construction)  # before any write
    out_dir = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(out_dir):
        raise BuildError(f"cannot write {path}: {out_dir} is a file, not a folder")
    os.makedirs(out_dir, exist_ok=True)
    # one writer per index: a second build of it waits, then reuses it (or resumes it)
    with locked(path, what=f"the index {path}"):
        return _build_index(ds, factory, path, n_train, add_batch, threads, build_budget,
                            checkpoint_seconds, progress, overwrite, ef_construction, shared_coarse)


def _build_index(ds, factory, path, n_train, add_batch, threads, build_budget, checkpoint_seconds,
                 progress, overwrite, ef_construction, shared_coarse):
    import psutil
    from tqdm.auto import tqdm

    from . import coarse, memory, rss
    from .vectors import iter_blocks

    preassigned = shared_coarse and preassignable(factory)
    with omp_threads(threads) as threads:
        pred = memory.predict(factory, ds.n, ds.d, ds.metric, n_train=n_train, add_batch=add_batch,
                              threads=threads, preassigned=preassigned, build_budget=build_budget)
        n_train = pred["n_train"]
        key = _key(ds, factory, n_train, ef_construction)
        out_dir = os.path.dirname(os.path.abspath(path))
        if not overwrite:
            report = _reusable(path, key)
            if report is not None:
                _Checkpoints(path, key).clear()  # left by a kill just after the commit
                report.update(index=load_index(path), reused=True,
                              summary=f"{factory}: reused {path} (built from this dataset, checksum verified)")
                return report
        build_budget = build_budget or psutil.virtual_memory().available
        reasons = memory.fits(pred, math.inf, build_budget=build_budget)
        if reasons:
            raise BuildRefused(f"refusing to build {factory} on {ds.n:,} x {ds.d}: " + "; ".join(reasons))
        node = memory.parse(factory, ds.d, ds.metric)
        if n_train < memory.min_train_size(node):
            import warnings

            warnings.warn(f"{n_train:,} training vectors for {factory}: faiss wants at least "
                          f"{memory.min_train_size(node):,} (39 per centroid of its largest "
                          f"k-means); centroids will be poor")
        check_disk_space(out_dir, pred["disk"], f"the index {path}")

        report = dict(key, add_batch=add_batch, threads=threads, preassigned=preassigned,
                      predicted={k: pred[k] for k in ("index_ram", "disk", "train_peak",
                                                      "add_peak", "build_peak")})
        ckpts = _Checkpoints(path, key)
        if overwrite:
            ckpts.clear()
        assign = None
        with rss.RSSTrace() as train_trace:
            if preassigned:
                space, assign, info = coarse.coarse_assignment(
                    ds, coarse.coarse_factory(factory), n_train,
                    os.path.join(out_dir, "coarse"), progress=progress)
                report.update(coarse_train_s=info["train_s"], coarse_assign_s=info["assign_s"],
                              coarse_reused=info["reused"])
            t_train = time.perf_counter()
            work, start_row = ckpts.load(overwrite)
            resumed_from = "checkpoint" if start_row else ("trained" if work is not None else None)
            if work is None:
                work, report["faiss_said"] = _train(ds, factory, n_train, ef_construction,
                                                    space if preassigned else None)
                ckpts.save(work, 0)
                report["train_s"] = time.perf_counter() - t_train
            _replay_hnsw_levels(work, start_row)

        with rss.RSSTrace() as add_trace:
            t0 = time.perf_counter()
            _reserve(work, ds.n, np.bincount(assign, minlength=faiss.extract_index_ivf(work).nlist)
                     if preassigned else None)
            last_ckpt, trace = time.perf_counter(), [(start_row, 0.0)]
            every = max(add_batch, ds.n // 200)
            with tqdm(total=ds.n, initial=start_row, unit="vec", unit_scale=True,
                      desc=f"add {factory}", disable=not progress) as bar:
                for i0, x in iter_blocks(ds.base, add_batch, start=start_row, prefetch=True):
                    if preassigned:
                        add_preassigned(work, x, assign[i0:i0 + len(x)])
                    else:
                        work.add(x)
                    rows_done = i0 + len(x)
                    bar.update(len(x))
                    del x  # else this batch, the next and the one being prefetched coexist
                    if rows_done - trace[-1][0] >= every or rows_done == ds.n:
                        trace.append((rows_done, round(time.perf_counter() - t0, 3)))
                    if time.perf_counter() - last_ckpt > checkpoint_seconds and rows_done < ds.n:
                        # a checkpoint is a copy of the partial index beside the final one:
                        # skipped (and said) where the disk cannot hold both
                        if _room_for(out_dir, (rows_done / ds.n + 1) * pred["disk"]):
                            ckpts.save(work, rows_done)
                        elif "skipped_checkpoints" not in report:
                            report["skipped_checkpoints"] = True
                            print(f"not enough free disk in {out_dir} for a checkpoint beside "
                                  f"the final index: this build will not be resumable")
                        last_ckpt = time.perf_counter()
            index = final_index(work, factory, ds.d, ds.metric) if preassigned else work
            add_s = time.perf_counter() - t0
        added = ds.n - start_row
        report.update(
            add_s=add_s, add_vectors_per_s=added / add_s if add_s else None, add_trace=trace,
            resumed_from=resumed_from, rows_added_this_run=added,
            measured={"train_peak": train_trace.peak - train_trace.baseline,
                      "add_peak": add_trace.peak - train_trace.baseline,
                      "build_peak": max(train_trace.peak, add_trace.peak) - train_trace.baseline},
            rss_method=add_trace.method, rss_baseline=train_trace.baseline,
            rss_trace=[(round(t, 3), r - train_trace.baseline) for t, r in
                       train_trace.trace + [(train_trace.trace[-1][0] + t, r) for t, r in add_trace.trace]],
        )
        _commit(index, path, report)
        ckpts.clear()
    report["index"], report["reused"] = index, False
    report["summary"] = (f"{factory}: trained on {n_train:,}, added {added:,} in {add_s:.1f} s "
                         f"({added / max(add_s, 1e-9):,.0f} vec/s); file "
                         f"{format_bytes(report['measured']['disk'])}; build peak "
                         f"{format_bytes(report['measured']['build_peak'])} (predicted "
                         f"{format_bytes(pred['build_peak'])})")
    return report


def index_path(index_dir, factory):
    """Where build_all keeps `factory`'s index: index_dir/<factory with safe characters>.faiss."""
    import re

    return os.path.join(index_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", factory) + ".faiss")


def build_all(ds, factories, index_dir, build_budget=None, n_train=None, add_batch=None,
              threads=None, overwrite=False, progress=True, ef_construction=None):
    """build_index for each factory into index_dir, printing a summary line each.

    Returns {factory: report}, each report with the index's "path" but not the
    index itself: a finished index is freed before the next one is built (at
    10M vectors two of them would not fit), and loaded again where needed
    (as_index). A factory the memory model says will not fit in build_budget
    (default: memory available when its turn comes) is refused before
    anything is allocated: it is printed with the reasons and left out of the
    result. An index already built from this dataset is reused unless
    overwrite=True.
    """

    os.makedirs(index_dir, exist_ok=True)
    reports = {}
    for f in factories:
        path = index_path(index_dir, f + (f"_efC{ef_construction}" if ef_construction else ""))
        try:
            r = build_index(ds, f, path, n_train=n_train, add_batch=add_batch, threads=threads,
                            build_budget=build_budget, progress=progress, overwrite=overwrite,
                            ef_construction=ef_construction)
        except BuildRefused as e:
            print(f"{REFUSED} {e}")
            continue
        print(r["summary"])
        del r["index"]
        reports[f] = dict(r, path=path)
    return reports


def as_index(index_or_path):
    """`index_or_path` itself if it is a faiss index, else the index file at that
    path, loaded memory-mapped where faiss can (see load_index)."""
    if isinstance(index_or_path, faiss.Index):
        return index_or_path
    return load_index(os.fspath(index_or_path), mmap=True)


def load_index(path, mmap=False):
    """Read an index written by build_index; mmap=True maps its codes from disk
    instead of reading them into RAM: faiss.IO_FLAG_MMAP_IFC maps inverted
    lists and, in place, the code arrays of flat storage (HNSW's SQ/PQ/Flat
    storage, refine stages); graph links and other small parts are read.

    Raises BuildError for a missing, truncated or corrupt file.
    """

    if not os.path.exists(path):
        raise BuildError(f"no index file at {path}")
    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    except RuntimeError as e:
        raise BuildError(f"{path} is not a readable faiss index (truncated or corrupt?): "
                         f"{str(e).strip().splitlines()[-1]}; rebuild it") from None


def to_ondisk(path, out_path, overwrite=False):
    """Rewrite the IVF index at `path` with its inverted lists in a separate
    .ivfdata file beside `out_path` (indexes.write_ondisk: a new file per write,
    the old pair kept until the new one is complete), memory-mapped when loaded.

    The lists are copied from a mapped read, so neither index enters RAM. The
    index file stores the absolute path of its .ivfdata: keep them together.
    An existing `out_path` newer than `path` is reused. Under the lock of
    out_path. Returns the loaded on-disk index.
    """
    with locked(out_path, what=f"the on-disk index {out_path}"):
        return _to_ondisk(path, out_path, overwrite)


def _to_ondisk(path, out_path, overwrite):
    if os.path.exists(out_path) and not overwrite:
        if os.path.getmtime(out_path) >= os.path.getmtime(path):
            return load_index(out_path)
        raise BuildError(f"{out_path} is older than {path}, so it may hold other data; "
                         f"pass overwrite=True to redo it")
    template = load_index(path, mmap=True)
    try:
        ivf = faiss.extract_index_ivf(template)
    except RuntimeError:
        raise BuildError(f"{path} holds no IVF index: only inverted lists can live on disk "
                         f"(HNSW and flat indexes can be loaded with mmap=True instead)") from None
    top = faiss.downcast_index(template)
    if not isinstance(top, (faiss.IndexIVF, faiss.IndexPreTransform)):
        raise BuildError(f"{path}: on-disk lists support IVF indexes, optionally behind a "
                         f"transform (OPQ, PCA), not {type(top).__name__}")
    if isinstance(faiss.downcast_index(ivf), faiss.IndexIVFFastScan):
        raise BuildError(f"{path}: fast-scan indexes (x4fs) keep their codes in SIMD blocks "
                         f"that on-disk inverted lists cannot hold; use mmap=True, or PQ with "
                         f"8-bit codes for lists on disk")
    empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    ivf.replace_invlists(empty, True)
    empty.this.disown()  # now owned by the index
    ivf.ntotal = template.ntotal = 0
    write_ondisk(template, [path], out_path)
    return load_index(out_path)


def sq_qtype(index):
    """Name of the scalar-quantizer type an index really uses ('QT_8bit', 'QT_4bit',
    'QT_fp16', ...), looked up through any transform, refine or HNSW wrapper;
    None if it has no scalar quantizer."""
    for sub in components(index):
        sq = getattr(sub, "sq", None)
        if sq is not None:
            return next(name for name in dir(faiss.ScalarQuantizer)
                        if name.startswith("QT_") and getattr(faiss.ScalarQuantizer, name) == sq.qtype)
    return None


def built_indexes(index_dir, ds):
    """Indexes in index_dir built by build_index from dataset `ds`, found by their
    JSON reports: {name: (path, predicted index RAM in bytes)}, name being the
    factory (plus ' efC=<n>' when efConstruction was set)."""
    import glob

    from .files import read_json

    out = {}
    for report_path in sorted(glob.glob(os.path.join(index_dir, "*.faiss.json"))):
        r = read_json(report_path)
        path = report_path[:-len(".json")]
        if r.get("dataset") != ds.fingerprint or not os.path.exists(path):
            continue
        name = r["factory"] + (f" efC={r['ef_construction']}" if r.get("ef_construction") else "")
        out[name] = (path, r["predicted"]["index_ram"])
    return out
