import faiss
import numpy as np
import pytest

from helpers.core import index_files
from helpers.data.vectors import read_rows
from helpers.index import build, factory_tree, memory
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
    assert not normal["preassigned"] and shared["preassigned"] == factory_tree.preassignable(factory)
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


def test_preassigned_build_peak_has_no_doubling(small_ds):
    # the model follows the helper: reserved lists hold exactly n codes + ids
    reserved = memory.predict("IVF32,SQ8", 200_000, 64, preassigned=True)
    grown = memory.predict("IVF32,SQ8", 200_000, 64, preassigned=False)
    assert reserved["add_peak"] < grown["add_peak"]


ASSIGN = """
import json, sys
from helpers.data import dataset
from helpers.index import coarse
ds = dataset.load_dataset(sys.argv[1])
_, assign, info = coarse.coarse_assignment(ds, "IVF16", 2000, sys.argv[2], block_rows=500,
                                           checkpoint_seconds=0, progress=False)
print(json.dumps({"resumed_from": info["resumed_from"], "sum": int(assign.sum()),
                  "assign_s": info["assign_s"], "train_s": info["train_s"]}))
"""


def test_a_killed_assignment_resumes_where_it_stopped_and_says_so(small_ds, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from helpers.core import files

    def run(folder, crash_after=None):
        env = {k: v for k, v in os.environ.items() if k != files.CRASH_ENV}
        if crash_after:
            env[files.CRASH_ENV] = str(crash_after)
        p = subprocess.run([sys.executable, "-c", ASSIGN, small_ds.root, str(folder)], env=env,
                           capture_output=True, text=True)
        return p.returncode, p.stdout

    _, whole = run(tmp_path / "whole")
    whole = json.loads(whole)
    assert whole["resumed_from"] == 0
    for n in range(1, 12):  # SIGKILLed after its n-th commit, until one leaves a partial pass
        folder = tmp_path / f"k{n}"
        rc, _ = run(folder, crash_after=n)
        assert rc == -9
        state = folder / "IVF16.assign.partial.json"
        killed = json.loads(state.read_text()) if state.exists() else {}
        rc, out = run(folder)
        again = json.loads(out)
        assert rc == 0 and again["sum"] == whole["sum"]  # resumed or redone: the same assignment
        if killed:  # the killed pass's k-means and assignment seconds are counted on resume
            assert again["train_s"] == killed["train_s"] > 0
            assert again["assign_s"] >= killed["assign_s"]
        if again["resumed_from"]:
            assert 0 < again["resumed_from"] < small_ds.n
            return
    raise AssertionError("no kill left a partial assignment to resume")
