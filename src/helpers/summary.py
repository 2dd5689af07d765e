"""Key results of each notebook, recorded for the run summary (helpers.run)."""

import os

from .files import read_json, write_json


def record(results_dir, notebook, **results):
    """Write `results` (JSON-able values) as results_dir/<notebook>.json; a no-op
    when results_dir is empty (a notebook run by hand)."""
    if not results_dir:
        return None
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{notebook}.json")
    write_json(path, results)
    return path


def recorded(results_dir):
    """{notebook: results} of everything recorded in results_dir."""
    if not os.path.isdir(results_dir):
        return {}
    return {name[:-5]: read_json(os.path.join(results_dir, name))
            for name in sorted(os.listdir(results_dir)) if name.endswith(".json")}


def build_results(reports):
    """Build reports (build.build_all) without the index objects and RSS traces."""
    return {f: {k: v for k, v in r.items() if k not in ("index", "rss_trace")}
            for f, r in reports.items()}
