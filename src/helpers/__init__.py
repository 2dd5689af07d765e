"""Helpers behind the Faiss 10M x 1024 workbook.

One module per concern; import what you need, e.g.
``from helpers import dataset, groundtruth``.
"""

__version__ = "0.1.0"
