"""Users' vector sources, opened and read in blocks whatever the format.

- one vector file: ``.npy`` (any float dtype, read block by block),
  ``.fvecs`` / ``.bvecs`` / ``.ivecs``, or an ann-benchmarks ``.hdf5``;
- a folder of ``.npy`` shards, concatenated in name order;
- parquet: one file or a folder of them, with a list or fixed-size-list
  numeric column (``column``), read batch by batch within row groups.
"""

import dataclasses
import glob
import os

import numpy as np

from ..core.files import quick_fingerprint
from .dataset_files import DatasetError
from .vectors import open_vectors, read_rows


BLOCK_ROWS = 16384


class ImportVectorsError(DatasetError):
    """Users' vectors that cannot become a dataset; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a user's vectors are; holds no data.

    kind: "file", "npy shards" or "parquet"; parts: VectorFiles ("file",
    "npy shards") or (parquet path, rows) pairs; starts: first row of each
    part; n, d: rows and dimension; dtype: element dtype as stored.
    """
    path: str
    kind: str
    parts: tuple
    starts: tuple
    n: int
    d: int
    dtype: str
    column: str = None

    def fingerprint(self):
        """Cheap identity of the source files: [{size, mtime_ns, sample_sha256}, ...]."""
        return [quick_fingerprint(p.path if hasattr(p, "path") else p[0]) for p in self.parts]


def open_source(path, column="embedding", key=None):
    """Describe the vectors at `path` (a file or a folder); reads only headers."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        shards = sorted(glob.glob(os.path.join(path, "*.npy")))
        tables = sorted(glob.glob(os.path.join(path, "*.parquet")))
        if shards and tables:
            raise ImportVectorsError(f"{path} holds both .npy and .parquet files: keep one format per folder")
        if tables:
            return _open_parquet(path, tables, column)
        if not shards:
            raise ImportVectorsError(f"{path}: no .npy or .parquet files in this folder")
        return _open_shards(path, shards)
    if path.lower().endswith(".parquet"):
        return _open_parquet(path, [path], column)
    vf = _checked(open_vectors(path, key=key), path)
    return Source(path, "file", (vf,), (0,), vf.n, vf.d, vf.dtype.name)


def _checked(vf, path):
    if vf.n == 0:
        raise ImportVectorsError(f"{path} holds no vectors (0 rows)")
    return vf


def _open_shards(path, files):
    parts = [_checked(open_vectors(f), f) for f in files]
    dims = {vf.d for vf in parts}
    if len(dims) > 1:
        first = parts[0]
        odd = next(vf for vf in parts if vf.d != first.d)
        raise ImportVectorsError(f"{path}: shards have different dimensions: {first.path} has d={first.d}, "
                           f"{odd.path} has d={odd.d}; every shard must hold vectors of one d")
    starts = tuple(np.cumsum([0] + [vf.n for vf in parts[:-1]]).tolist())
    dtypes = sorted({vf.dtype.name for vf in parts})
    return Source(path, "npy shards", tuple(parts), starts, sum(vf.n for vf in parts),
                  parts[0].d, "/".join(dtypes))


def _open_parquet(path, files, column):
    import pyarrow as pa  # optional format: only parquet needs pyarrow
    import pyarrow.parquet as pq  # optional format: only parquet needs pyarrow

    parts, d, dtype = [], None, None
    for f in files:
        try:
            meta = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise ImportVectorsError(f"{f}: not a readable parquet file ({e}); is it truncated?") from None
        schema = meta.schema_arrow
        if column not in schema.names:
            raise ImportVectorsError(f"{f}: no column {column!r}; it has {schema.names}. "
                               f"Name the vector column with --column")
        t = schema.field(column).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) \
                or not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
            raise ImportVectorsError(f"{f}: column {column!r} is {t}, not a list of numbers; the "
                               f"vectors must be a list<float> or fixed_size_list<float> column")
        if meta.metadata.num_rows == 0:
            continue
        if pa.types.is_fixed_size_list(t):
            fd = t.list_size
        else:  # the first row's length; every later row is checked as it is read
            first = next(meta.iter_batches(batch_size=1, columns=[column]))
            fd = len(first.column(0)[0])
        if d is not None and fd != d:
            raise ImportVectorsError(f"{f}: vectors have d={fd} but earlier files have d={d}")
        d, dtype = fd, str(t.value_type)
        parts.append((f, meta.metadata.num_rows))
    if not parts:
        raise ImportVectorsError(f"{path}: the parquet data holds no rows")
    starts = tuple(np.cumsum([0] + [n for _, n in parts[:-1]]).tolist())
    return Source(path, "parquet", tuple(parts), starts, sum(n for _, n in parts), d, dtype, column)


# ------------------------------------------------------------------ reading


def iter_source(src, start=0, block_rows=BLOCK_ROWS):
    """Yield (i0, float32 (rows, d)) blocks of `src` from row `start` to the end."""
    for part, p0 in zip(src.parts, src.starts):
        n = part.n if hasattr(part, "n") else part[1]
        if p0 + n <= start:
            continue
        if src.kind == "parquet":
            yield from _iter_parquet(src, part[0], p0, start)
            continue
        for i0 in range(max(start - p0, 0), n, block_rows):
            yield p0 + i0, read_rows(part, i0, min(i0 + block_rows, n))


def _iter_parquet(src, path, p0, start, batch_rows=BLOCK_ROWS):
    import pyarrow.parquet as pq  # optional format: only parquet needs pyarrow

    f = pq.ParquetFile(path)
    row = p0
    groups = []
    for g in range(f.metadata.num_row_groups):  # whole row groups before `start` are skipped
        rows = f.metadata.row_group(g).num_rows
        if row + rows > start:
            groups.append(g)
        elif not groups:
            row += rows
    for batch in f.iter_batches(batch_size=batch_rows, row_groups=groups, columns=[src.column]):
        if row + batch.num_rows > start:
            x = _list_column_to_array(batch.column(0), src.d, path, row)
            cut = max(start - row, 0)
            yield row + cut, x[cut:]
        row += batch.num_rows


def _list_column_to_array(col, d, path, row0):
    """float32 (rows, d) from a list / fixed-size-list arrow array; refuses nulls
    and rows of another length, naming the rows."""
    import pyarrow.compute as pc  # optional format: only parquet needs pyarrow

    if col.null_count:
        bad = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
        raise ImportVectorsError(f"{path}: {len(bad)} rows have no vector (null) (first rows: "
                           f"{', '.join(str(row0 + i) for i in bad[:5])})")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != d)
    if bad.size:
        raise ImportVectorsError(f"{path}: mixed dimensions: {bad.size} rows here do not have d={d} "
                           f"(first: row {row0 + bad[0]} has {lengths[bad[0]]} values)")
    values = col.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values.reshape(len(col), d), dtype=np.float32)
