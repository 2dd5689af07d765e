import json
import os
import subprocess
import textwrap

import faiss
import numpy as np
import pytest

from helpers.core.files import NotEnoughDiskError
from helpers.data import dataset, synthetic
from helpers.data.groundtruth import compute_ground_truth
from helpers.data.vectors import open_vectors, read_rows
from helpers.search.evaluate import knn_recall, recall_interval
from conftest import listing

P = synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=3)


def gen(root, n=5000, **kw):
    kw.setdefault("params", P)
    kw.setdefault("chunk_rows", 700)
    return dataset.generate_dataset(root, n, n_queries=50, n_train=1000, progress=False, **kw)


def file_bytes(ds):
    return {role: open(getattr(ds, role).path, "rb").read() for role in ("base", "queries", "train")}


def test_same_seed_gives_identical_files(tmp_path):
    a, b = gen(tmp_path / "a"), gen(tmp_path / "b")
    assert file_bytes(a) == file_bytes(b)
    assert a.fingerprint == b.fingerprint
    c = gen(tmp_path / "c", params=synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=4))
    assert c.fingerprint != a.fingerprint
    assert file_bytes(c)["base"] != file_bytes(a)["base"]


def test_chunk_regenerated_alone_matches_file(tmp_path):
    ds = gen(tmp_path)
    base = np.load(ds.base.path)
    for i in (0, 3, 7):  # 7 is the short last chunk (5000 = 7 * 700 + 100)
        x = synthetic.chunk(P, synthetic.BASE, i, 700, 5000)
        np.testing.assert_array_equal(x, base[i * 700:(i + 1) * 700])
    assert len(synthetic.chunk(P, synthetic.BASE, 7, 700, 5000)) == 100


def test_queries_are_held_out_and_train_is_a_random_sample(tmp_path):
    ds = gen(tmp_path)
    base, q, train = (read_rows(v, 0, v.n) for v in (ds.base, ds.queries, ds.train))
    D, _ = faiss.knn(q, base, 1)
    assert D.min() > 1e-6, "a query coincides with a database vector"
    ids = dataset.train_ids(ds.n, 1000, P.seed)
    np.testing.assert_array_equal(train, base[ids])
    assert ids.max() > ds.n // 2, "training sample should not be the first rows"


def test_embedding_like_defaults(tmp_path):
    ds = gen(tmp_path, params=synthetic.GeneratorParams(d=64, seed=1))
    x = read_rows(ds.base, 0, ds.n)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    m = ds.manifest
    assert (m["n"], m["d"], m["metric"], m["dtype"], m["seed"]) == (5000, 64, "IP", "float32", 1)
    assert m["generator"]["intrinsic_dim"] == 64 and len(m["files"]["base"]["sha256_chunks"]) == 8


def test_default_distribution_makes_nprobe_and_efsearch_matter():
    p = synthetic.GeneratorParams(d=128)
    xb = synthetic.draw(p, synthetic.BASE, 0, 20000)
    xq = synthetic.draw(p, synthetic.QUERIES, 0, 200)
    _, gt = faiss.knn(xq, xb, 10, metric=faiss.METRIC_INNER_PRODUCT)

    def recall(index):
        _, I = index.search(xq, 10)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])

    ivf = faiss.index_factory(128, "IVF128,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(xb)
    ivf.add(xb)
    ivf.nprobe = 1
    r_low = recall(ivf)
    ivf.nprobe = 64
    r_high = recall(ivf)
    assert r_low < 0.75 and r_high > r_low + 0.2, (r_low, r_high)
    hnsw = faiss.index_factory(128, "HNSW8", faiss.METRIC_INNER_PRODUCT)
    hnsw.add(xb)
    hnsw.hnsw.efSearch = 10
    e_low = recall(hnsw)
    hnsw.hnsw.efSearch = 256
    assert recall(hnsw) > e_low + 0.1


def test_float16_storage(tmp_path):
    ds = gen(tmp_path, dtype="float16")
    assert ds.base.dtype == np.float16 and ds.manifest["dtype"] == "float16"
    x = read_rows(ds.base, 0, 10)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, synthetic.chunk(P, synthetic.BASE, 0, 700, 5000)[:10], atol=1e-3)
    assert os.path.getsize(ds.base.path) < 5000 * 32 * 2 + 1000


def test_float16_storage_keeps_float32_recall_on_its_own_values(tmp_path):
    """The full preset's float16 base: a fingerprint of its own, and an index's
    recall@10, against ground truth computed on the stored values, equal to that of
    float32 storage within the recall's interval."""
    got = {}
    for dtype in ("float32", "float16"):
        ds = dataset.generate_dataset(tmp_path / dtype, 5000, n_queries=400, params=P, metric="IP",
                                      dtype=dtype, chunk_rows=700, progress=False)
        xq, xb = read_rows(ds.queries, 0, ds.queries.n), read_rows(ds.base, 0, ds.n)
        _, gt_I = compute_ground_truth(xq, ds.base, 10, ds.metric, progress=False)
        index = faiss.index_factory(ds.d, "IVF32,SQ8", faiss.METRIC_INNER_PRODUCT)
        index.train(xb)
        index.add(xb)
        index.nprobe = 2  # below every list: a recall with room to move
        per_query = knn_recall(index.search(xq, 10)[1], gt_I, 10)
        got[dtype] = (ds, per_query.mean(), recall_interval(per_query))
    (ds32, r32, ci32), (ds16, r16, ci16) = got["float32"], got["float16"]
    assert ds16.manifest["dtype"] == "float16" and ds16.fingerprint != ds32.fingerprint
    assert 0.3 < r32 < 0.99
    assert ci32[0] <= r16 <= ci32[1] and ci16[0] <= r32 <= ci16[1]


