"""Several real processes on one data folder: every outcome equals a solo run,
or is a clear wait or refusal; a SIGKILLed lock holder never blocks the next."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import faiss
import numpy as np
import pytest

from helpers.core import files, index_files
from helpers.data import dataset, synthetic
from helpers.data.vectors import read_rows
from helpers.index import build

PARAMS = "synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=3)"


def _spawn(code, env=None):
    script = ("import sys\nfrom helpers.index import build; from helpers.data import dataset, groundtruth, synthetic\n"
              + textwrap.dedent(code))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _wait_all(procs):
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
    return outs


def _search(path, xq):
    index = index_files.load_index(path)
    faiss.ParameterSpace().set_index_parameters(index, "nprobe=4")
    return index.search(xq, 10)


@pytest.fixture(scope="module")
def shared_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    params = synthetic.GeneratorParams(d=32, intrinsic_dim=8, n_clusters=16, seed=3)
    return dataset.generate_dataset(root, 20000, n_queries=50, params=params, progress=False)


@pytest.mark.parametrize("stagger", [0.0, 0.3])
def test_two_ivf_builds_with_one_nlist_equal_solo_builds(shared_ds, tmp_path, stagger):
    # the two share IVF64's coarse assignment: one computes it, the other waits and reuses it
    factories = ["IVF64,SQ8", "IVF64,PQ8x4fs"]
    procs = []
    for f in factories:
        procs.append(_spawn(f"""
            ds = dataset.load_dataset({str(shared_ds.root)!r})
            build.build_index(ds, {f!r}, {str(tmp_path / 'shared' / f)!r}, n_train=5000,
                              add_batch=3000, progress=False)
        """))
        time.sleep(stagger)
    _wait_all(procs)
    xq = read_rows(shared_ds.queries, 0, shared_ds.queries.n)
    for f in factories:
        build.build_index(shared_ds, f, tmp_path / "solo" / f, n_train=5000, add_batch=3000,
                          progress=False)
        D1, I1 = _search(str(tmp_path / "shared" / f), xq)
        D2, I2 = _search(str(tmp_path / "solo" / f), xq)
        np.testing.assert_array_equal(I1, I2)
    sizes = np.bincount(np.load(tmp_path / "shared" / "coarse" / "IVF64.assign.npz")["assign"],
                        minlength=64)
    assert sizes.max() < 20000 / 8  # no list swallowed the rows (the old race put all in list 0)


def test_two_builds_of_one_index_build_it_once(shared_ds, tmp_path):
    path = str(tmp_path / "one.faiss")
    procs = [_spawn(f"""
        ds = dataset.load_dataset({str(shared_ds.root)!r})
        r = build.build_index(ds, "IVF32,SQ8", {path!r}, n_train=4000, progress=False)
        print("REUSED" if r["reused"] else "BUILT")
    """) for _ in range(2)]
    outs = _wait_all(procs)
    assert sorted(o.strip().splitlines()[-1] for o in outs) == ["BUILT", "REUSED"], outs
    assert any("waiting for pid" in o for o in outs), outs  # the second said whom it waited for


def test_two_screenings_of_one_folder_screen_each_candidate_once(shared_ds, tmp_path):
    out = tmp_path / "screen"
    out.mkdir()
    code = f"""
        import json
        from helpers.search import screen
        ds = dataset.load_dataset({str(shared_ds.root)!r})
        search = screen.search_of(["IVF32"], ["PQ8x4fs", "SQ8"], "Refine(SQ8)", [["HNSW8,SQ8", 16]],
                                  [8, 2], [2], [16])
        rows, found = screen.screen(ds, 20000, {str(out)!r}, search, repeats=1, single_queries=5,
                                    progress=False)
        print(json.dumps(sorted((v["family"], v.get("add_s")) for v in found)))
    """
    # both wait at the first candidate's lock, held here, so their screenings overlap
    with files.locked(out / "IVF32_PQ8x4fs_Refine_SQ8_.json"):
        procs = [_spawn(code), _spawn(code)]
        for p in procs:
            assert any("waiting for pid" in line for line in p.stdout), p.wait()
    outs = _wait_all(procs)
    # measured add seconds are never equal twice: equal verdicts mean one process screened
    # each candidate and the other read what it wrote
    assert outs[0].strip().splitlines()[-1] == outs[1].strip().splitlines()[-1], outs
    assert len(json.loads(outs[0].strip().splitlines()[-1])) == 3


def test_two_generations_and_two_ground_truths_agree(tmp_path):
    root = str(tmp_path / "ds")
    code = f"""
        ds = dataset.generate_dataset({root!r}, 30000, n_queries=40,
                                      params={PARAMS}, chunk_rows=2000, progress=False)
        D, I = groundtruth.ground_truth(ds, 20, progress=False)
        print(ds.fingerprint, I.sum())
    """
    outs = _wait_all([_spawn(code), _spawn(code)])
    assert outs[0].strip().splitlines()[-1] == outs[1].strip().splitlines()[-1]
    dataset.verify_dataset(dataset.load_dataset(root))  # raises if a file does not match
    assert not [f for f in os.listdir(root) if files.is_partial(f)]


def test_a_killed_lock_holder_never_blocks(tmp_path):
    target = str(tmp_path / "artifact")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from helpers.core.files import locked
        with locked({target!r}):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(files.LockedError, match=f"pid {holder.pid} on "):
        with files.locked(target, wait=False):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.perf_counter()
    with files.locked(target, wait=False):  # the OS released it with the process
        pass
    assert time.perf_counter() - t0 < 5


def test_atomic_writes_of_two_processes_never_collide(tmp_path):
    target = str(tmp_path / "state.json")
    code = f"""
        from helpers.core.files import write_json
        for i in range(300):
            write_json({target!r}, {{"writer": sys.argv[0], "i": i}})
    """
    _wait_all([_spawn(code) for _ in range(3)])
    assert files.read_json(target)["i"] == 299
    assert not [f for f in os.listdir(tmp_path) if files.is_partial(f)]


def test_a_second_run_on_one_run_folder_is_refused(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "helpers", "run", "--preset", "tiny", "--data-dir", str(tmp_path / "d"),
           "--runs-dir", str(tmp_path / "runs"), "--until", "02_memory_budget"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in first.stdout:  # the first holds its run folder once it starts a notebook
        if "01_data_generation ..." in line:
            break
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    first_out = first.communicate(timeout=600)[0]
    assert first.returncode == 0, first_out
    assert second.returncode != 0
    assert f"in use by pid {first.pid} on " in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
