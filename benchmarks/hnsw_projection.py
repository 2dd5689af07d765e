"""HNSW graphs measured at two sizes, projected to the target size, with the
projection's error measured on a real 10M build.

    python benchmarks/hnsw_projection.py SCREEN_1M [SCREEN_2M] [--target 10000000] \
        [--check benchmarks/results/full/hnsw32_sq8_build.json] [--csv out.csv]

SCREEN_1M, SCREEN_2M: screening folders (python -m helpers screen) holding the same
graph families on the first 1M and 2M rows (without the second, only the first size
is reported). Per family: add seconds at each size,
the growth exponent of a vector's insertion cost fitted between them
(add_s(2n) / add_s(n) = 2 ** (1 + a)), the projected build at the target, the
memory model's RAM there, and the best recall@10 at each size (fastest setting
whose interval clears 0.95, else the highest). --check takes a build report with
an add trace (a 10M build): its first segment is projected the same way to its
end and compared with what it measured, which is the error to expect.
"""

import argparse
import glob
import json
import math
import os

from helpers.core.files import write_csv
from helpers.index import memory, planner
from helpers.search import choose

TARGET_RECALL = 0.95


def families(folder):
    """{name: saved screening record} of the graph families in a screening folder."""
    out = {}
    for path in glob.glob(os.path.join(folder, "*efC*.json")):
        rec = json.load(open(path))
        if "rows" in rec:
            name = rec["key"]["factory"] + f" efC={rec['key']['efC']}"
            out[name] = rec
    return out


def best(rec):
    """(setting, recall@10, its interval, median QPS, cleared the target) of a family
    (helpers.search.choose.best_setting: timed in full, interval clearing the target)."""
    good, top = choose.best_setting(rec["rows"], TARGET_RECALL)
    r = good or top
    return r["setting"], r["recall@10"], r["recall@10_ci"], r["qps_median"], good is not None


def exponent(add1, n1, add2, n2):
    """a in: total insertion time grows as n ** (1 + a)."""
    return math.log(add2 / add1) / math.log(n2 / n1) - 1


def check(report_path):
    """The projection error on the build in report_path (planner.trace_projection
    with the exponent fitted on its own trace, as this script fits one between sizes)."""
    r = json.load(open(report_path))
    p = planner.trace_projection(r["add_trace"])
    return {"build": f"{r['factory']} efC={r.get('ef_construction')}",
            "rows": f"{p['first_row']:,} to {p['last_row']:,}",
            "fitted on": f"{p['first_row']:,} to {p['fitted_to']:,}", "exponent": round(p["exponent"], 2),
            "projected_s": round(p["projected_s"]), "measured_s": round(p["measured_s"]),
            "projected / measured": round(p["ratio"], 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("small")
    ap.add_argument("large", nargs="?")
    ap.add_argument("--target", type=int, default=10_000_000)
    ap.add_argument("--d", type=int, default=1024, help="the screened dataset's dimension")
    ap.add_argument("--metric", default="IP", help="the screened dataset's metric (L2 or IP)")
    ap.add_argument("--check")
    ap.add_argument("--csv")
    a = ap.parse_args()
    small, large = families(a.small), families(a.large) if a.large else {}
    out = []
    for name in sorted(small):
        s = small[name]
        n1, add1 = s["key"]["rows"], s["info"]["add_s"]
        row = {"family": name, "rows_small": n1, "add_s_small": round(add1)}
        b1 = best(s)
        row.update(best_small=b1[0], recall_small=round(b1[1], 4), qps_small=round(b1[3]), clears_small=b1[4])
        if name in large:
            g = large[name]
            n2, add2 = g["key"]["rows"], g["info"]["add_s"]
            b2 = best(g)
            alpha = exponent(add1, n1, add2, n2)
            row.update(rows_large=n2, add_s_large=round(add2), exponent=round(alpha, 2),
                       projected_build_min=round(add2 * (a.target / n2) ** (1 + alpha) / 60),
                       best_large=b2[0], recall_large=round(b2[1], 4), qps_large=round(b2[3]),
                       clears_large=b2[4])
        factory = name.split(" efC=")[0]
        row["ram_at_target_gib"] = round(memory.predict(factory, a.target, a.d, a.metric)["index_ram"]
                                         / 2**30, 1)
        out.append(row)
        print(" | ".join(f"{k} {v}" for k, v in row.items()))
    if a.check:
        c = check(a.check)
        print("projection error on a measured build: " + " | ".join(f"{k} {v}" for k, v in c.items()))
    if a.csv:
        write_csv(a.csv, out)


if __name__ == "__main__":
    main()
