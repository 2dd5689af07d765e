"""Add throughput: the build helper streaming from disk vs plain faiss in RAM.

Builds the same index twice in one run: through helpers.build.build_index
from the disk-resident dataset, and with plain faiss from an in-RAM array
(same training sample, same batches). Prints both add rates and their ratio;
goal >= 0.9.
"""

import argparse
import os
import tempfile
import time

import faiss

from helpers import build, dataset, memory, synthetic
from helpers.vectors import read_rows, take_rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--factory", default="IVF1024,SQ8")
    ap.add_argument("--add-batch", type=int, default=memory.ADD_BATCH)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    root = a.dir or tempfile.mkdtemp(prefix="bench_build_")
    ds = dataset.generate_dataset(os.path.join(root, "data"), a.n, n_queries=100, n_train=0,
                                  params=synthetic.GeneratorParams(d=a.d), progress=False)
    r = build.build_index(ds, a.factory, os.path.join(root, "index.faiss"), add_batch=a.add_batch,
                          progress=False, overwrite=True)
    helper_rate = r["add_vectors_per_s"]

    xb = read_rows(ds.base, 0, ds.n)  # the reference holds everything in RAM
    index = build.new_index(a.factory, ds.d, ds.metric)
    index.train(take_rows(ds.base, build.train_sample_ids(ds.n, r["n_train"])))
    t0 = time.perf_counter()
    for i in range(0, ds.n, a.add_batch):
        index.add(xb[i:i + a.add_batch])
    ram_rate = ds.n / (time.perf_counter() - t0)

    print(f"{a.factory}, n={a.n}, d={a.d}, batch={a.add_batch}, threads={a.threads}")
    print(f"{'add path':28s} {'vectors/s':>12s}")
    print(f"{'helper, streamed from disk':28s} {helper_rate:12,.0f}")
    print(f"{'plain faiss, in RAM':28s} {ram_rate:12,.0f}")
    print(f"ratio helper / in-RAM: {helper_rate / ram_rate:.2f} (goal >= 0.9)")
    print(f"build peak measured {r['measured']['build_peak'] / 2**20:.0f} MiB, "
          f"predicted {r['predicted']['build_peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
