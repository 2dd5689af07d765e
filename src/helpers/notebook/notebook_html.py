"""Executed notebooks as standalone HTML that opens with no network.

The notebooks store figures as plotly's JSON mime type only (JupyterLab draws
it natively; a copy of plotly.js in every notebook made each 5-15 MB). For
HTML, each figure gets a drawn form, plotly.js is inlined once per page, and
MathJax, which nbconvert would fetch from a CDN, is left out (the notebooks
write no math). The runner saves no widget state (plotly's FigureWidget would
store its 5 MB of JavaScript in each), so a widget's output says where it
lives instead of printing its repr; without widgets nothing is fetched at all
(nbconvert's require.js is only there for the widget manager).
"""

import re

from ..core.files import write_text


PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "(an interactive widget: open the notebook in JupyterLab to use it)"
_CDN_REQUIRE = re.compile(r"<script[^>]*src=\"[^\"]*require(\.min)?\.js\"[^>]*>\s*</script>\s*", re.I)
_CDN_MATHJAX = re.compile(r"<script[^>]*src=\"[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                             re.S)


def _draw_figures(nb):
    """Give each plotly output an HTML form (a div drawn by plotly.js); returns how many."""
    import plotly.io as pio  # heavy: only an HTML export needs plotly

    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                fig = pio.from_json(__import__("json").dumps(data[PLOTLY_MIME]), skip_invalid=True)
                data["text/html"] = pio.to_html(fig, include_plotlyjs=False, full_html=False)
                count += 1
    return count


def _note_widgets(nb):
    """Widget outputs without saved state: their text says where the widget lives.
    Returns whether any widget keeps its state (and so needs the widget manager)."""
    if nb.metadata.get("widgets"):
        return True
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_MIME in out.get("data", {}):
                out["data"] = {"text/plain": WIDGET_NOTE}
    return False


def to_html(notebook_path, html_path=None):
    """Write the executed notebook at `notebook_path` as HTML beside it (or at
    html_path) and return that path."""
    import nbformat  # heavy: only executed notebooks need nbformat
    from nbconvert import HTMLExporter  # heavy: only an HTML export needs nbconvert
    from plotly.offline import get_plotlyjs  # heavy: only an HTML export needs plotly.js

    nb = nbformat.read(notebook_path, as_version=4)
    figures = _draw_figures(nb)
    widgets = _note_widgets(nb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    html = _MATHJAX_CONFIG.sub("", _CDN_MATHJAX.sub("", html))
    if not widgets:
        html = _CDN_REQUIRE.sub("", html)
    if figures:
        html = html.replace("</head>", f"<script>{get_plotlyjs()}</script>\n</head>", 1)
    html_path = html_path or notebook_path[:-len(".ipynb")] + ".html"
    return write_text(html_path, html)


def external_scripts(html):
    """The src of every <script> an HTML page fetches from the network."""
    return re.findall(r"<script[^>]*src=\"(https?://[^\"]+)\"", html)
