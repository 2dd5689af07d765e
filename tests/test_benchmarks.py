"""Every benchmark script runs, at a tiny size, and prints its figures: none can rot."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from helpers.index import build

BENCH = os.path.join(ROOT, "benchmarks")


def _run(script, *args):
    out = subprocess.run([sys.executable, os.path.join(BENCH, script), *map(str, args)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_data(tmp_path):
    big = tmp_path / "big"
    _run("bench_data.py", "--n", 6000, "--d", 32, "--nq", 20, "--k", 10, "--repeats", 2, "--dir", big)
    out = _run("bench_data.py", "--n", 3000, "--d", 32, "--nq", 20, "--k", 10, "--repeats", 2,
               "--dir", tmp_path / "small", "--at-scale", big)
    assert "streamed at 6,000 rows, 20 queries:" in out and "in RAM at 3,000: ratio" in out
    assert "ratio streamed / in-RAM throughput:" in out and "(range " in out
    assert "ids identical: 1.0000" in out


def test_bench_build(tmp_path):
    out = _run("bench_build.py", "--n", 3000, "--d", 32, "--factory", "IVF16,SQ8", "--repeats", 2,
               "--dir", tmp_path)
    assert "ratio helper / in-RAM:" in out and "2 repeats after a warm-up" in out


def test_bench_assign(tmp_path):
    out = _run("bench_assign.py", "--n", 3000, "--d", 32, "--nlist", 16, "--repeats", 2,
               "--dir", tmp_path)
    assert "same search results: [True, True, True]" in out


def test_bench_memory(tmp_path):
    out = _run("bench_memory.py", "--n", 2000, "--d", 32, "--families", "IVF16,SQ8", "HNSW16,Flat",
               "--dir", tmp_path)
    assert out.count("IVF16,SQ8") >= 2 and "build peak" in out


def test_bench_sweep_and_hnsw_add_rate(small_ds, tmp_path):
    path = str(tmp_path / "h.faiss")
    build.build_index(small_ds, "HNSW16,SQ8", path, progress=False)
    out = _run("bench_sweep.py", small_ds.root, path, "--grid", "efSearch=16,64", "--repeats", 2,
               "--single-queries", 10, "--out", tmp_path / "s.csv")
    assert "efSearch=64" in out and (tmp_path / "s.csv").exists()
    out = _run("hnsw_add_rate.py", path + ".json", "--html", tmp_path / "c.html")
    assert "HNSW16,SQ8" in out and (tmp_path / "c.html").exists()


def test_graph_at_scale_builds_records_and_sweeps(small_ds, tmp_path):
    import csv
    import json

    out = _run("graph_at_scale.py", small_ds.root, "HNSW16,SQ8", "--ef-construction", 40,
               "--index-dir", tmp_path / "i", "--out", tmp_path / "o", "--ef-search", 16, 64,
               "--k-factors", 1, "--repeats", 2, "--single-queries", 10, "--target-recall", 0.5)
    report = json.load(open(tmp_path / "o" / "build.json"))
    assert report["ef_construction"] == 40 and report["add_s"] > 0 and report["add_trace"]
    rows = list(csv.DictReader(open(tmp_path / "o" / "sweep.csv")))
    assert [r["setting"] for r in rows] == ["efSearch=16", "efSearch=64"]
    assert {r["index"] for r in rows} == {"HNSW16,SQ8 efC=40"} and "best: efSearch=" in out
    # a second run reuses the build (same key) instead of rebuilding it
    again = _run("graph_at_scale.py", small_ds.root, "HNSW16,SQ8", "--ef-construction", 40,
                 "--index-dir", tmp_path / "i", "--out", tmp_path / "o2", "--ef-search", 16,
                 "--k-factors", 1, "--repeats", 2, "--single-queries", 10)
    assert json.load(open(tmp_path / "o2" / "build.json"))["sha256"] == report["sha256"]
    assert f"HNSW16,SQ8 efC=40 (reused): add {report['add_s']:,.0f} s" in again


def test_high_recall_runs_the_exact_stage_on_a_built_index(small_ds, tmp_path):
    import csv

    out = _run("high_recall.py", small_ds.root, "IVF32,PQ8x4fs,Refine(SQ8)", "--index-dir", tmp_path / "i",
               "--settings", "nprobe=4,k_factor_rf=2", "nprobe=32,k_factor_rf=4", "--depths", 1, 4,
               "--out", tmp_path / "h.csv", "--repeats", 2, "--single-queries", 10, "--target", 0.8)
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [r["setting"] for r in rows] == [
        "nprobe=4,k_factor_rf=2,exact_depth=1", "nprobe=4,k_factor_rf=2,exact_depth=4",
        "nprobe=32,k_factor_rf=4,exact_depth=1", "nprobe=32,k_factor_rf=4,exact_depth=4"]
    recall = {r["setting"]: float(r["recall@10"]) for r in rows}
    # scanning every list and re-ranking 40 candidates exactly finds more than 4 lists and 10
    assert recall["nprobe=32,k_factor_rf=4,exact_depth=4"] > recall["nprobe=4,k_factor_rf=2,exact_depth=1"]
    assert "For recall@10 >= 0.8:" in out and "p50 " in out


@pytest.mark.parametrize("folder", ["full", "1m"])
def test_answer_reads_the_committed_results(folder):
    out = _run("answer.py", os.path.join(BENCH, "results", folder))
    assert "| index |" in out


def test_finalists_chart_draws_the_committed_sweep(tmp_path):
    import shutil

    import csv

    sweep = os.path.join(BENCH, "results", "full", "sweep.csv")
    shutil.copy(sweep, tmp_path / "sweep.csv")
    shutil.copy(os.path.join(BENCH, "results", "full", "summary.json"), tmp_path / "summary.json")
    extra = tmp_path / "extra.csv"
    with open(sweep) as f, open(extra, "w") as g:
        g.writelines(line.replace("IVF4096,", "IVF999,", 1) for line in f)
    out = _run("finalists_chart.py", tmp_path, "--extra", extra)
    page = open(out.strip()).read()
    names = {r["index"] for r in csv.DictReader(open(sweep))}
    assert "Plotly.newPlot" in page and all(name in page for name in names)
    # notebook 06's exact final stage and the extra CSV are series of their own
    assert "PCAR256,IVF16384,PQ256x4fs,Refine(SQ8) + float32 re-rank" in page
    assert "IVF999,PQ256x4fs,Refine(SQ8) + float32 re-rank" in page


def test_screening_table_lists_every_screened_family():
    import json

    path = os.path.join(BENCH, "results", "full", "screening", "verdicts.json")
    out = _run("screening_table.py", path)
    screened = [v["family"] for v in json.load(open(path)) if not v["verdict"].startswith("not screened")]
    assert screened and all(f"`{family}`" in out for family in screened)
    assert out.count("| finalist |") == sum(v["verdict"] == "finalist" for v in json.load(open(path)))


def test_screening_table_tells_a_spent_budget_from_a_code_left_behind(tmp_path):
    import json

    from helpers.search import screen

    lost = "not screened: on IVF16 it cleared recall@10 0.95 at 600 queries/s, under 1/1.5 of A's 1,000"
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps([{"family": "IVF16,A", "verdict": "finalist", "qps_median": 1000},
                                {"family": "IVF32,B", "verdict": lost},
                                {"family": "HNSW8", "verdict": screen.BUDGET_SPENT}]))
    out = _run("screening_table.py", path)
    assert "Not screened (time budget): `HNSW8`." in out
    assert "- `IVF32,B`: on IVF16 it cleared recall@10 0.95 at 600 queries/s" in out


def test_hnsw_projection_reads_the_screening_and_checks_a_real_build(tmp_path):
    import csv

    full = os.path.join(BENCH, "results", "full")
    out = _run("hnsw_projection.py", os.path.join(full, "screening"), os.path.join(full, "screening_2m"),
               "--check", os.path.join(full, "hnsw32_sq8_build.json"), "--csv", tmp_path / "p.csv")
    rows = {r["family"]: r for r in csv.DictReader(open(tmp_path / "p.csv"))}
    assert set(rows) == {f + " efC=100" for f in ("PCAR128,HNSW32,Refine(SQ8)", "PCAR128,HNSW48,Refine(SQ8)",
                                                  "PCAR256,HNSW32,Refine(SQ8)", "PCAR256,HNSW32,SQ8,Refine(SQ8)")}
    assert float(rows["PCAR256,HNSW32,Refine(SQ8) efC=100"]["ram_at_target_gib"]) > 20  # over the budget
    two = rows["PCAR128,HNSW48,Refine(SQ8) efC=100"]  # the one graph screened at both sizes
    assert two["rows_large"] == "2000000" and float(two["add_s_large"]) > float(two["add_s_small"])
    # the exponent fitted between the sizes gives the projection: add_s(2M) * 5 ** (1 + a)
    a = float(two["exponent"])
    assert abs(float(two["projected_build_min"]) - float(two["add_s_large"]) * 5 ** (1 + a) / 60) <= 1
    assert "projected / measured" in out and "fitted on 1,163,264" in out
