"""Recall and throughput of one built index over chosen settings, at any scale.

For indexes built apart from the notebooks (e.g. the 10M HNSW32,SQ8, built with
python -m helpers.build): loads the index as notebook 06's sweep does (mapped,
its pages read into the page cache first where they fit), times one batch of
all queries and 50 single queries per setting, and prints recall@1/@10/@100,
QPS and latency, with the add rate the build report recorded.

    python benchmarks/bench_sweep.py /work/bigdata/full \
        /work/bigdata/full/indexes/HNSW32_SQ8_efC40.faiss \
        --settings efSearch=16 efSearch=64 efSearch=256 efSearch=512
"""

import argparse
import os

import faiss
import pandas as pd

from helpers import dataset, evaluate, groundtruth
from helpers.files import read_json
from helpers.vectors import read_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("index")
    ap.add_argument("--settings", nargs="+", required=True, help='ParameterSpace strings, e.g. efSearch=64')
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the rows as CSV here")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    ds = dataset.load_dataset(a.data_dir)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(ds, 100)
    name = os.path.basename(a.index)
    rows = evaluate.sweep({name: (a.index, os.path.getsize(a.index))}, xq, gt_D, gt_I,
                          metric=ds.metric, settings={name: a.settings}, repeats=1, single_queries=50)
    table = pd.DataFrame(rows)
    print(f"{ds.n:,} x {ds.d}, {ds.metric}, {len(xq):,} queries, {a.threads} threads, {rows[0]['loaded']}")
    print(table[["setting", "recall@1", "recall@10", "recall@100", "qps", "p50_ms", "p99_ms"]]
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
