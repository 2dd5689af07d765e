"""Executed notebooks as standalone HTML that opens with no network.

The notebooks store figures as plotly's JSON mime type only (JupyterLab draws
it natively; a copy of plotly.js in every notebook made each 5-15 MB). For
HTML, each figure gets a drawn form, plotly.js is inlined once per page, and
MathJax, which nbconvert would fetch from a CDN, is left out (the notebooks
write no math). Widgets keep their saved state; showing it needs the widget
manager, the one script still fetched from the network.
"""

import re

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_CDN_MATHJAX = re.compile(r"<script[^>]*src=\"[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                             re.S)


def _draw_figures(nb):
    """Give each plotly output an HTML form (a div drawn by plotly.js); returns how many."""
    import plotly.io as pio

    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                fig = pio.from_json(__import__("json").dumps(data[PLOTLY_MIME]), skip_invalid=True)
                data["text/html"] = pio.to_html(fig, include_plotlyjs=False, full_html=False)
                count += 1
    return count


def to_html(notebook_path, html_path=None):
    """Write the executed notebook at `notebook_path` as HTML beside it (or at
    html_path) and return that path."""
    import nbformat
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    nb = nbformat.read(notebook_path, as_version=4)
    figures = _draw_figures(nb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    html = _MATHJAX_CONFIG.sub("", _CDN_MATHJAX.sub("", html))
    if figures:
        html = html.replace("</head>", f"<script>{get_plotlyjs()}</script>\n</head>", 1)
    html_path = html_path or notebook_path[:-len(".ipynb")] + ".html"
    with open(html_path, "w") as f:
        f.write(html)
    return html_path


def external_scripts(html):
    """The src of every <script> an HTML page fetches from the network."""
    return re.findall(r"<script[^>]*src=\"(https?://[^\"]+)\"", html)
