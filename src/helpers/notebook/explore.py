"""Looking at a dataset's structure from small samples (notebook 01).

All functions take float32 arrays of shape (n, d) and return numpy arrays;
nothing here reads a whole dataset.
"""

import faiss
import numpy as np

from ..data import synthetic
from ..data.dataset import DatasetError, load_dataset
from ..data.vectors import sample_ids, take_rows
from ..index.indexes import new_index
from ..search.evaluate import knn_recall, set_parameters


def random_rows(vf, n, seed=0):
    """n distinct random rows of VectorFile `vf` as float32 (n, d)."""
    n = min(n, vf.n)
    return take_rows(vf, sample_ids(vf.n, n, seed))


def dataset_rows(data_dir, d, n, seed=0):
    """n random rows of the dataset in data_dir when it has dimension d (what the
    build-time estimates are timed on, so every notebook times the same rows),
    else None (the planner then times synthetic vectors)."""
    try:
        ds = load_dataset(data_dir)
    except (DatasetError, OSError):
        return None
    return random_rows(ds.base, min(n, ds.n), seed) if ds.d == d else None


def bytes_of(shape, dtype):
    """Bytes an array of `shape` and `dtype` occupies (no allocation)."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def nn_and_random_distances(xq, xb, seed=0):
    """Euclidean distances from each query to its nearest row of `xb`, and
    to one random row of `xb`.

    xq: (nq, d) float32, xb: (nb, d) float32. Returns two float32 arrays of
    length nq. On data with structure the nearest neighbour is much closer
    than a random row; on uniform high-dimensional data all distances
    concentrate and the two histograms nearly overlap.
    """
    D, _ = faiss.knn(xq, xb, 1)
    nn = np.sqrt(np.maximum(D[:, 0], 0))
    rng = np.random.default_rng(seed)
    other = xb[rng.integers(0, len(xb), size=len(xq))]
    rand = np.linalg.norm(xq - other, axis=1)
    return nn.astype(np.float32), rand.astype(np.float32)


def relative_contrast(nn, rand):
    """Mean random distance over mean nearest-neighbour distance (>= 1).

    Near 1 means neighbours are barely closer than anything else: search is
    hard and approximate indexes lose recall.
    """
    return float(np.mean(rand) / np.mean(nn))


def pca_spectrum(x):
    """Fraction of variance along each principal axis, descending: (d,)."""
    xc = x - x.mean(axis=0)
    s = np.linalg.svd(xc, compute_uv=False) ** 2
    return s / s.sum()


def dims_for_variance(spectrum, fraction=0.9):
    """Number of principal axes that hold `fraction` of the variance."""
    return int(np.searchsorted(np.cumsum(spectrum), fraction) + 1)


def sensitivity(factory, setting, noises, intrinsic_dims, d=128, n=20_000, n_queries=200, k=10,
                seed=0):
    """recall@k of one family at one setting as the synthetic data changes: one
    small in-RAM dataset per (noise, intrinsic_dim), generated, indexed with
    `factory` (inner product) and searched at `setting` ({"nprobe": 8, ...}).
    Returns rows with
    noise, intrinsic_dim and recall@k: which conclusions depend on the data."""
    rows = []
    for noise in noises:
        for r in intrinsic_dims:
            p = synthetic.GeneratorParams(d=d, intrinsic_dim=min(r, d), n_clusters=256, noise=noise,
                                          seed=seed)
            xb = synthetic.draw(p, synthetic.BASE, 0, n)
            xq = synthetic.draw(p, synthetic.QUERIES, 0, n_queries)
            _, gt = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
            index = new_index(factory, d, "IP")
            index.train(xb)
            index.add(xb)
            set_parameters(index, ",".join(f"{name}={v}" for name, v in setting.items()))
            found = index.search(xq, k)[1]
            rows.append({"noise": noise, "intrinsic_dim": r,
                         f"recall@{k}": float(knn_recall(found, gt, k).mean())})
    return rows
