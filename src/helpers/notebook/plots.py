"""Plotly figures used across the notebooks. Each function returns a figure."""

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio

from ..core.files import format_bytes
from ..index import factory_tree, memory
from ..search.choose import pareto_frontier


def setup_renderer():
    """Make figures show in JupyterLab and survive in saved notebooks: plotly's
    JSON mime type only, which JupyterLab draws natively, so no notebook
    carries its own copy of plotly.js (~5 MB). HTML exports draw the figures
    with one inlined plotly.js (helpers.notebook.notebook_html)."""
    pio.renderers.default = "plotly_mimetype"


def histograms(series, title, xaxis_title, nbins=60):
    """Overlaid histograms, one per entry of `series` (name -> 1-D array)."""
    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(go.Histogram(x=values, name=name, nbinsx=nbins, opacity=0.6))
    fig.update_layout(barmode="overlay", title=title, xaxis_title=xaxis_title,
                      yaxis_title="count")
    return fig


def spectra(series, title, top=128):
    """Cumulative explained variance per principal axis (name -> spectrum)."""
    fig = go.Figure()
    for name, s in series.items():
        c = np.cumsum(s)[:top]
        fig.add_trace(go.Scatter(x=np.arange(1, len(c) + 1), y=c, name=name, mode="lines"))
    fig.update_layout(title=title, xaxis_title="principal axes kept",
                      yaxis_title="fraction of variance", yaxis_range=[0, 1])
    return fig


def build_peak_breakdown(predictions, build_budget):
    """Stacked bars: what makes up each prediction's build peak, beside the budget.

    predictions: dicts from memory.predict. The training phase and the adding
    phase are separate bars; the build peak is the taller of the two.
    """
    fig = go.Figure()
    names = [p["factory"] for p in predictions]
    for i, (label, _) in enumerate(predictions[0]["lines"]):
        phase = "train" if i < 2 else "add"  # the first two lines are the training phase
        fig.add_trace(go.Bar(name=label, x=[names, [phase] * len(names)],
                             y=[p["lines"][i][1] / 2**30 for p in predictions]))
    fig.add_hline(y=build_budget / 2**30, line_dash="dash", annotation_text="build budget")
    fig.update_layout(barmode="stack", title="Build peak by phase (GiB)", yaxis_title="GiB")
    return fig


def memory_vs_n(factories, d, metric, ram_budget, ns=None):
    """Index RAM (solid) and file size (dotted) per factory as N grows, log-log."""
    ns = ns if ns is not None else np.logspace(5, 8, 13).astype(int)
    fig = go.Figure()
    for i, f in enumerate(factories):
        color, symbol = family_style(i)
        node = factory_tree.parse(f, d, metric)
        ram = [memory.index_ram(node, n) / 2**30 for n in ns]
        disk = [memory.disk_bytes(node, n) / 2**30 for n in ns]
        fig.add_trace(go.Scatter(x=ns, y=ram, name=f, mode="lines+markers", legendgroup=f,
                                 line_color=color, marker=dict(symbol=symbol, size=7)))
        fig.add_trace(go.Scatter(x=ns, y=disk, name=f + " (file)", mode="lines", line_color=color,
                                 line_dash="dot", legendgroup=f, showlegend=False))
    # a trace, not add_hline: on a log axis a shape's y is read as a power of ten,
    # which stretched this axis to 10^24 GiB
    label = f"RAM budget {ram_budget / 2**30:,.1f} GiB"
    fig.add_trace(go.Scatter(x=[ns[0], ns[-1]], y=[ram_budget / 2**30] * 2, name=label,
                             mode="lines+text", text=["", label], textposition="top left",
                             line=dict(dash="dash", color="black")))
    fig.update_layout(title=f"Index size vs N at d={d} (solid: RAM, dotted: file; a legend entry "
                            f"toggles a family)",
                      xaxis_type="log", yaxis_type="log", xaxis_title="N vectors",
                      yaxis_title="GiB", height=650,
                      legend=dict(orientation="h", yanchor="top", y=-0.15))
    return fig


def _hover(r):

    lat = (f"<br>p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms" if r.get("p50_ms") is not None
           else "<br>(one timed batch: dominated by another setting)")
    return (f"{r['index']}<br>{r['setting'] or 'defaults'}<br>index file {format_bytes(r['file_bytes'])}"
            f"{lat}, {r['threads']} threads")


SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down",
           "pentagon", "hexagon"]
RECALL_TICKS = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]


