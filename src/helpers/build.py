"""Building indexes from disk-resident data: creation, training, batched adds."""

import os

import faiss

from .dataset import faiss_metric


def new_index(factory, d, metric="L2"):
    """faiss.index_factory(d, factory, metric) with training set up for speed.

    The factory turns on polysemous training for PQ codes with 8 bits. It
    only serves polysemous Hamming filtering at search time (not used here)
    and costs about 2 s per sub-quantizer whatever the sample size, so it is
    switched off.
    """
    from .memory import FactoryError, explain_factory_error

    try:
        index = faiss.index_factory(d, factory, faiss_metric(metric))
    except RuntimeError as e:
        raise FactoryError(explain_factory_error(factory, d, str(e))) from None
    for sub in _components(index):
        if hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False
    return index


def _components(index):
    """The index and every index nested in it (pre-transform, refine, HNSW, IVF)."""
    index = faiss.downcast_index(index)
    out = [index]
    for attr in ("index", "base_index", "refine_index", "storage", "quantizer"):
        child = getattr(index, attr, None)
        if isinstance(child, faiss.Index):
            out += _components(child)
    return out


def _replay_hnsw_levels(index, rows):
    """HNSW draws each new vector's level from a random generator that is not
    saved with the index. Drawing the levels of the rows already added makes a
    resumed build continue the sequence of an uninterrupted one (~3 s per
    million rows)."""
    for sub in _components(index):
        if isinstance(sub, faiss.IndexHNSW):
            for _ in range(rows):
                sub.hnsw.random_level()


class BuildError(ValueError):
    """A build cannot start or resume as asked."""


def train_sample_ids(n, n_train, seed=0):
    """Sorted ids of a random training sample (not the first rows): int64 (n_train,)."""
    import numpy as np

    rng = np.random.default_rng([seed, 17])
    return np.sort(rng.choice(n, size=n_train, replace=False))


def set_ef_construction(index, ef_construction):
    """Set HNSW's efConstruction (search depth while inserting) on every HNSW
    graph inside `index`; the factory string cannot say it. Returns the index."""
    for sub in _components(index):
        if isinstance(sub, faiss.IndexHNSW):
            sub.hnsw.efConstruction = ef_construction
    return index


