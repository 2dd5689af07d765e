"""The screening's verdicts as a Markdown table, from its verdicts.json.

    python benchmarks/screening_table.py benchmarks/results/full/screening/verdicts.json
"""

import argparse
import json

from helpers.search.screen import BUDGET_SPENT


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("verdicts")
    a = ap.parse_args()
    rows = json.load(open(a.verdicts))
    print("| family | verdict | best setting (1M) | recall@10 (95% interval) | QPS median | RAM at 10M (GiB) | build at 10M, projected (min) | k-means |")
    print("|---|---|---|---|---|---|---|---|")
    for v in sorted(rows, key=lambda v: (v["verdict"].startswith("not screened"),
                                         v["verdict"] != "finalist", -(v.get("qps_median") or 0))):
        if v["verdict"].startswith("not screened"):
            continue
        ci = v.get("recall_ci") or [0, 0]
        print(f"| `{v['family']}` | {v['verdict']} | `{v.get('best_setting', '')}` | "
              f"{v.get('recall', 0):.3f} ({ci[0]:.3f}-{ci[1]:.3f}) | {v.get('qps_median', 0):,.0f} | "
              f"{v.get('ram_at_target', 0) / 2**30:.1f} | {v.get('build_s_at_target', 0) / 60:,.0f} | "
              f"{v.get('kmeans', '–')}{', %.0f s' % v['kmeans_s'] if v.get('kmeans_s') else ''} |")
    budget = [v["family"] for v in rows if v["verdict"].startswith(BUDGET_SPENT)]
    if budget:
        print(f"\nNot screened (time budget): {', '.join(f'`{f}`' for f in budget)}.")
    behind = [v for v in rows if v["verdict"].startswith("not screened: on ")]
    if behind:
        print("\nNot screened (its code lost on the first space):")
        for v in behind:
            print(f"- `{v['family']}`: {v['verdict'][len('not screened: '):]}")


if __name__ == "__main__":
    main()
