import os

import faiss
import numpy as np
import pytest

from helpers.core import heuristics
from helpers.data import groundtruth
from helpers.data.vectors import read_rows
from helpers.index import build
from helpers.search import choose, evaluate


def test_knn_recall_hand_built_cases():
    gt = np.array([[1, 2, 3], [4, 5, 6]])
    I = np.array([[3, 9, 1], [-1, -1, -1]])
    np.testing.assert_allclose(evaluate.knn_recall(I, gt, 3), [2 / 3, 0])
    np.testing.assert_allclose(evaluate.knn_recall(I, gt, 1), [0, 0])  # 3 is not the top-1
    # fewer results than k: the missing ones are misses, not ignored
    np.testing.assert_allclose(evaluate.knn_recall(np.array([[1], [4]]), gt, 3), [1 / 3, 1 / 3])
    # -1 never matches, even against a -1 in a short ground truth
    assert evaluate.knn_recall(np.array([[-1, 2]]), np.array([[-1, 2]]), 2)[0] == 0.5


def test_distance_recall_counts_ties_and_respects_metric():
    gt_D = np.array([[0.1, 0.2, 0.5]])
    # id differs from the ground truth but sits at the same distance as the 3rd neighbour
    assert evaluate.distance_recall(np.array([[0.1, 0.2, 0.5]]), gt_D, 3)[0] == 1
    assert evaluate.distance_recall(np.array([[0.1, 0.6, np.nan]]), gt_D, 3)[0] == 1 / 3
    ip = np.array([[0.9, 0.8, 0.7]])
    assert evaluate.distance_recall(np.array([[0.9, 0.7, 0.1]]), ip, 3, "IP")[0] == 2 / 3


def test_recall_refuses_wrong_ground_truth():
    gt = np.zeros((5, 10), dtype="int64")
    with pytest.raises(ValueError, match="another query set"):
        evaluate.knn_recall(np.zeros((4, 10), dtype="int64"), gt, 10)
    with pytest.raises(ValueError, match="only 10 neighbours"):
        evaluate.knn_recall(np.zeros((5, 100), dtype="int64"), gt, 100)


def test_exact_rerank_recovers_exact_order(small_ds):
    from helpers.search import exact

    xq = read_rows(small_ds.queries, 0, 30)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    # candidates: the true top-10 shuffled, plus junk and a missing slot
    rng = np.random.default_rng(0)
    cand = np.hstack([rng.permuted(gt_I[:30], axis=1), rng.integers(0, small_ds.n, (30, 5)),
                      np.full((30, 1), -1)])
    D, I = exact.rerank(xq, small_ds.base, cand, 10, small_ds.metric)
    np.testing.assert_array_equal(I, gt_I[:30])
    np.testing.assert_allclose(D, gt_D[:30], rtol=1e-4, atol=1e-5)
    De = exact.exact_distances(xq, small_ds.base, cand, small_ds.metric)
    assert np.isnan(De[:, -1]).all() and not np.isnan(De[:, :-1]).any()
    with pytest.raises(ValueError, match="another dataset"):
        exact.exact_distances(xq, small_ds.base, cand + small_ds.n, small_ds.metric)


def test_sweep_is_monotonic_in_nprobe_and_frontier_and_recommendation(small_ds, tmp_path):
    r = build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 100, progress=False)
    settings = evaluate.default_settings(r["index"])
    assert settings == ["nprobe=1", "nprobe=2", "nprobe=4", "nprobe=8", "nprobe=16"]
    rows = evaluate.sweep({"ivf": (r["index"], 123)}, xq, gt_D, gt_I, small_ds.base,
                          small_ds.metric, repeats=5, single_queries=10, progress=False)
    recalls = [row["recall@10"] for row in rows]
    assert recalls == sorted(recalls) and recalls[-1] > recalls[0] + 0.2
    assert [row["nprobe"] for row in rows] == [1, 2, 4, 8, 16]
    front = choose.pareto_frontier(rows)
    for row in rows:
        assert row["threads"] == faiss.omp_get_max_threads() and row["file_bytes"] == 123
        assert row["dist_recall@10"] >= row["recall@10"] - 1e-9  # ties count as found
        lo, hi = row["recall@10_ci"]
        assert lo <= row["recall@10"] <= hi
        if row["batches"] == 5:  # on the quick pass's frontier: timed in full
            assert row["single_queries"] == 10 and 0 < row["p50_ms"] <= row["p99_ms"]
            assert row["qps_min"] <= row["qps_median"] <= row["qps_max"]
        else:  # dominated by a setting of the same index: one batch, no latency
            assert row["batches"] == 1 and "p50_ms" not in row
    assert front and all(not any(o["recall@10"] > f["recall@10"] and o["qps_median"] > f["qps_median"]
                                 for o in rows) for f in front)
    best, text = choose.recommend(rows, recalls[2], 10**9)
    assert best["batches"] == 5 and best["recall@10_ci"][0] >= recalls[2] and "ivf" in text
    # only settings timed in full are recommended (one batch never decides)
    assert best["qps_median"] == max(r_["qps_median"] for r_ in rows
                                     if choose.goal_met(r_, recalls[2]) and r_["batches"] == 5)
    none, text = choose.recommend(rows, 1.01, 10**9)
    assert none is None and "no configuration" in text
    assert choose.recommend(rows, 0.5, 100)[1].startswith("no index fits")


