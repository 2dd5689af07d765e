"""The exact final stage for recall@10 0.99 on an index a run did not pick for it.

    python benchmarks/high_recall.py DATA_DIR "PCAR256,IVF16384,PQ64x4fs,Refine(SQ8)" \
        --settings nprobe=1536,k_factor_rf=64 nprobe=2048,k_factor_rf=64 \
        --out benchmarks/results/full/high_recall_pq64.csv

Notebook 06 extends only the index it recommends for 0.95. At 0.99 the coarse scan,
not the refine, is the cost (nprobe 8x the 0.95 setting's), and a scan reads each
code: an index with smaller codes scans faster at the same nprobe and makes up
for its cruder ranking with a deeper SQ8 re-rank. This builds FACTORY with
helpers.index.build (the dataset's shared coarse space reused, resumable, reused when
built before) into DATA_DIR/indexes, maps it, and runs helpers.search.final_stage on the
given settings x --depths: recall@10 with its interval, queries/s cold and warm
(median of --repeats batches), then p50 / p99 of the fastest setting clearing
--target. A setting deeper in every value than one that already clears --target
is skipped: it could only be slower. Writes OUT (CSV) and prints the verdict.
"""

import argparse

from helpers.core import index_files
from helpers.core.files import format_bytes, parse_size, write_csv
from helpers.data import dataset, groundtruth
from helpers.data.vectors import read_rows
from helpers.index import build
from helpers.search import final_stage


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("factory")
    ap.add_argument("--settings", nargs="+", required=True, help='e.g. "nprobe=2048,k_factor_rf=64"')
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 5],
                    help="candidates re-ranked exactly, as a multiple of k")
    ap.add_argument("--out", required=True, help="CSV of the final stage's rows")
    ap.add_argument("--index-dir", help="where the index is built (default: DATA_DIR/indexes)")
    ap.add_argument("--build-budget", type=parse_size, help="bytes the build may use")
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single-queries", type=int, default=500)
    a = ap.parse_args()

    ds = dataset.load_dataset(a.data_dir)
    path = build.index_path(a.index_dir or f"{a.data_dir}/indexes", a.factory)
    report = build.build_index(ds, a.factory, path, build_budget=a.build_budget, load=False)
    print(f"{a.factory}{' (reused)' if report['reused'] else ''}: add {report['add_s']:,.0f} s, "
          f"file {format_bytes(report['measured']['disk'])}")
    report.pop("index")  # a fresh build's copy in RAM: the stage maps the file instead
    index = index_files.as_index(path)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    _, gt_I = groundtruth.ground_truth(ds, 100)
    rows = final_stage.sweep(a.factory, index, xq, gt_I, ds.base, ds.metric, a.settings, a.depths,
                             repeats=a.repeats, file_bytes=report["measured"]["disk"],
                             stop_at=a.target)
    best, advice = final_stage.recommend(rows, a.target)
    if best:
        best.update(final_stage.latency(index, xq, ds.base, best["setting"], metric=ds.metric,
                                        n=a.single_queries))
    write_csv(a.out, rows)
    for r in rows:
        lo, hi = r["recall@10_ci"]
        print(f"{r['setting']}: recall@10 {r['recall@10']:.4f} ({lo:.4f}-{hi:.4f}), "
              f"{r['qps_median']:,.0f} queries/s warm [{r['qps_min']:,.0f}-{r['qps_max']:,.0f}], "
              f"{r['qps_cold']:,.0f} cold")
    print(advice + (f" p50 {best['p50_ms']:.2f} ms, p99 {best['p99_ms']:.2f} ms." if best else ""))


if __name__ == "__main__":
    main()
