import faiss
import numpy as np
import pytest

from helpers import build, coarse, index_files, indexes, memory
from helpers.vectors import read_rows
from conftest import listing

IVF_FAMILIES = ["IVF32,Flat", "IVF32,SQ8", "IVF32,SQ4", "IVF32,SQfp16", "IVF32,PQ16",
                "IVF32,PQ16x4fs", "IVF32,PQ16,Refine(SQ8)", "IVF32,PQ16x4fs,Refine(SQ8)",
                "IVF32_HNSW16,PQ16x4fs", "IVF32,PQ8,RFlat", "IVF32,PQ16x4fsr",
                "IVF32,RaBitQ", "IVF32,RaBitQ4", "IVF32,RaBitQfs", "IVF32_HNSW16,RaBitQfs4,Refine(SQ8)",
                "PCAR32,IVF32,PQ16x4fs,Refine(SQ8)", "PCAR32,IVF32,RaBitQfs,Refine(SQ8)",
                "HR,IVF32,RaBitQfs"]


@pytest.mark.parametrize("factory", IVF_FAMILIES)
def test_shared_assignment_builds_the_same_index_as_add(small_ds, tmp_path, factory):
    kw = dict(n_train=2000, add_batch=700, progress=False)
    normal = build.build_index(small_ds, factory, tmp_path / "a.faiss", shared_coarse=False, **kw)
    shared = build.build_index(small_ds, factory, tmp_path / "b.faiss", **kw)
    assert not normal["preassigned"] and shared["preassigned"] == indexes.preassignable(factory)
    assert shared["preassigned"] or factory.endswith("RFlat")  # fast-scan + RFlat adds normally
    assert type(faiss.downcast_index(shared["index"])) is type(faiss.downcast_index(normal["index"]))
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    for r in (normal, shared):
        faiss.ParameterSpace().set_index_parameters(r["index"], "nprobe=8")
    D1, I1 = normal["index"].search(xq, 10)
    D2, I2 = shared["index"].search(xq, 10)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)
    reloaded = index_files.load_index(str(tmp_path / "b.faiss"))
    faiss.ParameterSpace().set_index_parameters(reloaded, "nprobe=8")
    np.testing.assert_array_equal(reloaded.search(xq, 10)[1], I1)


def test_one_training_and_one_assignment_per_nlist(small_ds, tmp_path):
    for f in ("IVF32,SQ8", "IVF32,PQ16x4fs", "IVF32,PQ16"):
        r = build.build_index(small_ds, f, tmp_path / f"{f}.faiss", n_train=2000, progress=False)
        assert r["coarse_reused"] == (f != "IVF32,SQ8")
    assert listing(tmp_path / "coarse") == [
        "IVF32.assign.npz", "IVF32.quantizer.faiss", "IVF32.quantizer.faiss.json"]


def test_coarse_factory():
    assert coarse.coarse_factory("IVF4096,PQ64,Refine(SQ8)") == "IVF4096"
    assert coarse.coarse_factory("IVF65536_HNSW32,SQ8") == "IVF65536_HNSW32"
    assert coarse.coarse_factory("PCAR256,IVF1024_HNSW32,PQ64x4fs,Refine(SQ8)") == "PCAR256,IVF1024_HNSW32"
    for f in ("HNSW32,SQ8", "Flat", "IVF64,PQ16x4fs,RFlat"):
        assert coarse.coarse_factory(f) is None


def test_preassigned_build_peak_has_no_doubling(small_ds):
    # the model follows the helper: reserved lists hold exactly n codes + ids
    reserved = memory.predict("IVF32,SQ8", 200_000, 64, preassigned=True)
    grown = memory.predict("IVF32,SQ8", 200_000, 64, preassigned=False)
    assert reserved["add_peak"] < grown["add_peak"]
