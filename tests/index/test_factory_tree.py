"""The one place for facts about a factory string: its parts, its fast-scan twin,
and the parsed tree that indexes.work_index and final_index build from."""

import faiss
import pytest

from helpers.index import factory_tree, indexes


def test_split_factory():
    assert factory_tree.split_factory("PCAR256,IVF16384,PQ64x4fs,Refine(SQ8)") == (
        "PCAR256,IVF16384", "PQ64x4fs,Refine(SQ8)")
    assert factory_tree.split_factory("IVF4096_HNSW32,SQ8") == ("IVF4096_HNSW32", "SQ8")
    assert factory_tree.split_factory("HNSW32,SQ8") == (None, "HNSW32,SQ8")


def test_twin_factory():
    assert factory_tree.twin_factory("IVF4096,PQ128x4fs,Refine(SQ8)") == "IVF4096,PQ128x4,Refine(SQ8)"
    assert factory_tree.twin_factory("IVF64,PQ16x4fsr") == "IVF64,PQ16x4"
    assert factory_tree.twin_factory("HR,IVF32,RaBitQfs4") == "HR,IVF32,RaBitQ4"
    for f in ("IVF64,PQ16", "IVF64,SQ8", "HNSW32,PQ16x4fs", "PQ16x4fs"):
        assert factory_tree.twin_factory(f) is None


def test_coarse_factory():
    assert factory_tree.coarse_factory("IVF4096,PQ64,Refine(SQ8)") == "IVF4096"
    assert factory_tree.coarse_factory("IVF65536_HNSW32,SQ8") == "IVF65536_HNSW32"
    assert (factory_tree.coarse_factory("PCAR256,IVF1024_HNSW32,PQ64x4fs,Refine(SQ8)")
            == "PCAR256,IVF1024_HNSW32")
    for f in ("HNSW32,SQ8", "Flat", "IVF64,PQ16x4fs,RFlat"):
        assert factory_tree.coarse_factory(f) is None
        assert not factory_tree.preassignable(f)


@pytest.mark.parametrize("factory,by_residual,qb", [
    ("IVF32,PQ16x4fs", False, None), ("IVF32,PQ16x4fsr", True, None),
    ("IVF32,RaBitQfs", True, 8), ("PCAR32,IVF32,RaBitQfs4,Refine(SQ8)", True, 8)])
def test_work_and_final_index_take_the_fast_scan_facts_from_the_tree(factory, by_residual, qb,
                                                                      monkeypatch):
    tree = factory_tree.parse(factory, 64)
    reference = faiss.index_factory(64, factory)  # alive while its IVF is read
    fs = faiss.downcast_index(faiss.extract_index_ivf(reference))
    assert factory_tree.inner_index(tree)["by_residual"] == bool(fs.by_residual) == by_residual
    assert factory_tree.inner_index(tree).get("qb") == getattr(fs, "qb", None) == qb
    built = []
    real = faiss.index_factory
    monkeypatch.setattr(faiss, "index_factory", lambda *a: built.append(a[1]) or real(*a))
    work = indexes.work_index(tree)
    assert built == [factory_tree.twin_factory(factory)], "only the index it returns is built"
    assert bool(faiss.extract_index_ivf(work).by_residual) == by_residual
    final = indexes.final_index(work, tree)
    out = faiss.downcast_index(faiss.extract_index_ivf(final))
    assert len(built) == 1 and type(out) is type(fs)
    assert getattr(out, "qb", None) == qb
