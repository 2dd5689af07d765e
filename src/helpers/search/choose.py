"""Choosing among sweep rows: which settings are on the frontier, which one meets a
goal, the fastest per index, and sweep files read back (older runs' included).

A sweep row is a dict of one index at one search setting (helpers.search.evaluate.sweep):
"index", "setting", "recall@10" and its "recall@10_ci" [lo, hi], "qps_median",
"timed" ("in full" or "one batch"), "file_bytes", ...
"""

import csv
import json

from faiss.contrib.evaluation import OperatingPoints

from ..core.files import format_bytes


# column names of sweeps recorded by earlier versions: old name -> current one
RENAMED = {"index_bytes": "file_bytes", "qps": "qps_median"}


def fully_timed(row):
    """Whether a row was timed in full (sweep times the settings it prunes once),
    so its QPS may decide between settings: one lucky batch never does."""
    return row.get("timed", "in full") == "in full"


def goal_met(row, target_recall, target_qps=0.0, recall_key="recall@10"):
    """A goal is met only when the recall interval's lower end and the median QPS
    both clear it (not one lucky batch, not a recall inside the noise)."""
    lo = (row.get(recall_key + "_ci") or [row[recall_key]])[0]
    return lo >= target_recall and row["qps_median"] >= target_qps


def best_setting(rows, target_recall, recall_key="recall@10"):
    """(the fastest row by median QPS that was timed in full and whose recall
    interval clears target_recall, or None; the most accurate row, or None)."""
    good = [r for r in rows if fully_timed(r) and goal_met(r, target_recall, recall_key=recall_key)]
    top = max(rows, key=lambda r: r[recall_key]) if rows else None
    return (max(good, key=lambda r: r["qps_median"]) if good else None), top


def best_per_index(rows, target_recall, recall_key="recall@10"):
    """{index: (best, top) of best_setting over that index's rows}, in first-seen order."""
    names = dict.fromkeys(r["index"] for r in rows)
    return {n: best_setting([r for r in rows if r["index"] == n], target_recall, recall_key)
            for n in names}


def pareto_frontier(rows, x="recall@10", y="qps_median"):
    """The rows no other row beats on both x and y, ordered by x
    (faiss.contrib.evaluation.OperatingPoints, with time = 1 / y)."""
    points = OperatingPoints()
    for i, r in enumerate(rows):
        points.add_operating_point(i, r[x], 1 / r[y])
    return sorted((rows[i] for i, _, _ in points.operating_points), key=lambda r: r[x])


def recommend(rows, target_recall, ram_budget, recall_key="recall@10"):
    """The fastest (median qps) row whose recall interval clears target_recall
    within ram_budget bytes, and a sentence saying so (or what is missing).
    Returns (row or None, text).

    ram_budget is what the index may use when serving: an index file read into
    RAM holds about its size (file_bytes); the rows' indexes were built, so they
    passed the build budget already."""
    fits = [r for r in rows if r["file_bytes"] <= ram_budget]
    if not fits:
        return None, f"no index fits in {format_bytes(ram_budget)} of RAM"
    r, top = best_setting(fits, target_recall, recall_key)
    if r is None:
        return None, (f"no configuration's {recall_key} interval clears {target_recall} within "
                      f"{format_bytes(ram_budget)}; the best is {top['index']} with "
                      f"{top['setting'] or 'defaults'} at {top[recall_key]:.3f}")
    lo, hi = r.get(recall_key + "_ci", [r[recall_key]] * 2)
    lat = (f" (p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms per single query)"
           if "p50_ms" in r else "")
    return r, (f"For {recall_key} >= {target_recall} within {format_bytes(ram_budget)} of RAM, "
               f"use {r['index']} with {r['setting'] or 'its defaults'}: {recall_key} "
               f"{r[recall_key]:.3f} (95% interval {lo:.3f}-{hi:.3f}), "
               f"{r['qps_median']:,.0f} queries/s median of {r.get('batches', 1)} batches on "
               f"{r['threads']} threads{lat}, index {format_bytes(r['file_bytes'])}.")


def upgrade(row):
    """A sweep row with older column names renamed (RENAMED)."""
    return {RENAMED.get(k, k): v for k, v in row.items()}


def read_sweep(path):
    """A sweep CSV (helpers.core.files.write_csv of sweep rows) as rows again: numbers as
    numbers, intervals as [lo, hi], empty cells as None, older column names renamed
    (RENAMED)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for k, v in r.items():
                k = RENAMED.get(k, k)
                if v == "":
                    row.setdefault(k, "" if k == "setting" else None)  # "": faiss's defaults
                elif v.startswith("["):
                    row[k] = json.loads(v)
                else:
                    row[k] = _number(v)
            out.append(row)
    return out


def _number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
