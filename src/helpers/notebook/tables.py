"""Result tables as pandas DataFrames, in the units an analyst reads.

The helpers return plain rows (lists of dicts, bytes and seconds); these
functions pick the columns a notebook shows and convert units, so Jupyter
renders an HTML table that can be sorted (``.sort_values``) and exported
(``.to_csv``, ``.to_parquet``) with the numbers still numbers.
"""

import pandas as pd

from ..core.files import format_bytes
from ..index.memory import fits


# reasons and notes are sentences: show them whole, not cut at pandas' default 50 characters
pd.set_option("display.max_colwidth", 200)


def for_people(value):
    """A float as people read it: thousands separated and whole from 100 up
    (41,390 queries/s), three decimals below (recall 0.982, 12.540 ms)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


pd.set_option("display.float_format", for_people)  # every table the notebooks show

UNITS = {"GiB": 2**30, "MiB": 2**20, "KiB": 2**10, "min": 60, "s": 1, "ms": 1, "": 1}


def frame(rows, columns):
    """DataFrame of `rows` (dicts) with `columns`: names, or (name, unit) pairs,
    or (name, unit, label) triples. Units 'GiB'/'MiB'/'KiB' divide bytes, 'min'
    divides seconds; the column is headed 'label (unit)'. Missing values are NaN."""
    out = {}
    for col in columns:
        name, unit, label = (col, "", col) if isinstance(col, str) else (tuple(col) + (col[0],))[:3]
        values = [r.get(name) for r in rows]
        if unit in UNITS and UNITS[unit] != 1:
            values = [None if v is None else v / UNITS[unit] for v in values]
        out[f"{label} ({unit})" if unit else label] = _readable(values)
    return pd.DataFrame(out).round(3)


def _readable(values):
    """A column as people read it: no "NaN" (a missing value is "–", or empty in a
    text column), and whole numbers from 10,000 up with thousands separators
    (floats get them from the display format, for_people)."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return ["" if v is None else v for v in values]
    if all(isinstance(v, int) for v in numbers) and max(map(abs, numbers)) >= 10_000:
        return ["–" if v is None else f"{v:,}" if isinstance(v, int) else v for v in values]
    if any(v is None for v in values):
        return ["–" if v is None else for_people(v) if v in numbers else v for v in values]
    return values


def plan(rows):
    """planner.plan rows: what fits, sizes in GiB, estimated build time in minutes."""
    return frame(rows, ["factory", "fits", ("index_ram", "GiB", "index RAM"), ("disk", "GiB"),
                        ("build_peak", "GiB", "build peak"), ("n_train", "", "training rows"),
                        ("est_build_s", "min", "est. build"), ("why_not", "", "why not"),
                        ("note", "", "note")])


def builds(reports):
    """build_all reports {factory: report}: times, rate, sizes, peak beside the prediction."""
    rows = [dict(r, factory=f, predicted_peak=r["predicted"]["build_peak"],
                 measured_peak=r.get("measured", {}).get("build_peak"),
                 disk=r.get("measured", {}).get("disk")) for f, r in reports.items()]
    return frame(rows, ["factory", "reused", ("coarse_train_s", "s", "coarse k-means"),
                        ("coarse_assign_s", "s", "coarse assign"), ("train_s", "s", "train"),
                        ("add_s", "s", "add"),
                        ("add_vectors_per_s", "", "add rate (vec/s)"), ("disk", "GiB", "file"),
                        ("measured_peak", "GiB", "build peak"),
                        ("predicted_peak", "GiB", "predicted peak")])


def loads(loads, n_queries):
    """measure.compare_loads results: file size and resident memory per load mode."""
    rows = [dict(m, mode=label) for label, m in loads.items()]
    return frame(rows, ["mode", ("file", "MiB"), ("after_load", "MiB", "RSS after load"),
                        ("after_search", "MiB", f"RSS after {n_queries} queries")])


def time_check(rows, target_n):
    """planner.time_check rows: each build's estimate beside its measured time, the
    error, and the same estimate at the target scale."""
    return frame(rows, ["factory", ("estimated_s", "s", "estimated"), ("measured_s", "s", "measured"),
                        ("error_pct", "", "error (%)"),
                        ("target_s", "min", f"estimate at {target_n:,}")])


def predictions(preds, ram_budget, build_budget=None):
    """memory.predict results: sizes, build peak and whether the index fits
    ram_budget and its build build_budget (memory.fits)."""
    rows = [dict(p, fits=not fits(p, ram_budget, build_budget=build_budget)) for p in preds]
    return frame(rows, ["factory", ("n_train", "", "training rows"), ("index_ram", "GiB", "index RAM"),
                        ("disk", "GiB", "file"), ("build_peak", "GiB", "build peak"), "fits"])


def checks(results):
    """measure.measure_fresh results: predicted beside measured, error in %."""
    rows = []
    for r in results:
        m, p = r["measured"], r["predicted"]
        for label, key in (("disk", "disk"), ("index RAM", "index_ram"), ("build peak", "build_peak")):
            real = m["index_ram_loaded"] if key == "index_ram" else m[key]
            rows.append({"factory": r["factory"], "figure": label, "predicted": p[key],
                         "measured": real, "error_pct": 100 * (p[key] - real) / real if real else None})
    return frame(rows, ["factory", "figure", ("predicted", "MiB"), ("measured", "MiB"),
                        ("error_pct", "", "error (%)")])


def screening(verdicts):
    """The screening's verdicts, one row per family, finalists first."""
    rows = []
    for v in sorted(verdicts, key=lambda v: (v["verdict"] != "finalist", -(v.get("qps_median") or 0))):
        ci = v.get("recall_ci")
        rows.append({
            "family": v["family"], "verdict": v["verdict"], "best setting": v.get("best_setting", ""),
            "recall@10 (95% interval)": f"{v['recall']:.3f} ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "",
            "queries/s (median)": f"{v['qps_median']:,.0f}" if v.get("qps_median") else "",
            "RAM at target": format_bytes(v["ram_at_target"]) if v.get("ram_at_target") else "",
            "build here (s): measured / estimated": (
                f"{v['build_s_at_rows']:,.1f} / {v['est_build_s_at_rows']:,.1f}"
                if v.get("est_build_s_at_rows") else ""),
            "build at target (min, estimated)":
                f"{v['build_s_at_target'] / 60:,.0f}" if v.get("build_s_at_target") else "",
            "k-means": (f"{v['kmeans']}, {v['kmeans_s']:,.0f} s on {v['n_train']:,} rows"
                        if v.get("kmeans") else ""),
        })
    return pd.DataFrame(rows)


def layers(rows, recall_key="recall@10"):
    """helpers.search.layers rows: one line per variant and refine depth, with the
    bytes each vector costs."""
    out = [dict(r, bytes_per_vector=r["file_bytes"] / r["rows"],
                interval=f"{r[recall_key + '_ci'][0]:.3f}-{r[recall_key + '_ci'][1]:.3f}") for r in rows]
    return frame(out, ["layer", "change", "index", "setting", recall_key,
                       ("interval", "", "95% interval"), ("qps_median", "", "queries/s (median)"),
                       ("bytes_per_vector", "", "bytes per vector")])


def sensitivity(rows, recall_key="recall@10"):
    """explore.sensitivity rows as a grid: noise down, intrinsic dimension across."""
    grid = pd.DataFrame(rows).pivot(index="noise", columns="intrinsic_dim", values=recall_key)
    grid.columns = [f"{recall_key}, intrinsic dim {c}" for c in grid.columns]
    grid.index.name = "noise (noise norm / signal norm)"
    return grid.round(3)
