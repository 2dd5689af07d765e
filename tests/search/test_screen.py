"""The screening: its order, the codes it carries to other spaces, its verdicts."""

import os

from helpers.index import coarse
from helpers.search import screen, screen_grid


def _record(recall, lo, qps):
    return {"rows": [{"setting": "nprobe=4", "recall@10": recall, "recall@10_ci": [lo, recall + 0.01],
                      "qps_median": qps, "timed": "in full"}]}


def test_codes_close_to_the_best_go_on_and_the_rest_say_why_not():
    on_first = {"A": _record(0.97, 0.96, 1000), "B": _record(0.96, 0.955, 700),
                "C": _record(0.96, 0.955, 600), "D": _record(0.90, 0.89, 5000),
                "E": {"error": "faiss cannot build it: ..."}}
    carry = screen.codes_to_carry(on_first, "IVF16", 0.95, slack=1.5)
    assert carry["A"] is None and carry["B"] is None  # 1000 / 700 < 1.5
    assert carry["E"] is None  # nothing measured against it
    assert carry["C"].startswith("not screened: on IVF16") and "600" in carry["C"] and "A's 1,000" in carry["C"]
    assert "never cleared 0.95 (best 0.900)" in carry["D"]
    # when no code clears the target there is nothing to judge by: all go on
    assert set(screen.codes_to_carry({"D": _record(0.9, 0.89, 5000)}, "IVF16", 0.95).values()) == {None}


def test_the_screening_goes_cheapest_first_and_leaves_behind_a_code_that_lost(small_ds, tmp_path):
    search = screen.search_of(["IVF16", "PCAR32,IVF32"], ["PQ16x4fs", "PQ2x4fs"], "Refine(SQ8)",
                              [["HNSW8,SQ8", 16]], [4, 2], [2, 8], [16, 32])
    out = tmp_path / "screen"
    rows, found = screen.screen(small_ds, 6000, str(out), search, target_recall=0.8, repeats=1,
                                single_queries=5, progress=False)
    families = [v["family"] for v in found]
    assert families == ["IVF16,PQ16x4fs,Refine(SQ8)", "IVF16,PQ2x4fs,Refine(SQ8)",
                        "PCAR32,IVF32,PQ16x4fs,Refine(SQ8)", "PCAR32,IVF32,PQ2x4fs,Refine(SQ8)",
                        "HNSW8,SQ8 efC=16"]
    by = {v["family"]: v for v in found}
    # 1-byte codes cannot put the neighbours among the refine's 80 candidates: measured on the first space,
    # they are not built on the second, whose verdict says why
    assert by["IVF16,PQ2x4fs,Refine(SQ8)"]["verdict"].startswith("recall@10 interval never clears")
    # ... and only after nprobe went past the grid (4, 8) up to every list (16)
    swept = {r["setting"] for r in rows if r["index"] == "IVF16,PQ2x4fs,Refine(SQ8)"}
    assert {"nprobe=16,k_factor_rf=2", "nprobe=16,k_factor_rf=8"} <= swept
    assert by["IVF16,PQ2x4fs,Refine(SQ8)"]["verdict"].endswith(
        "with every list scanned, its codes are the limit at refine depths up to k_factor_rf=8")
    # a family that clears the target inside the grid is never timed at the costly end
    cleared = {r["setting"] for r in rows if r["index"] == "IVF16,PQ16x4fs,Refine(SQ8)"}
    assert cleared and not any(s.startswith("nprobe=16,") for s in cleared)
    lost = by["PCAR32,IVF32,PQ2x4fs,Refine(SQ8)"]["verdict"]
    assert lost.startswith("not screened: on IVF16") and "PQ16x4fs's did" in lost
    assert not by["PCAR32,IVF32,PQ16x4fs,Refine(SQ8)"]["verdict"].startswith("not screened")
    # nothing is saved for it, so a screening with another search may still measure it
    assert not os.path.exists(out / (coarse.file_name("PCAR32,IVF32,PQ2x4fs,Refine(SQ8)") + ".json"))
    assert os.path.exists(out / (coarse.file_name("PCAR32,IVF32,PQ16x4fs,Refine(SQ8)") + ".json"))


