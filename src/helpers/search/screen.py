"""Screening: which index families deserve a full-scale build, measured on the first rows.

Candidate families (coarse spaces x codes, each with a refine stage, and HNSW
graphs) are built on the first `rows` rows of a dataset, sharing one trained
coarse space and one assignment per space (as the full-scale builds do),
swept (helpers.search.screen_grid: deeper, up to every list, only where the
grid fell short of the target), and ranked by the fastest median QPS whose
recall@10 interval clears the target. The finalists are the best few whose RAM at the target N (the
memory model) fits the budget; every family left out is given the measured
reason. Each candidate's rows are saved as it finishes, so an interrupted
screening resumes after the last one.

    python -m helpers screen DATA_DIR --rows 1000000 --out DIR [--time-budget 40min]
"""

import contextlib
import dataclasses
import os
import time

import faiss

from ..core import keyed_files
from ..core.config import SCREEN_SEARCH
from ..core.files import format_bytes, locked, read_json, write_json
from ..core.progress import status
from ..data.groundtruth import compute_ground_truth
from ..data.vectors import read_rows, take_rows, train_sample_ids
from ..index import coarse, factory_tree, indexes, memory, planner
from ..index.build import build_name
from ..index.indexes import set_ef_construction
from . import choose, evaluate
from .screen_grid import deeper_settings, grid_limit, settings_for


TARGET_RECALL = 0.95
FINALISTS = 2


BUDGET_SPENT = "not screened: the screening's time budget was spent"
# a code this many times slower than the best on the first space is not tried on the others
CODE_SLACK = 1.5


def ivf_family(space, code, search=SCREEN_SEARCH):
    """The screened factory of `code` on coarse `space` ("PCAR256,IVF16384,PQ64x4fs,Refine(SQ8)")."""
    return f"{space},{code},{search['refine']}".rstrip(",")


def codes_to_carry(on_first, space, target_recall=TARGET_RECALL, slack=CODE_SLACK):
    """{code: None when it goes on to the other spaces, else the measured reason it
    does not}. on_first: {code: its screening record on `space`, the first one}.
    A code that clears target_recall at under 1/slack of the best code's median
    QPS, or never clears it while another does, stays behind; when no code
    clears it every code goes on, and so does one with nothing measured (faiss
    refused it, or the time budget ran out first)."""
    best = {code: choose.best_setting(saved["rows"], target_recall)
            for code, saved in on_first.items() if saved.get("rows")}
    qps = {code: b["qps_median"] for code, (b, _) in best.items() if b}
    if not qps:
        return dict.fromkeys(on_first)
    lead = max(qps, key=qps.get)
    out = {}
    for code in on_first:
        if code not in best or qps.get(code, 0) * slack >= qps[lead]:
            out[code] = None
        elif code in qps:
            out[code] = (f"not screened: on {space} it cleared recall@10 {target_recall} at "
                         f"{qps[code]:,.0f} queries/s, under 1/{slack:g} of {lead}'s {qps[lead]:,.0f}")
        else:
            out[code] = (f"not screened: on {space} its recall@10 interval never cleared "
                         f"{target_recall} (best {best[code][1]['recall@10']:.3f}); {lead}'s did")
    return out


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The first `n` rows of dataset `ds`, seen as a dataset of their own (what
    helpers.index.coarse needs: base, n, d, metric and a fingerprint of its own)."""
    ds: object
    n: int

    @property
    def base(self):
        return dataclasses.replace(self.ds.base, n=self.n)

    @property
    def fingerprint(self):
        return f"{self.ds.fingerprint}:first-{self.n}"

    @property
    def metric(self):
        return self.ds.metric

    @property
    def d(self):
        return self.ds.d


def ground_truth(prefix, xq, out_dir, k=100):
    """Exact top-k of the queries among the prefix's rows, cached in out_dir."""
    path = os.path.join(out_dir, f"gt_{prefix.n}.npz")
    key = f"{prefix.ds.fingerprint}/{prefix.n}/{k}/{prefix.ds.metric}"
    saved = keyed_files.load_arrays(path, key)
    if saved is not None:
        return saved["D"], saved["I"]
    D, I = compute_ground_truth(xq, prefix.base, k, prefix.ds.metric, progress=False)
    keyed_files.save_arrays(path, key, D=D, I=I)
    return D, I


