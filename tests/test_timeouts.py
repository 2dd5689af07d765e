"""No test waits forever: pytest-timeout limits each test, and a suite stopped by its
overall limit (.ci/run) says which test was running. Real pytest subprocesses."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HANGS = '''
import nbformat
import pytest

from helpers.pipeline import run


@pytest.mark.timeout(5)
def test_kernel_that_never_answers(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("open('STARTED', 'w').close()\\nimport time\\ntime.sleep(600)")]
    nbformat.write(nb, tmp_path / "hangs.ipynb")
    open("STARTED", "w").close()
    run._execute("hangs", str(tmp_path / "out.ipynb"), {}, str(tmp_path), False, {})


def test_sleeps():
    open("STARTED", "w").close()
    import time
    time.sleep(600)
'''


def _pytest(tmp_path, *args):
    """A pytest of HANGS beside this suite's conftest, under this project's configuration."""
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_hangs.py").write_text(HANGS)
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-c", os.path.join(ROOT, "pyproject.toml"), "--rootdir", str(tmp_path),
                             str(tmp_path / "test_hangs.py"), *args],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _kill(p):
    """The pytest process's session, a kernel it left included."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)


def test_every_test_has_a_time_limit():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        ini = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    assert 0 < ini["timeout"] <= 600 and ini["timeout_method"] == "signal"
    assert any(line.startswith("pytest-timeout==") for line in open(os.path.join(ROOT, "requirements.txt")))


def test_a_test_waiting_on_a_hung_kernel_fails_at_its_limit(tmp_path):
    p = _pytest(tmp_path, "-k", "kernel_that_never_answers")
    try:
        out, _ = p.communicate(timeout=120)
    finally:
        _kill(p)
    assert p.returncode == 1, out
    assert "Timeout (>5.0s) from pytest-timeout" in out and "1 failed" in out, out


def test_a_suite_stopped_by_its_overall_limit_names_the_running_test(tmp_path):
    p = _pytest(tmp_path, "-k", "sleeps", "-o", "timeout=0")
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "STARTED").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)  # what `timeout` in .ci/run sends
        out, _ = p.communicate(timeout=60)
    finally:
        _kill(p)
    assert p.returncode != 0
    assert "the suite was stopped by SIGTERM while running: test_hangs.py::test_sleeps" in out, out
