"""Index files: written under a temporary name and fsynced, loaded (optionally
memory-mapped), and IVF lists moved to an on-disk .ivfdata (faiss.contrib.ondisk)."""

import errno
import glob
import os

import faiss
from faiss.contrib.ondisk import merge_ondisk

from . import quiet
from .files import WriteError, atomic_path, locked


class IndexFileError(ValueError):
    """An index file is missing, unreadable, or cannot be converted as asked."""


def write_index_file(index, fname):
    """Write `index` into the file `fname` through Python (a full disk raises at
    once, where faiss's own file writer may only print "close error" and go
    on), flushed and fsynced. Returns its size in bytes; raises WriteError."""
    failed = []  # the OSError of a write inside faiss, which faiss reports as a RuntimeError

    def write(buf):
        try:
            return f.write(buf)
        except OSError as e:
            failed.append(e)
            raise

    with open(fname, "wb") as f:
        writer = faiss.PyCallbackIOWriter(write)
        try:
            faiss.write_index(index, writer)
        except RuntimeError as e:
            if failed:  # a full disk is said as one (files.explain_write_error)
                raise failed[0] from None
            raise WriteError(errno.EIO, f"cannot write {fname}: faiss says "
                                        f"{str(e).strip().splitlines()[-1]}") from None
        del writer
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def write_index(index, path):
    """write_index_file under a temporary name, renamed to `path` once complete."""
    with atomic_path(path) as tmp:
        return write_index_file(index, tmp)


def write_ondisk(index, sources, out_path):
    """`index` (an empty trained IVF) with the inverted lists of the `sources` index
    files merged into an .ivfdata beside out_path (faiss.contrib.ondisk), written
    to out_path. The .ivfdata gets a name of its own and the previous one is
    removed only after out_path names the new one, so a kill or a full disk
    leaves the old pair working. Returns the .ivfdata path."""
    data_path = f"{os.path.abspath(out_path)}.{os.getpid()}-{os.urandom(3).hex()}.ivfdata"
    try:
        with quiet.captured() as said:  # "resizing ... .ivfdata" for every list
            merge_ondisk(index, list(sources), data_path)
    except (RuntimeError, OSError) as e:
        if os.path.exists(data_path):
            os.remove(data_path)
        raise WriteError(errno.EIO, f"cannot write {data_path}: {e}; "
                                    f"{quiet.summary(said[-5:]) or 'faiss said nothing'}") from None
    try:
        write_index(index, out_path)
    except BaseException:
        os.remove(data_path)  # out_path still names the previous .ivfdata, which stays
        raise
    for old in glob.glob(glob.escape(os.path.abspath(out_path)) + "*.ivfdata"):
        if old != data_path:
            os.remove(old)
    return data_path


def ivfdata_path(index_path):
    """The .ivfdata file of the on-disk index at index_path (write_ondisk names it)."""
    found = glob.glob(glob.escape(os.path.abspath(index_path)) + ".*.ivfdata")
    if len(found) != 1:
        raise FileNotFoundError(f"{index_path} should have one .ivfdata beside it, found {len(found)}")
    return found[0]


def as_index(index_or_path):
    """`index_or_path` itself if it is a faiss index, else the index file at that
    path, loaded memory-mapped where faiss can (see load_index)."""
    if isinstance(index_or_path, faiss.Index):
        return index_or_path
    return load_index(os.fspath(index_or_path), mmap=True)


def load_index(path, mmap=False):
    """Read an index written by build_index; mmap=True maps its codes from disk
    instead of reading them into RAM: faiss.IO_FLAG_MMAP_IFC maps inverted
    lists and, in place, the code arrays of flat storage (HNSW's SQ/PQ/Flat
    storage, refine stages) and HNSW's graph links (faiss then checks every link
    on load, so they end up resident as reclaimable file pages). Fast-scan
    inverted lists (x4fs, RaBitQfs) ignore the flag and are read into RAM.

    Raises IndexFileError for a missing, truncated or corrupt file.
    """
    if not os.path.exists(path):
        raise IndexFileError(f"no index file at {path}")
    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    except RuntimeError as e:
        raise IndexFileError(f"{path} is not a readable faiss index (truncated or corrupt?): "
                         f"{str(e).strip().splitlines()[-1]}; rebuild it") from None


def to_ondisk(path, out_path, overwrite=False):
    """Rewrite the IVF index at `path` with its inverted lists in a separate
    .ivfdata file beside `out_path` (index_files.write_ondisk: a new file per write,
    the old pair kept until the new one is complete), memory-mapped when loaded.

    The lists are copied from a mapped read, so neither index enters RAM. The
    index file stores the absolute path of its .ivfdata: keep them together.
    An existing `out_path` newer than `path` is reused. Under the lock of
    out_path. Returns the loaded on-disk index.
    """
    with locked(out_path, what=f"the on-disk index {out_path}"):
        return _to_ondisk(path, out_path, overwrite)


def _to_ondisk(path, out_path, overwrite):
    if os.path.exists(out_path) and not overwrite:
        if os.path.getmtime(out_path) >= os.path.getmtime(path):
            return load_index(out_path)
        raise IndexFileError(f"{out_path} is older than {path}, so it may hold other data; "
                         f"pass overwrite=True to redo it")
    template = load_index(path, mmap=True)
    try:
        ivf = faiss.extract_index_ivf(template)
    except RuntimeError:
        raise IndexFileError(f"{path} holds no IVF index: only inverted lists can live on disk "
                         f"(HNSW and flat indexes can be loaded with mmap=True instead)") from None
    top = faiss.downcast_index(template)
    if not isinstance(top, (faiss.IndexIVF, faiss.IndexPreTransform)):
        raise IndexFileError(f"{path}: on-disk lists support IVF indexes, optionally behind a "
                         f"transform (OPQ, PCA), not {type(top).__name__}")
    if isinstance(faiss.downcast_index(ivf), faiss.IndexIVFFastScan):
        raise IndexFileError(f"{path}: fast-scan indexes (x4fs) keep their codes in SIMD blocks "
                         f"that on-disk inverted lists cannot hold; use mmap=True, or PQ with "
                         f"8-bit codes for lists on disk")
    empty = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    ivf.replace_invlists(empty, True)
    empty.this.disown()  # now owned by the index
    ivf.ntotal = template.ntotal = 0
    write_ondisk(template, [path], out_path)
    return load_index(out_path)
