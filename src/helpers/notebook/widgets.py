"""ipywidgets controls for the notebooks. Each control is a small class whose
`.widget` is displayed and whose callbacks can be driven from code (tests,
papermill) by setting the sliders' values."""

import re

import ipywidgets as W
import plotly.graph_objects as go

from ..core.files import format_bytes
from ..core.index_files import as_index
from ..index import memory
from ..search.evaluate import evaluate, parameter_ranges, parse_setting, set_parameters
from . import plots
from .plots import recall_x


class BudgetExplorer:
    """RAM budget / N / d controls and a table of which configurations fit."""

    def __init__(self, factories, n, d, metric, ram_budget):
        self.factories = factories
        self.metric = metric
        self.ram = W.FloatLogSlider(value=ram_budget / 2**30, base=2, min=0, max=10, step=0.25,
                                    description="RAM GiB", continuous_update=False)
        self.n = W.IntText(value=n, description="N")
        self.d = W.IntText(value=d, description="d")
        self.table = W.HTML()
        for w in (self.ram, self.n, self.d):
            w.observe(self.update, names="value")
        self.widget = W.VBox([W.HBox([self.ram, self.n, self.d]), self.table])
        self.update()

    def rows(self):
        """(factory, prediction or None, reasons) for the current control values."""
        out = []
        for f in self.factories:
            try:
                p = memory.predict(f, self.n.value, self.d.value, self.metric)
            except ValueError as e:  # e.g. PQ m not dividing the new d
                out.append((f, None, [str(e)]))
                continue
            out.append((f, p, memory.fits(p, self.ram.value * 2**30)))
        return out

    def update(self, change=None):
        cells = ["<tr><th>factory</th><th>fits</th><th>index RAM</th><th>build peak</th>"
                 "<th>disk</th><th>why not</th></tr>"]
        for f, p, reasons in self.rows():
            if p is None:
                cells.append(f"<tr><td>{f}</td><td>n/a</td><td colspan=4>{reasons[0]}</td></tr>")
                continue
            colour = "#d4f7d4" if not reasons else "#f7d4d4"
            cells.append(
                f"<tr style='background:{colour}'><td>{f}</td><td>{'yes' if not reasons else 'no'}</td>"
                f"<td>{format_bytes(p['index_ram'])}</td><td>{format_bytes(p['build_peak'])}</td>"
                f"<td>{format_bytes(p['disk'])}</td><td>{'; '.join(reasons)}</td></tr>")
        self.table.value = "<table>" + "".join(cells) + "</table>"


