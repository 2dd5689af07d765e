"""Exact k-nearest-neighbour ground truth, streamed over a database on disk.

The database is read block by block; each block is searched exactly with
``faiss.knn`` and its results merged into the running top-k with
``faiss.merge_knn_results`` (what ``faiss.contrib.exhaustive_search
.knn_ground_truth`` does with a ResultHeap, but with a state that can be
checkpointed, so a multi-hour run at 10M x 1024 survives an interruption).

Results are cached beside the dataset as ``gt_<metric>_k<k>.npz`` and carry
the dataset's fingerprint: a ground truth computed on other data is refused.
"""

import glob
import os
import re
import warnings

import faiss
import numpy as np

from ..core import keyed_files
from ..core.files import atomic_path, locked, sha256_bytes
from .dataset import faiss_metric
from .vectors import check_finite, iter_blocks, read_rows


class StaleGroundTruthError(ValueError):
    """A ground-truth file belongs to other data than the dataset at hand."""


def _default_block_rows(d):
    return max(1024, (256 << 20) // (4 * d))  # ~256 MiB of float32 per block


def compute_ground_truth(xq, base, k, metric="L2", block_rows=None,
                         checkpoint=None, checkpoint_seconds=60, progress=True, data_key=None):
    """Exact top-k of queries `xq` (nq, d) float32 over VectorFile `base`.

    metric: 'L2' (distances are squared L2, ascending) or 'IP' (inner
    products, descending). checkpoint: path of a resumable state file,
    written every `checkpoint_seconds` and removed at the end; it is resumed
    only for the same queries, k, metric and `data_key` (the database's
    fingerprint: a checkpoint of other data is never resumed).
    Returns D (nq, k) float32 and I (nq, k) int64.
    """
    xq = _checked_queries(xq, base, k, block_rows)
    nq, d = xq.shape
    fmetric = faiss_metric(metric)
    keep_max = metric == "IP"
    block_rows = block_rows or _default_block_rows(d)
    key = {"n": base.n, "k": k, "metric": metric, "queries": sha256_bytes(xq), "data": data_key}

    worst = -np.inf if keep_max else np.inf
    D = np.full((nq, k), worst, dtype=np.float32)
    I = np.full((nq, k), -1, dtype=np.int64)
    start = 0
    saved = keyed_files.load_arrays(checkpoint, key) if checkpoint else None
    if saved is not None:
        D, I, start = saved["D"], saved["I"], int(saved["rows_done"])

    def save(rows_done):  # D and I as they are when the pass calls it
        keyed_files.save_arrays(checkpoint, key, D=D, I=I, rows_done=rows_done)

    with keyed_files.StreamedPass(base.n, start, f"exact {metric} top-{k}", save if checkpoint else None,
                                  checkpoint_seconds, progress) as stream:
        for i0, xb in iter_blocks(base, block_rows, start=start, prefetch=True):
            Db, Ib = faiss.knn(xq, xb, min(k, len(xb)), metric=fmetric)
            if Ib.shape[1] < k:  # a block smaller than k: pad with empty results
                pad = k - Ib.shape[1]
                Db = np.pad(Db, ((0, 0), (0, pad)), constant_values=worst)
                Ib = np.pad(Ib, ((0, 0), (0, pad)), constant_values=-1)
            Ib[Ib >= 0] += i0
            D, I = faiss.merge_knn_results(np.stack([D, Db]), np.stack([I, Ib]), keep_max)
            stream.advance(i0 + len(xb))
    if checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    return D, I


def _checked_queries(xq, base, k, block_rows):
    """xq as contiguous float32 (nq, d), once its shape, k and block_rows are valid
    for `base`; ValueError saying which is not."""
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    if xq.ndim != 2 or len(xq) == 0:
        raise ValueError(f"queries must be a non-empty (nq, d) array, got shape {xq.shape}")
    if block_rows is not None and (not isinstance(block_rows, (int, np.integer)) or block_rows < 1):
        raise ValueError(f"block_rows={block_rows!r} is invalid: it must be a whole number >= 1")
    if xq.shape[1] != base.d:
        raise ValueError(f"queries have dimension {xq.shape[1]} but the database has {base.d}")
    if not 1 <= k <= base.n:
        raise ValueError(
            f"k={k} is out of range: the database has {base.n} vectors, so k "
            f"must be between 1 and {base.n}"
        )
    check_finite(xq, 0, "queries")
    return xq


def _save(path, **arrays):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def gt_path(ds, k):
    return os.path.join(ds.root, f"gt_{ds.metric}_k{k}.npz")


def ground_truth(ds, k=100, block_rows=None, progress=True, recompute=False):
    """Exact top-k for the queries of dataset `ds`, cached beside it.

    A cached file with the same metric and at least k neighbours is reused
    (and cut to k) if its fingerprint matches the dataset's; a stale one is
    reported and recomputed, never used. Returns D (nq, k) float32, I (nq, k)
    int64. recompute=True ignores (and replaces) the cache.
    """
    if not recompute and cached(ds, k):  # read without the lock: the folder may be read-only
        return load_ground_truth(cached(ds, k), ds, k)
    with locked(gt_path(ds, k), what="the ground truth"):
        return _ground_truth(ds=ds, k=k, block_rows=block_rows, progress=progress,
                             recompute=recompute)


def _ground_truth(ds, k=100, block_rows=None, progress=True, recompute=False):
    if not 1 <= k <= ds.n:
        raise ValueError(f"k={k} is out of range for a dataset of {ds.n} vectors")
    for path in [] if recompute else _cached(ds, k):
        try:
            return load_ground_truth(path, ds, k)
        except StaleGroundTruthError as e:

            warnings.warn(f"{e}; recomputing it")
            os.remove(path)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    path = gt_path(ds, k)
    D, I = compute_ground_truth(xq, ds.base, k, ds.metric, block_rows=block_rows,
                                checkpoint=path + ".checkpoint", progress=progress,
                                data_key=ds.fingerprint)
    _save(path, D=D, I=I, fingerprint=ds.fingerprint, metric=ds.metric)
    return D, I


def cached(ds, k):
    """Path of a cached ground truth of `ds` usable for depth k, or None
    (ground_truth() will then compute it)."""
    for path in _cached(ds, k):
        try:
            load_ground_truth(path, ds, k)
            return path
        except (StaleGroundTruthError, ValueError):
            continue
    return None


def _cached(ds, k):
    """Cached ground-truth files usable for depth k, smallest depth first."""
    found = []
    for path in glob.glob(os.path.join(ds.root, f"gt_{ds.metric}_k*.npz")):
        m = re.search(r"_k(\d+)\.npz$", path)
        if m and int(m.group(1)) >= k:
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def load_ground_truth(path, ds, k=None):
    """Load a ground-truth file written by ground_truth(), checked against `ds`.

    Raises StaleGroundTruthError if it was computed on other data or another
    metric, ValueError if it is shallower than k.
    """
    with np.load(path) as f:
        if str(f["fingerprint"]) != ds.fingerprint or str(f["metric"]) != ds.metric:
            raise StaleGroundTruthError(
                f"{path} was computed on other data (fingerprint or metric "
                f"differs from the dataset in {ds.root})"
            )
        D, I = f["D"], f["I"]
    if I.shape[0] != ds.queries.n:
        raise StaleGroundTruthError(f"{path} has {I.shape[0]} queries, the dataset {ds.queries.n}")
    if k is not None:
        if k > I.shape[1]:
            raise ValueError(f"{path} holds {I.shape[1]} neighbours per query; k={k} asked")
        D, I = D[:, :k], I[:, :k]
    return np.ascontiguousarray(D), np.ascontiguousarray(I)
