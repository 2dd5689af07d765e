"""Checks a run makes before it writes anything: what it will build (from the
notebooks' effective parameters), whether that fits the disk and memory, and
how long it should take against its time budget."""

import math
import os
import shutil

import psutil

from ..core import config, disk, quiet
from ..core.files import existing_parent, format_bytes, parse_duration, parse_size
from ..core.heuristics import DISK_MARGIN_MIN, DISK_MARGIN_SHARE
from ..data.ingest import parse_metric
from ..index import coarse, memory, planner
from ..index.build import build_name, index_path
from ..index.factory_tree import coarse_factory, preassignable, split_factory
from ..index.planner import format_seconds
from ..search.screen import finalist_factories, screen_dir
from . import disk_plan


def effective_parameters(per_notebook):
    """{notebook: every parameter it will run with}: its defaults (helpers.core.config)
    updated by what the runner passes (per_notebook, from notebook_parameters)."""
    return {name: {**config.defaults(name), **passed} for name, passed in per_notebook.items()}


def planned_indexes(per_notebook):
    """(factory, index path, ef_construction) of every index the notebooks will build,
    from their effective parameters (the screening's finalists are added once known)."""
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
        out += [(f, index_path(p["index_dir"], build_name(f, efc)), efc) for f in fs]
        if name == "04_build_hnsw":  # its M x efConstruction grid (evaluate.hnsw_grid)
            out += [(f"HNSW{m},{p['compare_storage']}",
                     index_path(p["index_dir"], build_name(f"HNSW{m},{p['compare_storage']}", e)), e)
                    for m in p.get("m_values", []) for e in p.get("ef_construction_values", [])]
    return list({path: (f, path, efc) for f, path, efc in out}.values())  # once per file


def planned_builds(per_notebook):
    """Every index the run will build, with the memory model's prediction at the
    run's n and its reasons for refusing it against the build budget (the
    build_budget, else the memory available now). per_notebook: effective
    parameters. Returns (builds, budget in bytes): builds are dicts with
    factory, path, ef_construction, pred, refused (the reasons, "" when it fits)."""
    gen = per_notebook["01_data_generation"]
    metric = parse_metric(gen["metric"])[0]
    limit = parse_size(per_notebook["03_build_ivfpq"].get("build_budget", ""))
    available = limit or psutil.virtual_memory().available
    builds = []
    for f, path, efc in planned_indexes(per_notebook):
        pred = memory.predict(f, gen["n"], gen["d"], metric, preassigned=preassignable(f),
                              build_budget=limit or None)
        reasons = memory.fits(pred, math.inf, build_budget=available)
        builds.append({"factory": f, "path": path, "ef_construction": efc, "pred": pred,
                       "refused": "; ".join(reasons)})
    return builds, available


def check_resources(per_notebook, data_dir, runs_dir, order, notebooks_dir, export_html=True):
    """What the run needs of this machine, told before anything is written: its disk
    (disk_plan.disk_plan: every part, the screening's finalists at the largest it may
    pick until it has named them) against the free space of the data and runs folders, less what the data
    folder holds already, with a margin (heuristics.DISK_MARGIN_*); its peak build
    memory (the finalists' included) against the build budget. Returns {"plan",
    "disk_needed" (bytes still to write), "disk_free", "margin", "disk_fits",
    "peak_memory", "memory_budget", "memory_fits", "refused": [(factory, reasons)],
    "problems": [one line each; empty when the run fits]}."""
    per_notebook = effective_parameters(per_notebook)
    builds, available = planned_builds(per_notebook)
    plan = disk_plan.disk_plan(per_notebook, builds, order, notebooks_dir, export_html)
    need = max(0, plan["peak"] - disk.folder_bytes(data_dir))
    margin = max(DISK_MARGIN_SHARE * need, DISK_MARGIN_MIN)
    free = min(shutil.disk_usage(existing_parent(f)).free for f in (data_dir, runs_dir))
    disk_fits, problems = need + margin <= free, []
    if not disk_fits:
        problems.append(f"this run writes up to {format_bytes(need)} in {data_dir} and {runs_dir} "
                        f"(its predicted peak, plus a margin of {format_bytes(margin)}), but only "
                        f"{format_bytes(free)} is free there; free some space or pass --data-dir "
                        f"and --runs-dir on a larger disk")
    refused = [(b["factory"], b["refused"]) for b in builds if b["refused"]]
    screened = "screened" in per_notebook["03_build_ivfpq"]["factories"]  # checked when built
    if refused and len(refused) == len(builds) and not screened:
        problems.append(f"none of the run's indexes can be built in {format_bytes(available)} of "
                        f"memory (the build budget): " + "; ".join(f"{f}: {r}" for f, r in refused))
    peak_memory = max([b["pred"]["build_peak"] for b in builds if not b["refused"]]
                      + [pred["build_peak"] for _, pred in plan["finalists"]], default=0)
    return {"plan": plan, "disk_needed": need, "disk_free": free, "margin": margin,
            "disk_fits": disk_fits, "peak_memory": peak_memory,
            "memory_budget": available, "memory_fits": peak_memory <= available,
            "refused": refused, "problems": problems}


def estimate_seconds(per_notebook, data_dir):
    """Estimated seconds of what this run still has to generate, train, assign
    and add, timed on samples on this machine before anything is written
    (helpers.index.planner): {stage: seconds}, stages "generate", "ground truth",
    "coarse IVF4096" (one shared k-means and assignment per nlist), "build
    <factory>". What exists is not counted: a dataset (and its ground truth),
    coarse assignments, built indexes. Left out: importing users' vectors,
    builds the memory model refuses, OPQ builds (not timed, as in planner.plan),
    the sweeps."""
    per_notebook = effective_parameters(per_notebook)
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
    for b in planned_builds(per_notebook)[0]:
        f = b["factory"]
        if b["refused"] or os.path.exists(b["path"]):
            continue
        preassigned = preassignable(f)
        c = coarse_factory(f) if preassigned else None
        if c and f"coarse {c}" not in out and not os.path.exists(coarse.paths(coarse_dir, c)[1]):
            out[f"coarse {c}"] = planner.coarse_seconds(n, d, c, rate, sample)
        if f.startswith("OPQ"):
            continue
        efc = b["ef_construction"]
        with quiet.captured():  # k-means on a sample below 39 points per centroid says so
            out["build " + build_name(f, efc if f.startswith("HNSW") else None)] = \
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
    p = per_notebook["02_memory_budget"]
    if not p.get("screen_rows") or "screened" not in per_notebook["03_build_ivfpq"]["factories"]:
        return {}
    if not (p.get("screen_time_budget") and p.get("build_time_budget")):
        raise ValueError("a run that screens and builds its finalists needs screen_time_budget and "
                         "build_time_budget (notebook 02) to bound its time; set both")

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


def check_time(per_notebook, data_dir, time_budget):
    """With a time limit ("2h"; "" or 0: none, and nothing is estimated), print
    estimate_seconds and refuse (ValueError, with the figures) a run whose total
    exceeds it. Returns the estimate, or None without a limit."""
    budget = parse_duration(time_budget)
    if not budget:
        return None
    est = estimate_seconds(per_notebook, data_dir)
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
