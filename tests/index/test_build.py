import glob
import json
import os
import subprocess
import sys

import faiss
import numpy as np
import pytest

from helpers.core import disk, files, index_files, keyed_files
from helpers.data import groundtruth
from helpers.data.vectors import read_rows
from helpers.index import build, factory_tree, indexes, memory, planner
from conftest import listing


def recall_at_10(index, ds):
    _, gt = groundtruth.ground_truth(ds, 10, progress=False)
    _, I = index.search(read_rows(ds.queries, 0, ds.queries.n), 10)
    return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])


@pytest.mark.parametrize("factory,params,threshold", [
    ("IVF32,Flat", {"nprobe": 16}, 0.95),
    ("IVF32,SQ8", {"nprobe": 16}, 0.90),
    ("IVF32,PQ16x4fs,RFlat", {"nprobe": 16, "k_factor_rf": 8}, 0.90),
    ("HNSW16,SQ8", {"efSearch": 128}, 0.90),
])
def test_build_reaches_recall_and_writes_report(small_ds, tmp_path, factory, params, threshold):
    r = build.build_index(small_ds, factory, tmp_path / "i.faiss", n_train=2000, add_batch=1500,
                          progress=False)
    index = r["index"]
    assert index.ntotal == small_ds.n
    ps = faiss.ParameterSpace()
    for k, v in params.items():
        ps.set_index_parameter(index, k, v)
    assert recall_at_10(index, small_ds) >= threshold
    rep = json.load(open(tmp_path / "i.faiss.json"))
    assert rep["dataset"] == small_ds.fingerprint and rep["measured"]["disk"] == os.path.getsize(tmp_path / "i.faiss")
    assert rep["predicted"]["disk"] > 0 and rep["add_vectors_per_s"] > 0 and len(rep["rss_trace"]) >= 2
    # no leftovers; IVF builds keep the dataset's shared coarse quantizer and assignment
    assert sorted(set(listing(tmp_path)) - {"coarse"}) == ["i.faiss", "i.faiss.json"]


KILLED_BUILD = """
import sys
from helpers.data import dataset
from helpers.index import build
ds = dataset.load_dataset(sys.argv[1])
build.build_index(ds, sys.argv[3], sys.argv[2], n_train=2000, add_batch=int(sys.argv[6]),
                  checkpoint_seconds=0, progress=False, threads=int(sys.argv[4]) or None,
                  disk_budget=int(sys.argv[5]) or None)
"""


@pytest.mark.parametrize("factory,setting", [
    ("IVF32,PQ16", "nprobe=8"),
    ("IVF32,SQ8", "nprobe=8"),
    ("OPQ16,IVF32,PQ16x4fs", "nprobe=8"),
    ("HNSW16,SQ8", "efSearch=64"),  # 1 thread: parallel HNSW insertion is not deterministic
])
def test_build_killed_after_a_checkpoint_resumes_to_the_same_index(small_ds, tmp_path, factory, setting):
    """SIGKILL (helpers.core.files.CRASH_ENV) right after the first commit that leaves a
    checkpoint of 2,000+ rows; the rerun resumes from it and equals an uninterrupted build."""
    threads = 1 if factory.startswith("HNSW") else 0
    with indexes.omp_threads(threads or None):
        full = build.build_index(small_ds, factory, tmp_path / "full.faiss", n_train=2000,
                                 add_batch=1000, progress=False)["index"]
    for n in range(1, 40):
        path = tmp_path / f"k{n}" / "r.faiss"
        env = dict(os.environ, **{files.CRASH_ENV: str(n)})
        p = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(small_ds.root), str(path), factory,
                            str(threads), "0", "1000"], env=env, capture_output=True)
        assert p.returncode == -9, p.stderr.decode()[-500:]  # killed before the end
        state = path.parent / "r.faiss.checkpoint.json"
        if state.exists() and json.loads(state.read_text())["rows_added"] >= 2000:
            break
    assert not path.exists()  # no half-written index under the final name
    with indexes.omp_threads(threads or None):
        r = build.build_index(small_ds, factory, path, n_train=2000, add_batch=1000, progress=False)
    assert r["resumed_from"] == "checkpoint" and r["rows_added_this_run"] <= small_ds.n - 2000
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    for index in (full, r["index"]):
        faiss.ParameterSpace().set_index_parameters(index, setting)
    D1, I1 = full.search(xq, 10)
    D2, I2 = r["index"].search(xq, 10)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)