def family_style(i):
    """Colour and marker of the i-th family: distinct pairs for 240 families
    (24 colours of plotly's Dark24 x 10 marker shapes, both cycling)."""
    palette = plotly.colors.qualitative.Dark24
    return palette[i % len(palette)], SYMBOLS[(i // len(palette) + i) % len(SYMBOLS)]


def recall_x(recall):
    """Where recall_qps draws a recall on its x axis."""
    return max(1.0 - recall, 1e-4)  # 1 - recall on a log axis; a perfect recall at its edge


def recall_qps(rows, recall_key="recall@10"):
    """ann-benchmarks' chart, with the high-recall end opened up: recall on x as
    1 - recall on a reversed log axis (0.9, 0.95, 0.99 equally apart), median
    queries/s on a log y axis.

    rows: evaluate.sweep rows. Each index gets a colour and a marker of its own,
    its Pareto frontier as a line and every setting as a faint point; hover
    shows parameters, memory and latency.
    """
    fig = go.Figure()
    for i, name in enumerate(dict.fromkeys(r["index"] for r in rows)):
        color, symbol = family_style(i)
        mine = [r for r in rows if r["index"] == name]
        front = pareto_frontier(mine, recall_key)
        style = dict(legendgroup=name, line_color=color, marker=dict(color=color, symbol=symbol, size=8))
        fig.add_trace(go.Scatter(x=[recall_x(r[recall_key]) for r in front],
                                 y=[r["qps_median"] for r in front], mode="lines+markers", name=name,
                                 hovertext=[_hover(r) for r in front], hoverinfo="text+y", **style))
        fig.add_trace(go.Scatter(x=[recall_x(r[recall_key]) for r in mine],
                                 y=[r["qps_median"] for r in mine], mode="markers", opacity=0.3,
                                 name=name, showlegend=False, hovertext=[_hover(r) for r in mine],
                                 hoverinfo="text+y", **style))
    fig.update_layout(title=f"{recall_key} vs queries per second (up and right is better)",
                      xaxis=dict(title=recall_key, type="log", autorange="reversed",
                                 tickvals=[1 - t for t in RECALL_TICKS],
                                 ticktext=[str(t) for t in RECALL_TICKS]),
                      yaxis_title="queries / s (median batch)", yaxis_type="log", height=600,
                      legend=dict(orientation="h", yanchor="top", y=-0.15))
    return fig


def recall_memory(rows, recall_key="recall@10"):
    """Best recall each index reaches against its memory: the same colours, markers
    and opened-up recall axis as recall_qps, names in the legend (text labels
    pile up where most indexes sit, near recall 1), memory in MiB or GiB."""
    best = {}
    for r in rows:
        if r["index"] not in best or r[recall_key] > best[r["index"]][recall_key]:
            best[r["index"]] = r
    top = max((r["file_bytes"] for r in best.values()), default=0)
    unit, scale = ("GiB", 2**30) if top >= 2**30 else ("MiB", 2**20)
    fig = go.Figure()
    for i, (name, r) in enumerate(best.items()):
        color, symbol = family_style(i)
        fig.add_trace(go.Scatter(x=[recall_x(r[recall_key])], y=[r["file_bytes"] / scale],
                                 mode="markers", name=name, hovertext=[_hover(r)], hoverinfo="text",
                                 marker=dict(color=color, symbol=symbol, size=11)))
    fig.update_layout(title=f"Best {recall_key} against index memory (down and right is better)",
                      xaxis=dict(title=f"best {recall_key}", type="log", autorange="reversed",
                                 tickvals=[1 - t for t in RECALL_TICKS],
                                 ticktext=[str(t) for t in RECALL_TICKS]),
                      yaxis=dict(title=f"index memory ({unit})", type="log", tickformat=",.3~r"),
                      height=550, legend=dict(orientation="h", yanchor="top", y=-0.15))
    return fig


def add_rate(reports, estimates=None):
    """Vectors added per second against vectors already in the index, one line per
    build (its report's add_trace), and the estimated average rate, dashed, where
    `estimates` ({factory: estimated build seconds}) has one."""
    palette = plotly.colors.qualitative.Plotly
    fig = go.Figure()
    for i, (f, r) in enumerate(reports.items()):
        trace = np.array(r.get("add_trace") or [], dtype=float)
        if len(trace) < 2:
            continue
        color = palette[i % len(palette)]
        rows, secs = trace[:, 0], trace[:, 1]
        rate = np.diff(rows) / np.maximum(np.diff(secs), 1e-9)
        fig.add_trace(go.Scatter(x=rows[1:], y=rate, mode="lines", name=f"{f} (measured)",
                                 line_color=color))
        est = (estimates or {}).get(f)
        if est:  # the estimate is of the whole build, training included
            fig.add_trace(go.Scatter(x=[rows[0], rows[-1]], y=[rows[-1] / est] * 2, mode="lines",
                                     line_dash="dash", line_color=color,
                                     name=f"{f} (estimated average, with training)"))
    fig.update_layout(title="Add rate as the index grows", xaxis_title="vectors in the index",
                      yaxis_title="vectors added per second", yaxis_rangemode="tozero")
    return fig


def winner_by_n(points, target=0.95):
    """evidence.winner_by_n points: queries/s at recall@10 >= target against N, one
    line per kind (graph, IVF), both axes log; hover names the index and its source."""
    fig = go.Figure()
    for i, name in enumerate(("graph", "IVF")):
        mine = [p for p in points if p["kind"] == name]
        color, symbol = family_style(i)
        fig.add_trace(go.Scatter(x=[p["n"] for p in mine], y=[p["qps"] for p in mine],
                                 mode="lines+markers", name=f"fastest {name}",
                                 marker=dict(color=color, symbol=symbol, size=10), line_color=color,
                                 hovertext=[f"{p['index']}<br>{p['source']}" for p in mine],
                                 hoverinfo="text+x+y"))
    fig.update_layout(title=f"Queries/s at recall@10 ≥ {target} against N: the fastest graph and IVF",
                      xaxis=dict(title="rows (N)", type="log"),
                      yaxis=dict(title="queries / s (median batch)", type="log"), height=450)
    return fig
