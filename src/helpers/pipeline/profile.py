"""Workbook parameters that follow the data, for runs on users' vectors with no preset.

for_data(n, d) returns parameters in the runner's preset shape ({"all": ...,
"03_build_ivfpq": ...}): nlist about 4 sqrt(n) as a power of two, halved
until training and assigning its coarse quantizer fit `coarse_budget_s` on this
machine (planner's GEMM rate); PQ sizes that divide d; HNSW only where its
build stays short; sweeps and timing light enough for large n.
"""

import re

from ..core import config, heuristics
from ..index import planner


def nlist_for(n, d, coarse_budget_s=900, rate=None):
    """heuristics.nlist_rule(n), halved while training (heuristics.kmeans_sample
    points) plus assigning all n rows with a flat quantizer would take longer
    than coarse_budget_s at `rate` FLOP/s (default: measured, planner.gemm_rate)."""
    nlist = heuristics.nlist_rule(n)
    if nlist > heuristics.MIN_NLIST:
        rate = rate or planner.gemm_rate(d)
        while nlist > heuristics.MIN_NLIST and _coarse_seconds(n, d, nlist, rate) > coarse_budget_s:
            nlist //= 2
    return nlist


def _coarse_seconds(n, d, nlist, rate):
    n_train = heuristics.kmeans_sample(n, nlist)
    return planner.kmeans_seconds(n_train, nlist, d, rate) + n * nlist * d / rate


def for_data(n, d, coarse_budget_s=900, rate=None):
    """Parameters for every notebook, for n x d vectors (n: rows in the base)."""
    nlist = nlist_for(n, d, coarse_budget_s, rate)
    m8, m16 = heuristics.pq_m(d, 8), heuristics.pq_m(d, 16)
    large = n > 1_000_000
    big_hnsw = n > 2_000_000  # HNSW adds 2-3k vectors/s past 1M rows here: hours at 10M
    cap = 0 if nlist <= 1024 else 256
    quantizer = n >= heuristics.MIN_PER_CENTROID * 4 * nlist and not large
    screened = large and d >= 256
    return {
        "all": {"nlist": nlist, "nprobe": max(1, nlist // 64), "max_nprobe": min(256, nlist),
                "gt_k": 100, "target_n": n},
        "01_data_generation": {"progress": False},
        # past 1M rows of d >= 256 what to build is screened on the first 1M rows, as at 10M x 1024
        "02_memory_budget": {"check_factories": [] if large else [f"IVF{nlist},SQ8"],
                             **(dict(config.screen_params(config.SCREEN_SEARCH), screen_time_budget="40min",
                                     build_time_budget="30min") if screened else {"screen_rows": 0})},
        "03_build_ivfpq": {
            "large_nlist": 4 * nlist,
            "factories": [f"IVF{{nlist}},PQ{m16}", f"IVF{{nlist}},PQ{m8}x4fs",
                          f"IVF{{nlist}},PQ{m8}x4fs,Refine(SQ8)"] + (["screened"] if screened else []),
            "hnsw_quantizer_factory": f"IVF{{large_nlist}}_HNSW32,PQ{m8}x4fs" if quantizer else "",
            "rerank_factory": f"IVF{{nlist}},PQ{m8}x4fs", "rerank_k_factors": [1, 4, 16],
            "ondisk_factory": f"IVF{{nlist}},PQ{m16}", "cap_nprobe": cap},
        "04_build_hnsw": {
            "factories": [] if big_hnsw else ["HNSW32,SQ8"] + ([] if large else ["HNSW32,Flat"]),
            "plan_only": ["HNSW32,SQ8"] if big_hnsw else [],
            "m_values": [] if big_hnsw else ([16, 32] if n <= 200_000 else [32]),
            "ef_construction_values": [40, 120] if n <= 200_000 else [40]},
        "05_build_ivfsq": {"factories": ["IVF{nlist},SQ8", "IVF{nlist},SQ4"], "cap_nprobe": cap,
                           "ondisk_lists": not large},
        "06_recall_vs_latency": {},
        "07_beyond_one_machine": {},
        "skip": {"07_beyond_one_machine": "past 1M rows a second, sharded copy of the IVF-SQ8 index "
                                          "costs disk and time on one machine"} if large else {},
    }


def min_rows(per_notebook):
    """Fewest base rows the notebooks' builds can train on: k-means needs a training
    point per centroid (nlist, and 2^bits per PQ sub-quantizer), and the ground truth
    gt_k rows. per_notebook: {notebook: parameters} as the runner passes them."""
    need = max((p.get("gt_k", 0) for p in per_notebook.values()), default=0)
    for name in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq"):
        p = per_notebook.get(name, {})
        names = {k: p[k] for k in ("nlist", "large_nlist") if k in p}
        for f in list(p.get("factories", [])) + [p.get("hnsw_quantizer_factory") or ""]:
            f = f.format(**names)
            for nlist in re.findall(r"IVF(\d+)", f):
                need = max(need, int(nlist))
            for _, bits in re.findall(r"PQ(\d+)(x\d+)?", f):
                need = max(need, 2 ** int(bits[1:] if bits else 8))
    return need