def test_default_settings_for_hnsw_quantizer_and_refine():
    ivf = faiss.index_factory(32, "IVF64_HNSW32,PQ8x4fs,RFlat")
    s = evaluate.default_settings(ivf, max_nprobe=4)
    assert s[-1] == "nprobe=4,quantizer_efSearch=8,k_factor_rf=256" and len(s) == 3 * 2 * 5
    evaluate.set_parameters(ivf, s[-1])  # beyond ParameterSpace's own range, still applied
    assert faiss.downcast_index(ivf).k_factor == 256
    assert all(int(x.split(",")[1].split("=")[1]) >= int(x.split(",")[0].split("=")[1]) for x in s)
    assert evaluate.default_settings(faiss.index_factory(32, "HNSW16"), k=10)[0] == "efSearch=16"


def test_hnsw_below_k_steps_searches_shallow(small_ds, tmp_path):
    r = build.build_index(small_ds, "HNSW16,SQ8", tmp_path / "h.faiss", progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 100, progress=False)
    rows = evaluate.sweep({"h": (r["index"], 0)}, xq, gt_D, gt_I, None, small_ds.metric,
                          settings={"h": ["efSearch=16", "efSearch=256"]}, repeats=1,
                          single_queries=10, progress=False)
    # faiss's HNSW stops after efSearch steps whatever k: 16 steps cannot rank 100 results
    assert rows[0]["recall@100"] < rows[1]["recall@100"] - 0.05
    assert rows[0]["single_queries"] == 10  # the frontier setting: distinct single queries


def test_capped_scan_keeps_the_refine_depth(small_ds, tmp_path):
    r = build.build_index(small_ds, "IVF32,PQ8,Refine(SQ8)", tmp_path / "i.faiss", n_train=2000,
                          progress=False)
    assert evaluate.scan_all_setting(r["index"]) == "nprobe=32,k_factor_rf=4"
    # a capped scan still re-ranks k_factor x k candidates, else the refine stage
    # would only reorder the base index's top k
    assert evaluate.scan_all_setting(r["index"], nprobe=8) == "nprobe=8,k_factor_rf=4"


def test_sweep_of_a_file_says_how_it_was_loaded(small_ds, tmp_path):
    build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 100, progress=False)
    rows = evaluate.sweep({"ivf": (str(tmp_path / "i.faiss"), 0)}, xq, gt_D, gt_I, None,
                          small_ds.metric, settings={"ivf": ["nprobe=4"]}, repeats=1,
                          single_queries=5, progress=False)
    assert rows[0]["loaded"] == "mapped, warmed"  # a small file is read into the page cache first


def test_sweep_re_ranks_at_the_depths_asked_and_deeper_finds_more(small_ds, tmp_path):
    r = build.build_index(small_ds, "IVF32,PQ4x4fs,Refine(SQ8)", tmp_path / "i.faiss",
                          n_train=2000, progress=False)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 100, progress=False)
    rows = evaluate.sweep({"r": (r["index"], 0)}, xq, gt_D, gt_I, None, small_ds.metric,
                          repeats=1, single_queries=5, progress=False, max_nprobe=16,
                          k_factors=(1, 40))
    assert [(row["nprobe"], row["k_factor_rf"]) for row in rows] == \
        [(p, kf) for p in (1, 2, 4, 8, 16) for kf in (1, 40)]
    deepest = {row["k_factor_rf"]: row["recall@10"] for row in rows if row["nprobe"] == 16}
    # 2-byte codes rank poorly; re-ranking 400 candidates exactly recovers most of the top 10
    assert deepest[40] > deepest[1] + 0.3


