"""Re-execute the whole workbook with papermill at a chosen scale.

    python -m helpers run --preset small            # the README's main job
    python -m helpers run --preset tiny --force     # redo data, ground truth, indexes
    python -m helpers run --params my.yaml          # a preset plus your overrides
    python -m helpers run --base my.npy --metric cosine   # your own vectors

Notebooks 01 -> 07 run in order into runs/<time>-<preset>/, each executed copy
beside the notebook's key results, and a summary (summary.html, summary.json,
builds.csv, pareto.csv). The dataset, ground truth and indexes live in
data/<preset>/ and are reused while their inputs are unchanged. Running the same
command again after an interruption continues the unfinished run, skipping the
notebooks it completed. With --base, notebook 01 imports the user's vectors
instead of generating them (helpers.ingest), into data/own-<file name>/, and
unless a preset is named the parameters follow their size (helpers.profile).
"""

import contextlib
import datetime
import glob
import math
import os
import time

from . import config, notebook_html, quiet, screen
from .files import check_writable, format_bytes, locked, parse_duration, parse_size, read_json, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
ORDER = ["01_data_generation", "02_memory_budget", "03_build_ivfpq", "04_build_hnsw",
         "05_build_ivfsq", "06_recall_vs_latency", "07_beyond_one_machine"]

