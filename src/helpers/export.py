"""From exploration to production: recommended.json, and the full-scale build it drives.

Notebook 06 writes the configuration it recommends (recommendation); then

    python -m helpers.build --config recommended.json --base PATH --out index.faiss

imports PATH with the recommendation's metric, builds the index with the same
streamed, resumable builder (build.build_index) and the same training-sample
size, and writes a build report beside the index (build_from_config).
"""

import os

from .files import read_json, write_json

FORMAT = "faiss-workbook-recommendation/1"


def recommendation(best, served, ds, index_path, target_n, k=10):
    """The recommended configuration as a JSON-ready dict.

    best: the sweep row evaluate.recommend chose; served: its time_as_served
    row (or None); ds: the explored dataset; index_path: the explored index
    file (its build report gives factory, training size, efConstruction);
    target_n: the row count the user will build for (the memory model predicts
    index RAM, disk and build peak there).
    """
    from . import memory

    report = read_json(index_path + ".json")
    factory, metric = report["factory"], ds.metric
    pred = memory.predict(factory, target_n, ds.d, metric)
    timed = served or best
    return {
        "format": FORMAT,
        "factory": factory,
        "metric": ds.manifest.get("metric_name", metric.lower()),
        "d": ds.d,
        "n_train": report["n_train"],
        "ef_construction": report.get("ef_construction"),
        "search": best["setting"],
        "k": k,
        "explored": {"n": ds.n, "dataset": ds.fingerprint, "index_bytes": best["index_bytes"],
                     f"recall@{k}": best[f"recall@{k}"], "qps_median": timed["qps_median"],
                     "p50_ms": timed["p50_ms"], "p99_ms": timed["p99_ms"],
                     "threads": best["threads"], "loaded": timed.get("loaded")},
        "predicted_at_target": {"n": target_n, "index_ram": pred["index_ram"], "disk": pred["disk"],
                                "build_peak": pred["build_peak"], "n_train": pred["n_train"]},
    }


def write_recommendation(path, rec):
    """Write `rec` to `path` (atomically: the old file or the new one, never half)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, rec)
    return path


def read_recommendation(path):
    """A recommended.json, checked: ValueError naming what is missing."""
    rec = read_json(path)
    missing = [k for k in ("format", "factory", "metric", "n_train", "search") if k not in rec]
    if missing or rec.get("format") != FORMAT:
        raise ValueError(f"{path} is not a recommendation written by notebook 06 "
                         f"(missing {missing or ['format ' + FORMAT]})")
    return rec


def build_from_config(config_path, base, out, column="embedding", data_dir=None, threads=None,
                      progress=True):
    """Build the recommended index on all rows of `base` and write `out` and
    `out`.build.json (the recommendation, the build's report, how to search).

    The base is imported first (helpers.ingest, no rows held out) into
    `data_dir` (default: `out` + '.data'), so a cosine recommendation gets
    normalised vectors; a rerun reuses the import and resumes the build.
    Returns the build report (as build.build_index).
    """
    from . import build, ingest

    rec = read_recommendation(config_path)
    data_dir = data_dir or os.fspath(out) + ".data"
    ds = ingest.import_vectors(data_dir, base, metric=rec["metric"], column=column, n_queries=0,
                               progress=progress)
    if ds.d != rec["d"]:
        raise ValueError(f"{base} holds d={ds.d} vectors but {config_path} was explored on d={rec['d']}")
    n_train = min(rec["n_train"], ds.n)
    report = build.build_index(ds, rec["factory"], out, n_train=n_train, threads=threads,
                               ef_construction=rec.get("ef_construction"), progress=progress)
    summary = {k: v for k, v in report.items() if k not in ("index", "rss_trace", "add_trace")}
    write_json(os.fspath(out) + ".build.json", {
        "recommendation": rec, "config": os.path.abspath(config_path), "base": os.path.abspath(base),
        "dataset": ds.fingerprint, "build": summary,
        "search": f'faiss.ParameterSpace().set_index_parameters(index, "{rec["search"]}")'})
    return report
