"""Generation throughput and streamed ground truth vs faiss.knn in RAM.

Prints measured figures side by side; goal: streamed ground truth at >= 0.8
of the in-RAM throughput on the same data.
"""

import argparse
import tempfile
import time

import faiss

from helpers import dataset, groundtruth, synthetic
from helpers.vectors import read_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="0: faiss default")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
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
    t0 = time.perf_counter()
    D, I = groundtruth.compute_ground_truth(xq, ds.base, a.k, ds.metric, progress=False)
    stream_s = time.perf_counter() - t0

    xb = read_rows(ds.base, 0, ds.n)  # the in-RAM reference needs the whole base
    t0 = time.perf_counter()
    D0, I0 = faiss.knn(xq, xb, a.k, metric=dataset.faiss_metric(ds.metric))
    ram_s = time.perf_counter() - t0
    agree = float((I == I0).mean())

    def qps(s):
        return a.nq * a.n / s / 1e6

    print(f"threads: {faiss.omp_get_max_threads()}, nq={a.nq}, k={a.k}, n={a.n}, d={a.d}")
    print(f"{'ground truth':24s} {'seconds':>8s} {'M dist/s':>10s}")
    print(f"{'streamed from disk':24s} {stream_s:8.2f} {qps(stream_s):10.1f}")
    print(f"{'faiss.knn in RAM':24s} {ram_s:8.2f} {qps(ram_s):10.1f}")
    print(f"ratio streamed / in-RAM throughput: {ram_s / stream_s:.2f} (goal >= 0.8); "
          f"ids identical: {agree:.4f}")


if __name__ == "__main__":
    main()
