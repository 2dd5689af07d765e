"""The papermill pipeline, end to end at the tiny preset, in real kernels."""

import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import nbformat
import pytest

from conftest import reader_problems
from helpers.core import config, disk
from helpers.core.files import is_partial, read_json
from helpers.data import dataset
from helpers.index import build, factory_tree
from helpers.notebook import notebook_html
from helpers.pipeline import cli, run_checks
from helpers.pipeline import run as runner
from helpers.search import screen


@pytest.mark.parametrize("preset", sorted(config.PRESETS))
def test_every_preset_reaches_declared_parameters(preset, tmp_path):
    _, params = runner.load_params(preset)
    per_nb = runner.notebook_parameters(params, str(tmp_path), str(tmp_path / "r"), False)
    assert list(per_nb) == config.ORDER
    for name, values in per_nb.items():
        assert values["results_dir"] == str(tmp_path / "r")
        assert values["data_dir"] == str(tmp_path)
    assert per_nb["03_build_ivfpq"]["index_dir"] == os.path.join(str(tmp_path), "indexes")


def test_parameter_files_are_checked(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("preset: tiny\n03_build_ivfpq:\n  nlist: 8\n")
    preset, params = runner.load_params(None, f)
    assert preset == "tiny" and params["03_build_ivfpq"]["nlist"] == 8
    assert params["all"]["d"] == 64  # the rest of the preset stays
    (tmp_path / "j.json").write_text(json.dumps({"05_build_ivfsq": {"nprobe": 2}}))
    assert runner.load_params("tiny", tmp_path / "j.json")[1]["05_build_ivfsq"]["nprobe"] == 2
    f.write_text("03_build_ivfpq:\n  n_probe: 8\n")
    with pytest.raises(ValueError, match=r"03_build_ivfpq has no parameter\(s\) \['n_probe'\]"):
        runner.notebook_parameters(runner.load_params("tiny", f)[1], "d", "r", False)
    f.write_text("03_build_ivfpg:\n  nlist: 8\n")
    with pytest.raises(ValueError, match="unknown sections"):
        runner.load_params("tiny", f)
    with pytest.raises(ValueError, match="unknown preset"):
        runner.load_params("huge")
    f.write_text("preset: full\ntime_budget: 4h\n")  # a preset's time budget, overridden
    assert runner.load_params(None, f)[1]["time_budget"] == "4h"
    assert runner.load_params("full")[1]["time_budget"] == "3h"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    folder = runner.run("tiny", runs_dir=root / "runs", data_root=root / "data", progress=False)
    return root, folder


@pytest.mark.timeout(900)  # a whole tiny run or more: beyond the suite's 300 s per test
def test_tiny_preset_end_to_end(first_run):
    root, folder = first_run
    state = read_json(os.path.join(folder, "run.json"))
    assert state["status"] == "complete" and state["done"] == config.ORDER
    for name in config.ORDER:  # a kernel's own memory, without the libraries it maps
        assert 0 < state["peak_private_bytes"][name] < state["peak_rss_bytes"][name]
    summary = read_json(os.path.join(folder, "summary.json"))
    assert set(summary["results"]) == set(config.ORDER)
    html = open(os.path.join(folder, "summary.html")).read()
    assert "Recommendation" in html and "Pareto frontier" in html and "IVF16,SQ8" in html
    # headings in words with units, numbers for people, and the scale the run was made at
    assert "single query, median (ms)" in html and "<th>p50_ms</th>" not in html
    assert "Made at 3,000 vectors × 64" in html and "NaN" not in html and "None" not in html
    assert open(os.path.join(folder, "builds.csv")).readline().startswith("notebook,factory,reused")
    assert len(open(os.path.join(folder, "pareto.csv")).readlines()) > 2
    for name in config.ORDER:  # executed notebooks, light, and their HTML, drawn offline
        notebook = open(os.path.join(folder, name + ".ipynb")).read()
        assert "plotly.js v" not in notebook  # figures as plotly's mime type, no library copy
        assert len(notebook) < 2 * 2**20, name  # no widget state: no plotly bundle per widget
        page = open(os.path.join(folder, name + ".html")).read()
        assert notebook_html.external_scripts(page) == [], name  # opens with no network
    for name in config.ORDER:  # nothing for a reader to trip over: no stderr, no bar
        assert reader_problems(nbformat.read(os.path.join(folder, name + ".ipynb"), 4)) == [], name
    log = open(os.path.join(folder, runner.PROGRESS_LOG)).read()  # the kernels said it here
    assert "screening IVF16,PQ64x4fs,Refine(SQ8) on 3,000 rows: done in" in log
    page = open(os.path.join(folder, "06_recall_vs_latency.html")).read()
    assert "Plotly.newPlot" in page and page.count("plotly.js v") == 1  # inlined once
    assert notebook_html.WIDGET_NOTE in page  # the live explorer says where it lives


def test_check_predicts_the_measured_disk_peak_and_writes_nothing(first_run, tmp_path, capsys):
    root, folder = first_run
    measured = read_json(os.path.join(folder, "run.json"))["disk_peak_bytes"]
    assert measured["stage"] in config.ORDER and measured["bytes"] > 0
    args = ["--preset", "tiny", "--check", "--runs-dir", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "data")]
    assert cli.run_command(args) == 0
    out = capsys.readouterr().out
    assert "the run fits (nothing was written)" in out and "disk fits now: yes" in out
    assert "index IVF16,PQ8" in out and "run folder: notebooks and their HTML" in out
    assert os.listdir(tmp_path) == []  # not even the folders
    found = runner.run("tiny", runs_dir=tmp_path / "runs", data_root=tmp_path / "data", check=True)
    assert os.listdir(tmp_path) == [] and found["problems"] == []
    assert abs(found["plan"]["peak"] / measured["bytes"] - 1) < 0.15
    # the data folder alone (where the 10M run's bytes are), as the run left it
    data = sum(size for label, size in found["plan"]["parts"]
               if not label.startswith(("run folder", "the largest index's last checkpoint")))
    assert abs(data / disk.folder_bytes(root / "data" / "tiny") - 1) < 0.15
    # once the screening has named its finalists, the check counts those, not its bound
    saved = screen.finalist_factories(screen.screen_dir(str(root / "data" / "tiny")))
    done = runner.run("tiny", runs_dir=tmp_path / "runs", data_root=root / "data", check=True)
    assert [f for f, _ in done["plan"]["finalists"]] == [f for f in saved if factory_tree.split_factory(f)[0]]
    assert saved and abs(done["plan"]["peak"] / measured["bytes"] - 1) < 0.15


