"""Which index configurations fit a RAM and disk budget, and how long they take.

Memory and disk come from the memory model. Build time comes from timing a
small sample on this machine: the add rate is measured on the real index
structure (an IVF quantizer is filled with sample centroids so that the
assignment cost is that of the real nlist), and k-means training is
extrapolated from the measured matrix-multiply rate.
"""

import hashlib
import math
import time

import faiss
import numpy as np
import psutil

from ..core import heuristics, quiet
from ..data import synthetic
from ..data.dataset import faiss_metric
from . import coarse as coarse_module, factory_tree, memory
from .indexes import (add_preassigned, components, new_index, omp_threads, set_ef_construction,
        work_index)


KMEANS_NITER = 10  # faiss IVF coarse quantizer training iterations


def candidates(n, d):
    """Factory strings worth considering for n vectors of dimension d.

    nlist from heuristics.nlist_rule (faiss's guideline is 4 to 16 sqrt(n)),
    with a flat coarse quantizer: an HNSW one must search about 2 x nprobe deep
    to return the lists asked for, which at the nprobe shares recall 0.95 needs
    here costs as much as scoring every centroid (the 1M screening,
    benchmarks/README.md); PQ with code sizes d/16 to d/4 bytes; scalar
    quantizers; HNSW over Flat, SQ8 and PQ; refinement of PQ with SQ8.
    """
    ivf = f"IVF{heuristics.nlist_rule(n)}"
    ms = sorted({heuristics.pq_m(d, per) for per in (16, 8, 4)})
    out = [f"{ivf},PQ{m}" for m in ms[:2]]
    out += [f"{ivf},PQ{m}x4fs" for m in ms[:2]]
    out += [f"OPQ{ms[0]}_{d},{ivf},PQ{ms[0]}"]
    out += [f"{ivf},PQ{ms[0]},Refine(SQ8)"]
    out += [f"{ivf},SQ{b}" for b in ("4", "6", "8", "fp16")]
    out += [f"{ivf},Flat", "HNSW32,Flat", "HNSW32,SQ8", f"HNSW32,PQ{ms[-1]}"]
    return out


def gemm_rate(d, threads=None):
    """Measured multiply-adds per second of faiss's exhaustive search at dimension d
    (with `threads` OpenMP threads, restored afterwards; default: as set)."""
    rng = np.random.default_rng(0)
    xq = rng.standard_normal((2048, d), dtype=np.float32)
    xb = rng.standard_normal((8192, d), dtype=np.float32)
    with omp_threads(threads):
        faiss.knn(xq[:64], xb, 1)  # warm-up
        t0 = time.perf_counter()
        faiss.knn(xq, xb, 1)
        return 2048 * 8192 * d / (time.perf_counter() - t0)


def estimate_build_seconds(factory, n, d, metric="L2", n_train=None, sample=None,
                           rate=None, ef_construction=None, preassigned=False):
    """Estimated train and add seconds for the full build, from a timed sample.

    sample: float32 (s, d) vectors to time on (default 5,000 synthetic ones);
    rate: multiply-adds per second (default: measured by gemm_rate);
    ef_construction: HNSW insertion depth, as the build will use;
    preassigned: the IVF build adds from a shared coarse assignment
    (coarse_seconds counts its k-means and assignment once), so neither is
    counted here: the sample is added as build_index adds such builds.
    Returns {'train_s', 'add_s', 'total_s', 'sample_add_rate'}.
    """
    node = factory_tree.parse(factory, d, metric)
    if sample is None:
        sample = synthetic.draw(_generator(d), synthetic.TRAIN, 0, 5000)
    rate = rate or gemm_rate(d)
    n_train = n_train or memory.default_train_size(node, n)
    inner = factory_tree.inner_index(node)
    sample_train_s, add_s_sample = _timed_sample(node, d, metric, sample, ef_construction,
                                                 preassigned)
    add_s = extrapolate_add_seconds(add_s_sample, len(sample), n, inner["kind"])
    train_s = sample_train_s
    if inner["kind"] == "ivf" and not preassigned:
        train_s += kmeans_seconds(memory.train_points(node, n_train), inner["nlist"], d, rate)
    return {"train_s": train_s, "add_s": add_s, "total_s": train_s + add_s,
            "sample_add_rate": len(sample) / max(add_s_sample, 1e-9)}


