"""Add throughput: the build helper streaming from disk vs plain faiss in RAM.

Builds the same index twice in one run: through helpers.index.build.build_index
from the disk-resident dataset, and with plain faiss from an in-RAM array
(same training sample, same batches). Each path runs once to warm up, then
--repeats times; prints both add rates (median [min-max]) and the ratio of
the medians with its range; goal >= 0.9.
"""

import argparse
import os
import statistics
import tempfile

import faiss

from helpers.core import heuristics
from helpers.data import dataset, synthetic, vectors
from helpers.data.vectors import read_rows, take_rows
from helpers.index import build, indexes
from timing import ratio, repeat


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--factory", default="IVF1024,SQ8")
    ap.add_argument("--add-batch", type=int, default=heuristics.ADD_BATCH)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    root = a.dir or tempfile.mkdtemp(prefix="bench_build_")
    ds = dataset.generate_dataset(os.path.join(root, "data"), a.n, n_queries=100, n_train=0,
                                  params=synthetic.GeneratorParams(d=a.d), progress=False)
    reports = []

    def helper():  # overwrite=True: a build from scratch each time, adds streamed from disk
        reports.append(build.build_index(ds, a.factory, os.path.join(root, "index.faiss"),
                                         add_batch=a.add_batch, progress=False, overwrite=True))

    for _ in range(1 + a.repeats):  # the first build is the warm-up, discarded
        helper()
    helper_add = sorted(r["add_s"] for r in reports[1:])
    r = reports[-1]
    xb = read_rows(ds.base, 0, ds.n)  # the reference holds everything in RAM
    xt = take_rows(ds.base, vectors.train_sample_ids(ds.n, r["n_train"]))
    trained = indexes.new_index(a.factory, ds.d, ds.metric)
    trained.train(xt)

    def in_ram():
        index = faiss.clone_index(trained)
        for i in range(0, ds.n, a.add_batch):
            index.add(xb[i:i + a.add_batch])

    ram_t = repeat(in_ram, a.repeats)
    helper_t = (statistics.median(helper_add), helper_add[0], helper_add[-1])
    print(f"{a.factory}, n={a.n}, d={a.d}, batch={a.add_batch}, threads={a.threads}, "
          f"{a.repeats} repeats after a warm-up")
    print(f"{'add path':28s} {'vectors/s median [min-max]':>32s}")
    for label, t in (("helper, streamed from disk", helper_t), ("plain faiss, in RAM", ram_t)):
        print(f"{label:28s} {ds.n / t[0]:12,.0f} [{ds.n / t[2]:,.0f}-{ds.n / t[1]:,.0f}]")
    print(f"ratio helper / in-RAM: {ratio(ram_t, helper_t)} (goal >= 0.9)")
    print(f"build peak measured {r['measured']['build_peak'] / 2**20:.0f} MiB, "
          f"predicted {r['predicted']['build_peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
