"""Safe file handling: atomic writes, disk-space checks, JSON and checksums.

Every file the workbook produces is written under a temporary name and renamed
when complete, so a reader never sees half a file and an interrupted job never
replaces good data.
"""

import contextlib
import hashlib
import json
import os
import shutil

PARTIAL_SUFFIX = ".partial"


class NotEnoughDiskError(OSError):
    """The target file system cannot hold the file about to be written."""


def check_disk_space(directory, nbytes, what="the file"):
    """Refuse, with the numbers, when `directory` has less than `nbytes` free.

    A 5% margin (at least 64 MiB) is kept for the file system itself.
    """
    directory = os.path.abspath(directory)
    probe = directory
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    needed = int(nbytes * 1.05) + (64 << 20)
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


def partial_path(path):
    """The temporary name a file is written under before it is complete."""
    return str(path) + PARTIAL_SUFFIX


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path; rename it to `path` only if the block succeeds.

    On error the temporary file is removed and `path` is left untouched.
    """
    tmp = partial_path(path)
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


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


def write_csv(path, rows):
    """Write dicts as a CSV table (columns: union of keys, first-seen order), atomically."""
    import csv

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


def fsync_file(path):
    """Flush a file's data to disk (before renaming it into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