# Per preset: "all" goes to every notebook that declares the parameter; the
# notebook names carry what only that notebook takes. data_dir, index_dir,
# results_dir and force are filled in by the runner.
PRESETS = {
    "tiny": {
        "all": {"d": 64, "gt_k": 20, "nlist": 16, "nprobe": 4, "n_train": 1500, "add_batch": 1000},
        "01_data_generation": {"n": 3000, "n_queries": 50, "n_train": 1000, "intrinsic_dim": 16,
                               "n_clusters": 32, "chunk_rows": 1024, "progress": False},
        "02_memory_budget": {"target_n": 1_000_000, "check_factories": ["IVF16,SQ8"],
                             "time_sample_rows": 500, "target_recall": 0.9, "screen_rows": 3000,
                             "screen_spaces": ["IVF16", "PCAR32,IVF32"],
                             "screen_codes": ["PQ16x4fs", "RaBitQfs"],
                             "screen_hnsw": [["HNSW16,SQ8", 40]], "screen_nprobe_divisors": [8, 4, 2],
                             "screen_k_factors": [4, 16], "screen_ef_search": [16, 32],
                             "screen_time_budget": "2min", "build_time_budget": "1min",
                             # every family that reaches the target: a set that timing noise
                             # cannot change, so a resumed run rebuilds the same indexes
                             "finalists": 10},
        "03_build_ivfpq": {"large_nlist": 64, "factories": [
            "IVF{nlist},PQ8", "IVF{nlist},PQ32x4fs", "IVF{nlist},PQ16,Refine(SQ8)",
            "IVF{nlist},PQ32x4fs,RFlat", "screened"],
            "hnsw_quantizer_factory": "IVF{large_nlist}_HNSW32,PQ32x4fs",
            "rerank_factory": "IVF{nlist},PQ32x4fs", "rerank_k_factors": [1, 4],
            "ondisk_factory": "IVF{nlist},PQ8"},
        "04_build_hnsw": {"factories": ["HNSW16,Flat", "HNSW16,SQ8"], "m_values": [8],
                          "ef_construction_values": [16, 40], "ef_search": 32,
                          "time_sample_rows": 500},
        "05_build_ivfsq": {},
        "06_recall_vs_latency": {"repeats": 1, "single_queries": 10, "target_recall": 0.9,
                                 "sensitivity_factory": "IVF16,PQ8x4fs,Refine(SQ8)",
                                 "sensitivity_setting": {"nprobe": 4, "k_factor_rf": 8},
                                 "sensitivity_n": 3000, "sensitivity_d": 32,
                                 "slider_nprobe": 8, "slider_ef_search": 32},
        "07_beyond_one_machine": {"shards": 4, "workers": 2, "repeats": 1, "single_queries": 10},
    },
    "small": {  # the notebooks' own defaults: 20k x 1024
        "all": {},
        "01_data_generation": {"progress": False},
    },
    "1m": {
        # at scale the evaluation, not the builds, is what the sweeps cost: one timed batch
        # and 50 single queries per setting, scans capped at a share of the lists
        "all": {"nlist": 4096, "nprobe": 32, "max_nprobe": 256},
        "01_data_generation": {"n": 1_000_000, "n_queries": 1000, "n_train": 0, "progress": False},
        "02_memory_budget": {"check_factories": [], **screen.notebook_params(screen.SEARCH, 1_000_000),
                             "screen_time_budget": "40min", "build_time_budget": "10min"},
        "03_build_ivfpq": {"hnsw_quantizer_factory": "", "rerank_k_factors": [1, 4, 16],
                           "cap_nprobe": 512,
                           # PQ64 alone is PQ64,Refine(SQ8) at k_factor_rf=1 (same codes, the
                           # same top k): built once, within the 20-minute target
                           "factories": ["IVF{nlist},PQ16", "IVF{nlist},PQ128x4fs",
                                         "IVF{nlist},PQ64,Refine(SQ8)", "screened", "IVF1024,PQ8"],
                           "ondisk_factory": "IVF1024,PQ8"},
        "04_build_hnsw": {"factories": ["HNSW32,SQ8"], "m_values": [32],
                          "ef_construction_values": [40]},
        "05_build_ivfsq": {"factories": ["IVF{nlist},SQ8", "IVF{nlist},SQ4"], "cap_nprobe": 512},
        "06_recall_vs_latency": {"k_factors": [1, 16, 64, 128]},
        "time_limit": "90min",  # the screening (40 min budget) and two finalists included
        "skip": {"07_beyond_one_machine": "a second, sharded copy of IVF4096,SQ8 beside the one "
                                          "05 built adds disk and an hour of CPU on one machine "
                                          "without teaching more than the small presets do"},
    },
    "full": {  # the question this workbook answers: 10M x 1024 on 2 cores and 24 GiB
        # nprobe up to 2048: a finalist with nlist 16384 scans 1/16 of its lists at 0.95 (1M screening)
        "all": {"nlist": 4096, "nprobe": 32, "max_nprobe": 2048, "ram_limit": "20G"},
        "01_data_generation": {"n": 10_000_000, "n_queries": 1000, "n_train": 0, "progress": False},
        # what to build is measured: the search's families on the first 1M rows, the two
        # fastest at recall@10 0.95 that fit the budgets go on to 10M
        "02_memory_budget": {"check_factories": [], **screen.notebook_params(screen.SEARCH, 1_000_000),
                             "screen_time_budget": "40min", "build_time_budget": "45min"},
        "03_build_ivfpq": {"hnsw_quantizer_factory": "", "rerank_k_factors": [1, 4, 16],
                           "cap_nprobe": 256, "factories": ["screened"],
                           "rerank_factory": "screened", "ondisk_factory": "screened"},
        # HNSW32,SQ8 adds 2,750 vectors/s or fewer once past 1M rows here (1m run), so 10M
        # takes over an hour on top of the rest: planned here, measured apart (README)
        "04_build_hnsw": {"factories": ["HNSW32,Flat"], "plan_only": ["HNSW32,SQ8"],
                          "m_values": []},
        "05_build_ivfsq": {"factories": [], "cap_nprobe": 256, "ondisk_lists": False},
        # the refine depths and nprobe values the 10M sweep tries: a range, not an answer
        "06_recall_vs_latency": {"k_factors": [16, 32, 64, 128]},
        "skip": {"05_build_ivfsq": "IVF-SQ8 serves here as the finalists' refine stage; a standalone "
                                   "IVF4096,SQ8 needs its own 10M k-means and assignment (~12 min) "
                                   "and scans 1 KiB codes per vector",
                 "07_beyond_one_machine": "a second, sharded copy of an index beside the one 03 "
                                          "built adds disk and an hour of CPU on one machine "
                                          "without teaching more than the small presets do"},
        "time_limit": "2h",  # the target on 2 cores, everything included
    },
}


