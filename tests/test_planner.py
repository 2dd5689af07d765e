import pytest

from helpers import memory, planner


def test_candidates_parse_and_suit_the_scale():
    cands = planner.candidates(10_000_000, 1024)
    for f in cands:
        memory.parse(f, 1024)  # every candidate is a valid factory string
    assert any(f.startswith("IVF16384_HNSW32") for f in cands)
    assert "HNSW32,Flat" in cands
    assert any("PQ64x4fs" in f for f in planner.candidates(1_000_000, 1024))


def test_plan_splits_fitting_from_not_fitting_with_reasons():
    rows = planner.plan(10_000_000, 1024, "IP", ram_budget=24 * 2**30, time_builds=False)
    by = {r["factory"]: r for r in rows}
    assert not by["HNSW32,Flat"]["fits"]
    assert "build peak" in by["HNSW32,Flat"]["why_not"] and "GiB" in by["HNSW32,Flat"]["why_not"]
    fitting = [r for r in rows if r["fits"]]
    assert fitting and all(r["build_peak"] <= 24 * 2**30 for r in fitting)
    assert rows.index(fitting[-1]) < len(fitting)  # fitting rows first
    text = planner.format_plan(rows)
    assert "HNSW32,Flat" in text and "no" in text


def test_disk_budget_is_enforced():
    rows = planner.plan(1_000_000, 128, "L2", ram_budget=64 * 2**30, disk_budget=100 * 2**20,
                        factories=["IVF1024,Flat", "IVF1024,PQ16"], time_builds=False)
    by = {r["factory"]: r for r in rows}
    assert not by["IVF1024,Flat"]["fits"] and "disk budget" in by["IVF1024,Flat"]["why_not"]
    assert by["IVF1024,PQ16"]["fits"]


def test_build_time_estimate_from_a_timed_sample():
    est_small = planner.estimate_build_seconds("IVF256,SQ8", 100_000, 64, "L2")
    est_big = planner.estimate_build_seconds("IVF256,SQ8", 1_000_000, 64, "L2")
    assert est_small["total_s"] > 0 and est_small["sample_add_rate"] > 0
    assert 5 < est_big["add_s"] / est_small["add_s"] < 20  # linear in n
    h1 = planner.estimate_build_seconds("HNSW16", 100_000, 64)
    h2 = planner.estimate_build_seconds("HNSW16", 10_000_000, 64)
    assert h2["add_s"] / h1["add_s"] > 100  # n log n


def test_bad_factory_in_plan():
    with pytest.raises(memory.FactoryError, match="PQ8x"):
        planner.plan(1000, 64, factories=["IVF16,PQ8x"], time_builds=False)
