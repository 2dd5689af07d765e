"""helpers.data.ingest: users' vectors in every supported format become the same dataset."""

import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.data import dataset, ingest
from conftest import held_out_rows, write_vectors
from helpers.data.vectors import read_rows

N, D = 1200, 16


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(5)
    return (rng.standard_normal((N, D)) * rng.uniform(0.5, 3, (N, 1))).astype(np.float32)


def write_parquet(path, x, row_group_size=300, fixed=False, column="embedding"):
    t = pa.list_(pa.float32(), x.shape[1]) if fixed else pa.list_(pa.float32())
    arr = pa.array(list(x), type=t)
    pq.write_table(pa.table({"id": np.arange(len(x)), column: arr}), path, row_group_size=row_group_size)


def write_format(kind, folder, x):
    """x written as `kind`; returns the path to import."""
    os.makedirs(folder, exist_ok=True)
    if kind in ("npy", "fvecs"):
        path = os.path.join(folder, f"v.{kind}")
        write_vectors(path, x)
    elif kind == "npy-float64":
        path = os.path.join(folder, "v.npy")
        np.save(path, x.astype(np.float64))
    elif kind == "npy-float16":
        path = os.path.join(folder, "v.npy")
        np.save(path, x.astype(np.float16))
    elif kind == "npy-shards":
        path = os.path.join(folder, "shards")
        os.makedirs(path)
        for i, part in enumerate(np.array_split(x, 3)):
            np.save(os.path.join(path, f"part-{i:03d}.npy"), part)
    elif kind == "parquet":
        path = os.path.join(folder, "pq")
        os.makedirs(path)
        for i, part in enumerate(np.array_split(x, 2)):
            write_parquet(os.path.join(path, f"{i}.parquet"), part, fixed=i == 1)
    elif kind == "hdf5":
        path = os.path.join(folder, "v.hdf5")
        with h5py.File(path, "w") as f:
            f["train"] = x
    return path


@pytest.mark.parametrize("kind", ["npy", "fvecs", "npy-float64", "npy-float16", "npy-shards",
                                  "parquet", "hdf5"])
def test_every_format_imports_the_same_rows_with_held_out_queries_absent(kind, vectors, tmp_path):
    x = vectors.astype(np.float16).astype(np.float32) if kind == "npy-float16" else vectors
    path = write_format(kind, tmp_path / "src", x)
    if kind == "hdf5":  # ann-benchmarks files bring their own queries; here: hold out instead
        ds = ingest.import_vectors(tmp_path / "ds", path, path, "l2", queries_key="train",
                                   progress=False)
        assert ds.queries.n == N
        return
    ds = ingest.import_vectors(tmp_path / "ds", path, None, "l2", n_queries=100, chunk_rows=256,
                               progress=False)
    held = held_out_rows(ds)
    assert len(held) == 100 and ds.queries.n == 100 and ds.n == N - 100
    keep = np.setdiff1d(np.arange(N), held)
    np.testing.assert_array_equal(read_rows(ds.base, 0, ds.n), x[keep])
    np.testing.assert_array_equal(read_rows(ds.queries, 0, 100), x[held])
    # no query is a base row: none of its vectors appears in the base
    base = {r.tobytes() for r in read_rows(ds.base, 0, ds.n)}
    assert not any(q.tobytes() in base for q in read_rows(ds.queries, 0, 100))
    dataset.verify_dataset(ds)
    again = ingest.import_vectors(tmp_path / "ds", path, None, "l2", n_queries=100,
                                  chunk_rows=256, progress=False)
    assert again.reused and again.fingerprint == ds.fingerprint


