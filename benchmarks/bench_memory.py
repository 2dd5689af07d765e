"""Memory model vs measurement for every index family, at >= 200k x 1024.

Each family is built in a fresh process (python -m helpers measure) from a
disk-resident dataset; the script prints predicted beside measured figures
with the error in %. Goals: <= 1% on index bytes (file size), <= 10% on build
peak.
"""

import argparse
import tempfile

from helpers.data import dataset, synthetic
from helpers.index import measure
from helpers.notebook import tables

FAMILIES = [
    "Flat", "IVF1024,Flat", "IVF1024,PQ64", "IVF1024,PQ128x4fs", "OPQ64_1024,IVF1024,PQ64",
    "IVF1024,SQ8", "IVF1024,SQ6", "IVF1024,SQ4", "IVF1024,SQfp16",
    "HNSW32,Flat", "HNSW32,SQ8", "HNSW32,PQ128", "IVF4096_HNSW32,SQ8",
    "IVF1024,PQ64,Refine(SQ8)", "IVF1024,PQ64,RFlat",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--families", nargs="*", default=FAMILIES)
    a = ap.parse_args()
    root = a.dir or tempfile.mkdtemp(prefix="bench_memory_")
    ds = dataset.generate_dataset(root, a.n, n_queries=100, n_train=0,
                                  params=synthetic.GeneratorParams(d=a.d), progress=True)
    results = []
    for f in a.families:
        r = measure.measure_fresh(ds.root, f, threads=a.threads)
        results.append(r)
        print(tables.checks([r]).to_string(header=False, index=False), flush=True)
    print()
    print(tables.checks(results).to_string(index=False))


if __name__ == "__main__":
    main()
