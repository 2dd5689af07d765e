"""Recall, throughput and latency of built indexes, and parameter sweeps.

Recall is given two ways:
- k-recall@k: the share of the exact top-k ids found in the returned top-k;
- ann-benchmarks' distance recall: the share of returned results whose exact
  distance is within the k-th exact neighbour's distance (plus epsilon), so
  ties with the k-th neighbour count as found.
"""

import os
import time

import faiss
import numpy as np
import psutil

from ..core import heuristics, limits
from ..core.limits import format_setting, parse_setting  # the one parser, here for callers of evaluate
from ..core.index_files import as_index, load_index
from ..core.progress import tqdm
from ..index.build import build_all
from ..index.indexes import omp_threads
from .choose import pareto_frontier
from .exact import exact_distances, rerank


def check_against_ground_truth(I, gt_I, k):
    """Refuse a comparison that would give a silently wrong recall."""
    limits.check("k", k)
    if len(I) != len(gt_I):
        raise ValueError(f"{len(I)} result rows but the ground truth has {len(gt_I)} queries: "
                         f"the ground truth is from another query set; recompute it for this dataset")
    if k > gt_I.shape[1]:
        raise ValueError(f"recall@{k} needs the exact top-{k}, but the ground truth holds only "
                         f"{gt_I.shape[1]} neighbours per query; recompute it with k >= {k}")


def knn_recall(I, gt_I, k):
    """k-recall@k per query: |I[:, :k] ∩ gt_I[:, :k]| / k.

    I, gt_I: int64 (nq, >=1) ids, best first. Fewer than k results (I narrower
    than k, or -1 ids) count as misses. Returns float64 (nq,).
    """
    I, gt_I = np.asarray(I), np.asarray(gt_I)
    check_against_ground_truth(I, gt_I, k)
    found = I[:, :k]
    hits = (found[:, :, None] == gt_I[:, None, :k]) & (found[:, :, None] >= 0)
    return hits.any(axis=2).sum(axis=1) / k


def distance_recall(D_exact, gt_D, k, metric="L2", epsilon=1e-3):
    """ann-benchmarks' recall per query: the share of the k returned results whose
    exact distance is no worse than the k-th true neighbour's (within epsilon).

    D_exact: float32 (nq, >=1) exact distances of the returned ids (NaN for
    -1), e.g. from exact.exact_distances; gt_D: (nq, >=k) exact top distances.
    For "IP" larger is better. Returns float64 (nq,).
    """
    D_exact, gt_D = np.asarray(D_exact), np.asarray(gt_D)
    check_against_ground_truth(D_exact, gt_D, k)
    kth = gt_D[:, k - 1:k]
    with np.errstate(invalid="ignore"):
        if metric == "IP":
            ok = D_exact[:, :k] >= kth - epsilon
        else:
            ok = D_exact[:, :k] <= kth + epsilon
    return ok.sum(axis=1) / k


MIN_BATCHES = 5  # timed batches per setting on the frontier: median, min and max


def time_search(index, xq, k, repeats=MIN_BATCHES, single_queries=500):
    """Time batch searches of all queries, and single queries, after a warm-up.

    One search of all queries is run first and discarded (pages, tables and
    thread pools warmed), then `repeats` timed batches: qps_median, qps_min
    and qps_max over them (batches of one setting differ by 5-15% on a shared
    2-core machine, so one batch is not a figure to compare). p50/p99
    latencies (ms) come from `single_queries` distinct queries searched one at
    a time on one thread, once each (a query repeated would find its lists and
    graph nodes in cache). Returns ((D, I) of the last batch, timings dict).
    """
    xq = np.ascontiguousarray(xq, dtype="float32")
    index.search(xq, k)  # warm-up, discarded
    batch = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        D, I = index.search(xq, k)
        batch.append(time.perf_counter() - t0)
    qps = len(xq) / np.array(batch)
    row = {"qps_median": float(np.median(qps)), "qps_min": float(qps.min()),
           "qps_max": float(qps.max()), "batches": len(batch),
           "threads": faiss.omp_get_max_threads()}
    if single_queries:
        row.update(single_query_latency(index, xq, k, single_queries))
    return (D, I), row


def single_query_latency(index, xq, k, n):
    """p50 / p99 latency (ms) of n distinct queries of xq searched one at a time on
    one thread (a served request), after the batch timings."""
    lat = []
    singles = xq[np.random.default_rng(len(xq)).permutation(len(xq))[:n]]
    with omp_threads(1):
        for q in singles:
            t0 = time.perf_counter()
            index.search(q[None], k)
            lat.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(np.array(lat) * 1e3, [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99), "single_queries": len(singles)}


