"""The committed 10M × 1024 results (benchmarks/results/full), for notebooks run at
a smaller scale to show beside their own: what changes at 10M.

Everything here is read from files a `full` run wrote; nothing is typed in.
"""

import os

import pandas as pd

from ..core.files import read_json
from ..index import factory_tree, planner
from ..search import choose


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FULL = os.path.join(ROOT, "benchmarks", "results", "full")
MISSING = f"no committed 10M run in {FULL} (its summary.json is missing): its figures are left out"


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


RESULTS = os.path.dirname(FULL)
# what the committed runs measured at each N: screenings' verdicts and built indexes' sweeps
BY_N = [(1_000_000, "verdicts", os.path.join("full", "screening", "verdicts.json")),  # its first 1M rows
        (1_000_000, "verdicts", os.path.join("1m", "screening", "verdicts.json")),
        (1_000_000, "sweep", os.path.join("1m", "sweep.csv")),
        (2_000_000, "verdicts", os.path.join("full", "screening_2m", "verdicts.json")),
        (10_000_000, "sweep", os.path.join("full", "sweep.csv")),
        (10_000_000, "sweep", os.path.join("full", "graph_10m", "sweep.csv")),
        (10_000_000, "sweep", os.path.join("full", "hnsw32_sq8_sweep.csv"))]


def kind(name):
    """"graph" or "IVF" for an index name as the sweeps give it ("HNSW32,SQ8 efC=40")."""
    return "IVF" if factory_tree.split_factory(name.split(" efC=")[0])[0] else "graph"


def _fastest(named_qps):
    """{kind: (qps, name)}: the fastest of [(name, qps)] per kind."""
    out = {}
    for name, qps in named_qps:
        if qps > out.get(kind(name), (0, ""))[0]:
            out[kind(name)] = (qps, name)
    return out


def fastest_by_kind(rows, target=0.95):
    """{kind: (qps, index)} of sweep rows: each index's fastest setting timed in
    full whose recall@10 interval clears `target` (choose.best_per_index)."""
    return _fastest((name, best["qps_median"])
                    for name, (best, _) in choose.best_per_index(rows, target).items() if best)


def winner_by_n(run_rows, run_n, target=0.95, results=RESULTS):
    """(points, missing): the fastest graph and the fastest IVF index at recall@10
    >= target at each N, this run's (run_rows: its sweep) and the committed
    runs' (BY_N); points are {"n", "kind", "index", "qps", "source"}, missing a
    line per committed file not found."""
    points, missing = [], []
    for n, what, rel in BY_N:
        path = os.path.join(results, rel)
        if not os.path.exists(path):
            missing.append(f"no {os.path.join('benchmarks', 'results', rel)}: its {n:,}-row point is left out")
            continue
        if what == "sweep":
            found = fastest_by_kind(choose.read_sweep(path), target)
        else:  # a screening: each family's best setting at the target, when it cleared it
            found = _fastest((v["family"], v["qps_median"]) for v in read_json(path)
                             if v.get("recall_ci") and v["recall_ci"][0] >= target)
        points += [{"n": n, "kind": k, "index": name, "qps": qps, "source": rel}
                   for k, (qps, name) in found.items()]
    points += [{"n": run_n, "kind": k, "index": name, "qps": qps, "source": "this run"}
               for k, (qps, name) in fastest_by_kind(run_rows, target).items()]
    best = {}
    for p in points:  # one point per N and kind: the fastest of its sources
        if p["qps"] > best.get((p["n"], p["kind"]), {"qps": 0})["qps"]:
            best[(p["n"], p["kind"])] = p
    return sorted(best.values(), key=lambda p: (p["kind"], p["n"])), missing
