"""Two runs' timing-independent results side by side: what a change of code must not move.

    python benchmarks/compare_runs.py RUN_A RUN_B

RUN_A and RUN_B are run folders (runs/<time>-<preset>/). Every value of each
summary.json that does not depend on the machine's speed or on the folder it was
written to is compared: dataset fingerprints, recalls, ids, sizes, choices. Timings,
rates, memory measurements, paths and anything chosen by measured speed are left
out; the keys left out are listed. Exit status 1 when anything differs."""

import json
import math
import os
import re
import sys

# a key matching this depends on speed, memory pressure or where the run lived
TIMED = re.compile(r"(^|_)(s|ms|seconds|time|times|qps|rate|rates|per_s|vectors_per_s|rss|peak|"
                   r"measured|elapsed|eta|when|dir|path|html|csv|json|started|finished|host|pid|"
                   r"trace|add_trace|train_trace|summary|p50|p99|latency|speed|load|loads|build_times|estimates|coarse_costs|budget|"
                   r"available|free|recommendation|recommended|finalists|pareto|served|explorer|"
                   r"high_recall|high_recommendation|sensitivity|screening|checks|plan|plans)(_|$)",
                   re.I)


def flatten(value, prefix=""):
    """{dotted key: leaf value} for a JSON value."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def timing_free(summary):
    kept, skipped = {}, set()
    for key, value in flatten(summary["results"]).items():
        parts = re.split(r"[.\[\]]+", key)
        if any(TIMED.search(p) for p in parts):
            skipped.add(re.sub(r"\[\d+\]", "[]", key).split(".")[1] if "." in key else key)
        else:
            kept[key] = value
    return kept, skipped


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def main(argv):
    a, b = (json.load(open(os.path.join(r, "summary.json"))) for r in argv)
    (ka, skipped), (kb, _) = timing_free(a), timing_free(b)
    diffs = [(k, ka.get(k), kb.get(k)) for k in sorted(set(ka) | set(kb)) if not same(ka.get(k), kb.get(k))]
    for k, x, y in diffs:
        print(f"differs  {k}: {x!r} -> {y!r}")
    print(f"{len(ka)} timing-independent values compared, {len(diffs)} differ; "
          f"left out as timing- or machine-dependent: {', '.join(sorted(skipped))}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
