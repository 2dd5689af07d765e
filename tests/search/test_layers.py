"""The 10M answer taken apart: a stand-in of its family and one variant per layer."""

from helpers.core import heuristics
from helpers.notebook import tables
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
