"""Every rule of thumb the workbook uses, in one place (as autofaiss keeps its
`optimize` module apart from building). faiss's own constants (block sizes,
k-means limits) stay in helpers.index.memory, which models them; what is here is
our choice, with the measurement or reason behind it.
"""

import math


# -- building
# Rows per batch the build helper adds. benchmarks/bench_build.py (IVF1024,SQ8, 200k x 1024,
# 2 threads) kept streamed adds at 0.95-0.99 of in-RAM throughput with 16,384-row batches
# against 0.80-0.87 with 65,536: the next batch's read competes less with faiss's add.
ADD_BATCH = 16384
ASSIGN_BLOCK = 65536          # rows per block of the coarse assignment pass (256 MiB at d = 1024)
HNSW_LINKS_RESERVE = 1.02     # HNSW links reserved up front: the expected count + 2%

# -- k-means training samples
MIN_PER_CENTROID = 39         # faiss warns below this many training points per centroid
TRAIN_PER_CENTROID = 64       # what the builds sample per centroid below LARGE_NLIST
LARGE_NLIST = 16384           # from here k-means samples MIN_PER_CENTROID per centroid
# k-means is two-level from this nlist x d (the space's dimension) up: one flat k-means
# iteration costs 39 nlist^2 d multiply-adds, ~20 min for IVF16384 at d = 1024 here
TWO_LEVEL_SIZE = 16384 * 1024

# -- nlist
MIN_NLIST, MAX_NLIST = 16, 65536

# -- searching
QUANTIZER_EF_SEARCH = 64      # HNSW coarse quantizers search at least this deep

# -- disk: a run starts only with this much free beyond its predicted writes (the
# disk is shared: other tenants write while it runs, and the model can be wrong)
DISK_MARGIN_SHARE = 0.05
DISK_MARGIN_MIN = 64 << 20


def per_centroid(nlist):
    """Training points per centroid the builds sample for an nlist-centroid k-means."""
    return TRAIN_PER_CENTROID if nlist < LARGE_NLIST else MIN_PER_CENTROID


def kmeans_sample(n, nlist):
    """Rows of n the k-means of nlist centroids trains on (per_centroid each)."""
    return min(n, per_centroid(nlist) * nlist)


def nlist_rule(n):
    """nlist for n rows: the power of two nearest 4 sqrt(n), within
    [MIN_NLIST, MAX_NLIST], halved while there are fewer than MIN_PER_CENTROID
    rows per centroid."""
    nlist = 2 ** round(math.log2(max(4 * math.sqrt(n), 1)))
    nlist = max(MIN_NLIST, min(MAX_NLIST, nlist))
    while nlist > MIN_NLIST and nlist * MIN_PER_CENTROID > n:
        nlist //= 2
    return nlist


def pq_m(d, dims_per_code):
    """Largest divisor of d that is at most d / dims_per_code (PQ needs m | d)."""
    target = max(1, d // dims_per_code)
    return max(m for m in range(1, target + 1) if d % m == 0)


def quantizer_ef_search(nprobe):
    """The search depth of an HNSW coarse quantizer asked for `nprobe` lists: faiss's
    HNSW stops after efSearch steps whatever k, so below nprobe it returns fewer
    lists than asked (helpers.search.evaluate.set_parameters)."""
    return max(QUANTIZER_EF_SEARCH, 2 * nprobe)