class RecallExplorer:
    """An index selector and nprobe / efSearch sliders that re-run the search
    live and move the operating point on the recall-vs-QPS chart in place.

    indexes: {name: (faiss index or file path, index bytes)}; a path is loaded
    memory-mapped when selected, and only the selected index is kept. rows:
    evaluate.sweep rows, drawn as the background chart. Slider values beyond what
    an index takes (nprobe > nlist) are clipped to it, and the readout says so.
    `efSearch` drives HNSW indexes and the HNSW coarse quantizer of IVF ones.
    """

    def __init__(self, indexes, xq, gt_D, gt_I, rows, metric="L2", k=10, max_nprobe=1024,
                 max_ef=1024, single_queries=20):
        self.indexes, self.xq, self.gt_D, self.gt_I = indexes, xq, gt_D, gt_I
        self.metric, self.k, self.single_queries = metric, k, single_queries
        self.recall_key = f"recall@{k}"
        self._loaded = (None, None)
        self.selector = W.Dropdown(options=list(indexes), description="index")
        self.nprobe = W.IntSlider(value=16, min=1, max=max_nprobe, description="nprobe",
                                  continuous_update=False)
        self.ef_search = W.IntSlider(value=64, min=1, max=max_ef, description="efSearch",
                                     continuous_update=False)
        # the re-ranking depth: k_factor_rf x k candidates re-scored by a refine stage
        self.k_factor = W.IntSlider(value=1, min=1, max=512, description="k_factor_rf",
                                    continuous_update=False)
        self.readout = W.HTML()
        self.fig = go.FigureWidget(plots.recall_qps(rows, self.recall_key))
        self.fig.add_scatter(x=[], y=[], mode="markers", name="current",
                             marker=dict(symbol="star", size=18, color="black"))
        # one bar per possible value j/k, centred on it
        bins = dict(start=-0.5 / k, end=1 + 0.5 / k, size=1 / k)
        self.hist = go.FigureWidget(go.Figure(go.Histogram(x=[], xbins=bins)))
        self.hist.update_layout(title=f"per-query {self.recall_key}", xaxis_title=self.recall_key,
                                yaxis_title="queries", height=300, xaxis_range=[-0.05, 1.05])
        for w in (self.selector, self.nprobe, self.ef_search, self.k_factor):
            w.observe(self.update, names="value")
        self.widget = W.VBox([W.HBox([self.selector, self.nprobe, self.ef_search, self.k_factor]),
                              self.readout, self.fig, self.hist])
        self._holding = False
        self.last = None
        self.update()

    def text(self):
        """The readout as plain text."""
        return re.sub("<[^>]+>", "", self.readout.value)

    def index(self):
        """The selected index, loaded (mapped) if it was given as a path."""
        name = self.selector.value
        if self._loaded[0] != name:
            self._loaded = (name, as_index(self.indexes[name][0]))
        return self._loaded[1]

    def setting(self, index):
        """The parameter string the sliders mean for `index`."""
        ranges = parameter_ranges(index)
        self.nprobe.disabled = "nprobe" not in ranges
        self.ef_search.disabled = not ({"efSearch", "quantizer_efSearch"} & set(ranges))
        parts = []
        if "nprobe" in ranges:
            parts.append(f"nprobe={self.nprobe.value}")
        if "efSearch" in ranges:
            parts.append(f"efSearch={self.ef_search.value}")
        if "quantizer_efSearch" in ranges:
            parts.append(f"quantizer_efSearch={self.ef_search.value}")
        self.k_factor.disabled = "k_factor_rf" not in ranges
        if "k_factor_rf" in ranges:
            parts.append(f"k_factor_rf={self.k_factor.value}")
        return ",".join(parts)

    def open_at(self, name, setting):
        """Select index `name` with the sliders at `setting` ("nprobe=128,k_factor_rf=64"),
        searched once."""
        values = parse_setting(setting)
        self._holding = True
        try:
            self.selector.value = name
            for key, slider in (("nprobe", self.nprobe), ("efSearch", self.ef_search),
                                ("k_factor_rf", self.k_factor)):
                if key in values:
                    slider.value = int(values[key])
        finally:
            self._holding = False
        self.update()

    def update(self, change=None):

        if self._holding:
            return
        name = self.selector.value
        index = self.index()
        try:
            setting, notes = set_parameters(index, self.setting(index))  # clipped to the index
        except ValueError as e:
            self.last = None
            self.readout.value = f"<b style='color:#b00'>{name}: {e}</b>"
            with self.fig.batch_update():
                self.fig.data[-1].x, self.fig.data[-1].y = [], []
            return
        row, per_query = evaluate(index, self.xq, self.gt_D, self.gt_I, None, self.metric, self.k,
                                  repeats=1, single_queries=self.single_queries)
        self.last = dict(row, index=name, setting=setting)
        if "efSearch" in setting and self.ef_search.value < self.k:
            notes.append(f"efSearch below k={self.k} searches with k")
        note = f" ({'; '.join(notes)})" if notes else ""
        self.readout.value = (
            f"<b>{name}</b> with {setting}{note}: {self.recall_key} "
            f"<b>{row[self.recall_key]:.3f}</b>, {row['qps_median']:,.0f} queries/s (one batch, so "
            f"it differs from the sweep's median of several by a few %), single query p50 "
            f"{row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms ({row['threads']} threads)")
        with self.fig.batch_update():
            self.fig.data[-1].x = [recall_x(row[self.recall_key])]
            self.fig.data[-1].y = [row["qps_median"]]
        self.hist.data[0].x = per_query
