"""HNSW add rate against graph size, measured in builds, beside the planner's model.

    python benchmarks/hnsw_add_rate.py benchmarks/results/1m/summary.json \
        benchmarks/results/full/hnsw32_sq8_build.json --html /tmp/hnsw_add_rate.html

Each argument is a build report (`<index>.faiss.json`, as `python -m helpers build`
writes it) or a run's summary.json (its notebook 04 builds). For each, prints the
rows added, the measured add seconds, the planner's estimate for the same rows
(planner.estimate_build_seconds timed here on a 2,000-row synthetic sample, then
planner.extrapolate_add_seconds between the first and last row of the trace) and
their ratio. --html writes a chart: measured vectors/s as each graph grew, and the
model's rate at every size, dashed.
"""

import argparse
import json

import numpy as np

from helpers.index import planner


def reports_in(path):
    """{label: build report with an add_trace} from a report file or a summary.json."""
    data = json.load(open(path))
    if "results" in data:
        builds = data["results"].get("04_build_hnsw", {}).get("builds", {})
        return {f"{f} ({data['run']['preset']} run)": r for f, r in builds.items() if r.get("add_trace")}
    return {f"{data['factory']} (n={data['n']:,})": data}


def model_seconds(sample_s, sample_n, n0, n1):
    """The model's seconds to grow a graph from n0 to n1 rows."""
    return (planner.extrapolate_add_seconds(sample_s, sample_n, n1, "hnsw")
            - planner.extrapolate_add_seconds(sample_s, sample_n, max(n0, 1), "hnsw"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--html", help="write the chart here")
    a = ap.parse_args()
    reports = {k: v for p in a.reports for k, v in reports_in(p).items()}
    samples = {}
    rows_out = []
    for label, r in reports.items():
        key = (r["factory"], r["d"], r.get("ef_construction"))
        if key not in samples:
            sample = planner.synthetic_sample(r["d"], 2000)
            est = planner.estimate_build_seconds(r["factory"], len(sample), r["d"],
                                                 r.get("metric", "IP"), sample=sample,
                                                 ef_construction=r.get("ef_construction"))
            samples[key] = (len(sample) / est["sample_add_rate"], len(sample))
        sample_s, sample_n = samples[key]
        trace = np.array(r["add_trace"], dtype=float)
        n0, n1, took = trace[0, 0], trace[-1, 0], trace[-1, 1] - trace[0, 1]
        est_s = model_seconds(sample_s, sample_n, n0, n1)
        rows_out.append((label, n0, n1, took, est_s, trace))
        print(f"{label}: rows {n0:,.0f} -> {n1:,.0f}, measured {took:,.0f} s "
              f"({(n1 - n0) / took:,.0f} vectors/s), model {est_s:,.0f} s, "
              f"measured / model {took / est_s:.2f}")
    print(f"model: a {sample_n:,}-row sample inserted at {sample_n / sample_s:,.0f} vectors/s here, "
          f"cost per vector growing as n^{planner.HNSW_COST_EXPONENT:.2f}")
    if a.html:
        import plotly.graph_objects as go

        fig = go.Figure()
        for label, n0, n1, took, est_s, trace in rows_out:
            rate = np.diff(trace[:, 0]) / np.maximum(np.diff(trace[:, 1]), 1e-9)
            fig.add_trace(go.Scatter(x=trace[1:, 0], y=rate, mode="lines", name=f"{label}, measured"))
        top = max(r[2] for r in rows_out)
        grid = np.geomspace(10_000, top, 60)
        step = grid * 0.01
        model = step / np.array([model_seconds(sample_s, sample_n, g, g + s) for g, s in zip(grid, step)])
        fig.add_trace(go.Scatter(x=grid, y=model, mode="lines", line_dash="dash",
                                 name="planner's model (sample timed here)"))
        fig.update_layout(title="HNSW add rate as the graph grows (d = 1024, 2 threads)",
                          xaxis_title="vectors in the graph", xaxis_type="log",
                          yaxis_title="vectors added per second", yaxis_rangemode="tozero",
                          width=1100, height=550)
        fig.write_html(a.html, include_plotlyjs=True)
        print(f"chart: {a.html}")


if __name__ == "__main__":
    main()