def _space(prefix, space, n_train, out_dir):
    """(trained space, assignment of the prefix's rows, times) for `space`: computed
    once through helpers.index.coarse (kept in out_dir/coarse, locked, resumable), its
    k-means and assignment seconds kept beside it for the next calls."""
    times_path = os.path.join(out_dir, "coarse", coarse.file_name(space) + ".times.json")
    trained, assign, info = coarse.coarse_assignment(prefix, space, n_train,
                                                     os.path.join(out_dir, "coarse"), progress=False)
    times = read_json(times_path) if os.path.exists(times_path) else {"kmeans_s": 0.0, "assign_s": 0.0}
    if info["train_s"] or info["assign_s"]:
        # coarse reports a resumed pass's whole time: it replaces what was recorded
        times = {"kmeans_s": info["train_s"] or times["kmeans_s"], "assign_s": info["assign_s"],
                 "kmeans": coarse.quantizer_key(prefix, space, n_train)["kmeans"], "n_train": n_train}
        write_json(times_path, times)
    return trained, assign, times


def build_candidate(prefix, factory, ef_construction, out_dir, batch=65536):
    """Build `factory` over the prefix (sharing its coarse space). Returns
    (index, info dict with train/add seconds and the space's k-means costs)."""
    ds, space_name = prefix.ds, factory_tree.split_factory(factory)[0]
    tree = factory_tree.parse(factory, ds.d, ds.metric)
    xt_ids = train_sample_ids(prefix.n, min(prefix.n, 65536))
    info = {}
    if space_name:
        # the k-means sample the full-scale build will use (memory.default_train_size)
        n_train = memory.default_train_size(tree, prefix.n)
        space, assign, info = _space(prefix, space_name, n_train, out_dir)
        info = dict(info)
        index = indexes.load_space(indexes.work_index(tree), space)
    else:
        index = indexes.new_index(factory, ds.d, ds.metric)
        if ef_construction:
            set_ef_construction(index, ef_construction)
    t0 = time.perf_counter()
    index.train(take_rows(prefix.base, xt_ids))
    info["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, prefix.n, batch):
        x = read_rows(prefix.base, i, min(i + batch, prefix.n))
        if space_name:
            indexes.add_preassigned(index, x, assign[i:i + len(x)])
        else:
            index.add(x)
    if space_name:
        index = indexes.final_index(index, tree)
    info["add_s"] = time.perf_counter() - t0
    return index, info


def _settings_or_error(factory, ds, search):
    """(settings_for `factory`, deeper_settings), or (faiss's reason it cannot be
    built, a string, and [])."""
    try:
        return (settings_for(factory, ds.d, ds.metric, search),
                deeper_settings(factory, ds.d, ds.metric, search))
    except (RuntimeError, ValueError, factory_tree.FactoryError) as e:
        return str(e).strip().splitlines()[-1], []


def serialized_size(index):
    """Bytes faiss.write_index would write, counted without a copy of the index."""
    size = [0]

    def count(buf):
        size[0] += len(buf)
        return len(buf)

    writer = faiss.PyCallbackIOWriter(count)
    faiss.write_index(index, writer)
    del writer
    return size[0]


def screen(ds, rows, out_dir, search=SCREEN_SEARCH, target_n=None, ram_budget=None, time_budget=None,
           build_time_budget=None, target_recall=TARGET_RECALL, finalists=FINALISTS,
           repeats=evaluate.MIN_BATCHES, single_queries=500, progress=True, disk_budget=None,
           time_sample=None):
    """Screen the candidates of `search` on the first `rows` rows of dataset `ds`.

    Every candidate is built and swept once (its rows saved in out_dir, reused
    on the next call for the same dataset and rows); a candidate faiss cannot
    build is recorded with faiss's reason; once `time_budget` seconds of
    screening are spent (earlier, resumed calls included) the rest are
    recorded as not screened. build_time_budget: seconds
    one finalist's build at target_n may take (estimated); disk_budget: bytes
    the finalists' files at ds.n may take together; time_sample: float32 rows the
    build estimates are timed on (default: the prefix's; pass the plan's so that
    a build has one estimate). Returns (sweep
    rows, one verdict per candidate: see verdicts), the verdicts also saved
    as out_dir/verdicts.json."""
    os.makedirs(out_dir, exist_ok=True)
    prefix = Prefix(ds, min(rows, ds.n))
    xq = read_rows(ds.queries, 0, ds.queries.n)
    gt_D, gt_I = ground_truth(prefix, xq, out_dir)
    spent, built = 0.0, {}  # seconds of screening, earlier calls' included

    def one(factory, efc):
        nonlocal spent

        def measure(key):
            return _screen_one(prefix, factory, efc, out_dir, xq, gt_D, gt_I, repeats,
                               single_queries, key, progress, target_recall)

        over = bool(time_budget) and spent > time_budget
        saved, seconds = _reuse_or_screen(prefix, factory, efc, out_dir, search, over, measure)
        spent += seconds
        built[build_name(factory, efc)] = saved

    _in_order(search, one, built, target_recall)
    all_rows = [r for saved in built.values() for r in saved.get("rows", [])]
    found = verdicts(built, prefix.n, target_n or ds.n, ds.d, ds.metric, ram_budget,
                     build_time_budget, target_recall, finalists, disk_budget, ds.n,
                     build_estimates(built, prefix, target_n or ds.n, time_sample))
    write_json(os.path.join(out_dir, "verdicts.json"), found)
    return all_rows, found


def _in_order(search, one, built, target_recall):
    """Calls one(factory, efc) for the candidates of `search`, cheapest first, so that
    a time budget screens the most families: every code on the first space (one
    k-means for them all), the codes worth it on the other spaces (a k-means each),
    then the graphs (5-7 min each at 1M rows against about 1 min for a code on a space
    already trained: benchmarks/README.md). A code left behind is recorded in `built`
    with the reason."""
    if search["spaces"]:
        first, *others = search["spaces"]
        for code in search["codes"]:
            one(ivf_family(first, code, search), None)
        left_behind = codes_to_carry({c: built[ivf_family(first, c, search)] for c in search["codes"]},
                                     first, target_recall)
        for space in others:
            for code in search["codes"]:
                if left_behind[code]:
                    built[ivf_family(space, code, search)] = {"error": left_behind[code]}
                else:
                    one(ivf_family(space, code, search), None)
    for factory, efc in search["hnsw"]:
        one(factory, efc)


def _reuse_or_screen(prefix, factory, efc, out_dir, search, over_budget, measure):
    """(record, seconds it counts for): the saved record when its key matches (its
    recorded seconds), else "not screened" when over_budget (0 s), else measure(key)
    timed and saved. One process screens a candidate; another on the same folder
    waits for it, then reuses its record."""
    ds = prefix.ds
    name = build_name(factory, efc)
    path = os.path.join(out_dir, coarse.file_name(name) + ".json")
    grid, deeper = _settings_or_error(factory, ds, search)
    key = {"dataset": ds.fingerprint, "rows": prefix.n, "factory": factory, "efC": efc,
           "settings": grid, "deeper": deeper}
    with locked(path, what=f"the screening of {name}"):
        if os.path.exists(path) and read_json(path).get("key") == key:
            saved = read_json(path)
            saved["rows"] = [choose.upgrade(r) for r in saved.get("rows", [])]  # older names
            return saved, saved.get("seconds", sum(saved.get("info", {}).get(k, 0) for k in
                                                   ("kmeans_s", "assign_s", "train_s", "add_s")))
        if over_budget:
            return {"key": key, "error": BUDGET_SPENT}, 0.0
        t0 = time.perf_counter()
        saved = measure(key)
        saved["seconds"] = time.perf_counter() - t0
        write_json(path, saved)
        return saved, saved["seconds"]


def finalist_factories(screen_dir):
    """The finalists' factory strings from the screening saved in screen_dir."""
    path = os.path.join(screen_dir, "verdicts.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no screening in {screen_dir}: run notebook 02 with screen_rows > 0 "
                                f"first (its finalists are what \"screened\" stands for)")
    return [v["family"] for v in read_json(path) if v["verdict"] == "finalist"]


def expand(factories, screen_dir):
    """`factories` with the entry "screened" replaced by the screening's finalists
    (IVF families: the graphs are built by notebook 04)."""
    out = []
    for f in factories:
        if f != "screened":
            out.append(f)
            continue
        found = [x for x in finalist_factories(screen_dir) if factory_tree.split_factory(x)[0]]
        if not found:
            raise ValueError(f"the screening in {screen_dir} kept no IVF finalist (see its "
                             f"verdicts.json): widen its search or its budgets, or name the "
                             f"factories instead of \"screened\"")
        out += found
    return list(dict.fromkeys(out))


def _screen_one(prefix, factory, efc, out_dir, xq, gt_D, gt_I, repeats, single_queries,
                key, progress, target_recall):
    name = build_name(factory, efc)
    step = status(f"screening {name} on {prefix.n:,} rows") if progress else contextlib.nullcontext()
    with step:
        return _build_and_sweep(prefix, factory, efc, name, out_dir, xq, gt_D, gt_I, repeats,
                                single_queries, key, target_recall)


def _build_and_sweep(prefix, factory, efc, name, out_dir, xq, gt_D, gt_I, repeats,
                     single_queries, key, target_recall):
    """Build one candidate and sweep it until a setting clears target_recall."""
    try:
        if isinstance(key["settings"], str):  # the factory string itself was refused
            raise ValueError(key["settings"])
        index, info = build_candidate(prefix, factory, efc, out_dir)
    except (RuntimeError, ValueError, factory_tree.FactoryError) as e:
        return {"key": key, "error": "faiss cannot build it: " + str(e).strip().splitlines()[-1]}
    nbytes, rows = serialized_size(index), []
    for step in [key["settings"]] + key["deeper"]:  # deeper only while nothing cleared
        if rows and choose.best_setting(rows, target_recall)[0]:
            break
        rows += evaluate.sweep({name: (index, nbytes)}, xq, gt_D, gt_I, None, prefix.ds.metric,
                               settings={name: step}, repeats=repeats,
                               single_queries=single_queries, progress=False,
                               full_timing_from=target_recall)
    del index
    return {"key": key, "info": info, "bytes_at_rows": nbytes, "rows": rows}


def build_estimates(built, prefix, target_n, sample=None, sample_rows=2000):
    """{name: {"at_rows", "at_target"}}: planner.build_seconds (the estimate every
    notebook shows for a build) at the prefix's rows and at target_n, for each
    candidate that was built, timed on `sample` (default: `sample_rows` of the
    prefix's rows); its measured build at the prefix's rows stands beside it in
    the verdicts."""
    ds = prefix.ds
    if sample is None:
        sample = take_rows(prefix.base, train_sample_ids(prefix.n, min(prefix.n, sample_rows)))
    rate = planner.gemm_rate(ds.d)
    out = {}
    for name, saved in built.items():
        if saved.get("error"):
            continue
        factory, _, efc = name.partition(" efC=")
        out[name] = {f"at_{at}": planner.build_seconds(factory, n, ds.d, ds.metric, sample=sample,
                                                       rate=rate, ef_construction=int(efc or 0) or None)
                     ["total_s"] for at, n in (("rows", prefix.n), ("target", target_n))}
    return out


def verdicts(built, rows, target_n, d, metric, ram_budget=None, time_budget=None,
             target_recall=TARGET_RECALL, finalists=FINALISTS, disk_budget=None, n=None,
             estimates=None):
    """One verdict per candidate: its best row at the target (the fastest median
    QPS whose recall@10 interval clears it), its RAM at target_n predicted by
    the memory model, its build time estimated at target_n (estimates, from
    build_estimates) beside its measured and estimated build at `rows`, and "finalist" or
    the measured reason it was dropped (over the RAM budget, over the time
    budget, never reaching the target, its files at n rows (default target_n)
    not fitting beside the faster finalists' in disk_budget bytes, or slower
    than the finalists)."""
    out = []
    for name, saved in built.items():
        factory = name.split(" efC=")[0]
        v = {"family": name, "verdict": saved.get("error"), **saved.get("info", {})}
        if not v["verdict"]:
            est = (estimates or {}).get(name, {})
            v.update(build_s_at_rows=sum(saved["info"].get(k, 0) for k in
                                         ("kmeans_s", "assign_s", "train_s", "add_s")),
                     est_build_s_at_rows=est.get("at_rows"), build_s_at_target=est.get("at_target"))
            v["ram_at_target"] = memory.predict(factory, target_n, d, metric)["index_ram"]
            best, top = choose.best_setting(saved["rows"], target_recall)
            v.update(best_setting=(best or top)["setting"], recall=(best or top)["recall@10"],
                     recall_ci=(best or top)["recall@10_ci"], qps_median=(best or top)["qps_median"],
                     p50_ms=(best or top).get("p50_ms"))
            if ram_budget and v["ram_at_target"] > ram_budget:
                v["verdict"] = (f"needs {format_bytes(v['ram_at_target'])} at {target_n:,} rows, over "
                                f"the {format_bytes(ram_budget)} budget")
            elif time_budget and (v["build_s_at_target"] or 0) > time_budget:
                v["verdict"] = (f"its build at {target_n:,} rows is estimated at "
                                f"{v['build_s_at_target'] / 60:,.0f} min, over the "
                                f"{time_budget / 60:,.0f} min budget")
            elif best is None:
                v["verdict"] = (f"recall@10 interval never clears {target_recall} "
                                f"(best {top['recall@10']:.3f} at {top['setting']})"
                                + grid_limit(saved["rows"]))
        out.append(v)
    ranked = sorted((v for v in out if not v["verdict"]), key=lambda v: -v["qps_median"])
    chosen = []
    for v in ranked:
        need = files_bytes([c["family"] for c in chosen] + [v["family"]], n or target_n, d, metric)
        if len(chosen) >= finalists:
            v["verdict"] = (f"slower: {v['qps_median']:,.0f} queries/s at recall@10 >= "
                            f"{target_recall} against {ranked[0]['qps_median']:,.0f} for "
                            f"{ranked[0]['family']}")
        elif disk_budget and need > disk_budget:
            v["verdict"] = (f"its files at {n or target_n:,} rows would take the finalists' to "
                            f"{format_bytes(need)}, over the {format_bytes(disk_budget)} disk budget")
        else:
            v["verdict"] = "finalist"
            chosen.append(v)
    return out


def files_bytes(families, n, d, metric):
    """Bytes (int) the builds of `families` (names as build_name gives them) write
    at n rows: each index file and each coarse space they share, once."""
    factories = [name.split(" efC=")[0] for name in families]
    spaces = {factory_tree.coarse_factory(f) for f in factories} - {None}
    return (sum(memory.predict(f, n, d, metric)["disk"] for f in factories)
            + sum(coarse.files_bytes(s, n, d, metric) for s in spaces))


def search_of(spaces, codes, refine, hnsw, nprobe_divisors, k_factors, ef_search):
    """A search description (as config.SCREEN_SEARCH) from a notebook's plain parameters."""
    return {"spaces": list(spaces), "codes": list(codes), "refine": refine,
            "hnsw": [list(h) for h in hnsw], "nprobe_divisors": list(nprobe_divisors),
            "k_factor_rf": list(k_factors),
            "ef_search": list(ef_search)}


def screen_dir(data_dir):
    """Where a dataset's screening lives (the finalists that "screened" stands for)."""
    return os.path.join(data_dir, "screen")


if __name__ == "__main__":  # python -m helpers.<wing>.<module>: say the command form
    from ..core.usage import wrong_form

    wrong_form("screen")
