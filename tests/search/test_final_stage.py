"""The exact final stage: candidates re-ranked with float32 rows read from disk."""

import faiss

from helpers.data import groundtruth
from helpers.data.vectors import read_rows
from helpers.index import build
from helpers.search import choose, evaluate, final_stage


def test_settings_around_go_deeper():
    assert final_stage.settings_around("nprobe=8,k_factor_rf=4") == [
        "nprobe=8,k_factor_rf=4", "nprobe=8,k_factor_rf=8", "nprobe=16,k_factor_rf=4",
        "nprobe=16,k_factor_rf=8", "nprobe=32,k_factor_rf=4", "nprobe=32,k_factor_rf=8",
        "nprobe=48,k_factor_rf=4", "nprobe=48,k_factor_rf=8", "nprobe=64,k_factor_rf=4",
        "nprobe=64,k_factor_rf=8"]
    # a graph goes deeper in its own parameter (with a refine, in both)
    assert final_stage.settings_around("efSearch=64") == ["efSearch=64", "efSearch=128",
                                                          "efSearch=256", "efSearch=512"]
    assert final_stage.settings_around("efSearch=32,k_factor_rf=4", {"efSearch": (1, 2)}) == [
        "efSearch=32,k_factor_rf=4", "efSearch=64,k_factor_rf=4"]


def test_the_exact_stage_lifts_recall_and_is_timed_cold_and_warm(small_ds, tmp_path):
    r = build.build_index(small_ds, "IVF32,PQ8x4fs,Refine(SQ8)", tmp_path / "i.faiss", n_train=2000,
                          progress=False)
    index = r["index"]
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    evaluate.set_parameters(index, "nprobe=32,k_factor_rf=2")
    plain = evaluate.knn_recall(index.search(xq, 10)[1], gt_I, 10).mean()
    rows = final_stage.sweep("i", index, xq, gt_I, small_ds.base, small_ds.metric,
                             ["nprobe=32,k_factor_rf=2", "nprobe=64,k_factor_rf=2"], depths=(1, 4),
                             repeats=3)
    assert len(rows) == 2  # nprobe 64 on 32 lists is the nprobe=32 search: not timed twice
    by_depth = {r_["setting"]: r_ for r_ in rows}
    deep = by_depth["nprobe=32,k_factor_rf=2,exact_depth=4"]
    # the exact stage reorders what SQ8 got wrong: recall rises above the index's own
    assert deep["recall@10"] > plain and deep["recall@10"] >= by_depth[
        "nprobe=32,k_factor_rf=2,exact_depth=1"]["recall@10"]
    for row in rows:
        assert row["batches"] == 3 and row["qps_min"] <= row["qps_median"] <= row["qps_max"]
        assert row["qps_cold"] > 0 and row["recall@10_ci"][0] <= row["recall@10"]
        assert row["threads"] == faiss.omp_get_max_threads()
    best, text = final_stage.recommend(rows, deep["recall@10_ci"][0])
    assert best["qps_median"] == max(r_["qps_median"] for r_ in rows
                                     if choose.goal_met(r_, deep["recall@10_ci"][0]))
    assert "read from disk" in text
    assert final_stage.recommend(rows, 1.01)[0] is None
    lat = final_stage.latency(index, xq, small_ds.base, deep["setting"], n=20)
    assert 0 < lat["p50_ms"] <= lat["p99_ms"] and lat["single_queries"] == 20


def test_costlier_is_deeper_in_every_value():
    assert final_stage.costlier("nprobe=64,k_factor_rf=8,exact_depth=5", "nprobe=32,k_factor_rf=8,exact_depth=2")
    assert final_stage.costlier("nprobe=32,k_factor_rf=8,exact_depth=2", "nprobe=32,k_factor_rf=8,exact_depth=2")
    # more lists but fewer candidates may be faster: not skipped
    assert not final_stage.costlier("nprobe=64,k_factor_rf=4,exact_depth=2", "nprobe=32,k_factor_rf=8,exact_depth=2")
    assert not final_stage.costlier("nprobe=64", "nprobe=32,k_factor_rf=8")