def test_within_a_disk_budget_checkpoints_take_each_others_place_and_a_kill_anywhere_resumes(
        small_ds, tmp_path):
    """A folder budget that holds the index, its coarse space and a fifth more: the
    checkpoints cannot all go beside each other, nor the last beside the final index.
    SIGKILL after every commit in turn: the folder never holds more than its budget,
    and every rerun ends with the uninterrupted build's index."""
    factory, setting = "IVF32,SQ8", "nprobe=8"
    want = build.build_index(small_ds, factory, tmp_path / "want" / "w.faiss", n_train=2000,
                             add_batch=1500, progress=False)
    coarse_bytes = disk.folder_bytes(tmp_path / "want" / "coarse")
    budget = coarse_bytes + int(1.2 * want["measured"]["disk"])
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    faiss.ParameterSpace().set_index_parameters(want["index"], setting)
    for n in range(1, 60):
        path = tmp_path / f"k{n}" / "r.faiss"
        env = dict(os.environ, **{files.CRASH_ENV: str(n)})
        p = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(small_ds.root), str(path), factory,
                            "0", str(budget), "1500"], env=env, capture_output=True)
        assert p.returncode in (0, -9), p.stderr.decode()[-500:]
        assert disk.folder_bytes(path.parent) <= budget, f"over the budget after commit {n}"
        r = build.build_index(small_ds, factory, path, n_train=2000, add_batch=1500,
                              checkpoint_seconds=0, progress=False, disk_budget=budget)
        faiss.ParameterSpace().set_index_parameters(r["index"], setting)
        for got, expected in zip(r["index"].search(xq, 10), want["index"].search(xq, 10)):
            np.testing.assert_array_equal(got, expected)
        if p.returncode == 0:  # the build finished before the n-th commit: every one was tried
            break
    assert n > 8  # the trained index, three checkpoints, the index and its report at least
    assert json.loads((path.parent / "r.faiss.json").read_text())["checkpoints_in_place"]


def test_a_build_over_its_folders_disk_budget_is_refused_before_writing(small_ds, tmp_path):
    build.build_index(small_ds, "IVF32,SQ8", tmp_path / "a.faiss", n_train=2000, progress=False)
    held = disk.folder_bytes(tmp_path)
    before = listing(tmp_path)
    with pytest.raises(build.BuildRefused, match=r"refusing to build IVF32,PQ16.*its files \(.*\) "
                                                 r"would take .* over its disk budget of"):
        build.build_index(small_ds, "IVF32,PQ16", tmp_path / "b.faiss", n_train=2000,
                          progress=False, disk_budget=held + 1000)
    assert listing(tmp_path) == before
    # with room for it, the same build goes ahead
    build.build_index(small_ds, "IVF32,PQ16", tmp_path / "b.faiss", n_train=2000, progress=False,
                      disk_budget=held + (1 << 20))


def test_plan_over_budget_is_refused_before_allocating(small_ds, tmp_path):
    with pytest.raises(build.BuildError, match="refusing to build HNSW32,Flat.*build peak .* > build budget"):
        build.build_index(small_ds, "HNSW32,Flat", tmp_path / "h.faiss", build_budget=1 << 20,
                          progress=False)
    assert listing(tmp_path) == []