_TIMED = {}  # (factory, d, metric, efConstruction, preassigned, sample) -> seconds


def _timed_sample(node, d, metric, sample, ef_construction, preassigned):
    """(train seconds, add seconds) of the parsed factory `node` on `sample`, timed
    once per factory, setting and sample in this process: every estimate of a build
    (at any n) then scales the same timing."""
    key = (node["factory"], d, metric, ef_construction, preassigned, sample.shape,
           hashlib.sha1(np.ascontiguousarray(sample).data).hexdigest())
    if key in _TIMED:
        return _TIMED[key]
    factory = node["factory"]
    index = work_index(node) if preassigned else new_index(factory, d, metric)
    if ef_construction:
        set_ef_construction(index, ef_construction)
    ivf = _find_ivf(index)
    if ivf is not None:
        # real nlist, cheap centroids: the add cost depends on nlist, not on their quality
        q = sample[np.random.default_rng(0).integers(0, len(sample), ivf.nlist)]
        q = q + 0.01 * np.random.default_rng(1).standard_normal(q.shape, dtype=np.float32)
        ivf.quantizer.add(_to_quantizer_space(index, q))
    t0 = time.perf_counter()
    index.train(sample)
    train_s = time.perf_counter() - t0
    if preassigned and ivf is not None:
        # the build's own path: lists precomputed, fast-scan codes through a work index
        assign = coarse_module.nearest_lists(index, sample)
        t0 = time.perf_counter()
        add_preassigned(index, sample, assign)
    else:
        t0 = time.perf_counter()
        index.add(sample)
    _TIMED[key] = (train_s, time.perf_counter() - t0)
    return _TIMED[key]


def build_seconds(factory, n, d, metric="L2", n_train=None, sample=None, rate=None,
                  ef_construction=None):
    """The estimate of one build as helpers.index.build makes it, the one every
    notebook shows for it: preassigned where the builder is (its coarse space's
    k-means and assignment, coarse_seconds, then counted here), else as a plain
    train and add. Returns estimate_build_seconds' dict, with "coarse_s"."""
    space = factory_tree.coarse_factory(factory)
    est = estimate_build_seconds(factory, n, d, metric, n_train, sample, rate, ef_construction,
                                 preassigned=space is not None)
    coarse_s = coarse_seconds(n, d, space, rate, sample) if space else 0.0
    return dict(est, coarse_s=coarse_s, total_s=est["total_s"] + coarse_s)


# An HNSW insertion's cost grows with the graph faster than log n once the graph
# outgrows the CPU caches. The exponent is fitted on two timed samples of
# HNSW32,SQ8 (efConstruction 40, d = 1024): 16k vectors/s at 100k rows, 7.8k/s at
# 1M, a cost per vector growing as n ** 0.31. The 1m preset's build measured less
# (3,650/s on average, ~2.3k/s near 1M rows; benchmarks/hnsw_add_rate.py), so
# projections with it are optimistic past 1M: read them as lower bounds.
HNSW_COST_EXPONENT = math.log(16 / 7.8) / math.log(10)


def extrapolate_add_seconds(sample_s, sample_n, n, kind):
    """Seconds to add n vectors given sample_s seconds for sample_n of them:
    linear in n; for HNSW the cost per vector grows as n ** HNSW_COST_EXPONENT,
    so the total as n ** (1 + HNSW_COST_EXPONENT)."""
    if kind == "hnsw":
        return sample_s * (n / sample_n) ** (1 + HNSW_COST_EXPONENT)
    return sample_s * n / sample_n


