"""What a run writes to disk, part by part, and its peak, before anything is written.

The parts are the files the notebooks leave in the data folder (dataset, ground
truth, the screening's prefix, coarse assignments, indexes, on-disk and sharded
copies) and in the run folder (executed notebooks and their HTML). The screening's
finalists are not known before notebook 02 has run, so they count at the largest
the screening may pick: its `finalists` largest IVF families whose RAM at
target_n fits the RAM budget; once it has run, as the ones it named. The peak
adds, beside everything else, the largest index's last checkpoint, which lives
beside the finished index until it is committed (helpers.index.build); notebook
03's disk_budget caps the index folder
(the screening picks finalists whose files fit in it together, and a build refuses
to go over it). The runner measures the same folders as it goes
(run.json's disk_peak_bytes, helpers.core.disk).
"""

import json
import math
import os

from ..core.files import format_bytes, parse_size
from ..data.ingest import parse_metric
from ..index import coarse, factory_tree, memory
from ..index.build import build_name, index_path
from ..search.screen import finalist_factories, ivf_family, screen_dir

NPY_HEADER = 128
SCREEN_GT_K = 100  # the screening's ground truth depth (helpers.search.screen)
# an executed notebook, its HTML less plotly.js, its results: 26-230 KB and ~300 KB at tiny
NOTEBOOK_TEXT = 512 * 1024
RECORD = 8 * 1024  # a JSON report or record beside an index or a screened family


def dataset_parts(gen):
    """[(label, bytes)] of notebook 01's dataset. gen: its effective parameters."""
    n, d = gen["n"], gen["d"]
    itemsize = 2 if gen["storage_dtype"] == "float16" and not gen.get("base_path") else 4
    return [("base vectors", n * d * itemsize + NPY_HEADER),
            ("queries", gen["n_queries"] * d * 4 + NPY_HEADER),
            ("training vectors", gen["n_train"] * d * 4 + NPY_HEADER if gen.get("n_train") else 0),
            ("ground truth", gen["n_queries"] * gen["gt_k"] * 12 + RECORD)]


def _coarse_bytes(space, rows, d, metric):
    """A coarse space's files: its trained quantizer and the list of each of `rows` rows."""
    return coarse.files_bytes(space, rows, d, metric) + RECORD


def screening_parts(p02, gen, metric):
    """[(label, bytes)] of notebook 02's screening on its prefix rows: ground truth,
    one coarse space each, a record per family."""
    rows = min(p02.get("screen_rows") or 0, gen["n"])
    if not rows:
        return []
    spaces = p02["screen_spaces"]
    families = len(spaces) * len(p02["screen_codes"]) + len(p02["screen_hnsw"])
    return [("screening: ground truth of its prefix", gen["n_queries"] * SCREEN_GT_K * 12 + RECORD),
            ("screening: coarse spaces on its prefix",
             sum(_coarse_bytes(s, rows, gen["d"], metric) for s in spaces)),
            ("screening: records", families * RECORD)]


def finalist_bound(p02, gen, metric):
    """[(factory, prediction at n)]: the screening's IVF finalists once its verdicts
    are saved (helpers.search.screen); before, the `finalists` largest IVF families
    it may pick, those whose RAM at target_n fits its RAM budget (any, without one)."""
    saved = screen_dir(p02["data_dir"])
    if os.path.exists(os.path.join(saved, "verdicts.json")):
        return [(f, _predict_at(f, gen, metric)) for f in finalist_factories(saved)
                if factory_tree.split_factory(f)[0]]
    ram = parse_size(p02.get("ram_budget", "")) or math.inf
    out = []
    for space in p02.get("screen_spaces", []):
        for code in p02.get("screen_codes", []):
            f = ivf_family(space, code, {"refine": p02["screen_refine"]})
            try:
                fits = memory.predict(f, p02["target_n"], gen["d"], metric)["index_ram"] <= ram
            except factory_tree.FactoryError:  # d rules it out: its verdict will say so
                continue
            if fits:
                out.append((f, _predict_at(f, gen, metric)))
    return sorted(out, key=lambda fp: -fp[1]["disk"])[:p02["finalists"]]


def _predict_at(factory, gen, metric):
    """memory.predict for factory at the dataset's rows, as notebook 03 builds it."""
    return memory.predict(factory, gen["n"], gen["d"], metric,
                          preassigned=factory_tree.preassignable(factory))


