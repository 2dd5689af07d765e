"""Generation throughput and streamed ground truth vs faiss.knn in RAM.

Prints measured figures side by side; goal: streamed ground truth at >= 0.8
of the in-RAM throughput on the same data. Each ground-truth path is run once
to warm up, then --repeats times: median and [min-max], and the ratio of the
medians with its range.
"""

import argparse
import statistics
import tempfile
import time

import faiss

from helpers.data import dataset, groundtruth, synthetic
from helpers.data.vectors import read_rows
from timing import ratio, repeat, spread


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="0: faiss default")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--at-scale", metavar="DATA_DIR",
                    help="also stream the ground truth of this (larger, same d) dataset's queries "
                         "from disk, --scale-repeats times, and compare its rows/s with the in-RAM rate")
    ap.add_argument("--scale-repeats", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        faiss.omp_set_num_threads(a.threads)
    root = a.dir or tempfile.mkdtemp(prefix="bench_data_")
    params = synthetic.GeneratorParams(d=a.d)

    t0 = time.perf_counter()
    ds = dataset.generate_dataset(root, a.n, n_queries=a.nq, n_train=0, params=params,
                                  progress=False, overwrite=True)
    gen_s = time.perf_counter() - t0
    mb = (ds.base.nbytes + ds.queries.nbytes) / 1e6
    print(f"generation: {a.n + a.nq} x {a.d} in {gen_s:.1f} s = "
          f"{(a.n + a.nq) / gen_s:,.0f} vectors/s, {mb / gen_s:,.0f} MB/s")

    xq = read_rows(ds.queries, 0, ds.queries.n)
    out = {}

    def streamed():
        out["streamed"] = groundtruth.compute_ground_truth(xq, ds.base, a.k, ds.metric, progress=False)

    stream_t = repeat(streamed, a.repeats)
    xb = read_rows(ds.base, 0, ds.n)  # the in-RAM reference needs the whole base

    def in_ram():
        out["ram"] = faiss.knn(xq, xb, a.k, metric=dataset.faiss_metric(ds.metric))

    ram_t = repeat(in_ram, a.repeats)
    agree = float((out["streamed"][1] == out["ram"][1]).mean())
    print(f"threads: {faiss.omp_get_max_threads()}, nq={a.nq}, k={a.k}, n={a.n}, d={a.d}, "
          f"{a.repeats} repeats after a warm-up")
    print(f"{'ground truth':24s} {'median [min-max]':>24s}")
    print(f"{'streamed from disk':24s} {spread(stream_t):>24s}")
    print(f"{'faiss.knn in RAM':24s} {spread(ram_t):>24s}")
    print(f"ratio streamed / in-RAM throughput: {ratio(ram_t, stream_t)} (goal >= 0.8); "
          f"ids identical: {agree:.4f}")
    if a.at_scale:
        at_scale(a, ram_t)


def at_scale(a, ram_t):
    """The streamed ground truth of a dataset too large for RAM, against the in-RAM rate
    (rows/s) measured above on the same d, nq and k: no warm-up (a file larger than
    the page cache is read from disk every time)."""
    big = dataset.load_dataset(a.at_scale)
    if big.d != a.d:
        raise SystemExit(f"--at-scale {a.at_scale} has d={big.d}; run with --d {big.d}")
    xq = read_rows(big.queries, 0, min(a.nq, big.queries.n))
    times = [time.perf_counter()]
    for _ in range(a.scale_repeats):
        groundtruth.compute_ground_truth(xq, big.base, a.k, big.metric, progress=False)
        times.append(time.perf_counter())
    secs = [t1 - t0 for t0, t1 in zip(times, times[1:])]
    rate = [big.n / s for s in secs]
    secs = (statistics.median(secs), min(secs), max(secs))
    ram_rate = [a.n / s for s in ram_t]
    print(f"streamed at {big.n:,} rows, {len(xq)} queries: {spread(secs)}, "
          f"{min(rate):,.0f}-{max(rate):,.0f} rows/s against {min(ram_rate):,.0f}-{max(ram_rate):,.0f} "
          f"in RAM at {a.n:,}: ratio {min(rate) / max(ram_rate):.2f}-{max(rate) / min(ram_rate):.2f}")


if __name__ == "__main__":
    main()
