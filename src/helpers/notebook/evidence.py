"""The committed 10M × 1024 results (benchmarks/results/full), for notebooks run at
a smaller scale to show beside their own: what changes at 10M.

Everything here is read from files a `full` run wrote; nothing is typed in.
"""

import os

import pandas as pd

from ..core.files import read_json
from ..index import planner
from ..search import choose


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FULL = os.path.join(ROOT, "benchmarks", "results", "full")


def full_run(folder=FULL):
    """(run facts: n, d, preset, seconds; results of notebook 06) of the committed
    run, or None when the folder holds none."""
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        return None
    summary = read_json(path)
    gen = summary["results"].get("01_data_generation", {})
    facts = {"n": gen.get("n"), "d": gen.get("d"), "preset": summary["run"].get("preset")}
    return facts, summary["results"].get("06_recall_vs_latency", {})


def answer_table(folder=FULL):
    """The 10M recommendation for recall@10 0.95 and 0.99 as a DataFrame (one row
    each: index, setting, recall@10 with its interval, median QPS, p50 / p99 ms)."""
    found = full_run(folder)
    if found is None:
        return pd.DataFrame()
    _, r06 = found
    rows = []
    for goal, key in (("recall@10 ≥ 0.95", "recommended"), ("recall@10 ≥ 0.99", "high_recall")):
        row = r06.get(key)
        if row:
            lo, hi = row["recall@10_ci"]
            rows.append({"goal": goal, "index": row["index"], "setting": row["setting"],
                         "recall@10 (95% interval)": f"{row['recall@10']:.3f} ({lo:.3f}–{hi:.3f})",
                         "queries/s (median)": f"{row['qps_median']:,.0f}",
                         "p50 / p99 (ms)": f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f}"
                         if row.get("p50_ms") else "–"})
    return pd.DataFrame(rows)


def best_per_index(folder=FULL, target=0.95):
    """Per index of the committed 10M sweep: its fastest setting timed in full whose
    recall@10 interval clears `target`, else its highest recall (DataFrame)."""
    path = os.path.join(folder, "sweep.csv")
    if not os.path.exists(path):
        return pd.DataFrame()
    out = []
    for index, (best, top) in choose.best_per_index(choose.read_sweep(path), target).items():
        row = best or top
        out.append({"index": index, "setting": row["setting"], "recall@10": round(row["recall@10"], 3),
                    f"clears {target}": best is not None,
                    "queries/s (median)": f"{row['qps_median']:,.0f}",
                    "index file (GiB)": round(row["file_bytes"] / 2**30, 1)})
    return pd.DataFrame(out)


# the graphs built at 10M apart from a run: (build report, sweep), oldest first
GRAPHS = [("hnsw32_sq8_build.json", "hnsw32_sq8_sweep.csv"),
          (os.path.join("graph_10m", "build.json"), os.path.join("graph_10m", "sweep.csv"))]


def graphs_10m(folder=FULL, target=0.95):
    """The HNSW graphs built at 10M (GRAPHS), one row each: factory, efConstruction,
    rows, the rows its last run added (a build resumed from a checkpoint added
    fewer, and says so), that run's add time (min) and rate, file size, and from its sweep the fastest
    setting timed in full whose recall@10 interval clears `target`, else its most
    accurate (helpers.search.choose.best_setting). An empty DataFrame when none is there."""
    out = []
    for build_file, sweep_file in GRAPHS:
        build, sweep = os.path.join(folder, build_file), os.path.join(folder, sweep_file)
        if not (os.path.exists(build) and os.path.exists(sweep)):
            continue
        report = read_json(build)
        best, top = choose.best_setting(choose.read_sweep(sweep), target)
        row = best or top
        ci = row.get("recall@10_ci")  # older sweeps have none
        out.append({"factory": report["factory"], "efConstruction": report["ef_construction"],
                    "rows": report["n"], "rows added in its last run": report["rows_added_this_run"],
                    "resumed from": report.get("resumed_from") or "–",
                    "add in its last run (min)": round(report["add_s"] / 60),
                    "vectors/s added": round(report["add_vectors_per_s"]),
                    "index file (GiB)": round(report["measured"]["disk"] / 2**30, 1),
                    "setting": row["setting"], f"clears {target}": best is not None,
                    "recall@10": round(row["recall@10"], 3),
                    "recall@10 95% interval": f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "–",
                    "queries/s (median)": round(row["qps_median"])})
    return pd.DataFrame(out)


def hnsw_model_error(folder=FULL, build_file=GRAPHS[0][0]):
    """How far the planner's HNSW model is from a committed 10M build: the add
    time of that build's first doubling from a tenth of its rows on (its add
    trace), extrapolated to its last row with planner.HNSW_COST_EXPONENT, over
    the add time it measured. Returns (projected / measured, first row, last
    row, factory) or None."""
    path = os.path.join(folder, build_file)
    if not os.path.exists(path):
        return None
    report = read_json(path)
    p = planner.trace_projection(report["add_trace"], planner.HNSW_COST_EXPONENT)
    return p["ratio"], p["first_row"], p["last_row"], report["factory"]
