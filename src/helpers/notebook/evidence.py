"""The committed 10M × 1024 results (benchmarks/results/full), for notebooks run at
a smaller scale to show beside their own: what changes at 10M.

Everything here is read from files a `full` run wrote; nothing is typed in.
"""

import os
import re

import pandas as pd

from ..core.files import format_bytes, read_json
from ..index import factory_tree, planner
from ..search import choose


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FULL = os.path.join(ROOT, "benchmarks", "results", "full")
MISSING = f"no committed 10M run in {FULL} (its summary.json is missing): its figures are left out"


def full_run(folder=FULL):
    """(run facts: n, d, preset, dataset fingerprint; results of notebook 06) of the committed
    run, or None when the folder holds none."""
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        return None
    summary = read_json(path)
    gen = summary["results"].get("01_data_generation", {})
    facts = {"n": gen.get("n"), "d": gen.get("d"), "preset": summary["run"].get("preset"),
             "fingerprint": gen.get("fingerprint")}
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


# runs whose build reports may hold a coarse space the committed run reused
EARLIER = ["previous_run"]


def _builds(folder):
    """[(build report of 03, where)]: the committed run's, then EARLIER runs'."""
    out = []
    for where, sub in [("the run", "")] + [(e, e) for e in EARLIER]:
        path = os.path.join(folder, sub, "summary.json")
        if os.path.exists(path):
            builds = read_json(path)["results"].get("03_build_ivfpq", {}).get("builds", {})
            out += [(report, where) for report in builds.values()]
    return out


def _coarse_steps(report, folder):
    """[(step, seconds, where measured)] of the coarse space of a preassigned
    build: its own when it trained it, else that of a build of the same dataset,
    rows and coarse space that did (the committed run's others, then EARLIER's).
    [] when none recorded it."""
    space = factory_tree.coarse_factory(report["factory"])
    same = [(report, "the run")] if not report.get("coarse_reused") else \
        [(r, where) for r, where in _builds(folder)
         if not r.get("coarse_reused") and r.get("coarse_train_s")
         and factory_tree.coarse_factory(r["factory"]) == space
         and (r["dataset"], r["n"], r["n_train"]) == (report["dataset"], report["n"], report["n_train"])]
    if not same:
        return []
    r, where = same[0]
    if r is not report:
        where = f"{where}, by {r['factory']}: same dataset and rows"
    return [(f"{space}: k-means on {r['n_train']:,} rows", r["coarse_train_s"], where),
            (f"{space}: assigning {r['n']:,} rows to their lists", r["coarse_assign_s"], where)]


def answer_10m(folder=FULL):
    """The committed run's recommendation for recall@10 0.95, with how it was built
    from an empty folder; None when the run or its build report is missing.

    Returns {"n" (its rows), "index", "setting", "recall", "ci", "qps", "batches", "threads",
    "p50_ms", "p99_ms", "file_bytes" (the index as served, read whole into RAM),
    "build_peak" (bytes, measured), "steps" [(step, seconds, where measured)],
    "build_s" (their sum; None when the coarse space's steps are not recorded)}.
    """
    found = full_run(folder)
    best = found and found[1].get("recommended")
    reports = {r["factory"]: r for r, where in _builds(folder) if where == "the run"}
    if not best or best["index"] not in reports:
        return None
    report = reports[best["index"]]
    coarse = _coarse_steps(report, folder) if report.get("preassigned") else []
    steps = coarse + [(f"training its codes on {report['n_train']:,} rows", report["train_s"], "the run"),
                      (f"adding {report['n']:,} rows", report["add_s"], "the run")]
    complete = bool(coarse) or not report.get("preassigned")
    return {"n": report["n"], "index": best["index"], "setting": best["setting"], "recall": best["recall@10"],
            "ci": best["recall@10_ci"], "qps": best["qps_median"], "batches": best["batches"],
            "threads": best["threads"], "p50_ms": best["p50_ms"], "p99_ms": best["p99_ms"],
            "file_bytes": best["file_bytes"], "build_peak": report["measured"]["build_peak"],
            "steps": steps, "build_s": sum(s for _, s, _ in steps) if complete else None}


def about(ds, folder=FULL):
    """Lines saying what the committed run is beside this run's dataset `ds`: a
    note when ds holds the user's own vectors, the committed run's scale (or
    MISSING) and its answer (answer_line) when recorded."""
    found, answer = full_run(folder), answer_10m(folder)
    lines = [data_note(ds)] if data_note(ds) else []
    if not found:
        return lines + [MISSING]
    lines.append(f"committed run: preset {found[0]['preset']}, {found[0]['n']:,} x {found[0]['d']}; "
                 f"this run: {ds.n:,} x {ds.d}")
    return lines + ([answer_line(answer)] if answer else [])


