"""Safe file handling: atomic writes, disk-space checks, JSON and checksums.

Every file the workbook produces is written under a temporary name and renamed
when complete, so a reader never sees half a file and an interrupted job never
replaces good data.
"""

import contextlib
import csv
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import time


PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"  # an artifact's OS lock (locked): empty of data, left in place


class NotEnoughDiskError(OSError):
    """The target file system cannot hold the file about to be written."""


def check_disk_space(directory, nbytes, what="the file"):
    """Refuse, with the numbers, when `directory` has less than `nbytes` free.

    A margin of 5% (at least 1 MiB) is kept for the file system itself.
    """
    directory = os.path.abspath(directory)
    probe = existing_parent(directory)
    free = shutil.disk_usage(probe).free
    needed = int(nbytes + max(nbytes * 0.05, 1 << 20))
    if free < needed:
        raise NotEnoughDiskError(
            f"not enough disk space for {what}: it needs {format_bytes(nbytes)} "
            f"(plus a {format_bytes(needed - nbytes)} margin) but {probe} has "
            f"only {format_bytes(free)} free. Free some space, choose another "
            f"directory, or reduce N / use float16 storage."
        )
    return free


def format_bytes(n):
    """Human-readable size with binary units, e.g. 40.0 GiB."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}


def parse_size(text):
    """Bytes in a size as people write it: "16G", "500M", "1.5GiB", "2048" (bytes),
    or a number. Units are binary (G = 2**30). "" or 0 gives 0 ("not set")."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if str(text).strip() == "":
        return 0
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"size {text!r} not understood: write it as 16G, 500M, 1.5GiB or a number "
                         f"of bytes")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


_SECONDS = {"": 1, "S": 1, "SEC": 1, "M": 60, "MIN": 60, "H": 3600, "HOUR": 3600, "HOURS": 3600}


def parse_duration(text):
    """Seconds in a duration as people write it: "2h", "90min", "45m", "600s",
    "1.5h" or a number of seconds. "" or 0 gives 0 ("not set")."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if str(text).strip() == "":
        return 0.0
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _SECONDS:
        raise ValueError(f"duration {text!r} not understood: write it as 2h, 90min, 600s or a "
                         f"number of seconds")
    return float(m.group(1)) * _SECONDS[m.group(2).upper()]


def partial_path(path):
    """The temporary name a file is written under before it is complete."""
    return str(path) + PARTIAL_SUFFIX


class WriteError(OSError):
    """A file could not be written; the message names it and what to do."""


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or choose another folder",
    errno.EDQUOT: "the disk quota is exhausted: free some space or choose another folder",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EEXIST: "a file stands where a folder is needed: move it or choose another path",
    errno.ENOTDIR: "a file stands where a folder is needed: move it or choose another path",
}


def explain_write_error(e, path):
    """`e` (an OSError) as a WriteError naming `path` and the way out, and for a
    full disk the space left on it; other errors unchanged."""
    if isinstance(e, OSError) and not isinstance(e, WriteError) and e.errno in _ADVICE:
        said = f"cannot write {path}: {_ADVICE[e.errno]} ({e.strerror}"
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            folder = existing_parent(os.path.dirname(os.path.abspath(path)))
            said += f"; {format_bytes(shutil.disk_usage(folder).free)} free now in {folder}"
        return WriteError(e.errno, said + ")")
    return e


CRASH_ENV = "FAISS_WORKBOOK_CRASH_AFTER"  # tests: SIGKILL this process after the N-th commit
# tests: a file; the first process to reach a commit point while it exists deletes it and is
# SIGKILLed (one death among many processes, e.g. one Dask worker)
CRASH_ONCE_ENV = "FAISS_WORKBOOK_CRASH_ONCE"
_commits = 0


def commit_point():
    """Mark a commit (a rename that makes new state visible). The crash tests set
    FAISS_WORKBOOK_CRASH_AFTER=N to have the process killed, with SIGKILL, right
    after its N-th commit, so that every intermediate state on disk is tried."""
    global _commits
    _commits += 1
    if os.environ.get(CRASH_ENV) == str(_commits):
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(CRASH_ONCE_ENV):
        try:
            os.remove(os.environ[CRASH_ONCE_ENV])  # only one process can win this
        except FileNotFoundError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def existing_parent(folder):
    """`folder` (absolute), or its nearest parent that exists: the disk it will be on."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def check_writable(folder, what="the folder"):
    """Make sure files can be written in `folder` (or, while it does not exist, in
    its nearest existing parent) before any long computation, creating nothing;
    WriteError naming it and the way out otherwise."""
    probe = existing_parent(folder)  # nothing is created here
    try:
        with open(temp_path(os.path.join(probe, ".write-check")), "wb") as f:
            os.remove(f.name)
    except OSError as e:
        raise explain_write_error(e, f"{what} {folder}") from e


