import os
import re
import signal
import sys

import numpy as np
import pytest
from faiss.contrib import vecs_io

from helpers.core import files
from helpers.core.files import atomic_path
from helpers.data import dataset, ingest, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")


@pytest.fixture(scope="session")
def small_ds(tmp_path_factory):
    """A 6000 x 64 clustered dataset (IP metric, normalised), generated once."""
    params = synthetic.GeneratorParams(d=64, intrinsic_dim=16, n_clusters=64, seed=7)
    root = tmp_path_factory.mktemp("small_ds")
    return dataset.generate_dataset(root, 6000, n_queries=100, n_train=2000,
                                    params=params, chunk_rows=1000, progress=False)


@pytest.fixture
def python():
    return sys.executable


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (the browser test keeps a
    screenshot when its test failed)."""
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


_running = []  # the test being run, for a suite stopped by its overall limit (.ci/run)


def pytest_runtest_logstart(nodeid, location):
    _running[:] = [nodeid]


def pytest_runtest_logfinish(nodeid, location):
    _running.clear()


def pytest_configure(config):
    """On SIGTERM (what `timeout` sends when the suite's limit is hit) name the running
    test on the terminal, past pytest's capture, then stop as on Ctrl-C."""
    def stopped(signum, frame):
        config.pluginmanager.get_plugin("capturemanager").suspend_global_capture(in_=True)
        config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"the suite was stopped by {signal.Signals(signum).name} while running: "
            f"{', '.join(_running) or 'no test'}", red=True)
        raise KeyboardInterrupt  # pytest then reports what ran and stops

    signal.signal(signal.SIGTERM, stopped)


def listing(folder):
    """The files in `folder`, sorted, without the artifacts' lock files (files.locked)."""
    return sorted(f for f in os.listdir(folder) if not f.endswith(files.LOCK_SUFFIX))


def write_vectors(path, x):
    """Write a small 2-D array to `path` in the format its extension names (users'
    files in the tests: .npy, .fvecs, .ivecs, .bvecs)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    x = np.asarray(x)
    with atomic_path(path) as tmp:
        if ext == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, x)
        elif ext == ".fvecs":
            vecs_io.fvecs_write(tmp, x)
        elif ext == ".ivecs":
            vecs_io.ivecs_write(tmp, x)
        elif ext == ".bvecs":
            n, d = x.shape
            rows = np.empty((n, d + 4), dtype=np.uint8)
            rows[:, :4] = np.full((n, 1), d, dtype="<i4").view(np.uint8)
            rows[:, 4:] = x
            rows.tofile(tmp)
        else:
            raise ValueError(f"cannot write format {ext!r}; use .npy/.fvecs/.ivecs/.bvecs")


def held_out_rows(ds):
    """Source row numbers of the held-out queries of an imported dataset (int64), or
    an empty array when the queries came from their own file."""
    m = ds.manifest
    if m.get("kind") != "imported" or m.get("queries") is not None or not m.get("held_out"):
        return np.empty(0, np.int64)
    return ingest.held_out_ids(m["n_source"], m["held_out"], m["seed"])


BAR_REMNANT = re.compile(r"\d+%\|")  # a tqdm bar's "43%|####" left in a saved output


def reader_problems(nb):
    """What a reader of executed notebook `nb` should not see, one line each: a stderr
    box, a progress bar left behind, a Python warning."""
    problems = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            where = f"cell {cell.get('id')}"
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"{where}: stderr {text[:80]!r}")
            elif BAR_REMNANT.search(text):  # a tqdm widget's text form says the same
                problems.append(f"{where}: a progress bar left behind")
            elif "Warning:" in text and "note:" not in text:
                problems.append(f"{where}: a warning {text[:80]!r}")
    return problems