def test_existing_dataset_reused_and_never_silently_overwritten(tmp_path):
    ds = gen(tmp_path)
    mtime = os.path.getmtime(ds.base.path)
    assert gen(tmp_path).fingerprint == ds.fingerprint
    assert os.path.getmtime(ds.base.path) == mtime
    with pytest.raises(dataset.DatasetExistsError, match="differs in: n.*overwrite=True"):
        gen(tmp_path, n=6000)
    assert open_vectors(ds.base.path).n == 5000
    assert gen(tmp_path, n=6000, overwrite=True).n == 6000


class Interrupted(Exception):
    pass


def test_interrupted_generation_resumes(tmp_path, monkeypatch):
    calls = []
    armed = [True]
    real_chunk = synthetic.chunk

    def failing(p, stream, i, *a, **kw):
        calls.append((stream, i))
        if stream == synthetic.BASE and i == 4 and armed[0]:
            armed[0] = False
            raise Interrupted
        return real_chunk(p, stream, i, *a, **kw)

    monkeypatch.setattr(synthetic, "chunk", failing)
    with pytest.raises(Interrupted):
        gen(tmp_path / "r")
    assert not os.path.exists(tmp_path / "r" / "base.npy")
    with pytest.raises(dataset.DatasetError, match="incomplete.*resume"):
        dataset.load_dataset(tmp_path / "r")
    calls.clear()
    resumed = gen(tmp_path / "r")
    assert [i for s, i in calls if s == synthetic.BASE] == [4, 5, 6, 7]
    monkeypatch.setattr(synthetic, "chunk", real_chunk)
    assert file_bytes(resumed) == file_bytes(gen(tmp_path / "fresh"))
    assert not [f for f in os.listdir(tmp_path / "r") if "partial" in f]


def test_manifest_mismatch_is_detected(tmp_path):
    ds = gen(tmp_path)
    np.save(ds.base.path, read_rows(ds.base, 0, 4000))
    with pytest.raises(dataset.DatasetError, match=r"manifest says base is \(5000, 32\).*holds \(4000, 32\)"):
        dataset.load_dataset(tmp_path)


def test_modified_data_fails_verification(tmp_path):
    ds = gen(tmp_path)
    dataset.verify_dataset(ds)
    with open(ds.base.path, "r+b") as f:
        f.seek(ds.base.offset + 2000 * 32 * 4)
        f.write(b"\x01\x02\x03\x04")
    with pytest.raises(dataset.DatasetError, match=r"rows \[1400, 2100\) do not match"):
        dataset.verify_dataset(ds)  # the full check names the rows
    # opening it again notices the edit: in the sampled blocks, else by the full checksum
    with pytest.raises(dataset.DatasetError, match=r"base.npy( changed since|: rows .* do not match)"):
        dataset.load_dataset(tmp_path)


def test_a_copied_or_touched_dataset_is_verified_and_accepted(tmp_path):
    ds = gen(tmp_path / "a")
    subprocess.run(["cp", "-r", str(tmp_path / "a"), str(tmp_path / "b")], check=True)  # new times
    copy = dataset.load_dataset(tmp_path / "b")
    assert copy.fingerprint == ds.fingerprint
    os.utime(copy.base.path, (1, 1))  # touch
    assert dataset.load_dataset(tmp_path / "b").fingerprint == ds.fingerprint
    with open(copy.base.path, "r+b") as f:  # a changed size is refused without a full read
        f.truncate(os.path.getsize(copy.base.path) - 4)
    with pytest.raises(dataset.DatasetError):
        dataset.load_dataset(tmp_path / "b")


def test_not_enough_disk_refuses_before_writing(tmp_path):
    with pytest.raises(NotEnoughDiskError, match="needs .*TiB.*free"):
        dataset.generate_dataset(tmp_path, 10**10, params=synthetic.GeneratorParams(d=1024),
                                 progress=False)
    assert listing(tmp_path) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown metric 'cos'"):
        gen(tmp_path, metric="cos")
    with pytest.raises(ValueError, match="dtype must be one of"):
        gen(tmp_path, dtype="float64")
    with pytest.raises(ValueError, match="intrinsic_dim must be in"):
        synthetic.GeneratorParams(d=16, intrinsic_dim=32)


def test_generation_memory_is_bounded_by_chunk_not_n(tmp_path, python):
    """Peak RSS of a 160 MB generation with 4 MB chunks stays near a few chunks."""
    script = textwrap.dedent(f"""
        import json, resource
        from helpers.data import dataset, synthetic
        p = synthetic.GeneratorParams(d=256, seed=5)
        synthetic.chunk(p, synthetic.BASE, 0, 4096, 4096)   # warm up imports, BLAS
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dataset.generate_dataset({str(tmp_path)!r}, 160_000, n_queries=100, n_train=4096,
                                 params=p, chunk_rows=4096, progress=False)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_kib": after - before}}))
    """)
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew_kib"] * 1024
    chunk_bytes = 4096 * 256 * 4
    file_bytes_ = 160_000 * 256 * 4
    assert grew < 6 * chunk_bytes, f"RSS grew {grew / 2**20:.1f} MiB for {chunk_bytes / 2**20:.0f} MiB chunks"
    assert grew < file_bytes_ / 5
