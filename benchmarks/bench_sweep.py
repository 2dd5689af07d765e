"""Recall and throughput of one built index over chosen settings, at any scale.

For indexes built apart from the notebooks, or settings the notebooks do not
sweep: loads the index as notebook 06's sweep does (mapped, its pages read into
the page cache first where they fit; --in-ram reads it into memory), times one
batch of all queries (--repeats: several, fastest and median) and 50 single
queries per setting, and prints
recall@1/@10/@100, QPS and latency, with the add rate the build report
recorded. --grid sweeps every combination of the values given.

    # the 10M HNSW32,SQ8, built with python -m helpers build
    python benchmarks/bench_sweep.py /work/bigdata/full \
        /work/bigdata/full/indexes/HNSW32_SQ8_efC40.faiss \
        --settings efSearch=32 efSearch=64 efSearch=128 efSearch=256 efSearch=512
    # how deep fast-scan candidates must be re-ranked (results/full/rerank_depth.csv)
    python benchmarks/bench_sweep.py /work/bigdata/full \
        /work/bigdata/full/indexes/IVF4096_PQ128x4fs_Refine_SQ8_.faiss --in-ram \
        --grid nprobe=32,64,96,128 k_factor_rf=16,32,64,128,160,192,256
"""

import argparse
import itertools
import os

import faiss
import pandas as pd

from helpers.core import index_files
from helpers.core.files import read_json
from helpers.data import dataset, groundtruth
from helpers.data.vectors import read_rows
from helpers.search import evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("index")
    ap.add_argument("--settings", nargs="+", default=[], help='ParameterSpace strings, e.g. efSearch=64')
    ap.add_argument("--grid", nargs="+", default=[], help="name=v1,v2,...: every combination")
    ap.add_argument("--in-ram", action="store_true", help="read the index into memory (default: mapped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=evaluate.MIN_BATCHES,
                    help="timed batches per frontier setting, after a warm-up: median, min, max")
    ap.add_argument("--single-queries", type=int, default=500)
    ap.add_argument("--out", help="write the rows as CSV here")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    ds = dataset.load_dataset(a.data_dir)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(ds, 100)
    name = os.path.basename(a.index)
    axes = [[f"{k}={v}" for v in values.split(",")] for k, values in (g.split("=", 1) for g in a.grid)]
    settings = a.settings + [",".join(combo) for combo in itertools.product(*axes) if combo]
    if not settings:
        ap.error("give --settings or --grid")
    index = a.index
    if a.in_ram:
        evaluate.warm_page_cache(a.index)
        index = index_files.load_index(a.index, mmap=False)
    rows = evaluate.sweep({name: (index, os.path.getsize(a.index))}, xq, gt_D, gt_I,
                          metric=ds.metric, settings={name: settings}, repeats=a.repeats,
                          single_queries=a.single_queries)
    table = pd.DataFrame(rows)
    print(f"{ds.n:,} x {ds.d}, {ds.metric}, {len(xq):,} queries, {a.threads} threads, {rows[0]['loaded']}")
    print(table.reindex(columns=["setting", "recall@1", "recall@10", "recall@10_ci", "recall@100",
                                 "qps_median", "qps_min", "qps_max", "batches", "p50_ms", "p99_ms"])
          .to_string(index=False))
    report = read_json(a.index + ".json") if os.path.exists(a.index + ".json") else None
    if report:
        trace = report.get("add_trace") or []
        print(f"build report: {report['factory']}, resumed from {report.get('resumed_from')}, "
              f"{report.get('rows_added_this_run', 0):,} rows added in {report['add_s']:.0f} s")
        for (r0, t0), (r1, t1) in zip(trace, trace[1:]):
            if r1 - r0 and (r1 // 1_000_000) != (r0 // 1_000_000):
                print(f"  at {r1:>12,} rows: {(r1 - r0) / max(t1 - t0, 1e-9):8,.0f} vectors/s")
    if a.out:
        table.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
