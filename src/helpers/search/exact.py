"""Exact distances for a few candidate rows read from the vectors on disk.

Used to re-rank an index's candidates with the original float32 vectors (the
database itself never enters RAM, only the rows named by the candidates) and to
compute ann-benchmarks' distance-based recall, which needs exact distances of
the returned ids.
"""

import numpy as np

from ..data.vectors import take_rows


def exact_distances(xq, base, I, metric="L2", max_rows=16384):
    """Exact distances from each query to its candidate ids, reading only those rows.

    xq: float32 (nq, d); base: VectorFile; I: int64 (nq, k), -1 for no result.
    Returns float32 (nq, k): squared L2 distances (metric "L2") or inner
    products ("IP"); NaN where I is -1. Candidate rows are gathered per block of
    queries, at most `max_rows` rows at a time.
    """
    xq = np.ascontiguousarray(xq, dtype="float32")
    I = np.asarray(I, dtype="int64")
    if I.ndim != 2 or len(I) != len(xq):
        raise ValueError(f"candidate ids of shape {I.shape} do not match {len(xq)} queries")
    if I.max(initial=-1) >= base.n:
        raise ValueError(f"candidate id {I.max()} is beyond the {base.n:,} database rows: "
                         f"are the ids from another dataset?")
    nq, k = I.shape
    out = np.full((nq, k), np.nan, dtype="float32")
    step = max(1, max_rows // max(k, 1))
    for q0 in range(0, nq, step):
        ids = I[q0:q0 + step]
        valid = ids >= 0
        uniq, pos = np.unique(ids[valid], return_inverse=True)
        if not len(uniq):
            continue
        rows = take_rows(base, uniq)
        cand = np.zeros(ids.shape + (rows.shape[1],), dtype="float32")
        cand[valid] = rows[pos]
        q = xq[q0:q0 + step, None, :]
        if metric == "IP":
            dist = np.einsum("qkd,qkd->qk", q, cand)
        else:
            diff = cand - q
            dist = np.einsum("qkd,qkd->qk", diff, diff)
        out[q0:q0 + step][valid] = dist[valid]
    return out


def rerank(xq, base, I, k, metric="L2"):
    """Re-order candidates by their exact distance and keep the best k.

    xq: float32 (nq, d); base: VectorFile; I: int64 (nq, k') candidate ids
    (k' >= k, -1 allowed). Returns (D float32 (nq, k), I int64 (nq, k)), best
    first; missing results stay -1 with distance +inf (L2) or -inf (IP).
    """
    D = exact_distances(xq, base, I, metric)
    worst = -np.inf if metric == "IP" else np.inf
    D = np.where(np.isnan(D), worst, D)
    order = np.argsort(-D if metric == "IP" else D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(np.asarray(I), order, 1)