def test_the_tiny_screening_tries_full_s_codes_and_says_which_d_rules_out(first_run):
    root, _ = first_run
    codes = runner.load_params("full")[1]["02_memory_budget"]["screen_codes"]
    assert "PQ256x4fs" in codes and runner.load_params("tiny")[1]["02_memory_budget"]["screen_codes"] == codes
    saved = read_json(os.path.join(screen.screen_dir(str(root / "data" / "tiny")), "verdicts.json"))
    verdicts = {v["family"]: v["verdict"] for v in saved}
    assert {f"IVF16,{c},Refine(SQ8)" for c in codes} <= set(verdicts)
    assert verdicts["IVF16,PQ256x4fs,Refine(SQ8)"] == (
        "faiss cannot build it: 'IVF16,PQ256x4fs,Refine(SQ8)': the PQ's m must divide d=64; "
        "valid m: [1, 2, 4, 8, 16, 32, 64]")
    # after the PCA to 32 dimensions the line names the dimension the codes see
    assert verdicts["PCAR32,IVF32,PQ128x4fs,Refine(SQ8)"].endswith(
        "the PQ's m must divide the 32 dimensions its transform leaves; valid m: [1, 2, 4, 8, 16, 32]")


def test_time_estimate_counts_only_what_is_left(first_run, capsys):
    root, _ = first_run
    _, params = runner.load_params("tiny")
    data_dir = str(root / "data" / "tiny")
    per_nb = runner.notebook_parameters(params, data_dir, "", False)
    assert run_checks.estimate_seconds(per_nb, data_dir) == {}  # data, coarse lists, indexes: all built
    assert run_checks.check_time(per_nb, data_dir, "1h") == {}
    assert "nothing left" in capsys.readouterr().out
    elsewhere = str(root / "elsewhere")
    fresh = run_checks.estimate_seconds(runner.notebook_parameters(params, elsewhere, "", False), elsewhere)
    # every stage of a run from nothing, 04's M x efConstruction grid included
    assert {"generate", "ground truth", "coarse IVF16", "build IVF16,PQ8", "build HNSW16,SQ8 efC=40",
            "build HNSW8,SQ8 efC=16", "build HNSW8,SQ8 efC=40", "build IVF16,SQ8"} <= set(fresh)
    assert all(s > 0 for s in fresh.values())


