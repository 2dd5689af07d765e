"""recall@10 >= 0.99 from a compressed index: an exact final stage read from disk.

An IVF index whose codes are re-ranked by SQ8 stops near recall@10 0.96 on
this data: SQ8's own error reorders the last neighbours. The final stage asks
the index for k x depth candidates (already SQ8-ordered), reads their float32
rows from the dataset file (helpers.search.exact; isolated rows read by several
threads at once) and keeps the k exactly nearest. It costs k x depth random
reads per query, so it is timed both ways a server would meet them: cold (the
file dropped from the page cache first) and warm (median of timed batches).
"""

import math
import time

import faiss
import numpy as np

from ..index.indexes import omp_threads
from .choose import best_setting
from .evaluate import (MIN_BATCHES, drop_from_page_cache, format_setting, knn_recall, parse_setting,
        recall_interval, set_parameters)
from .exact import rerank


# how much deeper than the 0.95 setting each search parameter is tried, in its own
# steps: up to 8x the lists (at 10M the 0.95 setting's 4x stopped at recall@10 0.989:
# benchmarks/results/full), 2x the SQ8-ranked candidates, 8x a graph's efSearch
DEEPER = {"nprobe": (1, 2, 4, 6, 8), "k_factor_rf": (1, 2), "efSearch": (1, 2, 4, 8)}


def settings_around(setting, steps=DEEPER):
    """Search settings deeper than `setting` ("nprobe=128,k_factor_rf=64",
    "efSearch=64"): each value it names multiplied by each of its steps (DEEPER),
    since 0.99 needs more lists, candidates or graph search than 0.95 did."""
    out = [{}]
    for name, value in parse_setting(setting).items():
        out = [{**v, name: str(int(value) * m)} for v in out for m in steps.get(name, (1,))]
    return list(dict.fromkeys(format_setting(v) for v in out))


def within_lists(index, settings):
    """`settings` with nprobe capped at the index's nlist (faiss clamps it anyway:
    a deeper setting would time the same search again), duplicates dropped."""
    try:
        nlist = faiss.extract_index_ivf(index).nlist
    except RuntimeError:  # not an IVF index
        return list(settings)
    out = []
    for s in settings:
        values = parse_setting(s)
        if "nprobe" in values:
            values["nprobe"] = str(min(int(values["nprobe"]), nlist))
        out.append(format_setting(values))
    return list(dict.fromkeys(out))


def search(index, xq, base, k, depth, metric):
    """The index's k x depth candidates re-ranked exactly: (D, I) float32 / int64 (nq, k)."""
    _, cand = index.search(xq, k * depth)
    return rerank(xq, base, cand, k, metric)


def costlier(setting, cheaper):
    """True when `setting` ("nprobe=512,k_factor_rf=64,exact_depth=5") searches at
    least as deep as `cheaper` in every value they name: more lists, candidates
    and exact reads, so it is never faster."""
    a, b = parse_setting(setting), parse_setting(cheaper)
    return a.keys() == b.keys() and all(int(a[key]) >= int(b[key]) for key in a)


def sweep(name, index, xq, gt_I, base, metric="L2", settings=(), depths=(2, 5), k=10,
          repeats=MIN_BATCHES, file_bytes=0, stop_at=None):
    """For each setting x depth: recall@k with its interval, the cold QPS (page
    cache dropped, one batch) and the warm median / min / max of `repeats`
    batches. Rows carry the keys of evaluate.sweep rows; the setting names the
    depth ("nprobe=256,k_factor_rf=64,exact_depth=5").

    stop_at: a recall@k; a setting costlier than one whose interval already
    clears it is skipped (it could only be slower), so the deepest settings
    are timed only while no cheaper one gets there."""
    xq = np.ascontiguousarray(xq, dtype="float32")
    rows, cleared = [], []

    def named(s, depth):
        return ",".join(p for p in (s, f"exact_depth={depth}") if p)

    def skipped(setting):
        return any(costlier(setting, c) for c in cleared)

    for s in within_lists(index, settings):
        if all(skipped(named(s, depth)) for depth in depths):
            continue
        set_parameters(index, s)
        index.search(xq, k)  # the index's own warm-up
        for depth in depths:
            setting = named(s, depth)
            if skipped(setting):
                continue
            row = _timed_row(index, xq, gt_I, base, metric, k, depth, repeats)
            rows.append({"index": name, "setting": setting, **row, "file_bytes": file_bytes})
            if stop_at is not None and row[f"recall@{k}_ci"][0] >= stop_at:
                cleared.append(setting)
    return rows


def _timed_row(index, xq, gt_I, base, metric, k, depth, repeats):
    """One setting's recall@k (with interval), cold QPS and warm QPS over `repeats` batches."""
    drop_from_page_cache(base.path)
    t0 = time.perf_counter()
    _, I = search(index, xq, base, k, depth, metric)
    cold = len(xq) / (time.perf_counter() - t0)
    qps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        search(index, xq, base, k, depth, metric)
        qps.append(len(xq) / (time.perf_counter() - t0))
    per_query = knn_recall(I, gt_I, k)
    return {f"recall@{k}": float(per_query.mean()), f"recall@{k}_ci": recall_interval(per_query),
            "qps_median": float(np.median(qps)), "qps_min": float(min(qps)),
            "qps_max": float(max(qps)), "batches": repeats, "qps_cold": cold,
            "threads": faiss.omp_get_max_threads(), "loaded": "as given; float32 rows read from disk"}


def latency(index, xq, base, setting, k=10, metric="L2", n=500):
    """p50 / p99 (ms) of `n` distinct single queries through the final stage at
    `setting` (as sweep names it), one thread, rows warm."""
    values = parse_setting(setting)
    depth = int(values.pop("exact_depth"))
    set_parameters(index, format_setting(values))
    lat = []
    with omp_threads(1):
        for q in xq[np.random.default_rng(len(xq)).permutation(len(xq))[:n]]:
            t0 = time.perf_counter()
            search(index, q[None], base, k, depth, metric)
            lat.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(np.array(lat) * 1e3, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99), "single_queries": len(lat)}


def recommend(rows, target_recall, recall_key="recall@10", swept=(), ram_budget=math.inf):
    """The fastest row (warm median QPS) whose recall interval clears the target,
    among the final stage's `rows` and the plain sweep's rows `swept` whose index
    fits ram_budget bytes (one that clears it alone needs no final stage), and a
    sentence; (None, what is missing) when none does."""
    fits = [r for r in swept if r["file_bytes"] <= ram_budget]
    r, top = best_setting(list(rows) + fits, target_recall, recall_key)
    if r is None:
        return None, (f"no setting's {recall_key} interval clears {target_recall} with the exact "
                      f"final stage" + (f"; the best is {top['setting']} at {top[recall_key]:.3f}"
                                        if top else ""))
    lo, hi = r[recall_key + "_ci"]
    found = (f"For {recall_key} >= {target_recall}: {r['index']} at {r['setting']}"
             + (", the float32 rows of its candidates read from disk" if "qps_cold" in r
                else ", as swept above, with no final stage"))
    timed = (f"{r['qps_median']:,.0f} queries/s warm (median of {r['batches']} batches), "
             f"{r['qps_cold']:,.0f} cold." if "qps_cold" in r else
             f"{r['qps_median']:,.0f} queries/s (median of {r.get('batches', 1)} batches).")
    return r, f"{found}: {recall_key} {r[recall_key]:.3f} (95% interval {lo:.3f}-{hi:.3f}), {timed}"
