"""One trained coarse space and one coarse assignment per space, shared by every IVF index.

IVF indexes that differ only in how they encode vectors (PQ, SQ, RaBitQ,
fast-scan, a refine stage) need the same expensive things: the trained
pre-transform if any (PCA), k-means centroids, and the list of every database
row (an N x nlist x d matrix product: 5.6 min for 10M x 1024 at nlist 4096 on
2 cores). A coarse space is the factory prefix up to the IVF
("IVF4096", "PCAR256,IVF16384_HNSW32"; helpers.index.factory_tree.coarse_factory). Each is
computed once per dataset, kept in ``<index_dir>/coarse/`` and tied to the
dataset's fingerprint; builds then add with preassigned lists
(helpers.index.indexes.add_preassigned).

Files, for a coarse space such as ``IVF4096``::

    IVF4096.quantizer.faiss     "<space>,Flat" trained and empty: transforms and nlist centroids
    IVF4096.quantizer.faiss.json  its key (dataset, metric, training sample)
    IVF4096.assign.npz          list id of every row, int64 (n,), with its key inside:
                                this single file is the commit point of the pass
    IVF4096.assign.partial      the pass in progress: int64 rows written so far,
    IVF4096.assign.partial.json ... and how many of them are complete (its commit point)
"""

import contextlib
import io
import os
import re
import time

import faiss
import numpy as np

from ..core import keyed_files, quiet
from ..core.files import locked, read_json, sha256_bytes, write_json
from ..core.heuristics import ASSIGN_BLOCK, QUANTIZER_EF_SEARCH, TWO_LEVEL_SIZE
from ..core.index_files import load_index
from ..core.progress import status
from ..data.vectors import check_finite, iter_blocks, take_rows, train_sample_ids
from . import factory_tree, indexes, memory


def file_name(coarse):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", coarse)


def uses_two_level(coarse, d, metric="L2"):
    """Whether `coarse` is trained with two-level k-means: nlist x d' >= TWO_LEVEL_SIZE."""
    ivf = factory_tree.inner_index(factory_tree.parse(coarse + ",Flat", d, metric))
    return ivf["nlist"] * ivf["d"] >= TWO_LEVEL_SIZE


def train_space(coarse, xt, metric):
    """"<coarse>,Flat" trained on xt (float32 (n_train, d)): its transforms, then
    k-means. Large spaces (uses_two_level) cluster into sqrt(nlist) groups first
    and each group into its share of the centroids
    (faiss.contrib.clustering.two_level_clustering): about sqrt(nlist)/2 times
    fewer distance computations than one k-means over nlist centroids, at some
    cost in recall at a given nprobe (measured by helpers.search.screen)."""
    space = indexes.new_index(coarse + ",Flat", xt.shape[1], metric)
    ivf = faiss.extract_index_ivf(space)
    with quiet.captured():  # k-means progress lines, if faiss is verbose
        if not uses_two_level(coarse, xt.shape[1], metric):
            space.train(xt)
            return space
        with contextlib.redirect_stdout(io.StringIO()):  # "scipy not accessible": not needed here
            from faiss.contrib.clustering import two_level_clustering  # prints a line at import: kept quiet here
        for vt in indexes.transforms(space):
            vt.train(xt)
        xs = indexes.apply_transforms(space, xt)
        # 10 iterations at the first level, as faiss's IVF training runs; faiss.Kmeans's
        # default 25 on each (small) second-level problem
        centroids, _ = two_level_clustering(xs, int(np.sqrt(ivf.nlist)), ivf.nlist,
                                            spherical=metric == "IP", clustering_niter=10)
        ivf.quantizer.add(np.ascontiguousarray(centroids, dtype="float32"))
        space.train(xt)  # marks the chain and the IVF trained; k-means is skipped
    return space


def paths(coarse_dir, coarse):
    """(quantizer file, assignment file) of `coarse` ("IVF4096") under coarse_dir."""
    base = os.path.join(coarse_dir, file_name(coarse))
    return base + ".quantizer.faiss", base + ".assign.npz"


def files_bytes(coarse, n, d, metric):
    """Bytes (int) of the two files of `coarse` for n rows: its trained quantizer
    (memory model) and the assignment, an int64 list number per row."""
    return memory.disk_bytes(factory_tree.parse(coarse + ",Flat", d, metric), 0) + n * 8


def quantizer_key(ds, coarse, n_train, seed=0):
    return {"dataset": ds.fingerprint, "metric": ds.metric, "coarse": coarse,
            "n_train": int(n_train), "seed": seed, "stored": "space",
            "kmeans": "two-level" if uses_two_level(coarse, ds.d, ds.metric) else "flat"}


def train_quantizer(ds, coarse, n_train, coarse_dir, seed=0, progress=True):
    """The trained coarse space `coarse` ("IVF4096", "PCAR256,IVF16384_HNSW32")
    for dataset `ds` (see train_space), trained on a random sample of n_train
    rows; reused from `coarse_dir` when trained before with the same key.

    Returns ("<coarse>,Flat" trained and empty, seconds spent training; 0 if reused).
    """
    os.makedirs(coarse_dir, exist_ok=True)
    qpath, _ = paths(coarse_dir, coarse)
    key = quantizer_key(ds, coarse, n_train, seed)
    if keyed_files.cached(qpath, key):
        return _search_depth(load_index(qpath)), 0.0
    t0 = time.perf_counter()
    xt = take_rows(ds.base, train_sample_ids(ds.n, n_train, seed))
    check_finite(xt, 0, f"the training sample of {ds.base.path}")
    # faiss trains "<space>,Flat" exactly as it would inside any IVF index of the
    # same prefix (k-means settings, spherical for IP), unless two-level
    step = status(f"training the {coarse} coarse space on {n_train:,} rows")
    with step if progress else contextlib.nullcontext():
        quantizer = _search_depth(train_space(coarse, xt, ds.metric))
    del xt
    keyed_files.cache_index(quantizer, qpath, key)
    return quantizer, time.perf_counter() - t0


