"""Values faiss aborts on are refused before faiss sees them, in one line; values
beyond what an index has are clipped and said. Real faiss, real runner processes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers.core import limits
from helpers.search import evaluate
from helpers.pipeline import run as runner

ABORTS = """
import faiss, numpy as np
x = np.random.default_rng(0).random((2000, 16), dtype="float32")
index = faiss.index_factory(16, "IVF16,PQ8x4fs")
index.train(x)
index.add(x)
faiss.ParameterSpace().set_index_parameters(index, "nprobe={}")
index.search(x[:5], 10)
"""


@pytest.fixture(scope="module")
def fast_scan():
    import faiss

    x = np.random.default_rng(0).random((2000, 16), dtype="float32")
    index = faiss.index_factory(16, "IVF16,PQ8x4fs")
    index.train(x)
    index.add(x)
    return index, x


@pytest.mark.parametrize("nprobe", [0, -4, 10**12])
def test_an_nprobe_faiss_aborts_on_is_refused_in_one_line(fast_scan, nprobe):
    # two threads: faiss's error then escapes an OpenMP loop (with one it is a RuntimeError)
    raw = subprocess.run([sys.executable, "-c", ABORTS.format(nprobe)], capture_output=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert raw.returncode == -6  # SIGABRT: the whole process, a notebook's kernel, is gone
    index, x = fast_scan
    with pytest.raises(limits.OutOfRange) as e:
        evaluate.set_parameters(index, f"nprobe={nprobe}")
    assert str(e.value) == (f"nprobe={nprobe} is invalid: it must be a whole number from 1 to "
                            f"2,147,483,647")
    index.search(x[:5], 10)  # this process is fine


def test_nprobe_beyond_nlist_is_clipped_and_said(fast_scan):
    index, x = fast_scan
    applied, notes = evaluate.set_parameters(index, "nprobe=100")
    assert applied == "nprobe=16" and notes == ["nprobe=100 is more than this index's 16 lists: "
                                                "clipped to 16"]
    clipped = index.search(x[:50], 10)[1]
    assert evaluate.set_parameters(index, "nprobe=16") == ("nprobe=16", [])
    assert (index.search(x[:50], 10)[1] == clipped).all()


def test_hnsw_search_depth_is_checked_and_clipped_at_the_graph():
    import faiss

    x = np.random.default_rng(1).random((500, 8), dtype="float32")
    index = faiss.index_factory(8, "HNSW8")
    index.add(x)
    for bad in ("-1", "0", str(2**31), "4.5"):
        with pytest.raises(limits.OutOfRange, match=f"efSearch={bad!r}|efSearch={bad} is invalid"):
            evaluate.set_parameters(index, f"efSearch={bad}")
    applied, notes = evaluate.set_parameters(index, "efSearch=100000")
    assert applied == "efSearch=500" and "500 vectors: clipped to 500" in notes[0]
    assert faiss.downcast_index(index).hnsw.efSearch == 500


def test_notebook_parameters_are_checked_whole_numbers_lists_and_settings():
    assert limits.check_parameters({"nprobe": 4, "k_factors": [1, 4]}, 1000) == \
        ({"nprobe": 4, "k_factors": [1, 4]}, [])
    for bad, message in [
        ({"k_factors": [1, 0]}, "k_factors=0 is invalid"),
        ({"sensitivity_setting": {"nprobe": 8, "k_factor_rf": -1}}, "k_factor_rf=-1 is invalid"),
        ({"nprobe": True}, "nprobe=True is invalid"),
        ({"add_batch": 1000.5}, "add_batch=1000.5 is invalid"),
        ({"k": 50, "gt_k": 20}, r"k=50 is invalid: .* from 1 to 20 \(gt_k=20: recall@k needs"),
        ({"nlist": 2**31}, r"nlist=2147483648 is invalid: .* from 1 to 2,147,483,647"),
        ({"n_queries": 0}, r"n_queries=0 is invalid: generated data needs at least 1 query"),
    ]:
        with pytest.raises(limits.OutOfRange, match=message):
            limits.check_parameters(bad, 1000)
    checked, notes = limits.check_parameters({"nprobe": 100, "nlist": 16}, 1000)
    assert checked["nprobe"] == 16 and notes == ["nprobe=100 is more than nlist=16: it is clipped "
                                                 "to 16, every list"]


def test_the_runner_clips_nprobe_for_the_notebooks_and_says_so(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("all:\n  nprobe: 100\n")
    _, params = runner.load_params("tiny", f)
    notes = []
    per_nb = runner.notebook_parameters(params, str(tmp_path), "", False, notes=notes)
    assert per_nb["03_build_ivfpq"]["nprobe"] == per_nb["05_build_ivfsq"]["nprobe"] == 16
    assert "03_build_ivfpq: nprobe=100 is more than nlist=16: it is clipped to 16, every list" in notes


@pytest.fixture(scope="module")
def watched_kernels(tmp_path_factory):
    """An environment whose python3 kernel leaves a file in `started` when it starts."""
    root = tmp_path_factory.mktemp("kernels")
    started = root / "started"
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    launch = ("import os, sys, runpy; open(os.path.join(sys.argv.pop(1), str(os.getpid())), 'w').close(); "
              "sys.argv[0] = 'ipykernel_launcher'; runpy.run_module('ipykernel_launcher', run_name='__main__')")
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", launch, str(started), "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    started.mkdir()
    return dict(os.environ, JUPYTER_PATH=str(root / "jupyter")), started


def _run(tmp_path, env, *args):
    return subprocess.run([sys.executable, "-m", "helpers", "run", "--preset", "tiny", *args,
                           "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=300, env=env)


def test_the_watched_kernel_shows_a_kernel_start(tmp_path, watched_kernels):
    env, started = watched_kernels
    out = _run(tmp_path, env, "--until", "01_data_generation")
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(os.listdir(started)) == 1


@pytest.mark.parametrize("overrides,message", [
    ("all: {nprobe: 0}", "03_build_ivfpq: nprobe=0 is invalid: it must be a whole number from 1 to 2,147,483,647"),
    ("all: {nprobe: 1000000000000}", "03_build_ivfpq: nprobe=1000000000000 is invalid"),
    ("04_build_hnsw: {ef_search: -1}", "04_build_hnsw: ef_search=-1 is invalid"),
    ("all: {k: 0}", "03_build_ivfpq: k=0 is invalid"),
    ("06_recall_vs_latency: {sensitivity_setting: {nprobe: 0, k_factor_rf: 8}}",
     "06_recall_vs_latency: nprobe=0 is invalid"),
    ("01_data_generation: {n_queries: 0}", "01_data_generation: n_queries=0 is invalid"),
    ("01_data_generation: {n_queries: -1}", "01_data_generation: n_queries=-1 is invalid"),
])
def test_overrides_faiss_would_abort_on_are_refused_before_any_kernel_starts(
        tmp_path, watched_kernels, overrides, message):
    env, started = watched_kernels
    before = set(os.listdir(started))
    f = tmp_path / "f.yaml"
    f.write_text(overrides + "\n")
    out = _run(tmp_path, env, "--params", str(f))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"RUN FAILED: {message}"), \
        out.stderr
    assert set(os.listdir(started)) == before  # no kernel was started
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
