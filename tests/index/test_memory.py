"""The memory model against real faiss builds: file sizes exactly, RSS in a fresh process."""

import json
import subprocess

import faiss
import pytest

from helpers.data import dataset, synthetic
from helpers.index import factory_tree, indexes, memory

FAMILIES = [
    "Flat", "IVF64,Flat", "IVF64,PQ16", "IVF64,PQ16x4fs", "IVF64,PQ16x6",
    "OPQ16_64,IVF64,PQ16", "IVF64,SQ8", "IVF64,SQ6", "IVF64,SQ4", "IVF64,SQfp16",
    "HNSW16", "HNSW16,SQ8", "HNSW16,PQ16", "IVF256_HNSW16,Flat",
    "IVF64,PQ16,Refine(SQ8)", "IVF64,PQ16,RFlat", "PQ16", "SQ8", "PCA64,IVF64,SQ8",
]


@pytest.fixture(scope="module")
def xs():
    p = synthetic.GeneratorParams(d=128, intrinsic_dim=32, n_clusters=64)
    return synthetic.draw(p, 1, 0, 8000)


@pytest.mark.parametrize("factory", FAMILIES)
@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_disk_bytes_within_1_percent(xs, factory, metric):
    index = indexes.new_index(factory, 128, metric)
    index.train(xs[:3000])  # small: PQ training cost grows with the sample
    for i in range(0, len(xs), 3000):
        index.add(xs[i:i + 3000])
    real = faiss.serialize_index(index).size
    pred = memory.predict(factory, len(xs), 128, metric)["disk"]
    assert abs(pred - real) <= 0.01 * real, (pred, real)


def test_code_sizes_agree_with_factory_tools():
    from faiss.contrib.factory_tools import get_code_size

    for f in ["Flat", "PQ16", "SQ8", "SQ4", "SQfp16", "IVF64,PQ16x4fs", "IVF64,SQ8", "IVF64,Flat"]:
        assert factory_tree.parse(f, 128)["code_size"] == get_code_size(128, f), f


def test_hnsw32_flat_at_10m_x_1024():
    p = memory.predict("HNSW32,Flat", 10_000_000, 1024)
    # 4096 bytes of vector + ~2M+1 neighbour slots of 4 bytes + level and offset
    assert 43.4e9 < p["index_ram"] < 43.9e9
    assert memory.fits(p, 24 * 2**30)  # it does not fit: reasons are given
    assert "build budget" in memory.fits(p, 24 * 2**30)[0]
    # the two budgets are separate: serving on a large machine, building on a small one
    big, small = 64 * 2**30, 24 * 2**30
    only_build = memory.fits(p, big, build_budget=small)
    only_serving = memory.fits(p, small, build_budget=big)
    assert len(only_build) == 1 and only_build[0].startswith("build peak") and "build budget" in only_build[0]
    assert len(only_serving) == 1 and only_serving[0].startswith("index") and "RAM budget" in only_serving[0]


def test_a_small_build_budget_trains_on_fewer_rows_down_to_39_per_centroid():
    free = memory.predict("IVF256,PQ48x4fs", 60_000, 384, "IP")
    capped = memory.predict("IVF256,PQ48x4fs", 60_000, 384, "IP", build_budget=60 * 2**20)
    assert free["n_train"] == 60_000 and free["build_peak"] > 60 * 2**20
    assert 39 * 256 <= capped["n_train"] < 60_000 and capped["train_peak"] <= 60 * 2**20
    assert memory.fits(capped, 60 * 2**20, build_budget=60 * 2**20) == []
    # never below 39 points per centroid, however small the budget
    assert memory.predict("IVF1024,SQ8", 60_000, 384, build_budget=1)["n_train"] == 39 * 1024
    # an explicit sample size is the caller's choice
    assert memory.predict("IVF256,SQ8", 60_000, 384, n_train=50_000, build_budget=1)["n_train"] == 50_000


def test_ivfpq_precomputed_table_counted_for_l2_only():
    l2 = factory_tree.parse("IVF1024,PQ64", 1024, "L2")
    ip = factory_tree.parse("IVF1024,PQ64", 1024, "IP")
    assert l2["precomputed_table_bytes"] == 1024 * 64 * 256 * 4
    assert ip["precomputed_table_bytes"] == 0
    big = factory_tree.parse("IVF65536,PQ64", 1024, "L2")  # over faiss's 2 GiB limit: not built
    assert big["precomputed_table_bytes"] == 0