def build_index(ds, factory, path, n_train=None, add_batch=None, threads=None,
                ram_budget=None, checkpoint_seconds=600, progress=True, overwrite=False,
                ef_construction=None):
    """Train and fill `factory` from dataset `ds`, write it to `path`, return the report.

    Trains on a random sample of n_train database rows (default from the
    memory model), adds the database in batches of `add_batch` rows (default
    memory.ADD_BATCH) read from disk, with `threads` OpenMP threads; HNSW
    graphs get `ef_construction` (default faiss's 40). Before anything is allocated the
    memory model's build peak is checked against `ram_budget` (bytes; default
    the machine's RAM) and the plan refused if it does not fit.

    Resumable: the trained index and, every `checkpoint_seconds`, the partly
    filled index are saved beside `path`; a rerun continues after the last
    checkpoint. The final index and a JSON report (`path` + '.json': times,
    throughput, sizes, measured peak RSS and RSS trace beside the model's
    predictions) are written atomically.
    """
    import time

    import psutil
    from tqdm.auto import tqdm

    from . import memory, rss
    from .files import atomic_path, check_disk_space, format_bytes, read_json, write_json
    from .vectors import iter_blocks, take_rows

    path = os.fspath(path)
    add_batch = add_batch or memory.ADD_BATCH
    if threads:
        faiss.omp_set_num_threads(threads)
    threads = faiss.omp_get_max_threads()
    pred = memory.predict(factory, ds.n, ds.d, ds.metric, n_train=n_train, add_batch=add_batch,
                          threads=threads)
    n_train = pred["n_train"]
    if os.path.exists(path) and not overwrite:
        report = read_json(path + ".json") if os.path.exists(path + ".json") else {}
        wanted = (ds.fingerprint, factory, ef_construction, n_train)
        if tuple(report.get(k) for k in ("dataset", "factory", "ef_construction", "n_train")) == wanted:
            report.update(index=load_index(path), reused=True,  # already built from these inputs
                          summary=f"{factory}: reused {path} (built from this dataset)")
            return report
        raise BuildError(f"{path} exists and was not built from this dataset with {factory!r}, "
                         f"n_train={n_train:,}, ef_construction={ef_construction}; pass "
                         f"overwrite=True (force in the notebooks) or choose another path")
    ram_budget = ram_budget or psutil.virtual_memory().total
    reasons = memory.fits(pred, ram_budget)
    if reasons:
        raise BuildError(f"refusing to build {factory} on {ds.n:,} x {ds.d}: " + "; ".join(reasons))
    node = memory.parse(factory, ds.d, ds.metric)
    inner = memory.inner_index(node)
    if n_train < memory.min_train_size(node):
        import warnings

        warnings.warn(f"{n_train:,} training vectors for nlist={inner['nlist']}: faiss wants at "
                      f"least {memory.min_train_size(node):,} (39 per centroid); centroids will "
                      f"be poor")
    check_disk_space(os.path.dirname(os.path.abspath(path)), 2 * pred["disk"], f"the index {path}")

    trained_path, ckpt_path = path + ".trained", path + ".checkpoint"
    state_path = ckpt_path + ".json"
    key = {"dataset": ds.fingerprint, "factory": factory, "n_train": n_train, "metric": ds.metric,
           "ef_construction": ef_construction}
    report = dict(key, n=ds.n, d=ds.d, add_batch=add_batch, threads=threads,
                  predicted={k: pred[k] for k in ("index_ram", "disk", "train_peak",
                                                  "add_peak", "build_peak")})
    start_row, resumed_from = 0, None
    with rss.RSSTrace() as train_trace:
        t0 = time.perf_counter()
        state = read_json(state_path) if os.path.exists(state_path) else None
        trained = read_json(trained_path + ".json") if os.path.exists(trained_path + ".json") else None
        for found in (state, trained):
            if found and {k: found.get(k) for k in key} != key and not overwrite:
                raise BuildError(
                    f"a checkpoint beside {path} was made for another dataset or settings "
                    f"({found.get('factory')}, n_train={found.get('n_train')}); remove "
                    f"{ckpt_path} and {trained_path} or pass overwrite=True")
        if state and {k: state.get(k) for k in key} == key and os.path.exists(ckpt_path):
            index = load_index(ckpt_path)
            start_row, resumed_from = state["rows_added"], "checkpoint"
            _replay_hnsw_levels(index, start_row)
        elif trained == key and os.path.exists(trained_path):
            index, resumed_from = load_index(trained_path), "trained"
        else:
            index = new_index(factory, ds.d, ds.metric)
            if ef_construction:
                set_ef_construction(index, ef_construction)
            xt = take_rows(ds.base, train_sample_ids(ds.n, n_train))
            index.train(xt)
            del xt
            with atomic_path(trained_path) as tmp:
                faiss.write_index(index, tmp)
            write_json(trained_path + ".json", key)
        train_s = time.perf_counter() - t0
    if resumed_from is None:
        report["train_s"] = train_s

    with rss.RSSTrace() as add_trace:
        t0 = time.perf_counter()
        last_ckpt = time.perf_counter()
        with tqdm(total=ds.n, initial=start_row, unit="vec", unit_scale=True,
                  desc=f"add {factory}", disable=not progress) as bar:
            for i0, x in iter_blocks(ds.base, add_batch, start=start_row, prefetch=True):
                index.add(x)
                rows_done = i0 + len(x)
                bar.update(len(x))
                del x  # else this batch, the next and the one being prefetched coexist
                if time.perf_counter() - last_ckpt > checkpoint_seconds and rows_done < ds.n:
                    with atomic_path(ckpt_path) as tmp:
                        faiss.write_index(index, tmp)
                    write_json(state_path, dict(key, rows_added=rows_done))
                    last_ckpt = time.perf_counter()
        add_s = time.perf_counter() - t0
    with atomic_path(path) as tmp:
        faiss.write_index(index, tmp)
    added = ds.n - start_row
    report.update(
        add_s=add_s, add_vectors_per_s=added / add_s if add_s else None,
        resumed_from=resumed_from, rows_added_this_run=added,
        measured={"disk": os.path.getsize(path),
                  "train_peak": train_trace.peak - train_trace.baseline,
                  "add_peak": add_trace.peak - train_trace.baseline,
                  "build_peak": max(train_trace.peak, add_trace.peak) - train_trace.baseline},
        rss_method=add_trace.method, rss_baseline=train_trace.baseline,
        rss_trace=[(round(t, 3), r - train_trace.baseline) for t, r in
                   train_trace.trace + [(train_trace.trace[-1][0] + t, r) for t, r in add_trace.trace]],
    )
    write_json(path + ".json", report)
    for p in (ckpt_path, state_path, trained_path, trained_path + ".json"):
        if os.path.exists(p):
            os.remove(p)
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


