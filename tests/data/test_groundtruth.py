import os

import faiss
import numpy as np
import pytest

from helpers.data import dataset, groundtruth, synthetic
from helpers.data.vectors import read_rows


@pytest.mark.parametrize("metric", ["L2", "IP"])
@pytest.mark.parametrize("block_rows", [7, 1000, 100_000])
def test_streamed_equals_faiss_knn(small_ds, metric, block_rows):
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    xb = read_rows(small_ds.base, 0, small_ds.n)
    D, I = groundtruth.compute_ground_truth(xq, small_ds.base, 20, metric,
                                            block_rows=block_rows, progress=False)
    D0, I0 = faiss.knn(xq, xb, 20, metric=dataset.faiss_metric(metric))
    assert I.dtype == np.int64 and D.dtype == np.float32 and I.shape == (100, 20)
    np.testing.assert_allclose(D, D0, rtol=1e-5, atol=1e-5)
    # distances agree everywhere; ids may differ only where distances tie
    differ = I != I0
    assert differ.mean() < 0.01
    assert all(np.isclose(D[q, j], D[q, j - 1]) or np.isclose(D[q, j], D[q, min(j + 1, 19)])
               for q, j in zip(*np.nonzero(differ)))
    if metric == "L2":
        assert (np.diff(D, axis=1) >= 0).all()
    else:
        assert (np.diff(D, axis=1) <= 0).all()


def test_k_larger_than_n(small_ds):
    xq = read_rows(small_ds.queries, 0, 3)
    with pytest.raises(ValueError, match="k=6001 is out of range: the database has 6000"):
        groundtruth.compute_ground_truth(xq, small_ds.base, 6001, progress=False)
    with pytest.raises(ValueError, match="out of range"):
        groundtruth.ground_truth(small_ds, 6001, progress=False)


def test_wrong_query_dimension(small_ds):
    with pytest.raises(ValueError, match="queries have dimension 8 but the database has 64"):
        groundtruth.compute_ground_truth(np.zeros((2, 8), np.float32), small_ds.base, 5, progress=False)


def test_cached_and_tied_to_manifest(tmp_path):
    p = synthetic.GeneratorParams(d=16, intrinsic_dim=4, n_clusters=8)
    ds = dataset.generate_dataset(tmp_path / "a", 2000, n_queries=20, params=p, progress=False)
    D, I = groundtruth.ground_truth(ds, 10, progress=False)
    path = groundtruth.gt_path(ds, 10)
    mtime = os.path.getmtime(path)
    D2, I2 = groundtruth.ground_truth(ds, 5, progress=False)  # served from the k=10 file
    np.testing.assert_array_equal(I2, I[:, :5])
    assert os.path.getmtime(path) == mtime and not os.path.exists(groundtruth.gt_path(ds, 5))

    other = dataset.generate_dataset(tmp_path / "b", 2000, n_queries=20, progress=False,
                                     params=synthetic.GeneratorParams(d=16, intrinsic_dim=4, n_clusters=8, seed=9))
    with pytest.raises(groundtruth.StaleGroundTruthError, match="computed on other data"):
        groundtruth.load_ground_truth(path, other)
    # a stale file in the dataset's own folder is detected and replaced, not used
    os.replace(path, groundtruth.gt_path(other, 10))
    with pytest.warns(UserWarning, match="other data"):
        D3, I3 = groundtruth.ground_truth(other, 10, progress=False)
    xq = read_rows(other.queries, 0, 20)
    _, I_exact = faiss.knn(xq, read_rows(other.base, 0, 2000), 10, metric=faiss.METRIC_INNER_PRODUCT)
    assert (I3 == I_exact).mean() > 0.99


class Interrupted(Exception):
    pass


def test_checkpoint_resume(small_ds, monkeypatch, tmp_path):
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    full = groundtruth.compute_ground_truth(xq, small_ds.base, 10, "L2", block_rows=500, progress=False)
    real_knn = faiss.knn
    calls = []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 7:
            raise Interrupted
        return real_knn(*a, **kw)

    monkeypatch.setattr(faiss, "knn", flaky)
    ckpt = tmp_path / "gt.checkpoint"
    with pytest.raises(Interrupted):
        groundtruth.compute_ground_truth(xq, small_ds.base, 10, "L2", block_rows=500,
                                         checkpoint=ckpt, checkpoint_seconds=0, progress=False)
    with np.load(ckpt) as st:
        assert int(st["rows_done"]) == 3000
    calls.clear()
    D, I = groundtruth.compute_ground_truth(xq, small_ds.base, 10, "L2", block_rows=500,
                                            checkpoint=ckpt, checkpoint_seconds=0, progress=False)
    assert len(calls) == 6  # only blocks 3000..6000 were searched again
    np.testing.assert_array_equal(I, full[1])
    np.testing.assert_array_equal(D, full[0])
    assert not ckpt.exists()