def _ipc_kernel_manager():
    """A KernelManager whose kernels talk over local IPC sockets, not TCP: nothing
    listens on the network, and the kernel has no "running over TCP without
    encryption" warning to print once per notebook."""
    import tempfile

    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kw):
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", os.path.join(tempfile.gettempdir(), f"faiss-workbook-{os.getpid()}"))
            super().__init__(**kw)

    return IPCKernelManager


class RunError(RuntimeError):
    """A notebook failed; the message names it, the cell and the error."""


DATA_DIR_ENV = "FAISS_WORKBOOK_DATA"  # where data/<preset>/ goes unless --data-dir says


class PeakRSS:
    """Peak resident memory of this process's children (the notebook's kernel),
    sampled every `interval` seconds in a thread while the block runs."""

    def __init__(self, interval=0.5):
        import threading

        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


DATASET_KEYS = ("base", "queries", "metric", "column", "n_queries", "max_rows")


def load_params(preset=None, params_file=None, data=None):
    """(label, parameters): the preset's parameters, updated by a YAML or JSON file of
    the same shape ({"all": {...}, "03_build_ivfpq": {...}, "preset": "small"}: the
    file may name the preset it starts from).

    data: users' vectors, {"base": file or folder, "queries", "metric" (l2, ip,
    cosine), "column", "n_queries" (held out when there is no query file),
    "max_rows"}; a file's `dataset:` section gives the same, and values in `data`
    win. With data and no preset, the parameters follow the data's size
    (profile.for_data). The label names the data folder and run folders: the
    preset, or own-<name of the base file>[-<preset>].
    """
    extra = {}
    if params_file:
        import yaml  # JSON is YAML too

        with open(params_file) as f:
            extra = yaml.safe_load(f) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{params_file}: expected a mapping of notebook -> parameters")
        preset = preset or extra.pop("preset", None)
        extra.pop("preset", None)
    data = {**(extra.pop("dataset", None) or {}),
            **{k: v for k, v in (data or {}).items() if v is not None}}
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = set(extra) - set(ORDER) - {"all", "skip", "time_limit"}
    if unknown:
        raise ValueError(f"{params_file}: unknown sections {sorted(unknown)}; use 'all', 'dataset' "
                         f"or one of {ORDER}")
    if data:
        label, base, for_all, for_import = _own_data(data, preset)
    else:
        label = preset = preset or "small"
        base = PRESETS[preset]
    out = {name: dict(base.get(name, {})) for name in ["all"] + ORDER}
    out["skip"] = dict(base.get("skip", {}))  # notebook -> why this preset does not run it
    out["time_limit"] = extra.pop("time_limit", base.get("time_limit", ""))  # e.g. "2h"
    if data:
        out["dataset"] = data
        out["all"].update(for_all)
        out["01_data_generation"].update(for_import)
    for name, values in extra.items():
        out[name].update(values or {})
    return label, out


