"""Reading vectors from disk block by block, whatever the file format.

Supported formats:

- ``.npy``: a 2-D float32 / float16 / uint8 / int32 array (NumPy format);
- ``.fvecs`` / ``.bvecs`` / ``.ivecs``: the TEXMEX ANN formats, each row
  prefixed by its dimension as an int32 (float32 / uint8 / int32 elements);
- ``.hdf5`` / ``.h5``: one dataset of a file in the ann-benchmarks layout
  (``train`` = database, ``test`` = queries, ``neighbors``, ``distances``).

All binary formats are fixed-stride records, so one reader serves them:
blocks are read with plain file reads into fresh arrays, which keeps resident
memory bounded by the block size (a memory map would leave every page it
touched counted in the process's RSS).
"""

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.files import PARTIAL_SUFFIX


# format -> (element dtype, per-row prefix in bytes)
_TEXMEX = {
    ".fvecs": (np.dtype("<f4"), 4),
    ".bvecs": (np.dtype("u1"), 4),
    ".ivecs": (np.dtype("<i4"), 4),
}
_HDF5 = (".hdf5", ".h5")
VECTOR_DTYPES = ("float32", "float16", "float64", "uint8", "int8", "int32")


class VectorFileError(ValueError):
    """A vector file is malformed or does not hold what was expected."""


@dataclasses.dataclass(frozen=True)
class VectorFile:
    """Where the rows of a vector file live; holds no data.

    path: the file; n, d: rows and dimension; dtype: element dtype as stored;
    offset: bytes before row 0; prefix: bytes of per-row header (4 for the
    TEXMEX formats, 0 otherwise); key: dataset name inside an HDF5 file.
    """
    path: str
    n: int
    d: int
    dtype: np.dtype
    offset: int = 0
    prefix: int = 0
    key: str = None

    @property
    def shape(self):
        return (self.n, self.d)

    @property
    def row_bytes(self):
        return self.prefix + self.d * self.dtype.itemsize

    @property
    def nbytes(self):
        return self.n * self.d * self.dtype.itemsize


