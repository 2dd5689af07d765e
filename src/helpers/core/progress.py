"""Progress where the person waiting can see it, never in the executed notebook.

In batch (``helpers run``), the runner sets LOG_ENV to a file in the run folder for
the kernels it starts: bars, step lines ("screening IVF128,PQ64x4fs on 20,000 rows:
done in 3.1 s") and faiss's C++ messages are written there, and the runner copies
the file to its terminal as it grows (``echoed``). A 12-minute k-means or
assignment pass shows its stage, progress and ETA there instead of a frozen
"Executing" bar, and the saved notebook holds no stderr box.

In JupyterLab (no LOG_ENV), each bar is one live tqdm widget, cleared when done.
"""

import contextlib
import functools
import os
import sys
import threading
import time

# imported here, not when a bar starts: tqdm.auto pulls in IPython and ipywidgets
# (~6 MB), which would otherwise land inside the builds' measured memory peaks
from tqdm import tqdm as text_bar
from tqdm.auto import tqdm as auto_bar


LOG_ENV = "FAISS_WORKBOOK_PROGRESS"
BATCH_INTERVAL_S = 20  # a line at most this often per bar: a log, not an animation
ECHO_INTERVAL_S = 0.5


def log_path():
    """The progress log's path in batch, None in an interactive session."""
    return os.environ.get(LOG_ENV) or None


@functools.lru_cache(maxsize=None)
def _log_file(path):
    """One line-buffered append handle per log and process (kernels append to one log
    in turn; O_APPEND keeps each write whole)."""
    return open(path, "a", buffering=1)


def log(line):
    """Write one line to the progress log in batch; nothing in an interactive session
    (its bars say the same)."""
    path = log_path()
    if path:
        _log_file(path).write(line.rstrip("\n") + "\n")


def tqdm(*args, **kwargs):
    """A tqdm bar (same arguments) suited to where the code runs: text lines in the
    progress log in batch, one widget cleared when done in JupyterLab."""
    path = log_path()
    if path:
        kwargs.setdefault("mininterval", BATCH_INTERVAL_S)
        kwargs.setdefault("file", _log_file(path))
        kwargs.setdefault("ascii", True)
        return text_bar(*args, **kwargs)
    kwargs.setdefault("leave", False)
    return auto_bar(*args, **kwargs)


@contextlib.contextmanager
def status(text):
    """A step without a count (a build, a training pass): "<text> ..." when it starts
    and "<text>: done in 3.1 s" when it ends in batch; one cleared bar in JupyterLab."""
    t0 = time.perf_counter()
    if log_path():
        log(f"{text} ...")
        yield
        log(f"{text}: done in {time.perf_counter() - t0:.1f} s")
        return
    bar = auto_bar(total=None, desc=text, bar_format="{desc} ({elapsed})", leave=False)
    try:
        yield
    finally:
        bar.close()


def c_stderr_to_log():
    """In batch, point this process's file descriptor 2 at the progress log, so what
    C/C++ code writes there (faiss's "WARNING clustering ..." lines) lands in the log,
    not in a red box of the saved notebook. Python's sys.stderr is not touched."""
    path = log_path()
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        os.close(fd)


@contextlib.contextmanager
def echoed(path, stream=None):
    """Copy what is appended to the file at `path` to `stream` (default: sys.stderr)
    while the block runs, and the rest when it ends."""
    stream = stream or sys.stderr
    done = threading.Event()
    start = os.path.getsize(path) if os.path.exists(path) else 0

    def copy():
        offset = start
        while True:
            finished = done.is_set()  # read before the copy: the last pass sees all
            if os.path.exists(path):
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                if chunk:
                    offset += len(chunk)
                    stream.write(chunk.decode("utf-8", "replace"))
                    stream.flush()
            if finished:
                return
            done.wait(ECHO_INTERVAL_S)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