def test_a_cleared_target_skips_only_the_settings_that_could_only_be_slower(small_ds, tmp_path):
    r = build.build_index(small_ds, "IVF32,PQ8x4fs,Refine(SQ8)", tmp_path / "i.faiss", n_train=2000,
                          progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    _, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    settings = final_stage.settings_around("nprobe=4,k_factor_rf=2", {"nprobe": (1, 2, 4),
                                                                          "k_factor_rf": (1, 2)})
    args = ("i", r["index"], xq, gt_I, small_ds.base, small_ds.metric, settings, (1, 4))
    every = final_stage.sweep(*args, repeats=1)
    # a target the first setting cannot reach and one with deeper settings after it can
    def lo(x):
        return x["recall@10_ci"][0]

    target = min(lo(x) for x in every if lo(x) > lo(every[0]) and any(
        final_stage.costlier(y["setting"], x["setting"]) for y in every if y is not x))
    pruned = final_stage.sweep(*args, repeats=1, stop_at=target)
    cleared = [x["setting"] for x in pruned if x["recall@10_ci"][0] >= target]
    kept = {x["setting"] for x in pruned}
    assert cleared and len(pruned) < len(every)
    for x in every:  # skipped exactly when deeper in every value than a cleared row
        skip = any(final_stage.costlier(x["setting"], c) and x["setting"] != c for c in cleared)
        assert (x["setting"] not in kept) == skip, x["setting"]
    # recall is deterministic: the kept rows measure what the full sweep measured
    assert {x["setting"]: x["recall@10"] for x in pruned}.items() <= {
        x["setting"]: x["recall@10"] for x in every}.items()
    assert final_stage.recommend(pruned, target)[0]["setting"] in cleared


def test_a_graph_recommendation_goes_deeper_in_efsearch_until_it_clears(small_ds, tmp_path):
    r = build.build_index(small_ds, "HNSW16,SQ8", tmp_path / "g.faiss", progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    _, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    at_0_95 = "efSearch=8"
    rows = final_stage.sweep("g", r["index"], xq, gt_I, small_ds.base, small_ds.metric,
                             final_stage.settings_around(at_0_95), depths=(2,), repeats=2,
                             stop_at=0.99)
    shallow = rows[0]
    assert shallow["setting"] == "efSearch=8,exact_depth=2"
    high, text = final_stage.recommend(rows, 0.99)
    # the shallow search cannot reach 0.99; a deeper efSearch can, read exactly from disk
    assert shallow["recall@10_ci"][0] < 0.99 and high is not None, [x["recall@10"] for x in rows]
    assert int(evaluate.parse_setting(high["setting"])["efSearch"]) > 8
    assert high["recall@10_ci"][0] >= 0.99 and "read from disk" in text


def _row(index, setting, recall, qps, nbytes, **extra):
    return {"index": index, "setting": setting, "recall@10": recall,
            "recall@10_ci": [recall - 0.002, recall + 0.002], "qps_median": qps, "timed": "in full",
            "batches": 5, "file_bytes": nbytes, **extra}


def test_a_sweep_row_that_clears_faster_within_ram_is_the_answer_with_no_final_stage():
    final = [_row("A", "nprobe=64,k_factor_rf=16,exact_depth=2", 0.995, 800, 100, qps_cold=300)]
    swept = [_row("B", "efSearch=256", 0.997, 1500, 200),   # faster, within RAM
             _row("C", "efSearch=128", 0.999, 5000, 10**9),  # faster still, over the RAM budget
             _row("D", "nprobe=8", 0.95, 9000, 100)]          # fast, short of the goal
    high, text = final_stage.recommend(final, 0.99, swept=swept, ram_budget=1000)
    assert (high["index"], high["setting"]) == ("B", "efSearch=256")
    assert "with no final stage" in text and "1,500 queries/s" in text
    # without a faster sweep row, the final stage's own row is the answer
    high, text = final_stage.recommend(final, 0.99, swept=swept[2:], ram_budget=1000)
    assert high["index"] == "A" and "read from disk" in text and "300 cold" in text