def open_vectors(path, key=None, d=None, dtype=None):
    """Describe the vectors stored in `path` (no data is read).

    key: dataset name for HDF5 files (default ``train``, the database).
    d, dtype: if given, the dimension / stored dtype the caller expects; a
    mismatch raises VectorFileError naming both.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"vector file not found: {path}")
    # a file still being written (name.npy.partial) has the format of name.npy
    ext = os.path.splitext(path.removesuffix(PARTIAL_SUFFIX))[1].lower()
    if ext == ".npy":
        vf = _open_npy(path)
    elif ext in _TEXMEX:
        vf = _open_texmex(path, *_TEXMEX[ext])
    elif ext in _HDF5:
        vf = _open_hdf5(path, key or "train")
    else:
        raise VectorFileError(
            f"{path}: unknown vector format {ext!r}; use .npy, .fvecs, "
            f".bvecs, .ivecs or .hdf5 (ann-benchmarks layout)"
        )
    if d is not None and vf.d != d:
        raise VectorFileError(
            f"{path}: vectors have dimension {vf.d}, expected {d}"
        )
    if dtype is not None and vf.dtype != np.dtype(dtype):
        raise VectorFileError(
            f"{path}: vectors are stored as {vf.dtype}, expected {np.dtype(dtype)}"
        )
    return vf


def _open_npy(path):
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
        except Exception as e:  # numpy raises ValueError, SyntaxError or TokenError here
            raise VectorFileError(f"{path}: not a valid .npy file: its header is corrupt "
                                  f"({type(e).__name__}: {e})") from None
        offset = f.tell()
    if len(shape) != 2:
        raise VectorFileError(
            f"{path}: expected a 2-D array (n, d), found shape {shape}"
        )
    if fortran:
        raise VectorFileError(
            f"{path}: array is Fortran-ordered; save it with "
            f"np.save(path, np.ascontiguousarray(x))"
        )
    if dtype.name not in VECTOR_DTYPES or dtype.byteorder == ">":
        raise VectorFileError(
            f"{path}: unsupported dtype {dtype}; store vectors as float32, float16, "
            f"float64 or uint8 (little-endian){' (int64 arrays usually hold ids, not vectors)' if dtype.name == 'int64' else ''}"
        )
    vf = VectorFile(path, shape[0], shape[1], dtype, offset=offset)
    expected = offset + vf.nbytes
    size = os.path.getsize(path)
    if size < expected:
        raise VectorFileError(
            f"{path}: file is truncated: header says {shape} {dtype} "
            f"({expected} bytes) but the file has {size} bytes"
        )
    return vf


def _open_texmex(path, dtype, prefix):
    size = os.path.getsize(path)
    if size < 4:
        raise VectorFileError(f"{path}: file is empty or truncated ({size} bytes)")
    d = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if d <= 0 or d > 1 << 20:
        raise VectorFileError(
            f"{path}: first row announces dimension {d}, which is not "
            f"plausible; is this really a {os.path.splitext(path)[1]} file?"
        )
    vf = VectorFile(path, 0, d, dtype, prefix=prefix)
    n, rest = divmod(size, vf.row_bytes)
    if rest:
        raise VectorFileError(
            f"{path}: file size {size} is not a multiple of the row size "
            f"{vf.row_bytes} (4-byte header + {d} x {dtype.itemsize} bytes): "
            f"the file is truncated or its rows have different dimensions "
            f"({n} whole rows, {rest} bytes left over)"
        )
    return dataclasses.replace(vf, n=n)


def _open_hdf5(path, key):
    import h5py  # optional format: only HDF5 files need it

    with h5py.File(path, "r") as f:
        if key not in f:
            raise VectorFileError(
                f"{path}: no dataset {key!r}; it has {sorted(f.keys())} "
                f"(ann-benchmarks layout: train, test, neighbors, distances)"
            )
        ds = f[key]
        if ds.ndim != 2:
            raise VectorFileError(f"{path}[{key}]: expected 2-D, found {ds.shape}")
        return VectorFile(path, ds.shape[0], ds.shape[1], ds.dtype, key=key)


def read_rows(vf, i0, i1, as_float32=True):
    """Rows [i0, i1) of `vf` as a fresh C-contiguous array of shape (i1-i0, d).

    as_float32: convert to float32 (what faiss takes); otherwise keep the
    stored dtype. TEXMEX row headers are checked against d.
    """
    if not 0 <= i0 <= i1 <= vf.n:
        raise IndexError(f"rows [{i0}, {i1}) out of range for {vf.n} rows in {vf.path}")
    if vf.key is not None:
        import h5py  # optional format: only HDF5 files need it

        with h5py.File(vf.path, "r") as f:
            x = f[vf.key][i0:i1]
    else:
        nrows = i1 - i0
        raw = np.fromfile(
            vf.path, dtype=np.uint8, count=nrows * vf.row_bytes,
            offset=vf.offset + i0 * vf.row_bytes,
        )
        if raw.size != nrows * vf.row_bytes:
            raise VectorFileError(
                f"{vf.path}: file ended early reading rows [{i0}, {i1}); "
                f"it is truncated"
            )
        raw = raw.reshape(nrows, vf.row_bytes)
        if vf.prefix:
            _check_row_headers(vf, raw, i0)
            raw = raw[:, vf.prefix:]
        x = np.ascontiguousarray(raw).view(vf.dtype)
    if as_float32 and x.dtype != np.float32:
        x = x.astype(np.float32)
    return x


def _check_row_headers(vf, raw, i0):
    dims = np.ascontiguousarray(raw[:, :4]).view("<i4").ravel()
    bad = np.flatnonzero(dims != vf.d)
    if bad.size:
        raise VectorFileError(
            f"{vf.path}: inconsistent file: {bad.size} rows in block starting "
            f"at row {i0} announce a dimension other than {vf.d} (first: row "
            f"{i0 + bad[0]} says {dims[bad[0]]}); the file is corrupt or "
            f"mixes dimensions"
        )


def iter_blocks(vf, block_rows, start=0, stop=None, check=True, prefetch=False):
    """Yield (i0, block) over rows [start, stop) in blocks of `block_rows`.

    block: float32 array (rows, d). check: raise on NaN / inf (see
    check_finite). prefetch: read the next block in a background thread
    while the caller works on this one (peak memory two blocks instead of one).
    """
    stop = vf.n if stop is None else stop

    def load(i0):
        x = read_rows(vf, i0, min(i0 + block_rows, stop))
        if check:
            check_finite(x, i0, vf.path)
        return x

    starts = range(start, stop, block_rows)
    if not prefetch:
        for i0 in starts:
            yield i0, load(i0)
        return

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, starts[0]) if starts else None
        for j, i0 in enumerate(starts):
            x = pending.result()
            pending = pool.submit(load, starts[j + 1]) if j + 1 < len(starts) else None
            yield i0, x


def take_rows(vf, ids):
    """Rows `ids` (any order, repeats allowed) as a float32 array (len(ids), d).

    Reads only the rows asked for, with positioned reads; where ids are dense
    a whole run of rows is read at once. (A memory map would do the same
    reads but leave neighbouring pages mapped and counted as resident.)
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vf.n):
        raise IndexError(f"row ids out of range [0, {vf.n}) for {vf.path}")
    uniq, inv = np.unique(ids, return_inverse=True)
    if vf.key is not None:
        import h5py  # optional format: only HDF5 files need it

        with h5py.File(vf.path, "r") as f:
            return f[vf.key][uniq][inv].astype(np.float32, copy=False)
    rows = np.empty((uniq.size, vf.row_bytes), dtype=np.uint8)
    run = 1024
    singles = []  # positions of isolated rows, read one by one
    with open(vf.path, "rb") as f:
        fd = f.fileno()
        block_of = uniq // run
        bounds = np.flatnonzero(np.diff(block_of)) + 1
        for sel in np.split(np.arange(uniq.size), bounds):
            if sel.size == 0:
                continue
            if sel.size > run // 16:  # dense: one read for the whole run of rows
                r0 = int(block_of[sel[0]]) * run
                r1 = min(r0 + run, vf.n)
                buf = _pread(fd, vf, r0, r1).reshape(r1 - r0, vf.row_bytes)
                rows[sel] = buf[uniq[sel] - r0]
            else:
                singles.append(sel)
        if singles:
            _pread_rows(fd, vf, uniq, np.concatenate(singles), rows)
    if vf.prefix:
        _check_row_headers(vf, rows, int(uniq[0]) if uniq.size else 0)
        rows = rows[:, vf.prefix:]
    x = np.ascontiguousarray(rows).view(vf.dtype)
    if uniq.size != ids.size or (ids[1:] < ids[:-1]).any():
        x = x[inv]  # the order and repeats asked for (a copy; skipped for sorted ids)
    return x.astype(np.float32, copy=False)