@pytest.mark.parametrize("factory,part", [
    ("IVF1024,PQ8x", "PQ8x"),
    ("HNSW32,Flat,Foo", "Flat,Foo"),
    ("Bogus64", "Bogus64"),
])
def test_unparseable_factory_names_the_part(factory, part):
    with pytest.raises(factory_tree.FactoryError, match="cannot parse factory string.*" + part):
        factory_tree.parse(factory, 128)


def test_pq_m_must_divide_d():
    with pytest.raises(factory_tree.FactoryError, match=r"m must divide d=1024; valid m: \[1, 2, 4, 8, 16, 32, 64, 128, 256\]"):
        factory_tree.parse("IVF1024,PQ7", 1024)
    # after a PCA the codes see its output, and the line says that dimension, not d
    with pytest.raises(factory_tree.FactoryError, match=r"m must divide the 32 dimensions its transform leaves; valid m: \[1, 2, 4, 8, 16, 32\]$"):
        factory_tree.parse("PCAR32,IVF32,PQ64x4fs,Refine(SQ8)", 64)


def test_training_sample_smaller_than_nlist_refused():
    with pytest.raises(ValueError, match="smaller than nlist=4096.*at least 159,744"):
        memory.predict("IVF4096,Flat", 1_000_000, 128, n_train=1000)


def test_vector_growth_matches_libstdcxx_doubling():
    end, peak = memory.vector_growth([10, 10, 10, 10, 10])
    # capacity 10 -> 20 -> 40 -> 80; the last reallocation (size 40 -> 50) holds
    # the old 40 bytes and the 50 filled bytes of the new buffer at once
    assert (end, peak) == (80, 90)


@pytest.fixture(scope="module")
def measured_ds(tmp_path_factory):
    return dataset.generate_dataset(tmp_path_factory.mktemp("mem"), 60_000, n_queries=10, n_train=0,
                                    params=synthetic.GeneratorParams(d=256), progress=False)


RSS_FAMILIES = ["Flat", "IVF128,Flat", "IVF128,PQ16", "OPQ16_256,IVF128,PQ16", "IVF128,SQ8",
                "IVF128,SQ4", "HNSW16", "HNSW16,SQ8", "HNSW16,PQ16", "IVF512_HNSW16,Flat", "IVF128,PQ16,Refine(SQ8)", "IVF128,PQ16,RFlat", "IVF128,PQ16x4fs"]


@pytest.mark.parametrize("factory", RSS_FAMILIES)
def test_rss_within_15_percent(measured_ds, python, factory):
    """RSS measured in a fresh process (helpers.index.measure): VmHWM peaks and RSS
    deltas with the baseline subtracted. 1 MiB of slack covers page and
    allocator granularity, which dominates only for the smallest indexes."""
    out = subprocess.run([python, "-m", "helpers", "measure", measured_ds.root, factory,
                          "--add-batch", "25000", "--threads", "2", "--n-train", "8192"],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    m, p = r["measured"], r["predicted"]
    slack = 2**20
    assert abs(p["index_ram"] - m["index_ram_loaded"]) <= 0.15 * m["index_ram_loaded"] + slack, r
    assert abs(p["build_peak"] - m["build_peak"]) <= 0.15 * m["build_peak"] + slack, r


def test_bytes_per_vector_is_code_plus_id_for_ivf():
    # one byte per dimension (SQ8) or per sub-quantizer (PQ8), plus the 8-byte id
    assert memory.bytes_per_vector(factory_tree.parse("IVF16,SQ8", 64, "L2"), 10**6) == pytest.approx(72)
    assert memory.bytes_per_vector(factory_tree.parse("IVF16,PQ8", 64, "L2"), 10**6) == pytest.approx(16)
    # HNSW adds its links on top of the SQ8 codes, and has no ids
    assert memory.bytes_per_vector(factory_tree.parse("HNSW16,SQ8", 64, "L2"), 10**6) > 64 + 16 * 2 * 4