@pytest.mark.timeout(900)  # a whole tiny run or more: beyond the suite's 300 s per test
def test_rerun_reuses_and_force_redoes(first_run):
    root, first = first_run
    index = root / "data" / "tiny" / "indexes" / "IVF16_SQ8.faiss"
    built_at = os.path.getmtime(index)
    again = runner.run("tiny", runs_dir=root / "runs", data_root=root / "data", progress=False)
    assert again != first  # a complete run is not continued: a new folder
    res = read_json(os.path.join(again, "summary.json"))["results"]
    assert res["01_data_generation"]["data_reused"] and res["01_data_generation"]["ground_truth_reused"]
    assert all(b["reused"] for nb in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq")
               for b in res[nb]["builds"].values())
    assert os.path.getmtime(index) == built_at
    forced = runner.run("tiny", force=True, runs_dir=root / "runs", data_root=root / "data",
                        progress=False)
    res = read_json(os.path.join(forced, "summary.json"))["results"]
    assert not res["01_data_generation"]["data_reused"]
    assert not res["01_data_generation"]["ground_truth_reused"]
    assert not any(b["reused"] for nb in ("03_build_ivfpq", "04_build_hnsw", "05_build_ivfsq")
                   for b in res[nb]["builds"].values())
    assert os.path.getmtime(index) > built_at


def test_failing_notebook_is_reported_and_the_rerun_continues(first_run, tmp_path, capsys):
    root, _ = first_run
    # a factory faiss cannot build is refused before anything runs or is written
    bad = tmp_path / "bad.yaml"
    bad.write_text("03_build_ivfpq:\n  factories: ['IVF{nlist},PQ7']\n")
    args = ["--preset", "tiny", "--params", str(bad), "--runs-dir", str(tmp_path / "runs"),
            "--data-dir", str(root / "data")]
    assert cli.run_command(args) == 1
    assert "m must divide d=64" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    # a notebook failing while it runs: re-ranking an index the notebook did not build
    bad.write_text("03_build_ivfpq:\n  rerank_factory: 'IVF{nlist},Flat'\n")
    assert cli.run_command(args) == 1
    err = capsys.readouterr().err
    assert "03_build_ivfpq failed in cell [" in err and "KeyError" in err and "IVF16,Flat" in err
    folder = os.path.join(tmp_path / "runs", os.listdir(tmp_path / "runs")[0])
    state = read_json(os.path.join(folder, "run.json"))
    assert state["status"] == "failed" and state["done"] == config.ORDER[:2]
    assert state["failed"]["notebook"] == "03_build_ivfpq" and state["failed"]["cell"]
    assert os.path.exists(state["failed"]["partial_notebook"])
    html = open(os.path.join(folder, "summary.html")).read()
    assert "03_build_ivfpq failed" in html and "01_data_generation, 02_memory_budget" in html
    assert cli.run_command(args) == 1  # same command again: continues the same run folder
    out = capsys.readouterr().out
    assert "continuing the unfinished run" in out and "01_data_generation: done in an earlier attempt" in out
    assert os.listdir(tmp_path / "runs") == [os.path.basename(folder)]