READ_THREADS = 16  # positioned reads in flight at once: a disk serves many faster than one


def _pread_rows(fd, vf, uniq, positions, rows):
    """rows[j] = row uniq[j] for each j in positions, read by READ_THREADS threads
    (os.pread releases the GIL, so cold reads overlap instead of queueing)."""

    def read(chunk):
        for j in chunk:
            rows[j] = _pread(fd, vf, int(uniq[j]), int(uniq[j]) + 1)

    chunks = np.array_split(positions, min(READ_THREADS, len(positions)))
    with ThreadPoolExecutor(len(chunks)) as pool:
        list(pool.map(read, chunks))  # list(): a failed read raises here


def _pread(fd, vf, r0, r1):
    nbytes = (r1 - r0) * vf.row_bytes
    buf = os.pread(fd, nbytes, vf.offset + r0 * vf.row_bytes)
    if len(buf) != nbytes:
        raise VectorFileError(f"{vf.path}: file ended early at row {r0}; it is truncated")
    return np.frombuffer(buf, dtype=np.uint8)


def check_finite(x, i0=0, where="vectors"):
    """Raise VectorFileError if `x` (n, d) holds NaN or inf.

    The message gives how many values, how many rows, and the first rows
    (numbered from i0) so they can be found and fixed.
    """
    if np.isfinite(x.sum(dtype=np.float64)):  # fast path, no n x d temporary
        return
    finite = np.isfinite(x)
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    nan = int(np.isnan(x).sum())
    inf = int(np.isinf(x).sum())
    first = ", ".join(str(i0 + r) for r in bad_rows[:5])
    raise VectorFileError(
        f"{where}: {nan} NaN and {inf} inf values in {bad_rows.size} rows "
        f"(first rows: {first}); remove or repair those rows before indexing"
    )


def sample_ids(n, size, seed):
    """Sorted distinct random ids: int64 (size,) drawn from range(n) by a generator
    seeded with `seed` (an int or a list of ints, as numpy takes it)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def train_sample_ids(n, n_train, seed=0):
    """Sorted ids of an index's random training sample (not the first rows): int64 (n_train,)."""
    return sample_ids(n, n_train, [seed, 17])
