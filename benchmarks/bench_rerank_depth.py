"""How deep must IVF-PQ fast-scan candidates be re-ranked to reach IVF-SQ8's recall?

Sweeps nprobe x k_factor_rf on an existing `...,Refine(SQ8)` index (built by the
workbook, e.g. the `full` preset's IVF4096,PQ128x4fs,Refine(SQ8)) and prints
recall@10 and batch QPS of each setting, next to the best IVF-SQ8 row of the
same run's sweep.csv when given. The index is read into RAM once (its pages
warmed first), so every setting is timed on the same, warm state.

    python benchmarks/bench_rerank_depth.py /work/bigdata/full \
        /work/bigdata/full/indexes/IVF4096_PQ128x4fs_Refine_SQ8_.faiss \
        --sweep /work/bigdata/full/indexes/sweep.csv
"""

import argparse
import os

import faiss
import pandas as pd

from helpers import build, dataset, evaluate, groundtruth
from helpers.vectors import read_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("index")
    ap.add_argument("--nprobe", default="32,64,128")
    ap.add_argument("--k-factors", default="16,32,64,128,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sweep", help="a sweep.csv whose best IVF*,SQ8 row is printed alongside")
    ap.add_argument("--out", help="write the rows as CSV here")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    ds = dataset.load_dataset(a.data_dir)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(ds, 100)
    evaluate.warm_page_cache(a.index)
    index = build.load_index(a.index, mmap=False)
    settings = [f"nprobe={p},k_factor_rf={kf}" for p in a.nprobe.split(",")
                for kf in a.k_factors.split(",")]
    rows = evaluate.sweep({os.path.basename(a.index): (index, os.path.getsize(a.index))},
                          xq, gt_D, gt_I, metric=ds.metric, settings={os.path.basename(a.index): settings},
                          repeats=1, single_queries=50)
    table = pd.DataFrame(rows)[["setting", "recall@10", "qps", "p50_ms"]]
    print(f"{ds.n:,} x {ds.d}, {ds.metric}, {len(xq):,} queries, {a.threads} threads")
    print(table.to_string(index=False))
    if a.sweep:
        sq = pd.read_csv(a.sweep)
        sq = sq[sq["index"].str.endswith(",SQ8") & sq["index"].str.startswith("IVF")]
        best = sq[sq["recall@10"] >= 0.95].sort_values("qps", ascending=False).head(1)
        print("IVF-SQ8 reference (from", a.sweep + "):")
        print(best[["index", "setting", "recall@10", "qps"]].to_string(index=False))
    if a.out:
        table.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
