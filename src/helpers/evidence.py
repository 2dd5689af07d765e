"""The committed 10M × 1024 results (benchmarks/results/full), for notebooks run at
a smaller scale to show beside their own: what changes at 10M.

Everything here is read from files a `full` run wrote; nothing is typed in.
"""

import os

import pandas as pd

from . import choose
from .files import read_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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


def hnsw_10m(folder=FULL):
    """The one HNSW graph built at 10M (HNSW32,SQ8, efConstruction 40): its build
    report's facts and its sweep's best recall, or None."""
    build = os.path.join(folder, "hnsw32_sq8_build.json")
    sweep = os.path.join(folder, "hnsw32_sq8_sweep.csv")
    if not (os.path.exists(build) and os.path.exists(sweep)):
        return None
    report, rows = read_json(build), pd.read_csv(sweep)
    top = rows.loc[rows["recall@10"].idxmax()]
    return {"factory": report["factory"], "ef_construction": report["ef_construction"],
            "n": report["n"], "add_vectors_per_s": report["add_vectors_per_s"],
            "best recall@10": float(top["recall@10"]), "at": top["setting"]}


def hnsw_model_error(folder=FULL):
    """How far the planner's HNSW model is from the committed 10M build: the add
    time of that build's first doubling (from its add trace), extrapolated to its
    last row with planner.HNSW_COST_EXPONENT, over the add time it measured.
    Returns (projected / measured, first row, last row) or None."""
    from .planner import HNSW_COST_EXPONENT

    path = os.path.join(folder, "hnsw32_sq8_build.json")
    if not os.path.exists(path):
        return None
    trace = read_json(path)["add_trace"]
    n0, t0 = trace[0]
    n1, t1 = next((n, t) for n, t in trace if n >= 2 * n0)
    end_n, end_t = trace[-1]
    power = 1 + HNSW_COST_EXPONENT
    projected = (t1 - t0) * (end_n ** power - n0 ** power) / (n1 ** power - n0 ** power)
    return projected / (end_t - t0), int(n0), int(end_n)