def test_the_recommendation_is_timed_both_ways_it_could_be_served(small_ds, tmp_path):
    build.build_index(small_ds, "IVF32,SQ8", tmp_path / "i.faiss", n_train=2000, progress=False)
    path, nbytes = str(tmp_path / "i.faiss"), os.path.getsize(tmp_path / "i.faiss")
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 100, progress=False)
    both = evaluate.time_as_served("ivf", path, "nprobe=4", nbytes, 10 * nbytes, xq, gt_D, gt_I,
                                   small_ds.metric, repeats=1, single_queries=5)
    assert both["qps_median"] == max(both["qps_mapped"], both["qps_in_ram"])  # the faster is kept
    assert both["loaded"] == ("in RAM" if both["qps_in_ram"] > both["qps_mapped"] else "mapped")
    assert both["setting"] == "nprobe=4" and both["recall@10"] > 0.5
    over = evaluate.time_as_served("ivf", path, "nprobe=4", nbytes, nbytes // 2, xq, gt_D, gt_I,
                                   small_ds.metric, repeats=1, single_queries=5)
    assert over["loaded"] == "mapped" and "qps_in_ram" not in over  # over the budget: mapped only
    assert over["recall@10"] == both["recall@10"]  # same index, same setting


def test_time_search_discards_a_warm_up_and_reports_the_batches():
    calls = []

    class Counting(faiss.IndexFlatL2):
        def search(self, x, k):
            calls.append(len(x))
            return super().search(x, k)

    index = Counting(8)
    index.add(np.random.default_rng(0).standard_normal((500, 8)).astype("float32"))
    xq = np.random.default_rng(1).standard_normal((40, 8)).astype("float32")
    _, row = evaluate.time_search(index, xq, 5, repeats=6, single_queries=12)
    assert calls == [40] * 7 + [1] * 12  # warm-up, 6 timed batches, 12 distinct singles
    assert row["batches"] == 6 and row["single_queries"] == 12
    assert row["qps_min"] <= row["qps_median"] <= row["qps_max"]


def test_recall_interval_and_goal():
    rng = np.random.default_rng(0)
    per_query = (rng.random(1000) < 0.9).astype(float)  # binomial, p = 0.9
    lo, hi = evaluate.recall_interval(per_query)
    se = np.sqrt(0.9 * 0.1 / 1000)  # the normal approximation's interval, for comparison
    assert abs((hi - lo) - 2 * 1.96 * se) < 0.01 and lo < per_query.mean() < hi
    assert evaluate.recall_interval(np.ones(50)) == [1.0, 1.0]
    row = {"recall@10": 0.951, "recall@10_ci": [0.944, 0.958], "qps_median": 3000}
    assert not choose.goal_met(row, 0.95)  # the mean clears 0.95, its interval does not
    assert choose.goal_met(row, 0.94, 2500) and not choose.goal_met(row, 0.94, 3500)


def test_an_hnsw_coarse_quantizer_returns_every_list_asked_for():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 16)).astype("float32")
    index = faiss.index_factory(16, "IVF1024_HNSW32,Flat")
    index.train(x)
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    evaluate.set_parameters(index, "nprobe=512,quantizer_efSearch=16")
    assert (quantizer.search(x[:50], 512)[1] < 0).any()  # faiss stops after efSearch steps
    evaluate.set_parameters(index, "nprobe=512")
    assert quantizer.hnsw.efSearch == heuristics.quantizer_ef_search(512) == 1024
    assert (quantizer.search(x[:50], 512)[1] >= 0).all()


def test_a_setting_string_round_trips_and_a_malformed_one_is_refused():
    assert evaluate.parse_setting("") == {}
    s = "nprobe=128,k_factor_rf=64,exact_depth=2"
    assert evaluate.parse_setting(s) == {"nprobe": "128", "k_factor_rf": "64", "exact_depth": "2"}
    assert evaluate.format_setting(evaluate.parse_setting(s)) == s
    for bad in ("nprobe", "nprobe=", "=5", "nprobe=1,k_factor_rf"):
        with pytest.raises(ValueError, match="is not name=value"):
            evaluate.parse_setting(bad)


def test_set_parameters_sets_rabitq_query_bits_and_the_rest_through_parameter_space():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2_000, 16)).astype("float32")
    index = faiss.index_factory(16, "IVF16,RaBitQ")
    index.train(x)
    evaluate.set_parameters(index, "nprobe=4,qb=4")
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    assert (ivf.nprobe, ivf.qb) == (4, 4)
