"""The committed runs' results (benchmarks/results) as the notebooks show them
beside their own: read from the files, with a line for what is missing."""

import json
import os
import shutil

import pandas as pd

from helpers.core.files import read_json, write_json
from helpers.data import ingest
from helpers.data.vectors import read_rows
from helpers.index import planner
from helpers.notebook import evidence
from helpers.search import choose

from conftest import write_vectors

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


def test_committed_10m_evidence_reads_the_full_run():
    answer = evidence.answer_table()
    summary = json.load(open(os.path.join(evidence.FULL, "summary.json")))
    recommended = summary["results"]["06_recall_vs_latency"]["recommended"]
    assert list(answer["index"])[0] == recommended["index"]
    assert list(answer["setting"])[0] == recommended["setting"]
    finalists = evidence.best_per_index()
    assert recommended["index"] in set(finalists["index"]) and finalists["clears 0.95"].all()
    graphs = evidence.graphs_10m()
    first = graphs.iloc[0]  # faiss's default efConstruction 40 at 10M: never 0.95
    assert first["efConstruction"] == 40 and first["rows"] == 10_000_000
    # it was resumed from a checkpoint: its add time and rate are those of the rows that run added
    assert first["resumed from"] == "checkpoint" and first["rows added in its last run"] == 8_836_736
    assert abs(first["vectors/s added"] * first["add in its last run (min)"] * 60 / 8_836_736 - 1) < 0.01
    assert first["recall@10"] < 0.95 and not first["clears 0.95"]
    built = graphs.iloc[1]  # the screening's fastest graph, built at 10M with efConstruction 100
    assert built["efConstruction"] == 100 and built["rows"] == 10_000_000
    rows = [r for r in choose.read_sweep(os.path.join(evidence.FULL, "graph_10m", "sweep.csv")) if r["setting"] == built["setting"]]
    assert len(rows) == 1 and round(rows[0]["qps_median"]) == built["queries/s (median)"]


def test_hnsw_model_error_is_computed_from_the_committed_trace():
    ratio, first, last, factory = evidence.hnsw_model_error()
    assert factory == "HNSW32,SQ8"
    assert last == 10_000_000 and first < 2_000_000
    assert 0.5 < ratio < 2  # the model is an estimate, not a measurement: within 2x here
    # a flatter cost growth projects less time: the ratio moves with the exponent
    saved = planner.HNSW_COST_EXPONENT
    try:
        planner.HNSW_COST_EXPONENT = 0.0
        assert evidence.hnsw_model_error()[0] < ratio
    finally:
        planner.HNSW_COST_EXPONENT = saved


def _summary():
    return read_json(os.path.join(evidence.FULL, "summary.json"))


def test_the_10m_answer_is_the_committed_recommendation_built_from_empty():
    a = evidence.answer_10m()
    results = _summary()["results"]
    best = results["06_recall_vs_latency"]["recommended"]
    report = results["03_build_ivfpq"]["builds"][best["index"]]
    assert (a["index"], a["setting"], a["qps"], a["p99_ms"]) == (best["index"], best["setting"],
                                                                  best["qps_median"], best["p99_ms"])
    assert a["build_peak"] == report["measured"]["build_peak"]
    # the run reused its coarse space: its k-means and assignment come from the run that trained it
    assert report["coarse_reused"]
    earlier = read_json(os.path.join(evidence.FULL, "previous_run", "summary.json"))["results"]
    trained = [r for r in earlier["03_build_ivfpq"]["builds"].values()
               if not r["coarse_reused"] and r["factory"].startswith("PCAR256,IVF16384,")]
    assert len(trained) == 1
    want = trained[0]["coarse_train_s"] + trained[0]["coarse_assign_s"] + report["train_s"] + report["add_s"]
    assert abs(a["build_s"] - want) < 1e-6 and 15 * 60 < a["build_s"] < 30 * 60
    assert [where.split(",")[0] for _, _, where in a["steps"]] == ["previous_run"] * 2 + ["the run"] * 2
    line = evidence.answer_line(a)
    for figure in (f"{best['recall@10']:.3f}", f"{best['qps_median']:,.0f}", f"{best['p50_ms']:.2f}",
                   planner.format_seconds(want), "0.951–0.962"):
        assert figure in line
    table = evidence.steps_table(a)
    assert list(table["step"])[-1] == "from an empty folder" and len(table) == 5