def test_checkpoint_of_other_settings_is_refused(small_ds, tmp_path):
    build.build_index(small_ds, "IVF32,Flat", tmp_path / "a.faiss", n_train=2000, progress=False)
    (tmp_path / "b.faiss.checkpoint.json").write_text(json.dumps(
        {"dataset": "other", "factory": "IVF32,Flat", "rows_added": 0, "file": "b.faiss.checkpoint-0"}))
    (tmp_path / "b.faiss.checkpoint-0").write_bytes(b"x")
    with pytest.raises(keyed_files.KeyedFileError, match="made for other inputs"):
        build.build_index(small_ds, "IVF32,Flat", tmp_path / "b.faiss", n_train=2000, progress=False)
    with pytest.raises(keyed_files.KeyedFileError, match="exists and was not built"):
        build.build_index(small_ds, "IVF32,SQ8", tmp_path / "a.faiss", progress=False)
    # same factory, other training sample: a different index, so not reused either
    with pytest.raises(keyed_files.KeyedFileError, match="n_train=3,000"):
        build.build_index(small_ds, "IVF32,Flat", tmp_path / "a.faiss", n_train=3000, progress=False)
    again = build.build_index(small_ds, "IVF32,Flat", tmp_path / "a.faiss", n_train=2000,
                              progress=False)
    assert again["reused"] and again["index"].ntotal == small_ds.n
    # a caller that maps the file itself does not pay for reading it
    left = build.build_index(small_ds, "IVF32,Flat", tmp_path / "a.faiss", n_train=2000,
                             progress=False, load=False)
    assert left["reused"] and left["index"] is None and left["add_s"] == again["add_s"]


def test_bad_inputs(small_ds, tmp_path):
    with pytest.raises(ValueError, match="smaller than nlist=4096"):
        build.build_index(small_ds, "IVF4096,Flat", tmp_path / "x.faiss", n_train=1000, progress=False)
    with pytest.raises(factory_tree.FactoryError, match="m must divide d=64"):
        build.build_index(small_ds, "IVF32,PQ7", tmp_path / "x.faiss", progress=False)


