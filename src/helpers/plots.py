"""Plotly figures used across the notebooks. Each function returns a figure."""

import plotly.graph_objects as go


def setup_renderer():
    """Make figures show in JupyterLab and survive in saved / exported notebooks.

    The mimetype renders in JupyterLab; 'notebook' embeds plotly.js so an
    executed notebook (papermill, nbconvert to HTML) still shows its charts
    without network access.
    """
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


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
    import numpy as np

    fig = go.Figure()
    for name, s in series.items():
        c = np.cumsum(s)[:top]
        fig.add_trace(go.Scatter(x=np.arange(1, len(c) + 1), y=c, name=name, mode="lines"))
    fig.update_layout(title=title, xaxis_title="principal axes kept",
                      yaxis_title="fraction of variance", yaxis_range=[0, 1])
    return fig