def _own_data(data, preset):
    """(label, preset-shaped parameters, values for every notebook, values for
    notebook 01's import) for users' vectors."""
    from . import ingest, profile

    unknown = set(data) - set(DATASET_KEYS)
    if unknown or "base" not in data:
        raise ValueError(f"dataset: {'unknown keys ' + str(sorted(unknown)) if unknown else 'no base'}; "
                         f"it takes {', '.join(DATASET_KEYS)} ('base', the file or folder of your "
                         f"vectors, is required)")
    metric, _ = ingest.parse_metric(data.setdefault("metric", ingest.file_metric(data["base"]) or "ip"))
    info = ingest.describe(data["base"], data.get("column", "embedding"))
    if data.get("column") and info["kind"] != "parquet":
        raise ValueError(f"--column {data['column']!r} applies only to parquet data; {data['base']} "
                         f"holds {info['kind']} vectors")
    # an ann-benchmarks file brings its own queries (its test set)
    own_queries = data.get("queries") or str(data["base"]).lower().endswith((".hdf5", ".h5"))
    n_queries = 0 if own_queries else data.get("n_queries", min(1000, max(10, info["n"] // 20)))
    n_base = info["n"] - n_queries
    if data.get("max_rows"):
        n_base = min(n_base, data["max_rows"])
    stem = os.path.basename(os.path.normpath(data["base"])).split(".")[0]
    label = f"own-{stem}" + (f"-{preset}" if preset else "")
    params = PRESETS[preset] if preset else profile.for_data(n_base, info["d"])
    for_all = {"d": info["d"], "metric": metric, "target_n": info["n"]}  # production: every row
    for_import = {"base_path": os.path.abspath(data["base"]),
                  "queries_path": os.path.abspath(data["queries"]) if data.get("queries") else "",
                  "column": data.get("column", "embedding"), "metric": data["metric"],
                  "n_queries": n_queries, "max_rows": data.get("max_rows", 0), "n": n_base}
    return label, params, for_all, for_import


def notebook_parameters(params, data_dir, results_dir, force, notebooks_dir=NOTEBOOKS):
    """{notebook: parameters to pass}, checked against the parameters each notebook
    declares (helpers.config). Raises ValueError naming any it does not declare."""
    out = {}
    for name in ORDER:
        declared = config.DECLARED[name]
        unknown = set(params[name]) - set(declared)
        if unknown:
            raise ValueError(f"{name} has no parameter(s) {sorted(unknown)}; it takes "
                             f"{sorted(declared)}")
        fixed = {"data_dir": data_dir, "index_dir": os.path.join(data_dir, "indexes"),
                 "results_dir": results_dir, "force": force}
        chosen = {k: v for k, v in {**params["all"], **fixed}.items() if k in declared}
        out[name] = {**chosen, **params[name]}
    return out


def effective_parameters(per_notebook, notebooks_dir=NOTEBOOKS):
    """{notebook: every parameter it will run with}: its defaults (helpers.config)
    updated by what the runner passes (per_notebook, from notebook_parameters)."""
    return {name: {**config.defaults(name), **passed} for name, passed in per_notebook.items()}


def _factories(per_notebook):
    """(factory, index path, ef_construction) of every index the notebooks will build."""
    from .build import index_path

    out = []
    for name in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq"):
        p = per_notebook[name]
        names = {k: p[k] for k in ("nlist", "large_nlist") if k in p}
        # the screening's finalists are known once notebook 02 has run: the memory model
        # checks them when 03 builds them
        fs = [f.format(**names) for f in p.get("factories", []) if f != "screened"]
        if p.get("hnsw_quantizer_factory"):
            fs.append(p["hnsw_quantizer_factory"].format(**names))
        efc = p.get("ef_construction")
        out += [(f, index_path(p["index_dir"], f + (f"_efC{efc}" if efc else "")), efc) for f in fs]
        if name == "04_build_hnsw":  # its M x efConstruction grid (evaluate.hnsw_grid)
            out += [(f"HNSW{m},{p['compare_storage']}",
                     index_path(p["index_dir"], f"HNSW{m},{p['compare_storage']}_efC{e}"), e)
                    for m in p.get("m_values", []) for e in p.get("ef_construction_values", [])]
    return list({path: (f, path, efc) for f, path, efc in out}.values())  # once per file


def _planned_builds(per_notebook):
    """Every index the run will build, with the memory model's prediction at the
    run's n and its reasons for refusing it against the build budget (the
    build_limit, else the memory available now). per_notebook: effective
    parameters. Returns (builds, budget in bytes): builds are dicts with
    factory, path, ef_construction, pred, refused (the reasons, "" when it fits)."""
    import psutil

    from . import memory
    from .indexes import preassignable
    from .ingest import parse_metric

    gen = per_notebook["01_data_generation"]
    metric = parse_metric(gen["metric"])[0]
    limit = parse_size(per_notebook["03_build_ivfpq"].get("build_limit", ""))
    available = limit or psutil.virtual_memory().available
    builds = []
    for f, path, efc in _factories(per_notebook):
        pred = memory.predict(f, gen["n"], gen["d"], metric, preassigned=preassignable(f),
                              build_budget=limit or None)
        reasons = memory.fits(pred, math.inf, build_budget=available)
        builds.append({"factory": f, "path": path, "ef_construction": efc, "pred": pred,
                       "refused": "; ".join(reasons)})
    return builds, available


def check_resources(per_notebook, data_dir, notebooks_dir=NOTEBOOKS):
    """Refuse, before anything is written, a run whose data, coarse assignments and
    indexes cannot fit on the disk of data_dir, or none of whose indexes fits in
    the memory available now. Returns {"disk_needed", "disk_free", "refused":
    [(factory, reasons)]} (indexes the builds will refuse, with the model's reasons)."""
    import shutil

    from .indexes import preassignable
    from .coarse import coarse_factory

    per_notebook = effective_parameters(per_notebook, notebooks_dir)
    gen = per_notebook["01_data_generation"]
    n, d = gen["n"], gen["d"]
    itemsize = 2 if gen["storage_dtype"] == "float16" and not gen.get("base_path") else 4
    need = 0 if os.path.exists(os.path.join(data_dir, "manifest.json")) else \
        (n + gen["n_queries"] + gen["n_train"]) * d * itemsize
    builds, available = _planned_builds(per_notebook)
    refused, coarse = [], set()
    for b in builds:
        if b["refused"]:
            refused.append((b["factory"], b["refused"]))
            continue
        if not os.path.exists(b["path"]):
            need += b["pred"]["disk"]
        if preassignable(b["factory"]):
            coarse.add(coarse_factory(b["factory"]))
    need += len(coarse) * n * 8
    probe = data_dir
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if need > free:
        raise ValueError(f"this run needs {format_bytes(need)} of disk in {data_dir} (dataset, "
                         f"coarse assignments, indexes) but {probe} has {format_bytes(free)} free; "
                         f"free some space or pass --data-dir on a larger disk")
    screened = "screened" in per_notebook["03_build_ivfpq"]["factories"]  # checked when built
    if refused and len(refused) == len(builds) and not screened:
        raise ValueError(f"none of the run's indexes can be built in {format_bytes(available)} of "
                         f"memory (the build budget): " + "; ".join(f"{f}: {r}" for f, r in refused))
    return {"disk_needed": need, "disk_free": free, "refused": refused}


def estimate_seconds(per_notebook, data_dir, notebooks_dir=NOTEBOOKS):
    """Estimated seconds of what this run still has to generate, train, assign
    and add, timed on samples on this machine before anything is written
    (helpers.planner): {stage: seconds}, stages "generate", "ground truth",
    "coarse IVF4096" (one shared k-means and assignment per nlist), "build
    <factory>". What exists is not counted: a dataset (and its ground truth),
    coarse assignments, built indexes. Left out: importing users' vectors,
    builds the memory model refuses, OPQ builds (not timed, as in planner.plan),
    the sweeps."""
    from . import coarse, planner
    from .indexes import preassignable
    from .ingest import parse_metric

    per_notebook = effective_parameters(per_notebook, notebooks_dir)
    gen = per_notebook["01_data_generation"]
    n, d = gen["n"], gen["d"]
    metric = parse_metric(gen["metric"])[0]
    out = {}
    if not os.path.exists(os.path.join(data_dir, "manifest.json")):
        data = planner.data_seconds(n, d, gen["n_queries"], gen["gt_k"], metric,
                                    generate=not gen.get("base_path"))
        if not gen.get("base_path"):
            out["generate"] = data["generate_s"]
        out["ground truth"] = data["ground_truth_s"]
    rate, sample = planner.gemm_rate(d), planner.synthetic_sample(d, 2000)
    coarse_dir = os.path.join(data_dir, "indexes", "coarse")
    for b in _planned_builds(per_notebook)[0]:
        f = b["factory"]
        if b["refused"] or os.path.exists(b["path"]):
            continue
        preassigned = preassignable(f)
        c = coarse.coarse_factory(f) if preassigned else None
        if c and f"coarse {c}" not in out and not os.path.exists(coarse.paths(coarse_dir, c)[1]):
            out[f"coarse {c}"] = planner.coarse_seconds(n, d, c, rate, sample)
        if f.startswith("OPQ"):
            continue
        efc = b["ef_construction"]
        with quiet.captured():  # k-means on a sample below 39 points per centroid says so
            out[f"build {f}" + (f" efC{efc}" if efc and f.startswith("HNSW") else "")] = \
                planner.estimate_build_seconds(f, n, d, metric, b["pred"]["n_train"], sample, rate,
                                               efc, preassigned)["total_s"]
    out.update(_screening_bounds(per_notebook, data_dir))
    return out


def _screening_bounds(per_notebook, data_dir):
    """The screening and its finalists' builds, bounded by their own budgets (what
    the finalists are is measured, so their budgets stand in for an estimate):
    the screening starts no candidate after screen_time_budget, and a finalist's
    build at target N is projected within build_time_budget. A finished
    screening (its verdicts saved) counts nothing."""
    from .screen import screen_dir

    p = per_notebook["02_memory_budget"]
    if not p.get("screen_rows") or "screened" not in per_notebook["03_build_ivfpq"]["factories"]:
        return {}
    if not (p.get("screen_time_budget") and p.get("build_time_budget")):
        raise ValueError("a run that screens and builds its finalists needs screen_time_budget and "
                         "build_time_budget (notebook 02) to bound its time; set both")
    from .build import index_path
    from .indexes import split_factory
    from .screen import finalist_factories

    out, budget = {}, parse_duration(p["build_time_budget"])
    if not os.path.exists(os.path.join(screen_dir(data_dir), "verdicts.json")):
        out["screening (its budget)"] = parse_duration(p["screen_time_budget"])
        left = p["finalists"]
    else:  # the finalists are known: those already built cost nothing
        index_dir = per_notebook["03_build_ivfpq"]["index_dir"]
        left = sum(not os.path.exists(index_path(index_dir, f))
                   for f in finalist_factories(screen_dir(data_dir)) if split_factory(f)[0])
    if left:
        out["finalists' builds (their budget)"] = left * budget
    return out


def check_time(per_notebook, data_dir, time_limit, notebooks_dir=NOTEBOOKS):
    """With a time limit ("2h"; "" or 0: none, and nothing is estimated), print
    estimate_seconds and refuse (ValueError, with the figures) a run whose total
    exceeds it. Returns the estimate, or None without a limit."""
    from .planner import format_seconds

    budget = parse_duration(time_limit)
    if not budget:
        return None
    est = estimate_seconds(per_notebook, data_dir, notebooks_dir)
    total = sum(est.values())
    parts = ", ".join(f"{k} {format_seconds(v)}" for k, v in sorted(est.items(), key=lambda kv: -kv[1]))
    print(f"time: estimated {format_seconds(total)} before the sweeps ({parts or 'nothing left'}); "
          f"time budget {format_seconds(budget)}")
    if total > budget:
        raise ValueError(f"this run is estimated at {format_seconds(total)} before its sweeps "
                         f"({parts}), over its time budget of {format_seconds(budget)}; leave the "
                         f"longest builds out (a --params file) or give it more time "
                         f"(--time-budget {math.ceil(total * 1.5 / 3600)}h)")
    return est


def _unfinished_run(runs_dir, preset, params, force):
    """The newest run folder of this preset with the same parameters that did not complete."""
    for folder in sorted(glob.glob(os.path.join(runs_dir, f"*-{preset}")), reverse=True):
        state_path = os.path.join(folder, "run.json")
        if os.path.exists(state_path):
            state = read_json(state_path)
            if not state["status"].startswith("complete") and state["params"] == params and \
                    state["force"] == force:
                return folder, state
            return None, None
    return None, None


def run(preset=None, params_file=None, force=False, runs_dir=None, data_root=None,
        notebooks_dir=NOTEBOOKS, progress=True, export_html=True, data=None, until=None, limits=None,
        time_limit=None):
    """Execute the notebooks in order; return the run folder. Raises RunError when
    a notebook fails (after writing the summary of what completed).

    data: users' vectors (see load_params); until: the last notebook to run
    (default: all of them); limits: {"ram_limit": "16G", "build_limit": "20G"},
    the budgets every notebook applies (sizes as setup.budgets reads them);
    time_limit: "2h", "90min", ... (default: the preset's, if any): a run whose
    estimate_seconds exceed it is refused before it starts."""
    import json

    from .profile import min_rows

    runs_dir = runs_dir or os.path.join(ROOT, "runs")
    data_root = data_root or os.environ.get(DATA_DIR_ENV) or os.path.join(ROOT, "data")
    preset, params = load_params(preset, params_file, data)
    for k, v in (limits or {}).items():
        parse_size(v)  # a size that cannot be read stops here, not in a notebook
        params["all"][k] = v
    params = json.loads(json.dumps(params))  # plain JSON values, comparable with run.json
    if until is not None and until not in ORDER:
        raise ValueError(f"until={until!r} is not a notebook; use one of {', '.join(ORDER)}")
    order = ORDER[:ORDER.index(until) + 1] if until else ORDER
    data_dir = os.path.join(data_root, preset)
    planned = notebook_parameters(params, data_dir, "", force, notebooks_dir)
    if "dataset" in params:
        n_base = planned["01_data_generation"]["n"]
        need = min_rows(effective_parameters(planned, notebooks_dir))
        if n_base < need:
            raise ValueError(f"{params['dataset']['base']}: {n_base:,} base rows, but this run's "
                             f"indexes need at least {need:,} to train (k-means needs a point per "
                             f"centroid); give more vectors or a preset with a smaller nlist")
    for folder, what in ((data_dir, "the data folder"), (runs_dir, "the runs folder")):
        check_writable(folder, what)  # a read-only folder is said now, not after an hour
    resources = check_resources(planned, data_dir, notebooks_dir)  # before anything is written
    print(f"disk: this run writes up to {format_bytes(resources['disk_needed'])} in {data_dir} "
          f"({format_bytes(resources['disk_free'])} free)")
    for f, why in resources["refused"]:
        print(f"  {f} will be refused by its notebook: {why}")
    estimated = check_time(planned, data_dir, time_limit or params["time_limit"], notebooks_dir)
    folder, state = _unfinished_run(runs_dir, preset, params, force)
    with contextlib.ExitStack() as held:
        if folder:  # a run folder has one runner at a time: another one here is refused
            held.enter_context(locked(os.path.join(folder, "run.json"), wait=False,
                                      what=f"the run folder {folder}"))
            state = read_json(os.path.join(folder, "run.json"))  # as its last runner left it
            if state["status"].startswith("complete"):
                folder, state = None, None  # it finished meanwhile: this run gets its own
        return _run_in(folder, state, held, runs_dir, preset, params, force, estimated, data_dir,
                       notebooks_dir, order, progress, export_html, until)


def _run_in(folder, state, held, runs_dir, preset, params, force, estimated, data_dir,
            notebooks_dir, order, progress, export_html, until):
    import papermill as pm

    if folder:
        print(f"continuing the unfinished run {folder} (done: {', '.join(state['done']) or 'none'})")
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = os.path.join(runs_dir, f"{stamp}-{preset}")
        os.makedirs(folder)
        held.enter_context(locked(os.path.join(folder, "run.json"), wait=False,
                                  what=f"the run folder {folder}"))
        state = {"preset": preset, "params": params, "force": force, "done": [], "status": "running",
                 "started": stamp, "seconds": {}}
        if estimated is not None:
            state["estimated_seconds"] = {k: round(v, 1) for k, v in estimated.items()}
    results_dir = os.path.join(folder, "results")
    per_notebook = notebook_parameters(params, data_dir, results_dir, force, notebooks_dir)
    state["status"] = "running"
    write_json(os.path.join(folder, "run.json"), state)
    os.makedirs(data_dir, exist_ok=True)
    t_run = time.perf_counter()
    try:
        for i, name in enumerate(order, 1):
            if name in state["done"]:
                print(f"[{i}/{len(order)}] {name}: done in an earlier attempt, skipped")
                continue
            if name in params["skip"]:
                print(f"[{i}/{len(order)}] {name}: not run in this preset: {params['skip'][name]}")
                state.setdefault("skipped", {})[name] = params["skip"][name]
                continue
            out = os.path.join(folder, name + ".ipynb")
            print(f"[{i}/{len(order)}] {name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                with PeakRSS() as peak:
                    pm.execute_notebook(os.path.join(notebooks_dir, name + ".ipynb"), out,
                                        parameters=per_notebook[name], cwd=notebooks_dir,
                                        kernel_name="python3", progress_bar=progress,
                                        kernel_manager_class=_ipc_kernel_manager())
            except pm.PapermillExecutionError as e:
                state.update(status="failed", failed={
                    "notebook": name, "cell": e.exec_count, "error": f"{e.ename}: {e.evalue}",
                    "partial_notebook": out})
                raise RunError(f"{name} failed in cell [{e.exec_count}] with {e.ename}: "
                               f"{e.evalue}\nthe partly executed notebook is kept at {out}") from None
            except Exception as e:  # the kernel died, a timeout, ...
                state.update(status="failed", failed={
                    "notebook": name, "cell": None, "error": f"{type(e).__name__}: {e}",
                    "partial_notebook": out})
                raise RunError(f"{name} failed: {type(e).__name__}: {e}\nthe partly executed "
                               f"notebook is kept at {out}") from None
            refused = _refused_builds(out)
            if refused:
                state.setdefault("refused", {})[name] = refused
            state["seconds"][name] = round(time.perf_counter() - t0, 1)
            state.setdefault("peak_rss_bytes", {})[name] = peak.peak
            state["done"].append(name)
            write_json(os.path.join(folder, "run.json"), state)
            print(f"[{i}/{len(order)}] {name} done in {state['seconds'][name]:.1f} s "
                  f"(run so far {time.perf_counter() - t_run:.0f} s)", flush=True)
            if export_html:
                notebook_html.to_html(out)
        finished = set(state["done"]) | set(state.get("skipped", {}))
        state["status"] = "complete" if finished >= set(ORDER) else f"stopped after {until}"
        if state.get("refused"):
            n = sum(len(v) for v in state["refused"].values())
            state["status"] += f", {n} build(s) refused (see run.json: refused)"
    finally:
        write_json(os.path.join(folder, "run.json"), state)
        from .summary import write_summary

        try:
            write_summary(folder)
        except Exception as e:  # never hide the error that stopped the run
            if e.__context__ is None and state["status"] != "failed":
                raise  # no earlier error in flight: this one is the news
            print(f"the run summary could not be written: {type(e).__name__}: {e}")
    return folder


def _refused_builds(notebook_path):
    """The builds a notebook refused (build_all prints them), one line each."""
    import nbformat

    from .build import REFUSED

    nb = nbformat.read(notebook_path, as_version=4)
    return [line[len(REFUSED):].strip() for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "stream"
            for line in out.get("text", "").splitlines() if line.startswith(REFUSED + " ")]
