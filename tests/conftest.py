import os
import sys

import pytest

from helpers import dataset, files, synthetic

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


def listing(folder):
    """The files in `folder`, sorted, without the artifacts' lock files (files.locked)."""
    return sorted(f for f in os.listdir(folder) if not f.endswith(files.LOCK_SUFFIX))
