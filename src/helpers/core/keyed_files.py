"""Keyed files: what a stage wrote is reused only while the inputs it was made from
(its *key*) are the same.

A *key* is a dict of everything a file depends on (dataset fingerprint,
factory, training sample, ...). A file is reused only when its report
(`path`.json) holds the same key and its SHA-256 still matches; it is written
under a temporary name with its report as one commit (commit); a long fill
leaves checkpoints that a rerun with the same key resumes from (Checkpoints);
every streamed pass over the rows (dataset writing, ground truth, coarse
assignment, index adds) shows its progress and saves its state through
StreamedPass.
Callers hold the file's lock (files.locked) around all of it.

Caches (coarse spaces, assignments, shard templates, screening ground truth)
use the lighter half: cached / cache_index for an index with its key in
`path`.json, load_arrays / save_arrays for arrays with the key inside the .npz.
A cache whose key differs is redone, not refused: nothing of the user's is lost.
"""

import glob
import os
import time

import numpy as np

from .files import (NotEnoughDiskError, atomic_path, check_disk_space, commit_point, file_sha256,
        is_partial, read_json, write_json)
from .index_files import load_index, write_index, write_index_file
from .progress import tqdm


class KeyedFileError(ValueError):
    """A file exists but was made from other inputs, or changed since."""


def recover_pending(path):
    """Finish or undo a commit cut short (see commit): the pending report becomes
    the report if the index file is the one it describes, else it is dropped."""
    pending = path + ".json.pending"
    if not os.path.exists(pending):
        return
    report = read_json(pending)
    if os.path.exists(path) and file_sha256(path) == report.get("sha256"):
        os.replace(pending, path + ".json")
        commit_point()
    else:
        os.remove(pending)


def reusable(path, key):
    """The report of the index at `path` if it was built from `key` and its file is
    intact (SHA-256 as recorded); None if there is no index. Raises KeyedFileError for
    an index built from other inputs, or one whose file changed since."""
    recover_pending(path)
    if not os.path.exists(path):
        return None
    report = read_json(path + ".json") if os.path.exists(path + ".json") else {}
    if {k: report.get(k) for k in key} != key:
        differs = sorted(k for k in key if report.get(k) != key[k]) or ["no build report"]
        raise KeyedFileError(f"{path} exists and was not built from this dataset with {key['factory']!r}, "
                         f"n_train={key['n_train']:,}, ef_construction={key['ef_construction']} "
                         f"(differs in: {', '.join(differs)}); pass overwrite=True (--force on the "
                         f"command line, force in the notebooks) or choose another path")
    if file_sha256(path) != report.get("sha256"):
        raise KeyedFileError(f"{path} does not match the checksum in its build report: the file was "
                         f"modified or corrupted after it was built; pass overwrite=True (--force on the "
                         f"command line, force in the notebooks) to rebuild it")
    return report


def commit(index, path, report):
    """Write `index` to `path` and its report to `path`.json as one unit.

    The commit point is the rename of the index file. Just before it the
    complete report, with the new file's SHA-256, is written as
    `path`.json.pending; a kill after the rename leaves that pending report,
    which the next call completes (recover_pending). Before the rename
    the old index and report, if any, are untouched.
    """
    with atomic_path(path) as tmp:
        report["measured"]["disk"] = write_index_file(index, tmp)
        report["sha256"] = file_sha256(tmp)  # read back: what the report vouches for is on disk
        write_json(path + ".json.pending", report)
    # the index's rename (atomic_path) was the commit point; this completes it
    os.replace(path + ".json.pending", path + ".json")
    commit_point()


