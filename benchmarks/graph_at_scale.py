"""One HNSW graph built over a whole dataset apart from a run, its build time recorded,
then swept the way the screening sweeps it.

    python benchmarks/graph_at_scale.py DATA_DIR "PCAR128,HNSW32,Refine(SQ8)" \
        --ef-construction 100 --out benchmarks/results/full/graph_10m

For a graph the `full` run's planner leaves out (its build would not fit the run's
time budget): built with helpers.index.build (resumable after a kill, reused when built
before) into DATA_DIR/indexes (or --index-dir), then swept with helpers.search.evaluate at the screening's
efSearch x refine-depth grid (config.SCREEN_SEARCH). Writes OUT/build.json (the
build report: add time, add trace, build peak) and OUT/sweep.csv, and prints the
best setting for recall@10 0.95 (helpers.search.choose).
"""

import argparse
import os
import shutil

from helpers.core import config
from helpers.core.files import format_bytes, parse_size, write_csv
from helpers.data import dataset, groundtruth
from helpers.data.vectors import read_rows
from helpers.index import build
from helpers.search import choose, evaluate, screen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("factory")
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--out", required=True, help="folder for build.json and sweep.csv")
    ap.add_argument("--index-dir", help="where the index is built (default: DATA_DIR/indexes)")
    ap.add_argument("--ef-search", type=int, nargs="+", default=config.SCREEN_SEARCH["ef_search"])
    ap.add_argument("--k-factors", type=int, nargs="+", default=config.SCREEN_SEARCH["k_factor_rf"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--single-queries", type=int, default=500)
    ap.add_argument("--build-budget", type=parse_size, help="bytes the build may use (default: "
                    "what is available)")
    ap.add_argument("--target-recall", type=float, default=0.95)
    a = ap.parse_args()

    ds = dataset.load_dataset(a.data_dir)
    name = build.build_name(a.factory, a.ef_construction)
    path = build.index_path(a.index_dir or os.path.join(a.data_dir, "indexes"), name)
    report = build.build_index(ds, a.factory, path, ef_construction=a.ef_construction,
                               build_budget=a.build_budget, load=False)
    del report["index"]  # the sweep maps the file
    print(f"{name}{' (reused)' if report['reused'] else ''}: add {report['add_s']:,.0f} s, build peak "
          f"{format_bytes(report['measured']['build_peak'])}, file {format_bytes(report['measured']['disk'])}")

    search = dict(config.SCREEN_SEARCH, ef_search=a.ef_search, k_factor_rf=a.k_factors)
    settings = screen.settings_for(a.factory, ds.d, ds.metric, search)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(ds, 100)
    rows = evaluate.sweep({name: (path, report["measured"]["disk"])}, xq, gt_D, gt_I, None, ds.metric,
                          settings={name: settings}, repeats=a.repeats,
                          single_queries=a.single_queries, full_timing_from=a.target_recall)
    os.makedirs(a.out, exist_ok=True)
    shutil.copy(path + ".json", os.path.join(a.out, "build.json"))
    write_csv(os.path.join(a.out, "sweep.csv"), rows)
    best, top = choose.best_setting(rows, a.target_recall)
    r = best or top
    print(f"{'best' if best else 'most accurate'}: {r['setting']} recall@10 {r['recall@10']:.3f} "
          f"({r['recall@10_ci'][0]:.3f}-{r['recall@10_ci'][1]:.3f}), {r['qps_median']:,.0f} queries/s, "
          f"p50 {r.get('p50_ms') or 0:.2f} ms")


if __name__ == "__main__":
    main()