def index_parts(builds, finalists, index_dir, n, d, metric):
    """([(label, bytes)] of the indexes the run builds (run_checks.planned_builds,
    refused ones left out) and the screening's finalists, once per file,
    [(label, bytes)] of a coarse space per shared space)."""
    disks = {b["path"]: (b["factory"], build_name(b["factory"], b["ef_construction"]),
                         b["pred"]["disk"]) for b in builds if not b["refused"]}
    for f, pred in finalists:
        disks.setdefault(index_path(index_dir, build_name(f)), (f, f, pred["disk"]))
    spaces = {factory_tree.coarse_factory(f) for f, _, _ in disks.values()} - {None}
    return ([(f"index {name}", size + RECORD) for _, name, size in disks.values()],
            [(f"coarse space {s}", _coarse_bytes(s, n, d, metric)) for s in sorted(spaces)])


def copy_parts(per_notebook, order, finalists):
    """[(label, bytes)] of the second copies some notebooks write: on-disk inverted
    lists (03's ondisk_factory when not fast-scan, 05's first factory) and 07's
    shards and merged on-disk index (two copies of its lists)."""
    gen = per_notebook["01_data_generation"]
    n, d, metric = gen["n"], gen["d"], parse_metric(gen["metric"])[0]
    out = []

    def disk(f):
        return memory.predict(f, n, d, metric)["disk"]

    p03 = per_notebook["03_build_ivfpq"]
    if "03_build_ivfpq" in order and p03.get("ondisk_factory") and p03.get("ondisk_lists", True):
        f = p03["ondisk_factory"].format(nlist=p03["nlist"], large_nlist=p03.get("large_nlist"))
        fs = [g for g, _ in finalists] if f == "screened" else [f]
        plain = [disk(g) for g in fs if not factory_tree.twin_factory(g)]
        if plain:
            out.append(("03: on-disk lists of the load comparison", max(plain)))
    p05 = per_notebook["05_build_ivfsq"]
    if "05_build_ivfsq" in order and p05.get("ondisk_lists") and p05.get("factories"):
        out.append(("05: on-disk lists of the load comparison",
                    disk(p05["factories"][0].format(nlist=p05["nlist"]))))
    p07 = per_notebook["07_beyond_one_machine"]
    if "07_beyond_one_machine" in order:
        out.append(("07: shards and their merged on-disk index",
                    2 * disk(p07["factory"].format(nlist=p07["nlist"])) + (p07["shards"] + 1) * RECORD))
    return out


def run_folder_bytes(order, notebooks_dir, export_html=True):
    """Bytes of a run folder: each notebook executed, and as HTML with plotly.js
    inlined once where the notebook draws figures (helpers.notebook.notebook_html)."""
    if export_html:
        from plotly.offline import get_plotlyjs  # heavy: only the HTML export's size needs it
        plotly_js = len(get_plotlyjs().encode())
    total = 0
    for name in order:
        with open(os.path.join(notebooks_dir, name + ".ipynb")) as f:
            cells = json.load(f)["cells"]
        draws = any("plots." in "".join(c["source"]) for c in cells if c["cell_type"] == "code")
        total += NOTEBOOK_TEXT + (plotly_js if export_html and draws else 0)
    return total


def disk_plan(per_notebook, builds, order, notebooks_dir, export_html=True):
    """What the run writes: {"parts": [(label, bytes)], "peak": bytes of the data
    and run folders at their fullest, "finalists": finalist_bound's}. per_notebook: effective parameters;
    builds: run_checks.planned_builds; order: the notebooks that run."""
    gen, p02 = per_notebook["01_data_generation"], per_notebook["02_memory_budget"]
    metric = parse_metric(gen["metric"])[0]
    screens = p02.get("screen_rows") and "screened" in per_notebook["03_build_ivfpq"]["factories"]
    finalists = finalist_bound(p02, gen, metric) if screens else []
    indexes, spaces = index_parts(builds, finalists, per_notebook["03_build_ivfpq"]["index_dir"],
                                  gen["n"], gen["d"], metric)
    folder = indexes + spaces + [("the largest index's last checkpoint, until its build commits",
                                  max((size for _, size in indexes), default=0))]
    parts = (dataset_parts(gen) + screening_parts(p02, gen, metric) + folder
             + _budget_cap(folder, per_notebook["03_build_ivfpq"].get("disk_budget", ""))
             + copy_parts(per_notebook, order, finalists)
             + [("run folder: notebooks and their HTML", run_folder_bytes(order, notebooks_dir,
                                                                           export_html))])
    return {"parts": parts, "peak": int(sum(size for _, size in parts)), "finalists": finalists}


def _budget_cap(folder, disk_budget):
    """[(label, negative bytes)] bringing the index folder's parts down to its disk
    budget, when they exceed it: its builds refuse to go over it, and checkpoints
    then take the place of the previous one (helpers.index.build); [] otherwise."""
    budget, held = parse_size(disk_budget), sum(size for _, size in folder)
    if not budget or held <= budget:
        return []
    return [(f"the index folder's disk budget ({format_bytes(budget)}) caps the "
             f"{len(folder)} parts above", budget - held)]
