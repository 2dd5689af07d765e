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
instead of generating them (helpers.data.ingest), into data/own-<file name>/, and
unless a preset is named the parameters follow their size (helpers.pipeline.profile).
"""

import contextlib
import datetime
import glob
import json
import os
import sys
import time
from unittest import mock

import yaml

from ..core import config, disk, limits, progress as progress_bars, rss
from ..core.files import check_writable, format_bytes, locked, parse_size, read_json, write_json
from ..data import ingest
from ..index.build import REFUSED
from ..notebook import notebook_html
from . import kernels, profile, run_checks
from .profile import min_rows
from .summary import write_summary


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
PROGRESS_LOG = "progress.log"  # in the run folder: what the kernels said while working


class RunError(RuntimeError):
    """A notebook failed; the message names it, the cell and the error."""


DATA_DIR_ENV = "FAISS_WORKBOOK_DATA"  # where data/<preset>/ goes unless --data-dir says


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

        with open(params_file) as f:
            extra = yaml.safe_load(f) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{params_file}: expected a mapping of notebook -> parameters")
        preset = preset or extra.pop("preset", None)
        extra.pop("preset", None)
    data = {**(extra.pop("dataset", None) or {}),
            **{k: v for k, v in (data or {}).items() if v is not None}}
    if preset is not None and preset not in config.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(config.PRESETS)}")
    unknown = set(extra) - set(config.ORDER) - {"all", "skip", "time_budget"}
    if unknown:
        raise ValueError(f"{params_file}: unknown sections {sorted(unknown)}; use 'all', 'dataset' "
                         f"or one of {config.ORDER}")
    if data:
        label, base, for_all, for_import = _own_data(data, preset)
    else:
        label = preset = preset or "small"
        base = config.PRESETS[preset]
    out = {name: dict(base.get(name, {})) for name in ["all"] + config.ORDER}
    out["skip"] = dict(base.get("skip", {}))  # notebook -> why this preset does not run it
    out["time_budget"] = extra.pop("time_budget", base.get("time_budget", ""))  # e.g. "2h"
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
    params = config.PRESETS[preset] if preset else profile.for_data(n_base, info["d"])
    for_all = {"d": info["d"], "metric": metric, "target_n": info["n"]}  # production: every row
    for_import = {"base_path": os.path.abspath(data["base"]),
                  "queries_path": os.path.abspath(data["queries"]) if data.get("queries") else "",
                  "column": data.get("column", "embedding"), "metric": data["metric"],
                  "n_queries": n_queries, "max_rows": data.get("max_rows", 0), "n": n_base}
    return label, params, for_all, for_import


def notebook_parameters(params, data_dir, results_dir, force, notebooks_dir=NOTEBOOKS, notes=None):
    """{notebook: parameters to pass}, checked against the parameters each notebook
    declares (helpers.config) and against the values faiss takes (helpers.limits),
    before any kernel starts. Raises ValueError naming any parameter a notebook
    does not declare or a value out of range; nprobe beyond nlist is passed
    clipped, and what was clipped is appended to `notes`."""
    out = {}
    for name in config.ORDER:
        declared = config.DECLARED[name]
        unknown = set(params[name]) - set(declared)
        if unknown:
            raise ValueError(f"{name} has no parameter(s) {sorted(unknown)}; it takes "
                             f"{sorted(declared)}")
        fixed = {"data_dir": data_dir, "index_dir": os.path.join(data_dir, "indexes"),
                 "results_dir": results_dir, "force": force}
        chosen = {k: v for k, v in {**params["all"], **fixed}.items() if k in declared}
        out[name] = {**chosen, **params[name]}
    rows = {**config.defaults("01_data_generation"), **out["01_data_generation"]}["n"]
    for name, passed in out.items():
        effective = {**config.defaults(name), **passed}
        try:
            checked, clipped = limits.check_parameters(effective, rows)
        except limits.OutOfRange as e:
            raise limits.OutOfRange(f"{name}: {e}") from None
        passed.update({k: v for k, v in checked.items() if v != effective[k]})
        if notes is not None:
            notes += [f"{name}: {note}" for note in clipped]
    return out


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
        time_budget=None, check=False):
    """Execute the notebooks in order; return the run folder. Raises RunError when
    a notebook fails (after writing the summary of what completed).

    data: users' vectors (see load_params); until: the last notebook to run
    (default: all of them); limits: {"ram_budget": "16G", "build_budget": "20G"},
    the budgets every notebook applies (sizes as setup.budgets reads them);
    time_budget: "2h", "90min", ... (default: the preset's, if any): a run whose
    estimate_seconds exceed it is refused before it starts. check=True runs the
    checks alone: it prints what the run will write, its peak disk, memory and
    time and whether each fits now, writes nothing, and returns
    run_checks.check_resources's report ("problems" empty when the run fits)."""
    runs_dir = runs_dir or os.path.join(ROOT, "runs")
    data_root = data_root or os.environ.get(DATA_DIR_ENV) or os.path.join(ROOT, "data")
    preset, params, order = _chosen(preset, params_file, data, limits, until)
    data_dir = os.path.join(data_root, preset)
    clipped = []
    planned = notebook_parameters(params, data_dir, "", force, notebooks_dir, clipped)
    for note in clipped:
        print(note)
    estimated, found = _preflight(planned, params, data_dir, runs_dir, time_budget, order,
                                  notebooks_dir, export_html, check)
    if check:
        for problem in found["problems"]:
            print(f"does not fit: {problem}")
        print("the run does not fit" if found["problems"] else "the run fits",
              "(nothing was written)")
        return found
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


def _chosen(preset, params_file, data, budgets, until):
    """(preset, its parameters as plain JSON values with the `budgets` applied to
    every notebook, the notebooks to run), each checked."""
    preset, params = load_params(preset, params_file, data)
    for k, v in (budgets or {}).items():
        parse_size(v)  # a size that cannot be read stops here, not in a notebook
        params["all"][k] = v
    params = json.loads(json.dumps(params))  # plain JSON values, comparable with run.json
    if until is not None and until not in config.ORDER:
        raise ValueError(f"until={until!r} is not a notebook; use one of {', '.join(config.ORDER)}")
    return preset, params, config.ORDER[:config.ORDER.index(until) + 1] if until else config.ORDER


def _preflight(planned, params, data_dir, runs_dir, time_budget, order, notebooks_dir,
               export_html, check=False):
    """What must hold before anything is written: enough of the user's rows to
    train on, writable folders, the disk the run writes and the memory its builds
    need (run_checks.check_resources, printed), and its estimated time within
    `time_budget`. Raises ValueError with the first problem; with check=True
    prints every part and verdict instead and raises nothing. Returns (the time
    estimate, run_checks.check_resources's report)."""
    if "dataset" in params:
        n_base = planned["01_data_generation"]["n"]
        need = min_rows(run_checks.effective_parameters(planned))
        if n_base < need:
            raise ValueError(f"{params['dataset']['base']}: {n_base:,} base rows, but this run's "
                             f"indexes need at least {need:,} to train (k-means needs a point per "
                             f"centroid); give more vectors or a preset with a smaller nlist")
    for folder, what in ((data_dir, "the data folder"), (runs_dir, "the runs folder")):
        check_writable(folder, what)  # a read-only folder is said now, not after an hour
    running = [name for name in order if name not in params["skip"]]
    found = run_checks.check_resources(planned, data_dir, runs_dir, running, notebooks_dir,
                                       export_html)
    print(f"disk: this run writes up to {format_bytes(found['disk_needed'])} in {data_dir} and "
          f"{runs_dir} (predicted peak {format_bytes(found['plan']['peak'])} of both; "
          f"{format_bytes(found['disk_free'])} free)")
    for f, why in found["refused"]:
        print(f"  {f} will be refused by its notebook: {why}")
    if check:
        _print_check(found)
    elif found["problems"]:
        raise ValueError(found["problems"][0])
    try:
        estimated = run_checks.check_time(planned, data_dir, time_budget or params["time_budget"])
    except ValueError as e:
        if not check:
            raise
        found["problems"].append(str(e))
        estimated = None
    return estimated, found


def _print_check(found):
    """The parts of the disk plan, the memory peak, and whether each fits now."""
    for label, size in found["plan"]["parts"]:
        if size:
            print(f"  {format_bytes(size):>10}  {label}")
    print(f"disk fits now: {'yes' if found['disk_fits'] else 'no'} "
          f"(margin {format_bytes(found['margin'])})")
    print(f"memory: the largest build peaks at {format_bytes(found['peak_memory'])} of "
          f"{format_bytes(found['memory_budget'])} (the build budget): "
          f"{'fits' if found['memory_fits'] else 'does not fit'}")


def _run_in(folder, state, held, runs_dir, preset, params, force, estimated, data_dir,
            notebooks_dir, order, progress, export_html, until):
    if folder:
        print(f"continuing the unfinished run {folder} (done: {', '.join(state['done']) or 'none'})")
    else:
        folder, state = _new_run_folder(runs_dir, preset, params, force, estimated, held)
    results_dir = os.path.join(folder, "results")
    per_notebook = notebook_parameters(params, data_dir, results_dir, force, notebooks_dir)
    state["status"] = "running"
    write_json(os.path.join(folder, "run.json"), state)
    os.makedirs(data_dir, exist_ok=True)
    t_run = time.perf_counter()
    try:
        with disk.DiskTrace([data_dir, folder], stage="start") as used:
            for i, name in enumerate(order, 1):
                step = f"[{i}/{len(order)}] {name}"
                if name in state["done"]:
                    print(f"{step}: done in an earlier attempt, skipped")
                elif name in params["skip"]:
                    print(f"{step}: not run in this preset: {params['skip'][name]}")
                    state.setdefault("skipped", {})[name] = params["skip"][name]
                else:
                    used.stage = name
                    _run_one(step, name, folder, state, per_notebook[name], notebooks_dir, progress,
                             used)
                    print(f"{step} done in {state['seconds'][name]:.1f} s "
                          f"(run so far {time.perf_counter() - t_run:.0f} s)", flush=True)
                    if export_html:
                        notebook_html.to_html(os.path.join(folder, name + ".ipynb"))
                    _record_disk(state, used)
        finished = set(state["done"]) | set(state.get("skipped", {}))
        state["status"] = "complete" if finished >= set(config.ORDER) else f"stopped after {until}"
        if state.get("refused"):
            n = sum(len(v) for v in state["refused"].values())
            state["status"] += f", {n} build(s) refused (see run.json: refused)"
    finally:
        try:
            write_json(os.path.join(folder, "run.json"), state)
            write_summary(folder)
        except Exception as e:  # never hide the error that stopped the run (a full disk stops both)
            if e.__context__ is None and state["status"] != "failed":
                raise  # no earlier error in flight: this one is the news
            print(f"the run's record could not be updated: {type(e).__name__}: {e}")
    return folder


def _new_run_folder(runs_dir, preset, params, force, estimated, held):
    """(runs_dir/<time>-<preset>, its fresh state), the folder locked by `held`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = os.path.join(runs_dir, f"{stamp}-{preset}")
    os.makedirs(folder)
    held.enter_context(locked(os.path.join(folder, "run.json"), wait=False,
                              what=f"the run folder {folder}"))
    state = {"preset": preset, "params": params, "force": force, "done": [], "status": "running",
             "started": stamp, "seconds": {}}
    if estimated is not None:
        state["estimated_seconds"] = {k: round(v, 1) for k, v in estimated.items()}
    return folder, state


def _record_disk(state, used):
    """The largest disk use of the data and run folders so far (helpers.core.disk),
    across every attempt of this run, with the stage it was measured in."""
    used.sample()
    before = state.get("disk_peak_bytes", {"bytes": -1})
    if used.peak > before["bytes"]:
        state["disk_peak_bytes"] = {"bytes": used.peak, "stage": used.peak_stage,
                                    "folders": used.folders, "sampled_every_s": used.interval}


def _run_one(step, name, folder, state, parameters, notebooks_dir, progress, used):
    """Execute notebook `name` into `folder` and record it as done in run.json."""
    out = os.path.join(folder, name + ".ipynb")
    print(f"{step} ...", flush=True)
    t0 = time.perf_counter()
    try:
        _execute(name, out, parameters, notebooks_dir, progress, state)
    finally:
        _record_disk(state, used)  # a failed stage's disk is news too
    refused = _refused_builds(out)
    if refused:
        state.setdefault("refused", {})[name] = refused
    state["seconds"][name] = round(time.perf_counter() - t0, 1)
    state["done"].append(name)
    write_json(os.path.join(folder, "run.json"), state)


def _execute(name, out, parameters, notebooks_dir, progress, state):
    """Run notebook `name` with papermill into `out`, recording in `state` its
    kernel's peak RSS and peak private memory (RSS less mapped files' page
    cache), in bytes. A failure is recorded in `state` and raised as RunError naming
    the notebook and cell, the partly executed notebook kept; a kernel that died
    (an abort, a kill, the out-of-memory killer) fails the stage within seconds,
    its signal or exit status and last measured memory named."""
    import papermill as pm  # heavy: only a notebook run needs papermill
    from nbclient.exceptions import DeadKernelError  # heavy: with papermill

    # the kernel writes its progress and faiss's C++ messages to the run folder's
    # progress.log (helpers.core.progress), not into the saved notebook; copied here
    log = os.path.join(os.path.dirname(out), PROGRESS_LOG)
    started = []  # the kernels papermill starts (kernels.ipc_kernel_manager)
    try:
        with rss.RSSTrace(interval=0.5, children=True) as peak, \
                mock.patch.dict(os.environ, {progress_bars.LOG_ENV: log}), \
                (progress_bars.echoed(log) if progress else contextlib.nullcontext()):
            pm.execute_notebook(os.path.join(notebooks_dir, name + ".ipynb"), out,
                                parameters=parameters, cwd=notebooks_dir,
                                kernel_name="python3", progress_bar=progress,
                                stderr_file=sys.stderr if progress else None,
                                # widget state would store plotly's JavaScript once per
                                # FigureWidget (~5 MB each): the explorer is for live
                                # sessions, and 06 keeps a static snapshot of it
                                store_widget_state=False,
                                kernel_manager_class=kernels.ipc_kernel_manager(started))
    except pm.PapermillExecutionError as e:
        _fail(state, {"notebook": name, "cell": e.exec_count, "error": f"{e.ename}: {e.evalue}",
                      "partial_notebook": out},
              f"{name} failed in cell [{e.exec_count}] with {e.ename}: {e.evalue}")
    except Exception as e:  # the kernel died, did not start, the notebook could not be written
        # a kernel that ended when the failure's cleanup shut it down did not die
        dead = isinstance(e, DeadKernelError) or "Kernel died" in str(e)
        died = kernels.how_it_ended(started[-1]) if dead and started else None
        failed = {"notebook": name, "cell": kernels.running_cell(out),
                  "error": f"{type(e).__name__}: {e}", "partial_notebook": out}
        if died is None:
            _fail(state, failed, f"{name} failed: {type(e).__name__}: {e}")
        failed.update(died, last_rss_bytes=peak.last_rss, last_private_bytes=peak.last_private)
        _fail(state, failed, f"{name}: the kernel died in cell {failed['cell']}: {died['how']}; "
                             f"{kernels.last_memory(peak, died)}")
    state.setdefault("peak_rss_bytes", {})[name] = peak.peak
    state.setdefault("peak_private_bytes", {})[name] = peak.peak_private


def _fail(state, failed, message):
    """Record `failed` in the run's state and raise RunError with `message`."""
    state.update(status="failed", failed=failed)
    raise RunError(f"{message}\nthe partly executed notebook is kept at "
                   f"{failed['partial_notebook']}") from None


def _refused_builds(notebook_path):
    """The builds a notebook refused (build_all prints them), one line each."""
    import nbformat  # heavy: only executed notebooks need nbformat

    nb = nbformat.read(notebook_path, as_version=4)
    return [line[len(REFUSED):].strip() for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "stream"
            for line in out.get("text", "").splitlines() if line.startswith(REFUSED + " ")]


if __name__ == "__main__":  # python -m helpers.<wing>.<module>: say the command form
    from ..core.usage import wrong_form

    wrong_form("run")
