"""The screening's grid: the search settings each candidate family is swept at.

A first grid of shares of the lists (nprobe = nlist // divisor) or efSearch
values, times the refine depths; then, only while no setting has cleared the
target, deeper steps up to every list (IVF) or past the grid's efSearch
(graphs), so a family is not judged by where a fixed grid stopped.
"""

from ..core.config import SCREEN_SEARCH
from ..index import factory_tree


# a graph's efSearch is doubled this many times past the grid when nothing cleared
GRAPH_STEPS = 2


def settings_for(factory, d, metric, search=SCREEN_SEARCH):
    """The sweep's grid for `factory`: nprobe (nlist // each of nprobe_divisors) or
    efSearch, times the refine depths when there is a refine stage."""
    node = factory_tree.parse(factory, d, metric)
    inner = factory_tree.inner_index(node)
    main = ([f"nprobe={max(1, inner['nlist'] // div)}" for div in search["nprobe_divisors"]]
            if inner["kind"] == "ivf" else [f"efSearch={e}" for e in search["ef_search"]])
    return _with_depths(dict.fromkeys(main), node, search)


def deeper_settings(factory, d, metric, search=SCREEN_SEARCH):
    """The steps past settings_for's grid, each swept only while no setting so far
    has cleared the target, so the costly end is paid only where the cheaper one
    fell short: [[setting, ...], ...]. IVF: nprobe doubled from the grid's deepest
    up to nlist (every list scanned: then the lists are not what limits it);
    graphs: efSearch doubled GRAPH_STEPS times past the grid's deepest."""
    node = factory_tree.parse(factory, d, metric)
    inner = factory_tree.inner_index(node)
    if inner["kind"] == "ivf":
        nprobe, main = max(1, inner["nlist"] // min(search["nprobe_divisors"])), []
        while nprobe < inner["nlist"]:
            nprobe = min(2 * nprobe, inner["nlist"])
            main.append(f"nprobe={nprobe}")
    else:
        main = [f"efSearch={max(search['ef_search']) * 2 ** i}" for i in range(1, GRAPH_STEPS + 1)]
    return [_with_depths([m], node, search) for m in main]


def _with_depths(main, node, search):
    """Each of `main` ("nprobe=32") with each refine depth when node has a refine stage."""
    kfs = ([f"k_factor_rf={k}" for k in search["k_factor_rf"]] if node["kind"] == "refine"
           else [""])
    return [",".join(p for p in (m, kf) if p) for m in main for kf in kfs]


def grid_limit(rows):
    """What stopped a family's sweep short of the target, for its verdict: with
    nprobe swept up to nlist (deeper_settings) the lists were all scanned, so the
    codes at the deepest refine tried are the limit; a graph's efSearch stopped
    where the grid did, so the grid may be."""
    deepest = rows[-1]["setting"]
    if "nprobe" in deepest:
        kf = max((r.get("k_factor_rf", 0) for r in rows), default=0)
        return ("; with every list scanned, its codes are the limit" +
                (f" at refine depths up to k_factor_rf={kf}" if kf else ""))
    return (f"; the grid stopped at {deepest}, not the family: deeper screen_ef_search values "
            f"may clear it")