def build_all(ds, factories, index_dir, ram_budget=None, n_train=None, add_batch=None,
              threads=None, overwrite=False, progress=True, ef_construction=None):
    """build_index for each factory into index_dir, printing a summary line each.

    Returns {factory: report}. A factory the memory model says will not fit in
    ram_budget is refused before anything is allocated: it is printed with the
    reasons and left out of the result. An index already built from this
    dataset is reused unless overwrite=True.
    """

    os.makedirs(index_dir, exist_ok=True)
    reports = {}
    for f in factories:
        try:
            name = f + (f"_efC{ef_construction}" if ef_construction else "")
            r = build_index(ds, f, index_path(index_dir, name), n_train=n_train,
                            add_batch=add_batch, threads=threads, ram_budget=ram_budget,
                            progress=progress, overwrite=overwrite,
                            ef_construction=ef_construction)
        except BuildError as e:
            if "refusing to build" not in str(e):
                raise
            print(f"REFUSED {e}")
            continue
        print(r["summary"])
        reports[f] = r
    return reports


def as_index(index_or_path):
    """`index_or_path` itself if it is a faiss index, else the index file at that
    path, loaded memory-mapped (only what searches touch becomes resident)."""
    if isinstance(index_or_path, faiss.Index):
        return index_or_path
    return load_index(os.fspath(index_or_path), mmap=True)


def load_index(path, mmap=False):
    """Read an index written by build_index; mmap=True maps its codes from disk
    (faiss.IO_FLAG_MMAP) instead of reading them into RAM.

    Raises BuildError for a missing, truncated or corrupt file.
    """

    if not os.path.exists(path):
        raise BuildError(f"no index file at {path}")
    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP if mmap else 0)
    except RuntimeError as e:
        raise BuildError(f"{path} is not a readable faiss index (truncated or corrupt?): "
                         f"{str(e).strip().splitlines()[-1]}; rebuild it") from None


def to_ondisk(path, out_path, overwrite=False):
    """Rewrite the IVF index at `path` with its inverted lists in a separate file
    (`out_path` + '.ivfdata', faiss.contrib.ondisk), memory-mapped when loaded.

    The lists are copied from a mapped read, so neither index enters RAM. The
    index file stores the absolute path of its .ivfdata: keep them together.
    `out_path` is written last, atomically; a leftover .ivfdata without it is
    an unfinished conversion and is redone. An existing `out_path` newer than
    `path` is reused. Returns the loaded on-disk index.
    """

    from faiss.contrib.ondisk import merge_ondisk

    from .files import atomic_path

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
    data_path = os.path.abspath(out_path) + ".ivfdata"
    if os.path.exists(data_path):
        os.remove(data_path)
    merge_ondisk(template, [path], data_path)
    with atomic_path(out_path) as tmp:
        faiss.write_index(template, tmp)
    return load_index(out_path)


def sq_qtype(index):
    """Name of the scalar-quantizer type an index really uses ('QT_8bit', 'QT_4bit',
    'QT_fp16', ...), looked up through any transform, refine or HNSW wrapper;
    None if it has no scalar quantizer."""
    for sub in _components(index):
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