class LockedError(RuntimeError):
    """Another process holds the lock of an artifact; the message names it."""


def _holder(lock_path, wait_s=1.0):
    """Who holds the lock, as its holder wrote it; a holder that has just taken
    the lock gets up to wait_s to write its name."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with open(lock_path) as f:
                h = json.loads(f.read() or "{}")
            return f"pid {h['pid']} on {h['host']} (since {h['since']})"
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                return "another process"
            time.sleep(0.05)


@contextlib.contextmanager
def locked(path, wait=True, what=None):
    """Hold the OS lock of the artifact at `path` (flock on `path`.lock) for the
    block: the whole write of an artifact happens under it, so two processes
    never write one artifact at once. The lock dies with its process (a
    SIGKILLed holder never blocks the next). wait=True blocks until the holder
    is done, saying who it is (then the caller reuses what it wrote);
    wait=False raises LockedError naming the holder (pid, host, since when).
    The .lock file stays: removing it could split the lock between processes.
    """
    lock_path = os.fspath(path) + LOCK_SUFFIX
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise explain_write_error(e, lock_path) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(lock_path)
            if not wait:
                raise LockedError(f"{what or path} is in use by {holder}: wait for it to finish, "
                                  f"or use another folder") from None
            print(f"waiting for {holder}, which is writing {what or path} ...", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        # who holds it, first: a process that waits names it
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        # temporary files of this artifact left by a killed writer: no one else writes it now
        own = glob.escape(os.fspath(path))
        for stale in glob.glob(f"{own}{PARTIAL_SUFFIX}-*") + glob.glob(f"{own}.*{PARTIAL_SUFFIX}-*"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
        yield
    finally:
        os.close(fd)  # releases the lock


def is_partial(path):
    """Whether `path` is a file still being written (partial_path or atomic_path's)."""
    return PARTIAL_SUFFIX in os.path.basename(os.fspath(path))


def temp_path(path):
    """This process's own temporary name for `path`: `path`.partial-<pid>-<random>."""
    return f"{partial_path(path)}-{os.getpid()}-{os.urandom(3).hex()}"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path; rename it to `path` only if the block succeeds.

    The temporary name is this process's own (`path`.partial-<pid>-<random>),
    so two writers never rename each other's file away. On error the
    temporary file is removed and `path` is left untouched; an OSError such as
    a full disk is re-raised as WriteError naming `path`.
    """
    tmp = temp_path(path)
    try:
        yield tmp
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        err = explain_write_error(e, path)
        if err is e:
            raise
        raise err from e
    os.replace(tmp, path)
    commit_point()


def _plain(value):
    """numpy scalars and arrays as plain Python values, for json."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path, obj):
    """Write `obj` as indented JSON (numpy values as plain ones), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=_plain)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text):
    """Write `text` (str) to `path` atomically: a reader sees the old file or the whole new one."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return path


def read_json(path):
    with open(path) as f:
        return json.load(f)


def sha256_bytes(buf):
    """Hex SHA-256 of a bytes-like object or a contiguous numpy array."""
    return hashlib.sha256(memoryview(buf).cast("B")).hexdigest()


def combine_digests(digests):
    """One digest standing for an ordered list of chunk digests."""
    h = hashlib.sha256()
    for d in digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def quick_fingerprint(path, samples=16, block=1 << 16):
    """A cheap identity of a (large) file: size, modification time and the
    SHA-256 of `samples` blocks spread over it. Edits in place change it;
    the full checksum (dataset.verify_dataset) is the thorough check."""
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for i in range(samples):
            f.seek(max(0, (st.st_size - block) * i // max(1, samples - 1)))
            h.update(f.read(block))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sample_sha256": h.hexdigest()}


def write_csv(path, rows):
    """Write dicts as a CSV table (columns: union of keys, first-seen order), atomically."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(rows)
    return path


def file_sha256(path, block=1 << 24):
    """Hex SHA-256 of a file, read in 16 MiB blocks (~1.4 GB/s here)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()
