"""Looking at a dataset's structure from small samples (notebook 01).

All functions take float32 arrays of shape (n, d) and return numpy arrays;
nothing here reads a whole dataset.
"""

import faiss
import numpy as np

from .vectors import take_rows


def random_rows(vf, n, seed=0):
    """n distinct random rows of VectorFile `vf` as float32 (n, d)."""
    n = min(n, vf.n)
    rng = np.random.default_rng(seed)
    return take_rows(vf, np.sort(rng.choice(vf.n, size=n, replace=False)))


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