def recall_interval(per_query, level=0.95, resamples=2000, seed=0):
    """[lo, hi] interval of the mean of per-query recalls (float64 (nq,)),
    percentile bootstrap over queries: the queries are a sample of what users
    will ask, so the recall of another sample would land in this range."""
    per_query = np.asarray(per_query, dtype="float64")
    rng = np.random.default_rng(seed)
    means = per_query[rng.integers(0, len(per_query), (resamples, len(per_query)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def parameter_ranges(index):
    """{name: [values]} that faiss.ParameterSpace offers for this index."""
    ps = faiss.ParameterSpace()
    ps.initialize(index)
    out = {}
    for i in range(ps.parameter_ranges.size()):
        pr = ps.parameter_ranges.at(i)  # keep the range alive while reading its values
        out[pr.name] = [pr.values.at(j) for j in range(pr.values.size())]
    return out


def default_settings(index, k=10, max_nprobe=256, max_ef=512, k_factors=(1, 4, 16, 64, 256)):
    """Parameter strings to sweep ("nprobe=8,k_factor_rf=4"), from ParameterSpace's ranges.

    nprobe (IVF) or efSearch (HNSW, from k up: a search that stops after fewer
    than k steps cannot rank k results well) is the main axis; an HNSW coarse
    quantizer gets quantizer_efSearch from nprobe up (it is asked for nprobe
    lists, see set_parameters); a refine stage gets each of `k_factors`, beyond
    ParameterSpace's range (1..64): 4-bit PQ at d=1024 needed k_factor_rf=128 for
    recall@10 0.95 at 10M (benchmarks/results/full/rerank_depth.csv). Polysemous `ht`
    is left out (the helpers do not train it).
    """
    ranges = parameter_ranges(index)
    main = ([("nprobe", v) for v in ranges["nprobe"] if v <= max_nprobe] if "nprobe" in ranges
            else [("efSearch", v) for v in ranges.get("efSearch", []) if k <= v <= max_ef])
    settings = []
    for name, v in main or [(None, None)]:
        base = [f"{name}={int(v)}"] if name else []
        qefs = [None]
        if "quantizer_efSearch" in ranges:
            qefs = [q for q in ranges["quantizer_efSearch"] if q >= v][:2] or [None]
        kfs = list(k_factors) if "k_factor_rf" in ranges else [None]
        for q in qefs:
            for kf in kfs:
                extra = ([f"quantizer_efSearch={int(q)}"] if q else []) + \
                        ([f"k_factor_rf={int(kf)}"] if kf else [])
                settings.append(",".join(base + extra))
    return settings


def scan_all_setting(index, k_factor=4, nprobe=None):
    """The setting that scans every inverted list ("nprobe=nlist", or `nprobe`
    lists where scanning them all would take too long), so what recall remains
    lost is the codes' error; a refine stage re-ranks k_factor x k."""
    ranges = parameter_ranges(index)
    nprobe = nprobe or (faiss.extract_index_ivf(index).nlist if "nprobe" in ranges else None)
    parts = [f"nprobe={nprobe}"] if "nprobe" in ranges else []
    parts += [f"k_factor_rf={k_factor}"] if "k_factor_rf" in ranges else []
    return ",".join(parts)


def set_parameters(index, setting):
    """Apply a "name=value,..." string through faiss.ParameterSpace; "qb" (the
    query bits of RaBitQ, which ParameterSpace does not know) is set on the IVF.
    Values are checked first (helpers.limits): one faiss would abort on is refused
    with OutOfRange, nprobe beyond nlist is clipped. Returns (the setting
    applied, notes on what was clipped).

    An HNSW coarse quantizer asked for nprobe lists searches quantizer_efSearch
    deep, 2 x nprobe unless the setting names it: faiss's HNSW stops after
    efSearch steps whatever k (HNSW.cpp, search_from_candidates), so a shallower
    search returns fewer lists than asked (measured on IVF65536_HNSW32: at
    efSearch 64, 55% of 2,048 asked lists came back -1)."""
    named, notes = limits.check_setting(index, parse_setting(setting))
    applied = format_setting(named)
    if "qb" in named:
        faiss.downcast_index(faiss.extract_index_ivf(index)).qb = named.pop("qb")
    if "nprobe" in named and "quantizer_efSearch" not in named and _hnsw_quantizer(index):
        named["quantizer_efSearch"] = heuristics.quantizer_ef_search(named["nprobe"])
    faiss.ParameterSpace().set_index_parameters(index, format_setting(named))
    return applied, notes


def _hnsw_quantizer(index):
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return False
    return isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSW)


def evaluate(index, xq, gt_D, gt_I, base=None, metric="L2", k=10, repeats=MIN_BATCHES,
             single_queries=500, deep=True):
    """Recall, QPS and latency of `index` as currently parameterised.

    xq: float32 (nq, d); gt_D, gt_I: exact top neighbours (nq, >=k). The timed
    search uses k; recall@1 and @k come from it, recall@100 from one more
    (untimed) search with k=100 when the ground truth is deep enough, at
    the row's own setting (an HNSW efSearch below 100 stops before it has seen
    100 good candidates, so its recall@100 is low by construction). With `base` (the
    VectorFile of the database) the ann-benchmarks distance recall@k is added.
    deep=False skips the k=100 search. Returns (row dict, per-query k-recall@k
    float64 (nq,)).
    """
    check_against_ground_truth(xq, gt_I, k)
    (D, I), row = time_search(index, xq, k, repeats, single_queries)
    per_query = knn_recall(I, gt_I, k)
    row[f"recall@{k}"] = float(per_query.mean())
    row[f"recall@{k}_ci"] = recall_interval(per_query)
    row["recall@1"] = float(knn_recall(I, gt_I, 1).mean())
    if base is not None:
        De = exact_distances(xq, base, I, metric)
        row[f"dist_recall@{k}"] = float(distance_recall(De, gt_D, k, metric).mean())
    if deep:
        row.update(recall_at_100(index, xq, gt_I, k))
    return row, per_query


def recall_at_100(index, xq, gt_I, k=10):
    """{"recall@100"} from one (untimed) k=100 search when the ground truth is deep
    enough; {} else."""
    if gt_I.shape[1] < 100 or k >= 100:
        return {}
    _, I100 = index.search(xq, 100)
    return {"recall@100": float(knn_recall(I100, gt_I, 100).mean())}


def sweep(indexes, xq, gt_D, gt_I, base=None, metric="L2", k=10, settings=None,
          repeats=MIN_BATCHES, single_queries=500, progress=True, max_nprobe=256,
          k_factors=(1, 4, 16, 64, 256), full_timing_from=0.0):
    """Evaluate every index at every setting: one tidy row per (index, setting).

    indexes: {name: (faiss index or index file path, file_bytes)}; a path is
    loaded memory-mapped when its turn comes. settings: {name: [strings]}
    (default: default_settings for each, nprobe up to max_nprobe, refine depths
    k_factors). Every setting is searched once (recall, its interval, one
    timed batch after a warm-up); the settings on the index's own recall-QPS
    frontier are then timed in full (`repeats` batches, `single_queries`
    single queries, "timed": "in full") and the dominated ones keep their one
    batch ("timed": "one batch", no latency), so repeats cost time only where a
    choice is made; only rows timed in full are ever recommended;
    full_timing_from: only frontier settings whose recall interval reaches it
    (and the index's most accurate one) are timed in full. Rows hold
    index, setting, each parameter as its own column, recall figures, the
    timings of time_search, file_bytes and how the index was loaded.
    """
    settings = settings or {}
    rows = []
    bar = tqdm(total=len(indexes), desc="sweep", disable=not progress)
    for name, (index, nbytes) in indexes.items():
        loaded = "as given"
        if not isinstance(index, faiss.Index):
            # mapped, one index at a time; its pages read once first where they fit in
            # memory, so that the first settings are not timed on page faults
            loaded = "mapped, warmed" if warm_page_cache(index) else "mapped, cold"
        index = as_index(index)
        mine = []
        for s in settings.get(name) or default_settings(index, k, max_nprobe=max_nprobe,
                                                        k_factors=k_factors):
            set_parameters(index, s)
            row, _ = evaluate(index, xq, gt_D, gt_I, base, metric, k, 1, 0, deep=False)
            mine.append({"index": name, "setting": s,
                         **{p: int(v) for p, v in parse_setting(s).items()},
                         **row, "file_bytes": nbytes, "loaded": loaded, "timed": "one batch"})
        front = pareto_frontier(mine, f"recall@{k}", "qps_median")
        top = max(front, key=lambda r: r[f"recall@{k}"])
        for r in front:
            if r[f"recall@{k}_ci"][1] < full_timing_from and r is not top:
                continue
            set_parameters(index, r["setting"])
            r.update(time_search(index, xq, k, repeats, single_queries)[1], timed="in full",
                     **recall_at_100(index, xq, gt_I, k))
        rows += mine
        bar.update()
    bar.close()
    return rows


def warm_page_cache(path, block=1 << 26):
    """Read the file at `path` once, so its pages are in the page cache, if it fits in
    the memory available now; returns whether it did."""
    if os.path.getsize(path) > 0.9 * psutil.virtual_memory().available:
        return False
    with open(path, "rb") as f:
        while f.read(block):
            pass
    return True


def drop_from_page_cache(path):
    """Ask the kernel to forget the cached pages of `path` (posix_fadvise
    DONTNEED), so the next reads come from the disk: a cold start."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def time_as_served(name, path, setting, file_bytes, ram_budget, xq, gt_D, gt_I, metric="L2",
                   k=10, repeats=MIN_BATCHES, single_queries=500):
    """evaluate() of one index at one setting, loaded the ways it could be served:
    memory-mapped with its pages read first, and also read into RAM when its
    file_bytes fit in ram_budget. Which is faster depends on the machine (a
    mapped file's page cache may sit in huge pages where anonymous memory does
    not), so both are timed. Returns the faster row, "loaded" saying which, with
    "qps_mapped" and, when timed, "qps_in_ram" beside it."""
    rows = {}
    loads = ["mapped"] + (["in RAM"] if file_bytes <= ram_budget else [])
    for loaded in loads:
        if loaded == "mapped":
            warm_page_cache(path)
        index = load_index(path, mmap=loaded == "mapped")
        set_parameters(index, setting)
        rows[loaded], _ = evaluate(index, xq, gt_D, gt_I, None, metric, k, repeats, single_queries)
        del index  # one copy at a time
    loaded = max(rows, key=lambda m: rows[m]["qps_median"])
    return {"index": name, "setting": setting, **rows[loaded], "file_bytes": file_bytes,
            "loaded": loaded,
            **{"qps_" + m.lower().replace(" ", "_"): r["qps_median"] for m, r in rows.items()}}


def hnsw_grid(ds, xq, gt_D, gt_I, index_dir, storage="SQ8", m_values=(16, 32),
              ef_construction_values=(40, 120), ef_search=64, k=10, build_budget=None,
              add_batch=None, threads=None, overwrite=False):
    """Build HNSW{M},{storage} for every M and efConstruction (build.build_all:
    reused when built before) and measure each at efSearch = ef_search.
    Returns one row per built index: M, efConstruction, build_s (the add time
    of its build, from its report when reused), file_bytes (file), and
    evaluate()'s figures."""
    rows = []
    for m in m_values:
        for efc in ef_construction_values:
            f = f"HNSW{m},{storage}"
            r = build_all(ds, [f], index_dir, build_budget, None, add_batch, threads,
                          overwrite=overwrite, ef_construction=efc, progress=False).get(f)
            if r is None:  # refused by the memory model (printed)
                continue
            index = as_index(r["path"])
            set_parameters(index, f"efSearch={ef_search}")
            row, _ = evaluate(index, xq, gt_D, gt_I, None, ds.metric, k)
            rows.append(dict(row, M=m, efConstruction=efc, build_s=r.get("add_s"),
                             file_bytes=r["measured"]["disk"]))
    return rows


def rerank_from_disk(index, xq, gt_I, base, metric="L2", k=10, k_factors=(1, 2, 4, 8, 16)):
    """Search k * k_factor candidates with `index`, re-rank them with the exact
    float32 vectors read from disk (only the candidates' rows), keep k.

    Each k_factor is run twice: "cold", with the database file dropped from
    the page cache first (every candidate row is a disk read), then "warm",
    the same queries again (their rows now cached). Returns one row per
    (k_factor, cache): recall@k, qps of search + re-rank together, and the
    seconds spent searching and re-ranking. The database never enters RAM.
    """
    rows = []
    for kf in k_factors:
        drop_from_page_cache(base.path)
        for cache in ("cold", "warm"):
            t0 = time.perf_counter()
            _, cand = index.search(xq, k * kf)
            t1 = time.perf_counter()
            _, I = rerank(xq, base, cand, k, metric)
            t2 = time.perf_counter()
            rows.append({"k_factor": kf, "cache": cache,
                         f"recall@{k}": float(knn_recall(I, gt_I, k).mean()),
                         "qps_median": len(xq) / (t2 - t0), "search_s": t1 - t0, "rerank_s": t2 - t1})
    return rows