def test_a_coarse_space_trained_by_no_recorded_run_leaves_the_build_time_unknown(tmp_path):
    shutil.copy(os.path.join(evidence.FULL, "summary.json"), tmp_path)  # without previous_run/
    a = evidence.answer_10m(str(tmp_path))
    assert a["build_s"] is None and len(a["steps"]) == 2
    assert "not known" in evidence.answer_line(a)
    assert "from an empty folder" not in set(evidence.steps_table(a)["step"])
    # no committed run at all: nothing, and one line where the choice is compared
    assert evidence.answer_10m(str(tmp_path / "none")) is None
    said = evidence.why_differs({"index": "IVF64,SQ8", "qps_median": 1.0}, None, [], [], 20_000)
    assert said.startswith("no committed 10M answer") and "\n" not in said


def test_why_the_choice_differs_is_said_in_the_runs_numbers():
    a = evidence.answer_10m()
    graph = {"index": "HNSW32,Flat", "setting": "efSearch=64", "recall@10": 0.97,
             "recall@10_ci": [0.96, 0.98], "qps_median": 3000.0, "timed": "in full"}
    mine = {"index": "PCAR64,IVF64,PQ64x4fs,Refine(SQ8)", "setting": "nprobe=8,k_factor_rf=16",
            "recall@10": 0.96, "recall@10_ci": [0.951, 0.97], "qps_median": 2000.0, "timed": "in full"}
    points, _ = evidence.winner_by_n([graph, mine], 20_000)
    said = evidence.why_differs(graph, a, points, [graph, mine], 20_000)
    assert "HNSW32,Flat (a graph) on 20,000 rows" in said and a["index"] in said
    assert "at 20,000 rows the fastest graph HNSW32,Flat at 3,000 queries/s" in said
    assert f"the fastest IVF {a['index']} at {a['qps']:,.0f} queries/s" in said
    assert "at 10,000,000 rows no graph cleared it" in said
    assert "PCAR64,IVF64,PQ64x4fs,Refine(SQ8) cleared it at 2,000 queries/s" in said  # its stand-in here
    assert "no index of the 10M family" in evidence.why_differs(graph, a, points, [graph], 20_000)
    assert "the same family" in evidence.why_differs(mine, a, points, [mine], 20_000)
    # another family: a layer differs (no PCA, an exact refine)
    other = dict(mine, index="IVF64,PQ64x4fs,RFlat")
    assert "the same family" not in evidence.why_differs(other, a, points, [other], 20_000)
    assert "the same index" in evidence.why_differs(dict(mine, index=a["index"]), a, points, [], 20_000)


def test_a_committed_graph_build_of_another_dataset_is_left_out_with_a_line(tmp_path):
    shutil.copy(os.path.join(evidence.FULL, "summary.json"), tmp_path)
    shutil.copytree(os.path.join(evidence.FULL, "graph_10m"), tmp_path / "graph_10m")
    assert len(evidence.graphs_10m(str(tmp_path))) == 1 and evidence.foreign_files(str(tmp_path)) == []
    report = read_json(str(tmp_path / "graph_10m" / "build.json"))
    write_json(str(tmp_path / "graph_10m" / "build.json"), dict(report, dataset="f" * 64))
    assert evidence.graphs_10m(str(tmp_path)).empty
    [line] = evidence.foreign_files(str(tmp_path))
    assert "build.json is from another dataset (ffffffffffff" in line and line.endswith("left out")


def test_a_users_vectors_are_told_apart_from_the_committed_synthetic_ones(small_ds, tmp_path):
    assert evidence.data_note(small_ds) == ""
    path = tmp_path / "mine.npy"
    write_vectors(path, read_rows(small_ds.base, 0, 600))
    mine = ingest.import_vectors(str(tmp_path / "ds"), str(path), n_queries=50, progress=False)
    assert "your vectors, not the committed runs'" in evidence.data_note(mine)


def test_about_says_what_the_committed_run_is_or_that_it_is_missing(small_ds, tmp_path):
    lines = evidence.about(small_ds)
    assert lines[0] == f"committed run: preset full, 10,000,000 x 1024; this run: {small_ds.n:,} x {small_ds.d}"
    assert lines[1] == evidence.answer_line(evidence.answer_10m()) and len(lines) == 2
    assert evidence.about(small_ds, str(tmp_path)) == [evidence.MISSING]