class Checkpoints:
    """The partly built index beside `path`, as `path`.checkpoint-<rows>.

    The commit point is `path`.checkpoint.json, which names the current
    checkpoint file and its row count, and the key it was built for. A new
    checkpoint file is complete before the JSON names it, and the file it
    replaces is removed only after, so a kill at any instant leaves one
    consistent pair. The trained, still empty index is checkpoint 0, kept
    beside the latest so that fall_back() can free the disk of the others.
    """

    def __init__(self, path, key):
        self.path, self.key, self.state_path = path, key, path + ".checkpoint.json"

    def files(self):
        return glob.glob(glob.escape(self.path) + ".checkpoint-*")

    def load(self, overwrite):
        """(index, rows added) of the last checkpoint for this key, or (None, 0)."""
        if not os.path.exists(self.state_path):
            return None, 0
        state = read_json(self.state_path)
        if {k: state.get(k) for k in self.key} != self.key:
            if overwrite:
                self.clear()
                return None, 0
            raise KeyedFileError(f"a checkpoint beside {self.path} was made for other inputs "
                             f"({state.get('factory')}, n_train={state.get('n_train')}); remove "
                             f"{self.state_path} or pass overwrite=True")
        file = os.path.join(os.path.dirname(self.path), state["file"])
        index = load_index(file)
        if index.ntotal != state["rows_added"]:
            raise KeyedFileError(f"{file} holds {index.ntotal:,} vectors but {self.state_path} says "
                             f"{state['rows_added']:,}: the checkpoint is inconsistent; remove both "
                             f"or pass overwrite=True")
        return index, state["rows_added"]

    def save(self, index, rows):
        """Write checkpoint `rows` beside the one it replaces, then name it. The
        trained index (checkpoint 0, small) is kept until clear(): fall_back()'s state."""
        file = self._file(rows)
        write_index(index, file)
        self._name(rows)
        for old in self.files():
            if old not in (file, self._file(0)) and not is_partial(old):
                os.remove(old)

    def fall_back(self):
        """Name the trained index (checkpoint 0) again and remove the later
        checkpoints, freeing their disk: until the next save a kill resumes from
        the trained index, not from the rows added (from scratch where an older
        run left no checkpoint 0)."""
        if os.path.exists(self._file(0)):
            self._name(0)
        elif os.path.exists(self.state_path):
            os.remove(self.state_path)
        for old in self.files():
            if old != self._file(0) and not is_partial(old):
                os.remove(old)

    def _file(self, rows):
        return f"{self.path}.checkpoint-{rows}"

    def _name(self, rows):
        write_json(self.state_path, dict(self.key, rows_added=rows,
                                         file=os.path.basename(self._file(rows))))

    def clear(self):
        if os.path.exists(self.state_path):
            os.remove(self.state_path)  # first: the files it named are no longer trusted
        for f in self.files():
            os.remove(f)


class StreamedPass:
    """Progress and checkpoint timing of one resumable pass over `total` rows.

    The caller streams the rows from `start` itself and calls advance(rows_done)
    after each block; save(rows_done) is called when checkpoint_seconds have
    passed since the last save (0: after every block). Not after the last row
    unless save_last: the caller commits the result then. Use as a context
    manager (it closes the progress bar)."""

    def __init__(self, total, start, desc, save=None, checkpoint_seconds=60, progress=True,
                 save_last=False):
        self.total, self.save, self.every, self.save_last = total, save, checkpoint_seconds, save_last
        self.last = time.perf_counter()
        self.bar = tqdm(total=total, initial=start, unit="vec", unit_scale=True, desc=desc,
                        disable=not progress)
        self.rows_done = start

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def advance(self, rows_done):
        self.bar.update(rows_done - self.rows_done)
        self.rows_done = rows_done
        due = time.perf_counter() - self.last >= self.every
        if self.save and due and (rows_done < self.total or self.save_last):
            self.save(rows_done)
            self.last = time.perf_counter()


def room_for(directory, nbytes):
    """Whether `directory` has nbytes free plus check_disk_space's margin."""
    try:
        check_disk_space(directory, nbytes)
        return True
    except NotEnoughDiskError:
        return False


# -- caches: a file reused while the key recorded with it matches, redone otherwise
def cached(path, key):
    """Whether `path` exists with `key` (a dict) recorded beside it in `path`.json."""
    return os.path.exists(path) and os.path.exists(path + ".json") and read_json(path + ".json") == key


def cache_index(index, path, key):
    """Write `index` to `path` (under a temporary name), then its key: the old key
    goes first, so a file whose key is missing or differs is never reused."""
    if os.path.exists(path + ".json"):
        os.remove(path + ".json")
    write_index(index, path)
    write_json(path + ".json", key)


def load_arrays(path, key):
    """{name: array} of the .npz at `path` if it was saved with `key`, else None
    (missing, other inputs, or unreadable: the caller redoes it)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as f:
            if str(f["key"]) != repr(key):
                return None
            return {name: f[name] for name in f.files if name != "key"}
    except (OSError, ValueError, KeyError):
        return None


def save_arrays(path, key, **arrays):
    """Save arrays and `key` as one .npz at `path`, written under a temporary name
    and fsynced before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, key=repr(key), **arrays)
            f.flush()
            os.fsync(f.fileno())
