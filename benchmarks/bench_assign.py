"""Shared coarse assignment vs each IVF index assigning on its own.

Builds three IVF indexes with the same nlist twice, on the same data, in one
run: through helpers.index.build.build_index with the shared quantizer and
assignment (trained and assigned once, helpers.index.coarse), and with
shared_coarse=False, where each trains its own quantizer and assigns every
row itself. Each path runs --repeats times from an empty folder (the first
run of each, a warm-up, is discarded); prints both wall times (median
[min-max]), the ratio of the medians with its range, and checks that each
pair of indexes returns the same results.
"""

import argparse
import os
import shutil
import tempfile

import faiss
import numpy as np

from helpers.data import dataset, synthetic
from helpers.data.vectors import read_rows
from helpers.index import build
from timing import ratio, repeat, spread


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default=None, help="where the dataset and indexes go (default: a temp dir)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    root = a.dir or tempfile.mkdtemp(prefix="bench_assign_")
    ds = dataset.generate_dataset(os.path.join(root, "data"), a.n, n_queries=200, n_train=0,
                                  params=synthetic.GeneratorParams(d=a.d), progress=False)
    factories = [f"IVF{a.nlist},SQ8", f"IVF{a.nlist},PQ{a.d // 8}x4fs", f"IVF{a.nlist},Flat"]
    times, indexes = {}, {}
    for shared in (True, False):
        out = os.path.join(root, "shared" if shared else "own")

        def build_all():
            shutil.rmtree(out, ignore_errors=True)  # from scratch: nothing reused between runs
            for f in factories:
                indexes[f, shared] = build.build_index(ds, f, os.path.join(out, f + ".faiss"),
                                                       progress=False, shared_coarse=shared)["index"]

        times[shared] = repeat(build_all, a.repeats)
    xq = read_rows(ds.queries, 0, ds.queries.n)
    same = []
    for f in factories:
        results = []
        for shared in (True, False):
            faiss.ParameterSpace().set_index_parameters(indexes[f, shared], "nprobe=16")
            results.append(indexes[f, shared].search(xq, 10)[1])
        same.append(bool(np.array_equal(*results)))
    print(f"{a.n:,} x {a.d}, nlist {a.nlist}, {a.threads} threads; {', '.join(factories)}")
    print(f"{a.repeats} repeats after a warm-up, median [min-max]")
    print(f"shared quantizer and assignment: {spread(times[True])}")
    print(f"each index on its own:           {spread(times[False])}")
    print(f"ratio (own / shared): {ratio(times[False], times[True])}; same search results: {same}")


if __name__ == "__main__":
    main()
