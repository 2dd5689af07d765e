"""Crash tests in the spirit of SQLite's: real SIGKILLs, then a resumed run that must
equal an uninterrupted one.

Deterministic: helpers.core.files.commit_point() counts the renames that make new
state visible; with FAISS_WORKBOOK_CRASH_AFTER=N a subprocess kills itself
with SIGKILL right after its N-th one. Each job is killed after commit 1, then
(from a fresh start) after commit 2, and so on until a run completes, and
every killed state is resumed to completion and compared. Random: the same
job killed from outside at random instants, resumed again and again.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest

from helpers.core import files, index_files, keyed_files
from helpers.data import dataset, groundtruth, ingest, synthetic
from helpers.data.vectors import read_rows
from helpers.index import build, coarse, indexes

BUILD = """
import sys
from helpers.data import dataset
from helpers.index import build
ds = dataset.load_dataset(sys.argv[1])
build.build_index(ds, sys.argv[3], sys.argv[2], n_train=2000, add_batch=int(sys.argv[4]),
                  checkpoint_seconds=0, progress=False, threads=1)
"""

GENERATE = """
import sys
from helpers.data import dataset, synthetic
params = synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=3)
dataset.generate_dataset(sys.argv[1], 3000, n_queries=40, n_train=0, params=params,
                         chunk_rows=500, progress=False)
"""

SCREEN = """
import sys
from helpers.data import dataset
from helpers.search import screen
ds = dataset.load_dataset(sys.argv[1])
# one code: which families are screened cannot depend on a timing
search = screen.search_of(["IVF16", "IVF32"], ["PQ8x4fs"], "Refine(SQ8)", [["HNSW8,SQ8", 16]],
                          [4], [4], [16])
screen.screen(ds, 3000, sys.argv[2], search, target_recall=0.5, repeats=1, single_queries=5,
              progress=False)
