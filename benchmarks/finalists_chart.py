"""The recall-vs-QPS chart of a committed run's sweep, as HTML and PNG.

    python benchmarks/finalists_chart.py benchmarks/results/full --png benchmarks/results/full/finalists.png

Reads sweep.csv (notebook 06's rows) and, from summary.json, the rows of its
exact final stage (the recommendation's SQ8 survivors re-ranked with the float32
rows, named "... + float32 re-rank"), plus any --extra CSV of
benchmarks/high_recall.py; draws helpers.notebook.plots.recall_qps (each index's
frontier, the high-recall end opened up) and writes it as HTML with plotly.js
inlined; with --png, headless Chromium (/usr/bin/chromium) renders
that page to a PNG.
"""

import argparse
import json
import os
import subprocess
import tempfile

from helpers.search import choose
from helpers.notebook import plots


def final_stage_rows(results):
    """Notebook 06's final-stage rows from results/summary.json, each named as a
    series of its own; [] when the run had none."""
    with open(os.path.join(results, "summary.json")) as f:
        summary = json.load(f)
    return reranked(summary["results"].get("06_recall_vs_latency", {}).get("high_recall_rows") or [])


def reranked(rows):
    """Final-stage rows, each index named as a series of its own."""
    return [dict(r, index=f"{r['index']} + float32 re-rank") for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a folder with sweep.csv and summary.json")
    ap.add_argument("--png", help="write a PNG here (needs /usr/bin/chromium)")
    ap.add_argument("--title", default="recall@10 vs queries per second at 10M x 1024")
    ap.add_argument("--extra", nargs="*", default=[], help="CSVs of benchmarks/high_recall.py")
    a = ap.parse_args()
    rows = choose.read_sweep(os.path.join(a.results, "sweep.csv")) + final_stage_rows(a.results)
    for path in a.extra:
        rows += reranked(choose.read_sweep(path))
    fig = plots.recall_qps(rows)
    fig.update_layout(title=a.title, width=1200, height=700)
    html = os.path.join(a.results, "finalists.html") if not a.png else tempfile.mktemp(suffix=".html")
    fig.write_html(html, include_plotlyjs=True)
    if a.png:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", f"--screenshot={os.path.abspath(a.png)}",
                        "--window-size=1250,760", f"file://{html}"], check=True,
                       capture_output=True, timeout=120)
        print(a.png)
    else:
        print(html)


if __name__ == "__main__":
    main()