def test_cosine_normalises_and_ip_keeps_norms_and_says_why(vectors, tmp_path):
    path = write_format("npy", tmp_path, vectors)
    cos = ingest.import_vectors(tmp_path / "cos", path, metric="COSINE", n_queries=50, progress=False)
    ip = ingest.import_vectors(tmp_path / "ip", path, metric="ip", n_queries=50, progress=False)
    assert cos.metric == ip.metric == "IP"
    xc, xi = read_rows(cos.base, 0, cos.n), read_rows(ip.base, 0, ip.n)
    np.testing.assert_allclose(np.linalg.norm(xc, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(xc, xi / np.linalg.norm(xi, axis=1, keepdims=True), rtol=1e-6)
    assert "normalised" in ingest.metric_note(cos)
    assert "differ from cosine" in ingest.metric_note(ip)
    assert ip.manifest["norms"]["max"] > 2 * ip.manifest["norms"]["min"]


def test_subset_for_exploring_a_large_file(vectors, tmp_path):
    path = write_format("npy", tmp_path, vectors)
    ds = ingest.import_vectors(tmp_path / "ds", path, metric="l2", n_queries=50, max_rows=500,
                               progress=False)
    held = set(held_out_rows(ds).tolist())
    base = read_rows(ds.base, 0, ds.n)
    rows = [int(np.flatnonzero((vectors == r).all(axis=1))[0]) for r in base]
    assert ds.n == 500 and rows == sorted(rows) and not held & set(rows)
    assert ds.manifest["n_source"] == N


def bad(tmp_path, x, name="v.npy"):
    path = tmp_path / name
    np.save(path, x)
    return path


@pytest.mark.parametrize("case,match", [
    ("nan", r"3 rows with NaN or inf values \(first rows: 5, 700, 1100\)"),
    ("zero-cosine", r"2 all-zero vectors.*first rows: 8, 900"),
    ("empty", "holds no vectors"),
    ("metric", "unknown metric 'hamming': use l2, ip or cosine"),
    ("queries-d", "queries in .* have d=8 but the base vectors .* have d=16"),
    ("truncated", "truncated"),
    ("too-few", "cannot give 1,000 held-out queries"),
    ("shards-d", "shards have different dimensions"),
    ("parquet-column", r"no column 'embedding'; it has \['id', 'vec'\].*--column"),
    ("parquet-type", "is string, not a list of numbers"),
    ("parquet-mixed", r"mixed dimensions: 1 rows .* row 350 has 15 values"),
])
def test_bad_input_is_refused_with_the_file_and_nothing_is_committed(case, match, vectors, tmp_path):
    x = vectors.copy()
    kw = {"metric": "l2", "n_queries": 50}
    if case == "nan":
        x[[5, 700, 1100], 3] = [np.nan, np.inf, np.nan]
        path = bad(tmp_path, x)
    elif case == "zero-cosine":
        x[[8, 900]] = 0
        path, kw["metric"] = bad(tmp_path, x), "cosine"
    elif case == "empty":
        path = bad(tmp_path, x[:0])
    elif case == "metric":
        path, kw["metric"] = bad(tmp_path, x), "hamming"
    elif case == "queries-d":
        path, kw["queries"] = bad(tmp_path, x), bad(tmp_path, x[:10, :8], "q.npy")
    elif case == "truncated":
        path = bad(tmp_path, x)
        os.truncate(path, os.path.getsize(path) - 100)
    elif case == "too-few":
        path, kw["n_queries"] = bad(tmp_path, x[:1000]), 1000
    elif case == "shards-d":
        path = tmp_path / "shards"
        path.mkdir()
        np.save(path / "a.npy", x[:10])
        np.save(path / "b.npy", x[:10, :8])
    elif case == "parquet-column":
        path = tmp_path / "t.parquet"
        write_parquet(path, x, column="vec")
    elif case == "parquet-type":
        path = tmp_path / "t.parquet"
        pq.write_table(pa.table({"embedding": [str(i) for i in range(10)]}), path)
    elif case == "parquet-mixed":
        path = tmp_path / "t.parquet"
        rows = list(x)
        rows[350] = rows[350][:15]
        pq.write_table(pa.table({"embedding": pa.array(rows, type=pa.list_(pa.float32()))}), path,
                       row_group_size=300)
    root = tmp_path / "ds"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        ingest.import_vectors(root, path, progress=False, **kw)
    assert not (root / "manifest.json").exists()
    assert not (root / "base.npy").exists()


def test_float16_and_fvecs_files_are_used_in_place_and_read_as_float32(vectors, tmp_path):
    half = vectors.astype(np.float16)
    np.save(tmp_path / "b16.npy", half)
    write_vectors(tmp_path / "b.fvecs", vectors)
    write_vectors(tmp_path / "q.fvecs", vectors[:40] + 0.01)
    for name, stored in (("b16.npy", half), ("b.fvecs", vectors)):
        ds = ingest.import_vectors(tmp_path / name.replace(".", "_"), tmp_path / name,
                                   tmp_path / "q.fvecs", "l2", progress=False)
        assert ds.manifest["in_place"] and ds.base.path == str(tmp_path / name)
        assert ds.manifest["files"]["base"]["dtype"] == stored.dtype.name
        assert not (tmp_path / name.replace(".", "_") / "base.npy").exists()  # no copy
        got = read_rows(ds.base, 0, ds.n)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, stored.astype(np.float32))
        dataset.verify_dataset(ds)
    # held-out queries must leave the base: that needs a copy, and float16 becomes float32
    held = ingest.import_vectors(tmp_path / "held", tmp_path / "b16.npy", None, "l2",
                                 n_queries=40, progress=False)
    assert "in_place" not in held.manifest and held.n == N - 40


def test_import_killed_mid_write_resumes_to_the_same_dataset(vectors, tmp_path):
    path = write_format("npy", tmp_path, vectors)
    code = (f"from helpers.data import ingest; ingest.import_vectors({str(tmp_path / 'ds')!r}, "
            f"{str(path)!r}, metric='l2', n_queries=50, chunk_rows=128, progress=False)")
    env = dict(os.environ, FAISS_WORKBOOK_CRASH_AFTER="6")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL
    assert not (tmp_path / "ds" / "manifest.json").exists()
    ds = ingest.import_vectors(tmp_path / "ds", path, metric="l2", n_queries=50, chunk_rows=128,
                               progress=False)
    fresh = ingest.import_vectors(tmp_path / "fresh", path, metric="l2", n_queries=50,
                                  chunk_rows=128, progress=False)
    assert ds.fingerprint == fresh.fingerprint
    dataset.verify_dataset(ds)


def test_float32_files_with_their_own_queries_are_used_in_place_with_the_copys_identity(vectors, tmp_path):
    base = write_format("npy", tmp_path / "a", vectors)
    queries = tmp_path / "q.fvecs"
    write_vectors(queries, vectors[:40] + 0.01)
    ds = ingest.import_vectors(tmp_path / "ds", base, queries, "l2", progress=False)
    assert ds.manifest["in_place"] and ds.base.path == os.path.abspath(base)
    assert not (tmp_path / "ds" / "base.npy").exists()  # no 40 GB copy at 10M x 1024
    np.testing.assert_array_equal(read_rows(ds.base, 0, ds.n), vectors)
    # the same rows copied (float64 forces the copy) give the same dataset identity
    np.save(tmp_path / "b64.npy", vectors.astype(np.float64))
    copied = ingest.import_vectors(tmp_path / "copy", tmp_path / "b64.npy", queries, "l2", progress=False)
    assert "in_place" not in copied.manifest and copied.fingerprint == ds.fingerprint
    assert ingest.import_vectors(tmp_path / "ds", base, queries, "l2", progress=False).reused
    # a base alone, as helpers.index.build --config imports it: in place too
    only = ingest.import_vectors(tmp_path / "only", base, None, "ip", n_queries=0, progress=False)
    assert only.manifest["in_place"] and only.queries is None and only.n == N
    x = vectors.copy()
    x[[3, 9]] = np.nan
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(ValueError, match=r"NaN or inf values \(first rows: 3, 9\)"):
        ingest.import_vectors(tmp_path / "bad", tmp_path / "bad.npy", queries, "l2", progress=False)
    assert not (tmp_path / "bad" / "manifest.json").exists()
