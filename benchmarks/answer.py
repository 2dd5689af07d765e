"""The README's answer table, from a committed run's results.

    python benchmarks/answer.py benchmarks/results/full

Reads summary.json (build reports of notebooks 03-05) and sweep.csv (notebook
06's sweep) and prints one Markdown row per index: memory, build time
(coarse k-means + assignment + training + adds), and at its best setting (the
fastest by median QPS whose recall@10 interval clears --target, else its
highest recall@10): recall@10 with its 95% interval, queries per second
(median [min-max] of the timed batches) and single-query p50 / p99.
"""

import argparse
import json
import os

from helpers.search import choose


def best_rows(sweep, target):
    """{index: its fastest row timed in full whose recall interval clears target, else
    its most accurate} (helpers.search.choose.best_per_index)."""
    return {name: best or top for name, (best, top) in choose.best_per_index(sweep, target).items()}


def _recall(b):
    if not b.get("recall@10_ci"):
        return f"{b['recall@10']:.3f}"
    lo, hi = b["recall@10_ci"]
    return f"{b['recall@10']:.3f} ({lo:.3f}-{hi:.3f})"


def _speed(b):
    if not b.get("qps_min"):
        return f"{b['qps_median']:,.0f} (1 batch)"
    return f"{b['qps_median']:,.0f} [{b['qps_min']:,.0f}-{b['qps_max']:,.0f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a folder with summary.json and sweep.csv")
    ap.add_argument("--target", type=float, default=0.95)
    a = ap.parse_args()
    summary = json.load(open(os.path.join(a.results, "summary.json")))
    sweep = choose.read_sweep(os.path.join(a.results, "sweep.csv"))
    best = best_rows(sweep, a.target)
    gib = 2 ** 30

    def sec(v):
        return "–" if v in (None, "") else f"{float(v):,.0f}"

    print("| index | RAM (GiB) | build (min) | setting | recall@10 (95% interval) "
          "| QPS median [min-max] | p50 / p99 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for nb in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq"):
        for f, r in summary["results"].get(nb, {}).get("builds", {}).items():
            name = f + (f" efC={r['ef_construction']}" if r.get("ef_construction") else "")
            b = best.get(name)
            build_s = sum(float(r.get(k) or 0) for k in ("coarse_train_s", "coarse_assign_s",
                                                          "train_s", "add_s"))
            lat = (f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f}" if b and b.get("p50_ms")
                   else "–")
            tail = f"`{b['setting']}` | {_recall(b)} | {_speed(b)} | {lat}" if b else "not swept | | |"
            print(f"| `{name}` | {r['predicted']['index_ram'] / gib:.2f} | {build_s / 60:,.1f} | {tail} |")


if __name__ == "__main__":
    main()
