"""From exploration to production: recommended.json, and the full-scale build it drives.

Notebook 06 writes the configuration it recommends (recommendation); then

    python -m helpers build --config recommended.json --base PATH --out index.faiss

imports PATH with the recommendation's metric, builds the index with the same
streamed, resumable builder (build.build_index) and the same training-sample
size, and writes a build report beside the index (build_from_config).
"""

import json
import os

from ..core.files import format_bytes, read_json, write_json
from ..data import ingest
from ..data.vectors import open_vectors
from . import build, memory


FORMAT = "faiss-workbook-recommendation/1"


def recommendation(best, served, ds, index_path, target_n, k=10):
    """The recommended configuration as a JSON-ready dict.

    best: the sweep row choose.recommend chose; served: its time_as_served
    row (or None); ds: the explored dataset; index_path: the explored index
    file (its build report gives factory, training size, efConstruction);
    target_n: the row count the user will build for (the memory model predicts
    index RAM, disk and build peak there).
    """
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
        "explored": {"n": ds.n, "dataset": ds.fingerprint, "file_bytes": best["file_bytes"],
                     f"recall@{k}": best[f"recall@{k}"], "qps_median": timed["qps_median"],
                     "p50_ms": timed["p50_ms"], "p99_ms": timed["p99_ms"],
                     "threads": best["threads"], "loaded": timed.get("loaded")},
        "predicted_at_target": {"n": target_n, "index_ram": pred["index_ram"], "disk": pred["disk"],
                                "build_peak": pred["build_peak"], "n_train": pred["n_train"]},
    }


SCALE_GAP = 10  # beyond this factor between explored and built rows, the evidence is not at scale


def scale_warning(rec, n):
    """A sentence when building `rec` on n rows extrapolates more than SCALE_GAP times
    beyond the rows it was explored on, with what the memory model predicts at n;
    "" when the evidence is at scale."""
    explored = rec["explored"]["n"]
    if n <= SCALE_GAP * explored:
        return ""
    pred = memory.predict(rec["factory"], n, rec["d"], rec["metric"] if rec["metric"] != "cosine"
                          else "IP")
    return (f"{rec['factory']} ({rec['search']}) was chosen on {explored:,} rows; you are building it "
            f"on {n:,} ({n / explored:,.0f}x). At {n:,} rows the memory model predicts index "
            f"{format_bytes(pred['index_ram'])} and build peak {format_bytes(pred['build_peak'])}, "
            f"but recall and speed there were not measured: families that win at small N (HNSW "
            f"with little efConstruction, small nlist) can lose at 10M. Run the workbook on your "
            f"vectors at scale (python -m helpers run --base YOUR_FILE screens the families on 1M "
            f"rows past 1M), or pass --accept-scale to build it anyway")


def write_recommendation(path, rec):
    """Write `rec` to `path` (atomically: the old file or the new one, never half)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, rec)
    return path


def read_recommendation(path):
    """A recommended.json, checked: ValueError naming what is missing."""
    try:
        rec = read_json(path)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}): give the recommended.json notebook 06 "
                         f"wrote") from None
    if not isinstance(rec, dict):
        raise ValueError(f"{path} holds a {type(rec).__name__}, not a recommendation from notebook 06")
    kinds = {"format": str, "factory": str, "metric": str, "n_train": int, "search": str, "d": int,
             "explored": dict}
    wrong = [k for k, t in kinds.items() if not isinstance(rec.get(k), t)]
    if wrong or rec["format"] != FORMAT or not isinstance(rec["explored"].get("n"), int):
        raise ValueError(f"{path} is not a recommendation written by notebook 06 (missing or "
                         f"malformed: {', '.join(wrong) or 'format / explored.n'})")
    return rec


def build_from_config(config_path, base, out, column="embedding", data_dir=None, threads=None,
                      progress=True, accept_scale=False, overwrite=False):
    """Build the recommended index on all rows of `base` and write `out` and
    `out`.build.json (the recommendation, the build's report, how to search).

    The base is imported first (helpers.data.ingest, no rows held out) into
    `data_dir` (default: `out` + '.data'), so a cosine recommendation gets
    normalised vectors; a rerun reuses the import and resumes the build.
    A build more than SCALE_GAP times larger than the exploration is refused
    (scale_warning) unless accept_scale=True. Returns the build report (as
    build.build_index).
    """
    for given, what in ((base, "--base"), (config_path, "--config")):
        if os.path.realpath(os.fspath(out)) == os.path.realpath(os.fspath(given)):
            raise ValueError(f"--out {out} is your {what} file: choose another --out, so that it "
                             f"is never overwritten")
    rec = read_recommendation(config_path)
    warning = scale_warning(rec, open_vectors(os.fspath(base)).n) if not os.fspath(base).endswith(
        ".parquet") and not os.path.isdir(base) else ""
    if warning and not accept_scale:
        raise ValueError(warning)
    if warning:
        print(f"warning: {warning}")
    data_dir = data_dir or os.fspath(out) + ".data"
    ds = ingest.import_vectors(data_dir, base, metric=rec["metric"], column=column, n_queries=0,
                               progress=progress)
    if ds.d != rec["d"]:
        raise ValueError(f"{base} holds d={ds.d} vectors but {config_path} was explored on d={rec['d']}")
    n_train = min(rec["n_train"], ds.n)
    report = build.build_index(ds, rec["factory"], out, n_train=n_train, threads=threads,
                               ef_construction=rec.get("ef_construction"), progress=progress,
                               overwrite=overwrite)
    summary = {k: v for k, v in report.items() if k not in ("index", "rss_trace", "add_trace")}
    write_json(os.fspath(out) + ".build.json", {
        "recommendation": rec, "config": os.path.abspath(config_path), "base": os.path.abspath(base),
        "dataset": ds.fingerprint, "build": summary,
        "search": f'faiss.ParameterSpace().set_index_parameters(index, "{rec["search"]}")'})
    return report