def _search_depth(space):
    """`space` with its HNSW quantizer searching at least QUANTIZER_EF_SEARCH deep,
    whether just trained or read back (the indexes built on it copy the setting)."""
    q = faiss.downcast_index(faiss.extract_index_ivf(space).quantizer)
    if isinstance(q, faiss.IndexHNSW):
        q.hnsw.efSearch = max(q.hnsw.efSearch, QUANTIZER_EF_SEARCH)
    return space


def nearest_lists(space, x):
    """List id (int64 (n,)) of each row of x (float32 (n, d)) in the trained coarse
    space `space`, searched as it is set: its transforms, then the nearest centroid."""
    _, a = faiss.extract_index_ivf(space).quantizer.search(indexes.apply_transforms(space, x), 1)
    return a.ravel()


def assign_rows(space, x):
    """nearest_lists with the space's HNSW quantizer (if any) searching at least
    QUANTIZER_EF_SEARCH deep, as every build's assignment does."""
    return nearest_lists(_search_depth(space), x)


def coarse_assignment(ds, coarse, n_train, coarse_dir, block_rows=ASSIGN_BLOCK, seed=0,
                      progress=True, checkpoint_seconds=30):
    """The coarse quantizer and the list id of every row of `ds`, computed once.

    Trains (or reuses) the quantizer, then assigns all n rows in one streamed,
    checkpointed pass; an interrupted pass resumes after its last complete
    block. Returns (quantizer, assign int64 (n,), info dict with train_s,
    assign_s (a resumed pass: its killed parts' seconds included), reused,
    resumed_from (the row a resumed pass started at; absent when reused)).
    """
    os.makedirs(coarse_dir, exist_ok=True)
    with locked(paths(coarse_dir, coarse)[1], what=f"the {coarse} coarse assignment"):
        return _coarse_assignment(ds=ds, coarse=coarse, n_train=n_train, coarse_dir=coarse_dir,
                                  block_rows=block_rows, seed=seed, progress=progress,
                                  checkpoint_seconds=checkpoint_seconds)


def _coarse_assignment(ds, coarse, n_train, coarse_dir, block_rows=ASSIGN_BLOCK, seed=0,
                      progress=True, checkpoint_seconds=30):
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    quantizer, train_s = train_quantizer(ds, coarse, n_train, coarse_dir, seed, progress)
    _, apath = paths(coarse_dir, coarse)
    key = dict(quantizer_key(ds, coarse, n_train, seed), n=ds.n,
               quantizer_ef_search=QUANTIZER_EF_SEARCH,
               quantizer_sha256=sha256_bytes(faiss.serialize_index(quantizer)))
    saved = keyed_files.load_arrays(apath, key)
    if saved is not None and saved["assign"].shape == (ds.n,):
        return quantizer, saved["assign"], {"train_s": train_s, "assign_s": 0.0,
                                            "reused": train_s == 0}

    part, state_path = apath[:-len(".npz")] + ".partial", apath[:-len(".npz")] + ".partial.json"
    state = read_json(state_path) if os.path.exists(state_path) and os.path.exists(part) else None
    resumed = state if state and state.get("key") == repr(key) else {}
    start = resumed.get("rows_done", 0)
    # a resumed pass reports the whole assignment's time, its killed parts included
    before_s, train_s = resumed.get("assign_s", 0.0), train_s or resumed.get("train_s", 0.0)
    if start == 0:
        with open(part, "wb") as f:
            f.truncate(ds.n * 8)
    t0 = time.perf_counter()
    fd = os.open(part, os.O_RDWR)

    def save(rows_done):
        os.fsync(fd)  # the rows are on disk before the state says so
        write_json(state_path, {"key": repr(key), "rows_done": rows_done, "train_s": train_s,
                                "assign_s": before_s + time.perf_counter() - t0})

    try:
        save(start)  # the k-means time is kept even if this pass is killed before a checkpoint
        with keyed_files.StreamedPass(ds.n, start, f"assign to {coarse}", save, checkpoint_seconds,
                                      progress) as stream:
            for i0, x in iter_blocks(ds.base, block_rows, start=start, prefetch=True):
                os.pwrite(fd, assign_rows(quantizer, x).astype("<i8").tobytes(), i0 * 8)
                stream.advance(i0 + len(x))
        os.fsync(fd)
    finally:
        os.close(fd)
    assign = np.fromfile(part, dtype="<i8")
    keyed_files.save_arrays(apath, key, assign=assign)
    for p in (state_path, part):
        if os.path.exists(p):
            os.remove(p)
    return quantizer, assign, {"train_s": train_s, "assign_s": before_s + time.perf_counter() - t0,
                               "reused": False, "resumed_from": start}
