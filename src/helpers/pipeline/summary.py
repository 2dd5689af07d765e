"""Key results of each notebook, recorded for the run summary (helpers.pipeline.run)."""

import html
import os

from ..core import keys
from ..core.files import read_json, write_csv, write_json, write_text


def record(results_dir, notebook, **results):
    """Write `results` (JSON-able values) as results_dir/<notebook>.json; a no-op
    when results_dir is empty (a notebook run by hand). Returns nothing, so the
    notebook's last cell shows nothing."""
    if not results_dir:
        return
    os.makedirs(results_dir, exist_ok=True)
    write_json(os.path.join(results_dir, f"{notebook}.json"), results)


def recorded(results_dir):
    """{notebook: results} of everything the notebooks recorded in results_dir
    (files named after a notebook, 01_...json; recommended.json sits beside them)."""
    if not os.path.isdir(results_dir):
        return {}
    return {name[:-5]: read_json(os.path.join(results_dir, name))
            for name in sorted(os.listdir(results_dir))
            if name.endswith(".json") and name[:2].isdigit()}


def build_results(reports):
    """Build reports (build.build_all) without the index objects and RSS traces."""
    return {f: {k: v for k, v in r.items() if k not in ("index", "rss_trace")}
            for f, r in reports.items()}


def _build_rows(results):
    rows = []
    for nb in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq"):
        for f, r in results.get(nb, {}).get("builds", {}).items():
            m, p = r.get("measured", {}), r.get("predicted", {})
            rows.append({"notebook": nb, "factory": f, "reused": r.get("reused"),
                         "train_s": r.get("train_s"), "add_s": r.get("add_s"),
                         "add_vectors_per_s": r.get("add_vectors_per_s"),
                         "file_bytes": m.get("disk"), "predicted_file_bytes": p.get("disk"),
                         "build_peak_bytes": m.get("build_peak"),
                         "predicted_build_peak_bytes": p.get("build_peak")})
    return rows


def _html_table(rows, columns=None, raw=()):
    """rows (dicts) as an HTML table with headings in words and values as people
    read them (helpers.core.keys); values are escaped except in the `raw` columns."""
    if not rows:
        return "<p><i>none</i></p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(keys.header(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td>{r.get(c) if c in raw else html.escape(keys.cell(c, r.get(c)))}</td>"
        for c in columns) + "</tr>" for r in rows)
    return f"<div class='t'><table><tr>{head}</tr>{body}</table></div>"


def write_summary(run_dir):
    """Collect a run's state and every notebook's recorded results into
    summary.json, builds.csv, pareto.csv and summary.html in run_dir."""
    state = read_json(os.path.join(run_dir, "run.json"))
    results = recorded(os.path.join(run_dir, "results"))
    builds = _build_rows(results)
    pareto = results.get("06_recall_vs_latency", {}).get("pareto", [])
    write_json(os.path.join(run_dir, "summary.json"), {"run": state, "results": results})
    write_csv(os.path.join(run_dir, "builds.csv"), builds)
    write_csv(os.path.join(run_dir, "pareto.csv"), pareto)
    write_text(os.path.join(run_dir, "summary.html"), _summary_html(state, results, builds, pareto))


def _summary_html(state, results, builds, pareto):
    """summary.html's text: the run's state, then each notebook's key tables."""
    data = results.get("01_data_generation") or {}
    scale = (f"{data['n']:,} vectors × {data['d']}, {data['metric']}, {data['n_queries']:,} queries"
             if data else "scale not recorded")
    parts = [f"<h1>Workbook run: preset {html.escape(state['preset'])}, {state['status']}</h1>",
             f"<p>Made at {html.escape(scale)}. Started {state['started']}; completed: "
             f"{', '.join(state['done']) or 'nothing'}</p>"]
    failed = state.get("failed")
    if failed:
        parts.append(f"<p style='color:#b00'><b>{failed['notebook']} failed</b> in cell "
                     f"[{failed['cell']}]: {html.escape(failed['error'])}. Partly executed "
                     f"notebook: <a href='{os.path.basename(failed['partial_notebook'])}'>"
                     f"{os.path.basename(failed['partial_notebook'])}</a></p>")
    parts.append(_html_table([{"notebook": f"<a href='{n}.html'>{n}</a>", "seconds": s}
                              for n, s in state["seconds"].items()], raw=("notebook",)))
    data = results.get("01_data_generation")
    if data:
        parts.append("<h2>Dataset</h2>" + _html_table([{k: data[k] for k in (
            "n", "d", "metric", "n_queries", "data_reused", "ground_truth_k",
            "ground_truth_reused", "relative_contrast")}]))
    mem = results.get("02_memory_budget")
    if mem:
        checks = [{"factory": c["factory"], "figure": key,
                   "predicted_bytes": c["predicted"][key],
                   "measured_bytes": c["measured"]["index_ram_loaded" if key == "index_ram" else key]}
                  for c in mem["checks"] for key in ("disk", "index_ram", "build_peak")]
        parts.append("<h2>Memory model: predicted vs measured</h2>" + _html_table(checks))
        recipes = [{"factory": r["factory"], "index_ram_bytes": r["index_ram"],
                    "disk_bytes": r["disk"], "build_peak_bytes": r["build_peak"]}
                   for r in mem["recipes"]]
        parts.append("<h3>The copied recipes at the target scale</h3>" + _html_table(recipes))
    parts.append("<h2>Builds</h2>" + _html_table(builds))
    rec = results.get("06_recall_vs_latency")
    if rec:
        parts.append(f"<h2>Recommendation</h2><p>{html.escape(rec['recommendation'])}</p>")
        parts.append("<h2>Pareto frontier</h2>" + _html_table(pareto, [
            "index", "setting", "recall@10", "recall@10_ci", "recall@1", "recall@100", "qps_median",
            "qps_min", "qps_max", "batches", "p50_ms", "p99_ms", "threads", "file_bytes"]))
    style = ("<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             ".t{overflow-x:auto}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th{background:#f4f4f4}</style>")
    return (f"<!doctype html><html><head><meta charset='utf-8'>{style}</head><body>"
            + "".join(parts) + "</body></html>")