def answer_line(a):
    """answer_10m's figures as one paragraph."""
    built = (f"built from an empty folder in {planner.format_seconds(a['build_s'])}" if a["build_s"]
             else "its coarse space was reused from a run that left no record, so its build time "
                  "from empty is not known")
    return (f"The committed 10M run chose {a['index']} at {a['setting']}: recall@10 {a['recall']:.3f} "
            f"(95% interval {a['ci'][0]:.3f}–{a['ci'][1]:.3f}), {a['qps']:,.0f} queries/s (median of "
            f"{a['batches']} batches on {a['threads']} threads), p50 {a['p50_ms']:.2f} ms and p99 "
            f"{a['p99_ms']:.2f} ms a single query; {format_bytes(a['file_bytes'])} in RAM (its file, "
            f"read whole); {built}, its build peaking at {format_bytes(a['build_peak'])}.")


def steps_table(a):
    """answer_10m's build steps as a DataFrame, with their total."""
    rows = [{"step": step, "time": planner.format_seconds(s), "measured by": where}
            for step, s, where in a["steps"]]
    if a["build_s"]:
        rows.append({"step": "from an empty folder", "time": planner.format_seconds(a["build_s"]),
                     "measured by": "the sum"})
    return pd.DataFrame(rows)


def shape(name):
    """An index name without its sizes: the family, its layers ("PCAR256,IVF16384,PQ256x4fs"
    and "PCAR64,IVF64,PQ64x4fs" -> "PCAR,IVF,PQx4fs")."""
    return re.sub(r"(PCAR|IVF|PQ|HNSW)\d+", r"\1", name.split(" efC=")[0])


def why_differs(chosen, answer, points, run_rows, run_n, target=0.95):
    """Sentences on why this run's choice (a sweep row, or None) differs from
    the committed 10M answer (answer_10m), in the numbers the runs measured:
    the fastest graph and IVF index at each N (winner_by_n's points), and how
    the 10M family did here (run_rows: this run's sweep)."""
    if answer is None:
        return f"no committed 10M answer (the recommendation of {FULL} and its build report): nothing to compare"
    if chosen is None:
        return f"This run recommends nothing at recall@10 {target}, so there is no choice to compare."
    if chosen["index"] == answer["index"]:
        return f"This run chose the same index, {answer['index']}."
    a_kind = {"IVF": "an IVF index", "graph": "a graph"}[kind(chosen["index"])]
    head = f"This run chose {chosen['index']} ({a_kind}) on {run_n:,} rows; the 10M run chose {answer['index']}"
    if shape(chosen["index"]) == shape(answer["index"]):
        return head + ": the same family, its sizes set for its rows and dimensions."
    at = {(p["n"], p["kind"]): p for p in points}
    said = []
    for n in (run_n, answer["n"]):
        found = [f"the fastest {k} {at[(n, k)]['index']} at {at[(n, k)]['qps']:,.0f} queries/s"
                 if (n, k) in at else f"no {k} cleared it" for k in ("graph", "IVF")]
        said.append(f"at {n:,} rows {' and '.join(found)}")
    own = [r for r in run_rows if shape(r["index"]) == shape(answer["index"])]
    mine = {name: best for name, (best, _) in choose.best_per_index(own, target).items()}
    if not own:
        built = "This run built no index of the 10M family; 03's \"taken apart\" section builds a stand-in."
    else:
        each = [f"{name} cleared it at {b['qps_median']:,.0f} queries/s" if b else f"{name} did not clear it"
                for name, b in mine.items()]
        built = f"Of the 10M family this run built {'; '.join(each)}, against {chosen['qps_median']:,.0f} for its choice."
    return (f"{head}. Clearing recall@10 {target}: {'; '.join(said)}. {built}")


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
        if _foreign(report, folder):
            continue
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


def _foreign(report, folder):
    """Whether a build report names a dataset other than the committed run's."""
    found = full_run(folder)
    return bool(found and report.get("dataset") and report["dataset"] != found[0]["fingerprint"])


def foreign_files(folder=FULL):
    """One line per committed graph build (GRAPHS) of another dataset than the
    committed run's: graphs_10m leaves it out."""
    reports = {b: read_json(os.path.join(folder, b)) for b, _ in GRAPHS if os.path.exists(os.path.join(folder, b))}
    return [f"{os.path.join(folder, b)} is from another dataset ({r['dataset'][:12]}…, not the committed "
            f"run's): its row is left out" for b, r in reports.items() if _foreign(r, folder)]


def data_note(ds):
    """A line when this run's vectors are not synthetic ones like the committed
    runs': their figures show how each family behaves on that data, not on these."""
    if ds.manifest.get("kind") == "synthetic":
        return ""
    return ("These are your vectors, not the committed runs' (the synthetic generator's): the "
            "committed figures show how each family behaves on that data, not on yours.")


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