@pytest.mark.parametrize("factory,setting", [
    ("IVF32,SQ8", "nprobe=4"), ("IVF32,PQ16x4fs", "nprobe=4"), ("HNSW16,Flat", "efSearch=32"),
    ("HNSW16,PQ16", "efSearch=32"), ("IVF32,PQ16,Refine(SQ8)", "nprobe=4,k_factor_rf=4"),
])
def test_reload_equal_mapped_and_not(small_ds, tmp_path, factory, setting):
    r = build.build_index(small_ds, factory, tmp_path / "i.faiss", n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, 20)
    faiss.ParameterSpace().set_index_parameters(r["index"], setting)
    want = r["index"].search(xq, 5)
    for mmap in (False, True):
        index = index_files.load_index(str(tmp_path / "i.faiss"), mmap=mmap)
        faiss.ParameterSpace().set_index_parameters(index, setting)
        got = index.search(xq, 5)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def test_corrupt_file_refused_and_never_replaces_a_good_one(small_ds, tmp_path):
    build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, progress=False)
    data = (tmp_path / "i.faiss").read_bytes()
    (tmp_path / "cut.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(index_files.IndexFileError, match="truncated or corrupt"):
        index_files.load_index(str(tmp_path / "cut.faiss"))

    # a rebuild (overwrite=True) killed half-way, after its 3rd commit ...
    script = KILLED_BUILD.replace("progress=False", "progress=False, overwrite=True")
    env = dict(os.environ, **{files.CRASH_ENV: "3"})
    p = subprocess.run([sys.executable, "-c", script, str(small_ds.root), str(tmp_path / "i.faiss"),
                        "IVF32,SQ8", "0", "0", "1000"], env=env, capture_output=True)
    assert p.returncode == -9
    assert (tmp_path / "i.faiss").read_bytes() == data  # ... leaves the good index as it was


@pytest.mark.parametrize("factory", ["IVF32,SQ8", "OPQ16,IVF32,PQ16"])
def test_ondisk_lists_search_like_the_original(small_ds, tmp_path, factory):
    r = build.build_index(small_ds, factory, tmp_path / "i.faiss", n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, 20)
    faiss.ParameterSpace().set_index_parameters(r["index"], "nprobe=8")
    want = r["index"].search(xq, 10)
    ondisk = index_files.to_ondisk(str(tmp_path / "i.faiss"), str(tmp_path / "d.faiss"))
    faiss.ParameterSpace().set_index_parameters(ondisk, "nprobe=8")
    got = ondisk.search(xq, 10)
    np.testing.assert_array_equal(got[1], want[1])
    assert ondisk.ntotal == small_ds.n
    codes = small_ds.n * (faiss.extract_index_ivf(ondisk).code_size + 8)  # codes + ids moved out
    # what stays: the trained parts plus a few words per list and the .ivfdata path
    assert os.path.getsize(tmp_path / "d.faiss") <= os.path.getsize(tmp_path / "i.faiss") - codes + 4096
    (data,) = glob.glob(str(tmp_path / "d.faiss.*.ivfdata"))
    assert os.path.getsize(data) > 0
    again = index_files.to_ondisk(str(tmp_path / "i.faiss"), str(tmp_path / "d.faiss"))  # reused
    assert again.ntotal == small_ds.n
    os.utime(tmp_path / "d.faiss", (0, 0))  # older than its source: stale
    with pytest.raises(index_files.IndexFileError, match="older than"):
        index_files.to_ondisk(str(tmp_path / "i.faiss"), str(tmp_path / "d.faiss"))


def test_ondisk_refuses_non_ivf_and_reuse_returns_the_index(small_ds, tmp_path):
    r = build.build_index(small_ds, "HNSW8,SQ8", tmp_path / "h.faiss", progress=False)
    with pytest.raises(index_files.IndexFileError, match="no IVF index|not Index"):
        index_files.to_ondisk(str(tmp_path / "h.faiss"), str(tmp_path / "d.faiss"))
    build.build_index(small_ds, "IVF16,PQ32x4fs", tmp_path / "fs.faiss", n_train=2000, progress=False)
    with pytest.raises(index_files.IndexFileError, match="fast-scan"):
        index_files.to_ondisk(str(tmp_path / "fs.faiss"), str(tmp_path / "d.faiss"))
    again = build.build_index(small_ds, "HNSW8,SQ8", tmp_path / "h.faiss", progress=False)
    assert again["reused"] and not r["reused"] and again["index"].ntotal == small_ds.n


def test_sq_qtype_exposes_the_argument_order_mistake():
    q = faiss.IndexFlatL2(64)
    wrong = faiss.IndexIVFScalarQuantizer(q, 64, 16, faiss.METRIC_L2)
    assert indexes.sq_qtype(wrong) == "QT_4bit" and wrong.code_size == 32
    right = faiss.IndexIVFScalarQuantizer(q, 64, 16, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    assert indexes.sq_qtype(right) == "QT_8bit" and right.code_size == 64
    assert indexes.sq_qtype(indexes.new_index("IVF16,SQfp16", 64)) == "QT_fp16"
    assert indexes.sq_qtype(indexes.new_index("IVF16,Flat", 64)) is None


@pytest.mark.parametrize("factory", ["IVF32,SQ8", "IVF32,PQ16,Refine(SQ8)", "HNSW16,SQ8"])
def test_reserve_allocates_what_the_added_vectors_need_and_no_more(small_ds, factory):
    import psutil

    index = indexes.new_index(factory, small_ds.d, small_ds.metric)
    n = 1_000_000
    node = factory_tree.parse(factory, small_ds.d, small_ds.metric)
    need = memory.index_ram(node, n) - memory.index_ram(node, 0) - n * 12 * factory.startswith("HNSW")
    rss0 = psutil.Process().memory_info().rss
    indexes.reserve(index, n, np.full(32, n // 32) if factory.startswith("IVF") else None)
    grown = psutil.Process().memory_info().rss - rss0
    # a coarse quantizer (Flat) is left alone: reserving it for n vectors would ask
    # for n x d x 4 bytes (40 GB at 10M x 1024)
    assert 0.8 * need < grown < 1.1 * need + (4 << 20)
    assert index.ntotal == 0


def test_threads_are_restored_after_a_build(small_ds, tmp_path):
    before = faiss.omp_get_max_threads()
    r = build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, threads=1,
                          progress=False)
    assert r["threads"] == 1 and faiss.omp_get_max_threads() == before
    planner_rate = planner.gemm_rate(32, threads=1)
    assert planner_rate > 0 and faiss.omp_get_max_threads() == before


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_every_index_the_helpers_create_has_the_datasets_metric(metric):
    # faiss's factory builds HNSW over PQ for L2 whatever the metric: the helper rebuilds it
    want = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    for f in planner.candidates(1_000_000, 64) + ["HNSW16,PQ16", "IVF16,PQ8,RFlat", "PQ16"]:
        index = indexes.new_index(f, 64, metric)
        assert [c.metric_type for c in indexes.components(index)] == \
            [want] * len(indexes.components(index)), f


def test_hnsw_pq_for_inner_product_ranks_by_inner_product(small_ds, tmp_path):
    r = build.build_index(small_ds, "HNSW16,PQ16", tmp_path / "h.faiss", progress=False)
    assert r["index"].metric_type == faiss.METRIC_INNER_PRODUCT == index_files.load_index(
        str(tmp_path / "h.faiss")).metric_type
    xq = read_rows(small_ds.queries, 0, 20)
    D, I = r["index"].search(xq, 5)
    assert (np.diff(D, axis=1) <= 1e-6).all()  # inner products: best (largest) first


def test_command_line_builds_resumes_and_reuses_one_index(small_ds, tmp_path):
    cmd = [sys.executable, "-m", "helpers", "build", str(small_ds.root), "HNSW8,SQ8",
           "--out", str(tmp_path / "h.faiss"), "--ef-construction", "16"]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    again = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "added 6,000" in first and "reused" in again
    assert index_files.load_index(str(tmp_path / "h.faiss")).ntotal == small_ds.n


def test_build_budget_caps_the_training_sample_as_the_model_says(small_ds, tmp_path):
    default = memory.predict("IVF64,SQ8", small_ds.n, small_ds.d, small_ds.metric)
    budget = default["train_peak"] - 1  # training on all 6000 rows needs just more than this
    pred = memory.predict("IVF64,SQ8", small_ds.n, small_ds.d, small_ds.metric, build_budget=budget)
    assert 39 * 64 <= pred["n_train"] < memory.predict("IVF64,SQ8", small_ds.n, small_ds.d)["n_train"]
    r = build.build_index(small_ds, "IVF64,SQ8", tmp_path / "i.faiss", build_budget=budget,
                          progress=False)
    assert r["n_train"] == pred["n_train"] and r["index"].ntotal == small_ds.n


def test_a_full_disk_while_rewriting_an_index_keeps_the_old_one(small_ds, tmp_path, monkeypatch):
    r = build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    index_files.to_ondisk(str(tmp_path / "i.faiss"), str(tmp_path / "d.faiss"))
    os.symlink("/dev/full", tmp_path / "full")
    monkeypatch.setattr(files, "temp_path", lambda path: str(tmp_path / "full"))  # a real ENOSPC
    with pytest.raises(files.WriteError, match=r"cannot write .*d.faiss: the disk is full"):
        index_files.to_ondisk(str(tmp_path / "i.faiss"), str(tmp_path / "d.faiss"), overwrite=True)
    monkeypatch.undo()
    old = index_files.load_index(str(tmp_path / "d.faiss"))  # the old index and its .ivfdata still work
    for index in (old, r["index"]):
        faiss.ParameterSpace().set_index_parameters(index, "nprobe=8")
    np.testing.assert_array_equal(old.search(xq, 10)[1], r["index"].search(xq, 10)[1])
    assert len(glob.glob(str(tmp_path / "d.faiss.*.ivfdata"))) == 1  # the new one was removed