@pytest.mark.timeout(900)  # a whole tiny run or more: beyond the suite's 300 s per test
def test_pipeline_killed_at_random_moments_resumes_to_the_same_results(first_run, tmp_path):
    """Real SIGKILLs of the runner and its kernels at random moments; the same
    command then finishes the run, and every IVF index equals the uninterrupted
    run's to the byte (HNSW built with 2 threads is not deterministic)."""
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    root, _ = first_run
    cmd = [sys.executable, "-m", "helpers", "run", "--preset", "tiny", "--runs-dir",
           str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    rng = np.random.default_rng(11)
    kills = 0
    for _ in range(3):
        p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4, 14))
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    folder = os.path.join(tmp_path / "runs", os.listdir(tmp_path / "runs")[0])
    assert read_json(os.path.join(folder, "run.json"))["status"] == "complete"
    want_dir, got_dir = root / "data" / "tiny" / "indexes", tmp_path / "data" / "tiny" / "indexes"
    ivf = [f for f in os.listdir(want_dir) if f.startswith("IVF") and f.endswith(".faiss.json")]
    assert len(ivf) >= 5
    for f in ivf:
        assert read_json(got_dir / f)["sha256"] == read_json(want_dir / f)["sha256"], f
    assert not [f for f in os.listdir(got_dir) if "checkpoint" in f or f.endswith(".partial")]


