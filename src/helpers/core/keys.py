"""Every result key the helpers write, once: its words, unit and better direction.

Sweep rows (helpers.search.evaluate), build reports (helpers.index.build) and run summaries
(helpers.pipeline.summary) use these names; summary.html, benchmarks/answer.py and the
README's tables print them through header() and cell() so that a column reads
"single query, median (ms)", not "p50_ms".
"""
from .files import format_bytes


KEYS = {
    # key: (words, unit, better)
    "index": ("index", "", None),
    "setting": ("search setting", "", None),
    "recall@1": ("recall@1", "", "higher"),
    "recall@10": ("recall@10", "", "higher"),
    "recall@10_ci": ("recall@10, 95% interval", "", "higher"),
    "recall@100": ("recall@100", "", "higher"),
    "dist_recall@10": ("distance recall@10 (ties count)", "", "higher"),
    "qps_median": ("queries per second (median batch)", "", "higher"),
    "qps_min": ("slowest batch", "queries/s", "higher"),
    "qps_max": ("fastest batch", "queries/s", "higher"),
    "batches": ("timed batches", "", None),
    "p50_ms": ("single query, median", "ms", "lower"),
    "p99_ms": ("single query, 99th percentile", "ms", "lower"),
    "single_queries": ("single queries timed", "", None),
    "threads": ("threads", "", None),
    "loaded": ("loaded", "", None),
    "notebook": ("notebook", "", None),
    "factory": ("index", "", None),
    "reused": ("reused", "", None),
    "seconds": ("time", "s", "lower"),
    "train_s": ("training", "s", "lower"),
    "add_s": ("adding", "s", "lower"),
    "add_vectors_per_s": ("adding rate", "vectors/s", "higher"),
    # an index file read into RAM holds about its size: what serving it needs
    "file_bytes": ("index file", "bytes", "lower"),
    "predicted_file_bytes": ("file, predicted", "bytes", None),
    "build_peak_bytes": ("build peak", "bytes", "lower"),
    "predicted_build_peak_bytes": ("build peak, predicted", "bytes", None),
    "predicted_bytes": ("predicted", "bytes", None),
    "measured_bytes": ("measured", "bytes", None),
    "index_ram_bytes": ("index memory", "bytes", "lower"),
    "disk_bytes": ("file", "bytes", "lower"),
    "figure": ("figure", "", None),
    "n": ("rows", "", None),
    "d": ("dimension", "", None),
    "metric": ("metric", "", None),
    "n_queries": ("queries", "", None),
    "data_reused": ("data reused", "", None),
    "ground_truth_k": ("exact neighbours per query", "", None),
    "ground_truth_reused": ("ground truth reused", "", None),
    "relative_contrast": ("relative contrast", "", None),
}


def header(key):
    """A column's heading in words, with its unit (sizes say theirs in each cell)."""
    words, unit, _ = KEYS.get(key, (key.replace("_", " "), "", None))
    return f"{words} ({unit})" if unit and unit != "bytes" else words


def cell(key, value):
    """A value as people read it: sizes in KiB/MiB/GiB, thousands separators,
    three decimals for fractions, intervals as lo-hi, nothing for missing."""
    unit = KEYS.get(key, ("", "", None))[1]
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{cell(key, value[0])}-{cell(key, value[1])}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "bytes" and isinstance(value, (int, float)):
        return format_bytes(value)
    if isinstance(value, float):
        if unit in ("s", "ms"):
            return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
