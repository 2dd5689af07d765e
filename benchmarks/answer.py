"""The README's answer table, from a committed run's results.

    python benchmarks/answer.py benchmarks/results/full

Reads summary.json (build reports of notebooks 03-05) and sweep.csv (notebook
06's sweep) and prints one Markdown row per index: memory and file size,
coarse training / assignment / training / add seconds, and, at its best
setting (the fastest reaching --target recall@10, else its highest recall@10),
recall@1, recall@10, batch queries per second and single-query p50 / p99.
"""

import argparse
import csv
import json
import os


def best_rows(sweep, target):
    """{index: its fastest row reaching target recall@10, else its most accurate row}."""
    out = {}
    for name in dict.fromkeys(r["index"] for r in sweep):
        rows = [r for r in sweep if r["index"] == name]
        good = [r for r in rows if float(r["recall@10"]) >= target]
        out[name] = (max(good, key=lambda r: float(r["qps_median"])) if good
                     else max(rows, key=lambda r: float(r["recall@10"])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="a folder with summary.json and sweep.csv")
    ap.add_argument("--target", type=float, default=0.95)
    a = ap.parse_args()
    summary = json.load(open(os.path.join(a.results, "summary.json")))
    sweep = list(csv.DictReader(open(os.path.join(a.results, "sweep.csv"))))
    best = best_rows(sweep, a.target)
    gib = 2 ** 30

    def sec(v):
        return "–" if v in (None, "") else f"{float(v):,.0f}"

    print("| index | RAM (GiB) | file (GiB) | coarse k-means / assign (s) | train (s) | add (s) "
          "| setting | recall@1 | recall@10 | QPS (batch) | p50 / p99 (ms) | loaded |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for nb in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq"):
        for f, r in summary["results"].get(nb, {}).get("builds", {}).items():
            name = f + (f" efC={r['ef_construction']}" if r.get("ef_construction") else "")
            b = best.get(name)
            coarse = (f"{sec(r.get('coarse_train_s'))} / {sec(r.get('coarse_assign_s'))}"
                      if "coarse_train_s" in r else "–")
            tail = (f"`{b['setting']}` | {float(b['recall@1']):.3f} | {float(b['recall@10']):.3f} | "
                    f"{float(b['qps_median']):,.0f} | {float(b['p50_ms']):.2f} / {float(b['p99_ms']):.2f} | "
                    f"{b.get('loaded', '')}" if b else "not swept | | | | | |")
            print(f"| `{f}` | {r['predicted']['index_ram'] / gib:.2f} | {r['measured']['disk'] / gib:.2f} "
                  f"| {coarse} | {sec(r.get('train_s'))} | {sec(r.get('add_s'))} | {tail} |")


if __name__ == "__main__":
    main()
