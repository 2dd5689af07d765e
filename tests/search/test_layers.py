"""The 10M answer taken apart: a stand-in of its family and one variant per layer."""

import pandas as pd

from helpers.core import heuristics
from helpers.notebook import evidence, tables
from helpers.search import layers


def test_at_10m_the_stand_in_is_the_answer_and_each_variant_changes_one_layer():
    found = {change: f for _, change, f in layers.variants(10_000_000, 1024)}
    assert found["as built at 10M"] == "PCAR256,IVF16384,PQ256x4fs,Refine(SQ8)"
    assert found["no PCA: 256 sub-quantizers over all 1024 dimensions"] == "IVF16384,PQ256x4fs,Refine(SQ8)"
    assert found["8-bit PQ codes instead"] == "PCAR256,IVF16384,PQ256,Refine(SQ8)"
    assert found["64 sub-quantizers, not 256"] == "PCAR256,IVF16384,PQ64x4fs,Refine(SQ8)"
    assert found["128 sub-quantizers, not 256"] == "PCAR256,IVF16384,PQ128x4fs,Refine(SQ8)"
    assert found["no refine"] == "PCAR256,IVF16384,PQ256x4fs"
    # at a smaller d the PCA keeps what there is, and m follows it
    assert layers.stand_in(3000, 64) == "PCAR64,IVF64,PQ64x4fs,Refine(SQ8)"


def test_the_stand_in_is_built_with_a_row_per_layer_and_refine_depth(small_ds, tmp_path):
    rows = layers.take_apart(small_ds, 6000, str(tmp_path), k_factors=(1, 16), repeats=2,
                             single_queries=10)
    by = {(r["change"], r["setting"]): r for r in rows}
    assert {r["layer"] for r in rows} == {"the answer's family", "PCA", "4-bit fast-scan codes",
                                          "sub-quantizers", "SQ8 refine"}
    assert len(rows) == 5 * 2 + 1  # five variants at two refine depths, the unrefined one once
    assert all(r["timed"] == "in full" and r["batches"] == 2 and r["rows"] == 6000 for r in rows)
    answer, half = "as built at 10M", f"nprobe={heuristics.nlist_rule(6000) // 2}"  # half the lists
    # the refine re-ranks k x k_factor candidates: deeper is never worse (same lists, a superset)
    assert by[(answer, f"{half},k_factor_rf=16")]["recall@10"] >= by[(answer, f"{half},k_factor_rf=1")]["recall@10"]
    # the SQ8 refine keeps a byte per dimension: most of the bytes of the answer's family
    refined = by[(answer, f"{half},k_factor_rf=1")]["file_bytes"]
    assert refined - by[("no refine", half)]["file_bytes"] >= 0.5 * refined
    table = tables.layers(rows)
    assert len(table) == len(rows) and "bytes per vector" in table.columns


def test_missing_10m_evidence_gives_an_empty_table_and_one_line(tmp_path):
    assert evidence.answer_table(str(tmp_path)).equals(pd.DataFrame())
    assert evidence.MISSING.startswith("no committed 10M run in ") and "\n" not in evidence.MISSING


def test_the_winner_by_n_reads_the_committed_runs_and_says_what_is_missing(tmp_path):
    rows = [{"index": "HNSW16,SQ8 efC=40", "setting": "efSearch=64", "recall@10": 0.97,
             "recall@10_ci": [0.96, 0.98], "qps_median": 900.0, "timed": "in full"},
            {"index": "IVF64,SQ8", "setting": "nprobe=8", "recall@10": 0.96,
             "recall@10_ci": [0.955, 0.965], "qps_median": 500.0, "timed": "in full"}]
    points, missing = evidence.winner_by_n(rows, 20_000)
    mine = {p["kind"]: p for p in points if p["source"] == "this run"}
    assert mine["graph"]["qps"] == 900.0 and mine["IVF"]["index"] == "IVF64,SQ8"
    assert missing == []
    at = {(p["n"], p["kind"]): p for p in points}
    # the committed 10M answer's family is the IVF point at 10M; no graph cleared 0.95 there
    assert at[(10_000_000, "IVF")]["index"] == "PCAR256,IVF16384,PQ256x4fs,Refine(SQ8)"
    assert (10_000_000, "graph") not in at and (1_000_000, "graph") in at
    # without the committed files: one line each, and the run's own points still drawn
    points, missing = evidence.winner_by_n(rows, 20_000, results=str(tmp_path))
    assert len(missing) == len(evidence.BY_N) and all(m.startswith("no benchmarks/results/") for m in missing)
    assert {p["source"] for p in points} == {"this run"}