def trace_projection(trace, exponent=None):
    """How well a growth model projects a build from its own add trace
    ([[rows, cumulative seconds], ...], e.g. a 10M build report's add_trace).
    From a tenth of the rows on (the scale a screening measures; a graph of 65k
    rows does not yet show the cost of inserting into a large one), the first
    doubling's seconds are projected to the last row with per-vector cost
    growing as n ** exponent: seconds(n0 -> n) ~ n ** (1 + exponent) - n0 ** (1 + exponent).
    exponent None fits it on the first two doublings. Returns {first_row,
    last_row, fitted_to (the last row the fit used), exponent, projected_s,
    measured_s, ratio (projected / measured)}; ValueError for a trace too short
    to project (a fit needs the rows to double twice before the end)."""
    trace = [p for p in trace if p[0] >= trace[-1][0] / 10]
    (n0, t0), (end_n, end_t) = trace[0], trace[-1]
    doublings = [next(((n, t) for n, t in trace[:-1] if n >= f * n0), None) for f in (2, 4)]
    if doublings[exponent is None] is None:
        raise ValueError(f"an add trace from {n0:,} to {end_n:,} rows is too short to "
                         f"{'fit and ' if exponent is None else ''}project a build")
    n1, t1 = doublings[0]

    def growth(n, a):
        return n ** (1 + a) - n0 ** (1 + a)

    fitted_to = n1
    if exponent is None:
        fitted_to, t2 = doublings[1]
        lo, hi = -0.9, 2.0  # growth(n2) / growth(n1) rises with the exponent: bisect
        for _ in range(60):
            mid = (lo + hi) / 2
            rising = growth(fitted_to, mid) / growth(n1, mid) < (t2 - t0) / (t1 - t0)
            lo, hi = (mid, hi) if rising else (lo, mid)
        exponent = (lo + hi) / 2
        if not -0.89 < exponent < 1.99:
            raise ValueError(f"the add trace's growth exponent is outside [-0.9, 2] ({exponent:.2f})")
    projected = (t1 - t0) * growth(end_n, exponent) / growth(n1, exponent)
    return {"first_row": int(n0), "last_row": int(end_n), "fitted_to": int(fitted_to),
            "exponent": exponent, "projected_s": projected, "measured_s": end_t - t0,
            "ratio": projected / (end_t - t0)}


def data_seconds(n, d, n_queries, gt_k, metric="L2", generate=True, sample_rows=16384,
                 block_rows=8192):
    """Estimated seconds to generate n x d synthetic rows (generate=False: the
    dataset exists or is imported, 0) and to compute the exact top-gt_k of
    n_queries queries over them, each timed here on a sample: generation on one
    chunk of sample_rows rows (generate_dataset's chunk), the ground truth as
    groundtruth.compute_ground_truth runs it (faiss.knn of the queries against a
    block of block_rows rows), scaled to n.
    Returns {'generate_s', 'ground_truth_s'}."""
    p = _generator(d)
    generate_s = 0.0
    if generate:
        t0 = time.perf_counter()
        synthetic.draw(p, synthetic.BASE, 0, sample_rows)
        generate_s = (time.perf_counter() - t0) * n / sample_rows
    xq = synthetic.draw(p, synthetic.QUERIES, 0, min(n_queries, 1000))
    xb = synthetic.draw(p, synthetic.BASE, 1, min(n, block_rows))
    t0 = time.perf_counter()
    faiss.knn(xq, xb, min(gt_k, len(xb)), metric=faiss_metric(metric))
    block_s = time.perf_counter() - t0
    return {"generate_s": generate_s,
            "ground_truth_s": block_s * (n / len(xb)) * (n_queries / len(xq))}


