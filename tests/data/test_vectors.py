import h5py
import numpy as np
import pytest

from conftest import write_vectors
from helpers.data import vectors
from helpers.data.vectors import VectorFileError


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((257, 12)).astype(np.float32)


@pytest.mark.parametrize("ext", [".npy", ".fvecs"])
def test_float_round_trip(tmp_path, x, ext):
    path = tmp_path / f"v{ext}"
    write_vectors(path, x)
    vf = vectors.open_vectors(path)
    assert vf.shape == x.shape
    np.testing.assert_array_equal(vectors.read_rows(vf, 0, vf.n), x)
    blocks = list(vectors.iter_blocks(vf, 100))
    assert [i0 for i0, _ in blocks] == [0, 100, 200]
    np.testing.assert_array_equal(np.vstack([b for _, b in blocks]), x)
    ids = np.array([256, 3, 3, 100])
    np.testing.assert_array_equal(vectors.take_rows(vf, ids), x[ids])


def test_bvecs_and_ivecs_round_trip(tmp_path):
    b = np.random.default_rng(1).integers(0, 256, (50, 16), dtype=np.uint8)
    write_vectors(tmp_path / "b.bvecs", b)
    vf = vectors.open_vectors(tmp_path / "b.bvecs")
    assert vf.dtype == np.uint8 and vf.shape == (50, 16)
    np.testing.assert_array_equal(vectors.read_rows(vf, 5, 9, as_float32=False), b[5:9])
    assert vectors.read_rows(vf, 0, 50).dtype == np.float32
    i = np.arange(40, dtype=np.int32).reshape(4, 10)
    write_vectors(tmp_path / "gt.ivecs", i)
    vi = vectors.open_vectors(tmp_path / "gt.ivecs")
    np.testing.assert_array_equal(vectors.read_rows(vi, 0, 4, as_float32=False), i)


def test_hdf5_ann_benchmarks_layout(tmp_path, x):
    path = tmp_path / "ann.hdf5"
    with h5py.File(path, "w") as f:
        f["train"] = x
        f["test"] = x[:5]
    vf = vectors.open_vectors(path)
    assert vf.key == "train" and vf.shape == x.shape
    np.testing.assert_array_equal(vectors.read_rows(vf, 10, 20), x[10:20])
    np.testing.assert_array_equal(vectors.take_rows(vf, [7, 2, 7]), x[[7, 2, 7]])
    assert vectors.open_vectors(path, key="test").n == 5
    with pytest.raises(VectorFileError, match=r"no dataset 'neighbors'; it has \['test', 'train'\]"):
        vectors.open_vectors(path, key="neighbors")


def test_truncated_fvecs_is_reported(tmp_path, x):
    path = tmp_path / "t.fvecs"
    write_vectors(path, x)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 7)
    with pytest.raises(VectorFileError, match="not a multiple of the row size.*truncated"):
        vectors.open_vectors(path)


def test_fvecs_with_inconsistent_row_header(tmp_path, x):
    path = tmp_path / "bad.fvecs"
    write_vectors(path, x)
    raw = np.fromfile(path, dtype="<i4")
    raw[(x.shape[1] + 1) * 130] = 99  # row 130 claims dimension 99
    raw.tofile(path)
    vf = vectors.open_vectors(path)
    vectors.read_rows(vf, 0, 100)
    with pytest.raises(VectorFileError, match="row 130 says 99"):
        list(vectors.iter_blocks(vf, 100))


def test_truncated_npy_is_reported(tmp_path, x):
    path = tmp_path / "t.npy"
    np.save(path, x)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    with pytest.raises(VectorFileError, match="truncated"):
        vectors.open_vectors(path)


def test_wrong_shape_dtype_and_dimension(tmp_path, x):
    np.save(tmp_path / "flat.npy", x.ravel())
    with pytest.raises(VectorFileError, match="expected a 2-D array"):
        vectors.open_vectors(tmp_path / "flat.npy")
    np.save(tmp_path / "s.npy", x.astype("U8"))
    with pytest.raises(VectorFileError, match="unsupported dtype"):
        vectors.open_vectors(tmp_path / "s.npy")
    np.save(tmp_path / "ok.npy", x)
    with pytest.raises(VectorFileError, match="dimension 12, expected 1024"):
        vectors.open_vectors(tmp_path / "ok.npy", d=1024)
    with pytest.raises(VectorFileError, match="stored as float32, expected float16"):
        vectors.open_vectors(tmp_path / "ok.npy", dtype="float16")
    (tmp_path / "a.csv").write_text("1,2\n")
    with pytest.raises(VectorFileError, match="unknown vector format '.csv'"):
        vectors.open_vectors(tmp_path / "a.csv")


def test_nan_and_inf_are_located(tmp_path, x):
    x = x.copy()
    x[150, 3] = np.nan
    x[150, 4] = np.nan
    x[201, 0] = np.inf
    np.save(tmp_path / "n.npy", x)
    vf = vectors.open_vectors(tmp_path / "n.npy")
    with pytest.raises(VectorFileError, match=r"2 NaN and 1 inf values in 2 rows \(first rows: 150, 201\)"):
        list(vectors.iter_blocks(vf, 1000))
    # blocks before the bad one come through; the error numbers rows globally
    it = vectors.iter_blocks(vf, 100)
    assert next(it)[0] == 0
    with pytest.raises(VectorFileError, match="first rows: 150"):
        next(it)


def test_prefetch_gives_same_blocks(tmp_path, x):
    np.save(tmp_path / "p.npy", x)
    vf = vectors.open_vectors(tmp_path / "p.npy")
    a = list(vectors.iter_blocks(vf, 50, start=10, prefetch=True))
    b = list(vectors.iter_blocks(vf, 50, start=10))
    assert [i for i, _ in a] == [i for i, _ in b] == [10, 60, 110, 160, 210]
    for (_, p), (_, q) in zip(a, b):
        np.testing.assert_array_equal(p, q)