def test_run_that_cannot_fit_on_disk_is_refused_before_writing(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("preset: tiny\nall:\n  d: 1024\n  add_batch: 1000000\n"
                   "01_data_generation:\n  n: 50000000\n")  # 205 GB of vectors
    args = ["--params", str(big), "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    assert cli.run_command(args) == 1
    err = capsys.readouterr().err
    assert "this run writes up to" in err and "free some space or pass --data-dir" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
    assert cli.run_command(args + ["--check"]) == 1  # the check says so, and exits 1
    out = capsys.readouterr().out
    assert "does not fit: this run writes up to" in out and "disk fits now: no" in out
    assert "the run does not fit (nothing was written)" in out
    assert os.listdir(tmp_path) == ["big.yaml"]


@contextlib.contextmanager
def _tmpfs(folder, size_mb):
    """A real file system of size_mb MB mounted at `folder` (created) for the block;
    the test is skipped where mounting is not permitted."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a {size_mb} MB tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_run_on_a_small_real_file_system_is_refused_before_writing(tmp_path, capsys):
    with _tmpfs(tmp_path / "small", 16) as small:
        args = ["--preset", "tiny", "--runs-dir", str(small / "runs"), "--data-dir", str(small / "data")]
        assert cli.run_command(args) == 1  # tiny writes ~40 MB, most of it HTML
        err = capsys.readouterr().err
        assert "but only 16.0 MiB is free there" in err and "plus a margin of" in err
        assert os.listdir(small) == []


def _fill_once_a_file_appears(folder, suffix, filler, leave=64 << 10):
    """Another tenant: once a file ending in `suffix` appears under `folder`, take
    all but `leave` bytes of the free disk with `filler` (a background thread)."""
    def fill():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if glob.glob(os.path.join(folder, "**", "*" + suffix), recursive=True):
                with open(filler, "wb") as f:
                    os.posix_fallocate(f.fileno(), 0, shutil.disk_usage(folder).free - leave)
                return
            time.sleep(0.01)
    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(600)
def test_a_disk_that_fills_mid_stage_fails_in_one_line_and_the_rerun_completes(tmp_path, capsys):
    with _tmpfs(tmp_path / "small", 128) as small:
        filler = small / "other-tenant"
        args = ["--preset", "tiny", "--until", "03_build_ivfpq",
                "--runs-dir", str(small / "runs"), "--data-dir", str(small / "data")]
        # the disk fills once 03 has written its first index
        thread = _fill_once_a_file_appears(str(small / "data" / "tiny" / "indexes"), ".faiss", filler)
        assert cli.run_command(args) == 1
        thread.join()
        err = capsys.readouterr().err
        failed = [line for line in err.splitlines() if "03_build_ivfpq failed" in line]
        assert len(failed) == 1, err
        assert re.search(r"WriteError: .*cannot write \S+: the disk is full.* free now in ", failed[0])
        written = glob.glob(str(small / "**" / "*"), recursive=True)
        assert not [f for f in written if is_partial(f)], "a partial file was left"
        state = read_json(glob.glob(str(small / "runs" / "*" / "run.json"))[0])
        assert state["status"] == "failed" and state["failed"]["notebook"] == "03_build_ivfpq"
        os.remove(filler)  # the tenant leaves: the same command continues and completes
        assert cli.run_command(args) == 0
        out = capsys.readouterr().out
        assert "02_memory_budget: done in an earlier attempt" in out
        state = read_json(glob.glob(str(small / "runs" / "*" / "run.json"))[0])
        assert state["status"] == "stopped after 03_build_ivfpq"
        index_dir = small / "data" / "tiny" / "indexes"
        ds = dataset.load_dataset(small / "data" / "tiny")
        assert len(build.built_indexes(index_dir, ds)) >= 5  # every index whole and loadable


def test_the_full_run_from_empty_is_planned_within_45_gb_by_its_disk_budget(tmp_path):
    found = runner.run("full", runs_dir=tmp_path / "runs", data_root=tmp_path / "data", check=True)
    parts = dict(found["plan"]["parts"])
    cap = [label for label in parts if label.startswith("the index folder's disk budget (22.0 GiB)")]
    assert len(cap) == 1 and parts[cap[0]] < 0  # the worst-case finalists alone would be more
    assert found["plan"]["peak"] <= 45e9  # half of a 90 GB shared disk (issue 41)
    assert os.listdir(tmp_path) == []


def test_run_over_its_time_budget_is_refused_before_writing(tmp_path, capsys):
    args = ["--preset", "tiny", "--time-budget", "0.01s", "--runs-dir", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "data")]
    assert cli.run_command(args) == 1
    err = capsys.readouterr().err
    assert "over its time budget of 0 s" in err and "--time-budget 1h" in err
    for stage in ("generate", "ground truth", "coarse IVF16", "build IVF16,PQ8"):
        assert stage in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
    assert cli.run_command(args[:2] + ["--time-budget", "soon"] + args[4:]) == 1
    assert "duration 'soon' not understood" in capsys.readouterr().err


def test_a_run_within_its_time_budget_records_the_estimate(tmp_path):
    folder = runner.run("tiny", runs_dir=tmp_path / "runs", data_root=tmp_path / "data",
                        progress=False, export_html=False, until="01_data_generation",
                        time_budget="1h")
    state = read_json(os.path.join(folder, "run.json"))
    assert state["status"] == "stopped after 01_data_generation"
    assert {"generate", "ground truth", "build IVF16,SQ8"} <= set(state["estimated_seconds"])


def test_long_stages_show_progress_in_the_runners_terminal(tmp_path):
    # the kernel's helpers draw text lines copied to the runner's stderr, not a frozen bar
    out = subprocess.run([sys.executable, "-m", "helpers", "run", "--preset", "tiny",
                          "--data-dir", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "runs"),
                          "--until", "03_build_ivfpq"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for stage in ("screening IVF16,PQ64x4fs,Refine(SQ8) on 3,000 rows ...",
                  "screening IVF16,PQ64x4fs,Refine(SQ8) on 3,000 rows: done in",
                  "assign to IVF16:", "add IVF16,PQ8: 100%", "WARNING clustering"):
        assert stage in out.stderr, stage  # faiss's C++ warnings too, through the log
    folder, = glob.glob(str(tmp_path / "runs" / "*"))
    for name in config.ORDER[:3]:  # and none of it in the saved notebooks
        assert reader_problems(nbformat.read(os.path.join(folder, name + ".ipynb"), 4)) == [], name


def _kernels(pid):
    """The ipykernel processes under process `pid`."""
    import psutil

    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "ipykernel" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def _wait_for_cell(runs, name, cell, runner):
    """Until papermill has started code cell `cell` (0-based) of notebook `name` in the
    run folder under `runs` (it saves the executed copy as each cell starts)."""
    import time

    import nbformat

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and runner.poll() is None:
        for path in glob.glob(os.path.join(runs, "*", name + ".ipynb")):
            try:
                cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
            except Exception:  # written as we read it
                continue
            if len(cells) > cell and cells[cell].metadata.get("papermill", {}).get("start_time"):
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached code cell {cell}")


def test_a_killed_kernel_fails_its_stage_in_seconds_and_the_rerun_continues(tmp_path):
    """A real runner whose kernel gets a real SIGKILL in the middle of notebook 02: the
    runner says so within 30 s (it used to wait forever beside a <defunct> kernel)."""
    import signal
    import time

    cmd = [sys.executable, "-m", "helpers", "run", "--preset", "tiny", "--until", "02_memory_budget",
           "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        _wait_for_cell(tmp_path / "runs", "02_memory_budget", 3, p)
        [kernel] = _kernels(p.pid)
        kernel.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = p.communicate(timeout=30)
        waited = time.monotonic() - killed
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 1 and waited < 30
    assert "02_memory_budget: the kernel died in cell " in err and "killed by SIGKILL" in err, err
    assert "resident" in err and "private" in err and "out-of-memory killer" in err
    folder = os.path.join(tmp_path / "runs", os.listdir(tmp_path / "runs")[0])
    state = read_json(os.path.join(folder, "run.json"))
    assert state["status"] == "failed" and state["done"] == ["01_data_generation"]
    assert state["failed"]["notebook"] == "02_memory_budget" and state["failed"]["signal"] == "SIGKILL"
    assert state["failed"]["cell"][0] in "[#" and state["failed"]["last_rss_bytes"] > 0
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing the unfinished run" in again.stdout
    assert "01_data_generation: done in an earlier attempt" in again.stdout
    assert read_json(os.path.join(folder, "run.json"))["status"] == "stopped after 02_memory_budget"


def test_an_aborting_kernel_is_named_with_its_signal_and_cell(tmp_path):
    """faiss aborts the process on a failed assertion (SIGABRT): the stage fails with it."""
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os\nos.abort()")]
    nbformat.write(nb, tmp_path / "aborts.ipynb")
    state = {}
    with pytest.raises(runner.RunError, match=r"aborts: the kernel died in cell (\[\d\]|#2) \(import "
                                              r"os\): killed by SIGABRT \(signal 6\); it "):
        runner._execute("aborts", str(tmp_path / "out.ipynb"), {}, str(tmp_path), False, state)
    assert state["failed"]["signal"] == "SIGABRT" and "out-of-memory" not in state["failed"]["how"]


@pytest.mark.parametrize("module", ["run", "build", "screen", "measure"])
def test_module_forms_say_the_command_form(module, tmp_path):
    out = subprocess.run([sys.executable, "-m", f"helpers.{module}", "--preset", "tiny"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr == f"use: python -m helpers {module}\n"
    assert out.stdout == "" and os.listdir(tmp_path) == []