def test_the_grid_goes_deeper_up_to_every_list_or_past_the_graphs_efsearch():
    search = screen.search_of(["IVF64"], ["PQ8x4fs"], "Refine(SQ8)", [], [16, 8], [4, 16], [16, 32])
    ivf = "IVF64,PQ8x4fs,Refine(SQ8)"
    assert screen_grid.settings_for(ivf, 64, "L2", search) == [
        "nprobe=4,k_factor_rf=4", "nprobe=4,k_factor_rf=16", "nprobe=8,k_factor_rf=4",
        "nprobe=8,k_factor_rf=16"]
    # nprobe doubles from the grid's deepest (64 // 8) to nlist, each step with the refine depths
    assert screen_grid.deeper_settings(ivf, 64, "L2", search) == [
        ["nprobe=16,k_factor_rf=4", "nprobe=16,k_factor_rf=16"],
        ["nprobe=32,k_factor_rf=4", "nprobe=32,k_factor_rf=16"],
        ["nprobe=64,k_factor_rf=4", "nprobe=64,k_factor_rf=16"]]
    assert screen_grid.deeper_settings("IVF48,SQ8", 64, "L2", search)[-1] == ["nprobe=48"]
    assert screen_grid.deeper_settings("HNSW16,SQ8", 64, "L2", search) == [["efSearch=64"],
                                                                          ["efSearch=128"]]
    # a graph that never clears says the grid stopped it, not the family
    said = screen_grid.grid_limit([{"setting": "efSearch=64"}, {"setting": "efSearch=128"}])
    assert said == ("; the grid stopped at efSearch=128, not the family: deeper screen_ef_search "
                    "values may clear it")


def test_a_spent_time_budget_leaves_the_rest_unscreened_in_order(small_ds, tmp_path):
    search = screen.search_of(["IVF16"], ["PQ16x4fs", "PQ8x4fs"], "Refine(SQ8)",
                              [["HNSW8,SQ8", 16]], [2], [2], [16])
    _, found = screen.screen(small_ds, 6000, str(tmp_path), search, time_budget=1e-9, repeats=1,
                             single_queries=5, progress=False)
    # the first candidate starts inside the budget, every later one finds it spent
    assert [v["verdict"] == screen.BUDGET_SPENT for v in found] == [
        False, True, True]


def test_the_command_refuses_a_budget_it_cannot_read(small_ds, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "helpers", "screen", str(small_ds.root), "--out",
                          str(tmp_path / "s"), "--build-time-budget", "soon"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("SCREENING FAILED:") and "soon" in out.stderr
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_the_finalists_files_fit_the_disk_budget_together():
    # the fastest, a larger one, a smaller one, all over recall 0.95, on one coarse space
    fast, large, small = "IVF16,PQ8x4fs,Refine(SQ8)", "IVF16,PQ16x4fs,Refine(SQ8)", "IVF16,SQ8"
    built = {f: dict(_record(0.97, 0.96, qps), info={"add_s": 1.0, "train_s": 1.0})
             for f, qps in ((fast, 3000), (large, 2000), (small, 1000))}
    n, d = 100_000, 64
    both = screen.files_bytes([fast, large], n, d, "L2")
    alone = {f: screen.files_bytes([f], n, d, "L2") for f in (fast, large)}
    assert both < alone[fast] + alone[large]  # their shared coarse space counts once

    def verdicts(budget):
        return {v["family"]: v["verdict"] for v in screen.verdicts(
            built, 1000, n, d, "L2", target_recall=0.95, finalists=2, disk_budget=budget)}

    assert verdicts(None) == {fast: "finalist", large: "finalist", small: verdicts(None)[small]}
    assert verdicts(None)[small].startswith("slower: 1,000 queries/s")
    tight = verdicts(both - 1)  # the two fastest do not fit together: the next that does goes on
    assert tight[fast] == "finalist" and tight[small] == "finalist"
    assert tight[large].startswith("its files at 100,000 rows would take the finalists' to ")
    assert tight[large].endswith("disk budget")