"""

GROUND_TRUTH = """
import sys
from helpers.data import dataset, groundtruth
ds = dataset.load_dataset(sys.argv[1])
groundtruth.ground_truth(ds, k=10, block_rows=400, progress=False)
"""


def run(script, *args, crash_after=None):
    """Run `script` in a fresh interpreter; its return code (-9 when killed)."""
    env = dict(os.environ)
    env.pop(files.CRASH_ENV, None)
    if crash_after is not None:
        env[files.CRASH_ENV] = str(crash_after)
    p = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env,
                       capture_output=True, text=True)
    assert p.returncode in (0, -signal.SIGKILL), p.stderr[-2000:]
    return p.returncode


def every_commit_point(script, make_args, check, limit=60):
    """Kill `script` after its 1st, 2nd, ... commit (each from a fresh start), resume
    each killed state to completion and `check` it. Returns how many were tried."""
    for n in range(1, limit):
        args = make_args(n)
        if run(script, *args, crash_after=n) == 0:
            return n - 1  # n is past the last commit point
        assert run(script, *args) == 0
        check(*args)
    raise AssertionError(f"more than {limit} commit points")


def search(index_path, xq, setting):
    index = index_files.load_index(str(index_path))
    faiss.ParameterSpace().set_index_parameters(index, setting)
    return index.search(xq, 10)


@pytest.fixture(scope="module")
def crash_ds(tmp_path_factory):
    params = synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=5)
    return dataset.generate_dataset(tmp_path_factory.mktemp("crash_ds"), 3000, n_queries=40,
                                    n_train=0, params=params, chunk_rows=1000, progress=False)


@pytest.mark.parametrize("factory,setting", [
    ("IVF16,PQ8x4fs,Refine(SQ8)", "nprobe=4,k_factor_rf=4"),  # shared coarse, fast-scan conversion
    ("HNSW8,SQ8", "efSearch=32"),
])
def test_build_killed_at_every_commit_point_resumes_to_the_same_index(crash_ds, tmp_path, factory, setting):
    ref = tmp_path / "ref" / "i.faiss"
    assert run(BUILD, crash_ds.root, ref, factory, 600) == 0
    xq = read_rows(crash_ds.queries, 0, crash_ds.queries.n)
    want = search(ref, xq, setting)

    def args(n):
        return crash_ds.root, tmp_path / f"k{n}" / "i.faiss", factory, 600

    def check(root, path, factory, batch):
        got = search(path, xq, setting)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
        assert build.build_index(crash_ds, factory, path, n_train=2000, add_batch=600,
                                 progress=False)["reused"]
        leftovers = [f for f in os.listdir(os.path.dirname(path)) if "checkpoint" in f or "partial" in f]
        assert leftovers == []
        shutil.rmtree(os.path.dirname(path))

    tried = every_commit_point(BUILD, args, check)
    assert tried >= 8  # trained, 4 checkpoints, index, report, ... each was a kill point


def test_build_killed_at_random_moments_never_duplicates_rows(tmp_path):
    # the reported case: add_batch=250, a checkpoint after every batch, killed at random
    params = synthetic.GeneratorParams(d=64, intrinsic_dim=8, n_clusters=16, seed=9)
    ds = dataset.generate_dataset(tmp_path / "ds", 60_000, n_queries=30, n_train=0,
                                  params=params, progress=False)
    path = tmp_path / "out" / "i.faiss"
    t0 = time.perf_counter()
    assert run(BUILD, ds.root, tmp_path / "timed" / "i.faiss", "IVF64,SQ8", 250) == 0
    took = time.perf_counter() - t0  # an uninterrupted build, start-up included
    rng = np.random.default_rng(1)
    kills = 0
    for attempt in range(30):
        p = subprocess.Popen([sys.executable, "-c", BUILD, str(ds.root), str(path), "IVF64,SQ8", "250"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 0.95) * took)  # somewhere inside a build
        if p.poll() is None:
            p.kill()
            kills += 1
        p.wait()
        if path.exists():
            if kills >= 3:
                break
            shutil.rmtree(path.parent)  # finished too soon to have been killed enough: again
    assert kills >= 3 and path.exists()
    assert run(BUILD, ds.root, path, "IVF64,SQ8", 250) == 0
    index = index_files.load_index(str(path))
    assert index.ntotal == ds.n
    ref = build.build_index(ds, "IVF64,SQ8", tmp_path / "ref.faiss", n_train=2000, add_batch=250,
                            progress=False, threads=1)["index"]
    xq = read_rows(ds.queries, 0, ds.queries.n)
    for i in (index, ref):
        faiss.ParameterSpace().set_index_parameters(i, "nprobe=8")
    np.testing.assert_array_equal(index.search(xq, 10)[1], ref.search(xq, 10)[1])


def test_screening_killed_at_every_commit_point_resumes_to_the_same_records(crash_ds, tmp_path):
    def measured(out):
        """{family: [(setting, recall@10)]} of a finished screening, every record read back."""
        found = files.read_json(os.path.join(out, "verdicts.json"))
        assert len(found) == 3 and not any(v["verdict"].startswith("not screened") for v in found)
        return {v["family"]: [(r["setting"], r["recall@10"]) for r in files.read_json(
            os.path.join(out, coarse.file_name(v["family"]) + ".json"))["rows"]] for v in found}

    assert run(SCREEN, crash_ds.root, tmp_path / "ref") == 0
    want = measured(tmp_path / "ref")

    def args(n):
        return crash_ds.root, tmp_path / f"k{n}"

    def check(root, out):
        assert measured(out) == want
        assert not [f for f in os.listdir(out) if files.is_partial(f)]
        shutil.rmtree(out)

    assert every_commit_point(SCREEN, args, check) >= 4  # coarse work, three records, verdicts


def test_generation_killed_at_every_commit_point_resumes_to_the_same_data(tmp_path):
    assert run(GENERATE, tmp_path / "ref") == 0
    want = dataset.load_dataset(tmp_path / "ref").fingerprint

    def check(root):
        ds = dataset.load_dataset(root)
        assert ds.fingerprint == want
        dataset.verify_dataset(ds)
        shutil.rmtree(root)

    assert every_commit_point(GENERATE, lambda n: (tmp_path / f"k{n}",), check) >= 6


def test_ground_truth_killed_at_every_commit_point_resumes_to_the_same_result(crash_ds, tmp_path):
    want_D, want_I = groundtruth.ground_truth(crash_ds, 10, block_rows=400, progress=False,
                                              recompute=True)

    def args(n):
        root = tmp_path / f"k{n}"
        shutil.copytree(crash_ds.root, root)
        for f in os.listdir(root):
            if f.startswith("gt_"):
                os.remove(root / f)
        return (root,)

    def check(root):
        D, I = groundtruth.ground_truth(dataset.load_dataset(root), 10, progress=False)
        np.testing.assert_array_equal(I, want_I)
        np.testing.assert_array_equal(D, want_D)
        shutil.rmtree(root)

    # checkpoints are time-based (60 s): at this size the commit is the final file
    assert every_commit_point(GROUND_TRUTH, args, check) >= 1


# ------------------------------------------------------------ corruption and keys


def test_flipped_or_truncated_index_is_never_reused(crash_ds, tmp_path):
    path = tmp_path / "i.faiss"
    build.build_index(crash_ds, "IVF16,SQ8", path, n_train=2000, progress=False)
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, len(good), 20):
        bad = bytearray(good)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(bad))
        with pytest.raises(keyed_files.KeyedFileError, match="does not match the checksum"):
            build.build_index(crash_ds, "IVF16,SQ8", path, n_train=2000, progress=False)
    path.write_bytes(good[:len(good) // 2])
    with pytest.raises(keyed_files.KeyedFileError, match="does not match the checksum"):
        build.build_index(crash_ds, "IVF16,SQ8", path, n_train=2000, progress=False)
    r = build.build_index(crash_ds, "IVF16,SQ8", path, n_train=2000, progress=False, overwrite=True)
    assert not r["reused"] and path.read_bytes() == good


def test_checkpoint_whose_row_count_disagrees_is_refused(crash_ds, tmp_path):
    path = tmp_path / "i.faiss"
    index = indexes.new_index("IVF16,SQ8", crash_ds.d, crash_ds.metric)
    x = read_rows(crash_ds.base, 0, 2000)
    index.train(x)
    index.add(x[:500])
    key = build._key(crash_ds, "IVF16,SQ8", 2000, None)
    keyed_files.Checkpoints(str(path), key).save(index, 500)
    state = files.read_json(str(path) + ".checkpoint.json")
    files.write_json(str(path) + ".checkpoint.json", dict(state, rows_added=750))
    with pytest.raises(keyed_files.KeyedFileError, match="holds 500 vectors but .* says 750"):
        build.build_index(crash_ds, "IVF16,SQ8", path, n_train=2000, progress=False, shared_coarse=False)


def test_index_of_another_metric_is_not_reused(tmp_path):
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype("float32")
    np.save(tmp_path / "b.npy", x)
    np.save(tmp_path / "q.npy", x[:20] + 0.01)
    l2 = ingest.import_vectors(tmp_path / "l2", tmp_path / "b.npy", tmp_path / "q.npy", metric="l2", progress=False)
    ip = ingest.import_vectors(tmp_path / "ip", tmp_path / "b.npy", tmp_path / "q.npy", metric="ip", progress=False)
    assert l2.fingerprint == ip.fingerprint and ip.metric == "IP"
    build.build_index(l2, "IVF16,Flat", tmp_path / "i.faiss", n_train=2000, progress=False)
    with pytest.raises(keyed_files.KeyedFileError, match="differs in: metric"):
        build.build_index(ip, "IVF16,Flat", tmp_path / "i.faiss", n_train=2000, progress=False)


def test_ground_truth_checkpoint_of_old_data_is_not_resumed(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype("float32")
    q = rng.standard_normal((20, 16)).astype("float32")
    old = ingest.import_vectors(tmp_path / "old", _save(tmp_path / "b0.npy", x), _save(tmp_path / "q.npy", q), metric="l2", progress=False)
    new = ingest.import_vectors(tmp_path / "new", _save(tmp_path / "b1.npy", x[::-1].copy()), tmp_path / "q.npy", metric="l2", progress=False)
    ckpt = str(tmp_path / "gt.checkpoint")
    # a checkpoint of the old data after its first block, as an interrupted run leaves it
    Dold, Iold = faiss.knn(q, x[:1000], 10, metric=faiss.METRIC_L2)
    key = {"n": 3000, "k": 10, "metric": "L2", "queries": files.sha256_bytes(q), "data": old.fingerprint}
    groundtruth._save(ckpt, D=Dold, I=Iold, rows_done=1000, key=repr(key))
    D, I = groundtruth.compute_ground_truth(q, new.base, 10, "L2", block_rows=1000, checkpoint=ckpt,
                                            progress=False, data_key=new.fingerprint)
    want = faiss.knn(q, x[::-1].copy(), 10, metric=faiss.METRIC_L2)[1]
    np.testing.assert_array_equal(I, want)


def _save(path, x):
    np.save(path, x)
    return path
