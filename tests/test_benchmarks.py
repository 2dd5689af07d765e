"""Every benchmark script runs, at a tiny size, and prints its figures: none can rot."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from helpers import build

BENCH = os.path.join(ROOT, "benchmarks")


def _run(script, *args):
    out = subprocess.run([sys.executable, os.path.join(BENCH, script), *map(str, args)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_data(tmp_path):
    out = _run("bench_data.py", "--n", 3000, "--d", 32, "--nq", 20, "--k", 10, "--repeats", 2,
               "--dir", tmp_path)
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


@pytest.mark.parametrize("folder", ["full", "1m"])
def test_answer_reads_the_committed_results(folder):
    out = _run("answer.py", os.path.join(BENCH, "results", folder))
    assert "| index |" in out


def test_finalists_chart_draws_the_committed_sweep(tmp_path):
    import shutil

    import csv

    sweep = os.path.join(BENCH, "results", "full", "sweep.csv")
    shutil.copy(sweep, tmp_path / "sweep.csv")
    out = _run("finalists_chart.py", tmp_path)
    page = open(out.strip()).read()
    names = {r["index"] for r in csv.DictReader(open(sweep))}
    assert "Plotly.newPlot" in page and all(name in page for name in names)


def test_screening_table_lists_every_screened_family():
    import json

    path = os.path.join(BENCH, "results", "full", "screening", "verdicts.json")
    out = _run("screening_table.py", path)
    screened = [v["family"] for v in json.load(open(path)) if not v["verdict"].startswith("not screened")]
    assert screened and all(f"`{family}`" in out for family in screened)
    assert out.count("| finalist |") == sum(v["verdict"] == "finalist" for v in json.load(open(path)))


def test_hnsw_projection_reads_the_screening_and_checks_a_real_build(tmp_path):
    import csv

    screening = os.path.join(BENCH, "results", "full", "screening")
    out = _run("hnsw_projection.py", screening, "--check",
               os.path.join(BENCH, "results", "full", "hnsw32_sq8_build.json"), "--csv", tmp_path / "p.csv")
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["family"] for r in rows] == ["PCAR256,HNSW32,Refine(SQ8) efC=100"]
    assert float(rows[0]["ram_at_target_gib"]) > 20  # why it is not a finalist at 10M
    assert "projected / measured" in out and "fitted on 1,163,264" in out