def coarse_seconds(n, d, coarse, rate=None, sample=None):
    """Estimated seconds to train a shared coarse space ("IVF4096",
    "PCAR256,IVF16384_HNSW32") on the build's sample (memory.default_train_size)
    and assign all n rows to it: its transform, then k-means (two-level:
    about 2 sqrt(nlist) centroids per point) and the assignment in the
    space's dimension."""
    space = factory_tree.parse(coarse + ",Flat", d)
    ivf = factory_tree.inner_index(space)
    nlist, d_space = ivf["nlist"], ivf["d"]
    rate = rate or gemm_rate(d)
    n_train = memory.default_train_size(space, n)
    k = 2 * math.isqrt(nlist) if coarse_module.uses_two_level(coarse, d) else nlist
    out = kmeans_seconds(n_train, k, d_space, rate)
    if d_space != d:  # the transform, applied to every row once
        out += n * d * d_space / rate
    if "_HNSW" in coarse:
        sample = synthetic_sample(d_space, 2000) if sample is None or d_space != d else sample
        return out + n / hnsw_assign_rate(d_space, nlist, sample)
    return out + n * nlist * d_space / rate


def kmeans_seconds(n_points, k, d, rate):
    """faiss IVF k-means: KMEANS_NITER passes of n_points x k x d multiply-adds."""
    return KMEANS_NITER * n_points * k * d / rate


def _find_ivf(index):
    return next((c for c in components(index) if isinstance(c, faiss.IndexIVF)), None)


def _to_quantizer_space(index, x):
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if isinstance(index, faiss.IndexPreTransform):
        # untrained transform: any d_out-dimensional centroids cost the same to assign to
        d_out = index.chain.at(index.chain.size() - 1).d_out
        return np.ascontiguousarray(x[:, :d_out])
    return x


def plan(n, d, metric="L2", ram_budget=None, disk_budget=None, factories=None,
         time_builds=True, sample_rows=2000, threads=None, sample=None, ef_construction=None,
         build_budget=None, add_batch=heuristics.ADD_BATCH):
    """Every candidate configuration with its predicted RAM, disk, build peak,
    estimated build time (build_seconds), and whether it fits (with reasons when
    not), each as the builder would build it (preassigned where it is, adding
    `add_batch` rows at a time).

    ram_budget: bytes the index may use when serving, build_budget: bytes the
    build may use (defaults: this machine's total RAM; a build budget given
    caps training samples as the build helper does), disk_budget: bytes of
    file (default: infinite). Build times come from `sample` (float32 (s, d), e.g. rows of
    the real data; default `sample_rows` synthetic vectors), HNSW graphs built
    with `ef_construction`. OPQ configurations get no time estimate (est_build_s
    None): timing OPQ's training, even on a sample, takes minutes at d=1024.
    Returns a list of dicts, fitting ones first, each sorted
    by index size.
    """
    ram_budget = ram_budget or psutil.virtual_memory().total
    disk_budget = disk_budget or math.inf
    factories = factories or candidates(n, d)
    rate = gemm_rate(d, threads) if time_builds else None
    rows = []
    for f in factories:
        p = memory.predict(f, n, d, metric, threads=threads, build_budget=build_budget,
                           add_batch=add_batch, preassigned=factory_tree.preassignable(f))
        reasons = memory.fits(p, ram_budget, disk_budget, build_budget)
        row = {"factory": f, "fits": not reasons, "why_not": "; ".join(reasons),
               "index_ram": p["index_ram"], "disk": p["disk"], "build_peak": p["build_peak"],
               "n_train": p["n_train"], "est_build_s": None}
        # OPQ training at high d takes minutes even on a small sample: not timed here
        if time_builds and not f.startswith("OPQ"):
            timed_on = synthetic_sample(d, sample_rows) if sample is None else sample
            with quiet.captured() as said:
                row["est_build_s"] = build_seconds(f, n, d, metric, p["n_train"], timed_on, rate,
                                                   ef_construction)["total_s"]
            if said:  # k-means on a sample below faiss's 39 points per centroid
                row["note"] = (f"timed on a {len(timed_on):,}-row sample, below faiss's 39 "
                               f"training points per centroid: an estimate only")
        rows.append(row)
    rows.sort(key=lambda r: (not r["fits"], r["index_ram"]))
    return rows


_SAMPLES = {}


def _generator(d):
    """The synthetic distribution's defaults at dimension d (latent dimension at most d)."""
    return synthetic.GeneratorParams(d=d, intrinsic_dim=min(64, d))


