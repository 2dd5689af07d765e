"""ipywidgets controls for the notebooks. Each control is a small class whose
`.widget` is displayed and whose callbacks can be driven from code (tests,
papermill) by setting the sliders' values."""

import ipywidgets as W

from . import memory
from .files import format_bytes


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
