"""Embedding-like synthetic vectors, generated chunk by chunk.

Real embeddings are not uniform in [0, 1)^d: they sit near a low-dimensional
manifold, in clusters of very different sizes, with some noise spread over
all dimensions. This generator draws that:

    c ~ Zipf-ish over n_clusters            (cluster sizes differ)
    z = centre[c] + spread[c] * N(0, I_r)   (r = intrinsic_dim latent)
    x = z @ basis + noise * N(0, I_d)       (basis: r x d, orthonormal rows)
    x = x / |x|  if normalize               (cosine / inner-product search)

Every chunk has its own random stream keyed by (seed, stream, chunk index),
so chunk i can be regenerated alone and the same seed gives byte-identical
files whatever the machine did before.
"""

import dataclasses
import functools

import numpy as np


BASE, QUERIES, TRAIN = 1, 2, 3  # random streams


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
    """What the synthetic distribution looks like.

    d: output dimension; intrinsic_dim: latent dimension r (<= d; default
    min(64, d));
    n_clusters: latent clusters; cluster_std: within-cluster spread relative
    to the spread of the centres; noise: ratio of the noise norm to the
    signal norm; normalize: L2-normalise rows; seed: master seed.
    """
    d: int = 1024
    intrinsic_dim: int = None
    n_clusters: int = 1024
    cluster_std: float = 1.2
    noise: float = 0.6
    normalize: bool = True
    seed: int = 1234

    def __post_init__(self):
        if self.d < 1:
            raise ValueError(f"d must be >= 1, got {self.d}")
        if self.intrinsic_dim is None:
            object.__setattr__(self, "intrinsic_dim", min(64, self.d))
        if not 1 <= self.intrinsic_dim <= self.d:
            raise ValueError(
                f"intrinsic_dim must be in [1, d={self.d}], got {self.intrinsic_dim}"
            )
        if self.n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters}")
        if self.cluster_std < 0 or self.noise < 0:
            raise ValueError("cluster_std and noise must be >= 0")


@functools.lru_cache(maxsize=4)
def _model(p):
    """The fixed parts of the distribution: basis (r, d), centres, spreads, weights."""
    rng = np.random.default_rng([p.seed, 0])
    r = p.intrinsic_dim
    q, _ = np.linalg.qr(rng.standard_normal((p.d, r)))
    basis = np.ascontiguousarray(q.T, dtype=np.float32)
    centres = rng.standard_normal((p.n_clusters, r)).astype(np.float32)
    spreads = (p.cluster_std * rng.uniform(0.5, 1.5, p.n_clusters)).astype(np.float32)
    weights = 1.0 / np.sqrt(np.arange(1, p.n_clusters + 1))
    weights = rng.permutation(weights / weights.sum())
    # per-dimension noise std giving |noise| / |signal| == p.noise on average
    signal_energy = r * (1.0 + float(np.mean(spreads**2)))
    noise_std = p.noise * np.sqrt(signal_energy / p.d)
    return basis, centres, spreads, weights, np.float32(noise_std)


def draw(p, stream, chunk_index, rows):
    """Rows of chunk `chunk_index` of random stream `stream`: float32 (rows, d)."""
    basis, centres, spreads, weights, noise_std = _model(p)
    rng = np.random.default_rng([p.seed, stream, chunk_index])
    c = rng.choice(p.n_clusters, size=rows, p=weights)
    z = rng.standard_normal((rows, p.intrinsic_dim), dtype=np.float32)
    z *= spreads[c, None]
    z += centres[c]
    x = z @ basis
    x += noise_std * rng.standard_normal((rows, p.d), dtype=np.float32)
    if p.normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def chunk(p, stream, chunk_index, chunk_rows, n, dtype=np.float32):
    """Chunk `chunk_index` of an n-row file written in chunks of `chunk_rows`.

    Returns the exact values stored there, in the storage dtype.
    """
    i0 = chunk_index * chunk_rows
    if not 0 <= i0 < n:
        raise IndexError(f"chunk {chunk_index} is beyond {n} rows")
    rows = min(chunk_rows, n - i0)
    return draw(p, stream, chunk_index, rows).astype(dtype, copy=False)