def synthetic_sample(d, rows):
    """float32 (rows, d) synthetic training rows, drawn once per (d, rows) and kept."""
    if (d, rows) not in _SAMPLES:
        _SAMPLES[(d, rows)] = synthetic.draw(_generator(d), synthetic.TRAIN, 0, rows)
    return _SAMPLES[(d, rows)]


def format_seconds(s):
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def time_check(reports, estimated, estimated_target):
    """Each build's estimate (build_seconds, as the plan showed it) beside its
    measured time, with the error, and the same estimate at the target n.

    reports: {factory: build report}; estimated, estimated_target: {factory:
    seconds} at the reports' n and at the target n. Builds reused from disk
    (not timed now) are left out; a preassigned build's time counts its coarse
    space's k-means and assignment, as its estimate does. Returns rows with
    'error_pct' (100 x (estimated - measured) / measured) and 'target_s'.
    """
    rows = []
    for f, r in reports.items():
        if r.get("reused") or estimated.get(f) is None:
            continue
        took = sum(r.get(k) or 0 for k in ("coarse_train_s", "coarse_assign_s", "train_s", "add_s"))
        rows.append({"factory": f, "estimated_s": estimated[f], "measured_s": took,
                     "error_pct": 100 * (estimated[f] - took) / took,
                     "target_s": estimated_target[f]})
    return rows


def hnsw_assign_rate(d, nlist, sample, ef_search=64, m=32, max_centroids=8192):
    """Measured vectors per second an HNSW{m} coarse quantizer over nlist
    centroids assigns (searches at `ef_search`). The graph is built on at most
    `max_centroids` centroids drawn near rows of `sample` (float32 (s, d)) and
    its search time scaled by log(nlist) / log(built), as graph search grows."""
    rng = np.random.default_rng(0)
    built = min(nlist, max_centroids)
    centroids = sample[rng.integers(0, len(sample), built)]
    centroids = centroids + 0.05 * rng.standard_normal(centroids.shape, dtype=np.float32)
    q = faiss.IndexHNSWFlat(d, m)
    q.add(centroids)
    q.hnsw.efSearch = ef_search
    xq = sample[:min(len(sample), 2000)]
    t0 = time.perf_counter()
    q.search(xq, 1)
    return graph_rate_at(len(xq) / (time.perf_counter() - t0), built, nlist)


def graph_rate_at(rate, built, nlist):
    """A search rate measured on a graph of `built` nodes, scaled to one of
    nlist nodes: HNSW search work grows as log(nodes)."""
    return rate * math.log(max(built, 2)) / math.log(max(nlist, 2))


def coarse_costs(n, d, nlists=(1024, 4096, 16384, 65536), sample=None, rate=None,
                 scan_share=0.01):
    """What nlist costs at n x d on this machine, per coarse quantizer.

    For each nlist, flat and HNSW32 quantizers: k-means training seconds (64
    points per centroid, KMEANS_NITER passes, from the measured GEMM `rate`),
    seconds to assign all n rows (flat: n x nlist x d multiply-adds at
    `rate`; HNSW: hnsw_assign_rate on `sample`), rows per list, and the nprobe
    that scans `scan_share` of the database (a query's work in the lists).
    Returns a list of dicts.
    """
    rate = rate or gemm_rate(d)
    if sample is None:
        sample = synthetic_sample(d, 2000)
    rows = []
    for nlist in nlists:
        n_train = min(n, heuristics.TRAIN_PER_CENTROID * nlist)
        train_s = kmeans_seconds(n_train, nlist, d, rate)
        common = {"nlist": nlist, "n_train": n_train, "rows_per_list": n / nlist,
                  "nprobe_for_share": max(1, round(scan_share * nlist))}
        rows.append(dict(common, quantizer="flat", train_s=train_s, assign_s=n * nlist * d / rate))
        rows.append(dict(common, quantizer="HNSW32", train_s=train_s,
                         assign_s=n / hnsw_assign_rate(d, nlist, sample)))
    return rows
