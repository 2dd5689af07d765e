"""Users' own vectors into a dataset folder, streamed, whatever the format.

Sources (open_source):

- one vector file: ``.npy`` (any float dtype, read block by block),
  ``.fvecs`` / ``.bvecs`` / ``.ivecs``, or an ann-benchmarks ``.hdf5``;
- a folder of ``.npy`` shards, concatenated in name order;
- parquet: one file or a folder of them, with a list or fixed-size-list
  numeric column (``column``), read batch by batch within row groups.

import_vectors reads the source once in blocks, converts to float32,
refuses NaN / inf rows (and zero vectors for cosine) with their count and
first rows, L2-normalises for cosine, and writes base.npy and queries.npy
with the generator's resumable, checksummed chunk writer: memory stays at a
few blocks whatever the file size. Without a query file, `n_queries` random
rows are held out: they become the queries and are left out of the base.
"""

import dataclasses
import glob
import os
import time

import numpy as np

from . import dataset
from .files import (check_disk_space, combine_digests, locked, partial_path, quick_fingerprint,
                    write_json)
from .vectors import open_vectors, read_rows, take_rows

METRICS = {"l2": "L2", "ip": "IP", "cosine": "IP"}  # user's name -> faiss metric
BLOCK_ROWS = 16384


class ImportVectorsError(dataset.DatasetError):
    """Users' vectors that cannot become a dataset; the message says why and what to do."""


def parse_metric(name):
    """(faiss metric 'L2' | 'IP', normalise: bool) for 'l2', 'ip' or 'cosine' (any case)."""
    key = str(name).lower()
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}: use l2, ip or cosine")
    return METRICS[key], key == "cosine"


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
    import pyarrow as pa
    import pyarrow.parquet as pq

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
    import pyarrow.parquet as pq

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
    import pyarrow.compute as pc

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


class _Picker:
    """Rows of `src` by increasing id, read in one forward pass where the source
    has no random access (parquet) and by positioned reads where it does."""

    def __init__(self, src, block_rows=BLOCK_ROWS):
        self.src, self.block_rows = src, block_rows
        self._blocks, self._block = None, (0, np.empty((0, src.d), np.float32))

    def pick(self, ids):
        """float32 (len(ids), d): rows `ids` (sorted int64) of the source."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.src.kind != "parquet":
            return self._take(ids)
        out = np.empty((len(ids), self.src.d), np.float32)
        done = 0
        while done < len(ids):
            b0, x = self._block
            if ids[done] < b0:  # asked to go back: start a new pass there
                self._blocks, self._block = iter_source(self.src, int(ids[done]), self.block_rows), (0, x[:0])
                continue
            if ids[done] >= b0 + len(x):
                if self._blocks is None:
                    self._blocks = iter_source(self.src, int(ids[done]), self.block_rows)
                self._block = next(self._blocks)
                continue
            stop = done + np.searchsorted(ids[done:], b0 + len(x))
            out[done:stop] = x[ids[done:stop] - b0]
            done = stop
        return out

    def _take(self, ids):
        out = np.empty((len(ids), self.src.d), np.float32)
        for part, p0 in zip(self.src.parts, self.src.starts):
            sel = (ids >= p0) & (ids < p0 + part.n)
            if not sel.any():
                continue
            local = ids[sel] - p0
            if part.key is not None and local[-1] - local[0] < 4 * len(local):
                # HDF5 point selections are slow: read the span, pick in memory
                out[sel] = read_rows(part, int(local[0]), int(local[-1]) + 1)[local - local[0]]
            else:
                out[sel] = take_rows(part, local)
        return out


# ------------------------------------------------------------------ import


def _problems(x, normalize):
    """(rows with NaN / inf, rows that are all zeros when normalising), in x."""
    finite = np.isfinite(x.sum(axis=1, dtype=np.float64))
    bad = np.flatnonzero(~finite)
    zero = np.flatnonzero(finite & ~x.any(axis=1)) if normalize else np.empty(0, np.int64)
    return bad, zero


def _refuse(src, what, ids_first, picker, row_ids, normalize, start):
    """Count every bad row of the source from `start` on, then raise naming them."""
    nan_rows, zero_rows = [], []
    for i in range(start, len(row_ids), BLOCK_ROWS):
        ids = row_ids[i:i + BLOCK_ROWS]
        bad, zero = _problems(picker.pick(ids), normalize)
        nan_rows += ids[bad].tolist()
        zero_rows += ids[zero].tolist()
    msgs = []
    if nan_rows:
        msgs.append(f"{len(nan_rows)} rows with NaN or inf values (first rows: "
                    f"{', '.join(map(str, nan_rows[:5]))})")
    if zero_rows:
        msgs.append(f"{len(zero_rows)} all-zero vectors, which cosine cannot normalise (first rows: "
                    f"{', '.join(map(str, zero_rows[:5]))})")
    raise ImportVectorsError(f"{src.path} ({what}): " + "; ".join(msgs) +
                       ". Remove or repair those rows first (row numbers count from 0 in the file)")


def _write_rows(tmp, src, what, row_ids, normalize, spec, chunk_rows, progress, norms):
    """base/queries file `tmp` holding rows `row_ids` of `src`, float32, normalised
    if asked; resumable (dataset._write_chunked). `norms` collects min/max/sum of
    the vectors' norms for the chunks written in this call."""
    picker = _Picker(src)

    def make_chunk(i):
        ids = row_ids[i * chunk_rows:(i + 1) * chunk_rows]
        x = picker.pick(ids)
        bad, zero = _problems(x, normalize)
        if bad.size or zero.size:
            _refuse(src, what, ids, picker, row_ids, normalize, i * chunk_rows)
        lengths = np.linalg.norm(x, axis=1)
        norms["min"] = min(norms.get("min", np.inf), float(lengths.min()))
        norms["max"] = max(norms.get("max", 0.0), float(lengths.max()))
        norms["sum"] = norms.get("sum", 0.0) + float(lengths.sum())
        norms["rows"] = norms.get("rows", 0) + len(x)
        if normalize:
            x /= lengths[:, None]
        return x

    return dataset._write_chunked(tmp, (len(row_ids), src.d), "float32", make_chunk, chunk_rows,
                                  spec, what, progress)


def held_out_ids(n, n_queries, seed):
    """Sorted ids of `n_queries` random rows of n held out as queries (int64)."""
    rng = np.random.default_rng([seed, 7])
    return np.sort(rng.choice(n, size=n_queries, replace=False))


def import_vectors(root, base, queries=None, metric="ip", column="embedding", n_queries=1000,
                   max_rows=0, seed=1234, base_key=None, queries_key=None,
                   chunk_rows=BLOCK_ROWS, overwrite=False, progress=True):
    """Import a user's vectors as the dataset in folder `root` and return it opened.

    base, queries: a file or folder (see open_source); without `queries`, an
    ann-benchmarks HDF5 base uses its own ``test`` set and any other source
    holds out `n_queries` random rows as queries (left out of the base).
    metric: 'l2', 'ip' or 'cosine' (normalised in the stream, then searched
    with inner product). max_rows: import a random subset of this many base
    rows (0: all), for exploring a large file at a smaller scale.
    Resumable, and reused as is when the same import already exists.
    """
    faiss_metric, normalize = parse_metric(metric)
    src = open_source(base, column, key=base_key)
    if queries is None and src.kind == "file" and src.parts[0].key is not None:
        queries, queries_key = base, queries_key or "test"
    qsrc = open_source(queries, column, key=queries_key) if queries is not None else None
    if qsrc is not None and qsrc.d != src.d:
        raise ImportVectorsError(f"queries in {queries} have d={qsrc.d} but the base vectors in {base} "
                           f"have d={src.d}: they must come from the same embedding model")
    held = held_out_ids(src.n, n_queries, seed) if qsrc is None else np.empty(0, np.int64)
    if qsrc is None and not 0 <= n_queries < src.n:
        raise ImportVectorsError(f"{base}: {src.n:,} rows cannot give {n_queries:,} held-out queries "
                           f"and a base; pass fewer n_queries or a separate query file")
    keep = np.setdiff1d(np.arange(src.n, dtype=np.int64), held, assume_unique=True)
    if max_rows and max_rows < len(keep):
        rng = np.random.default_rng([seed, 11])
        keep = np.sort(rng.choice(keep, size=max_rows, replace=False))
    spec = {"kind": "imported", "base": os.path.abspath(base), "base_kind": src.kind,
            "queries": os.path.abspath(queries) if queries is not None else None,
            "column": src.column, "base_key": base_key, "queries_key": queries_key,
            "metric": faiss_metric, "metric_name": metric.lower(), "normalized": normalize,
            "n_source": src.n, "n": len(keep), "d": src.d, "held_out": len(held),
            "max_rows": max_rows, "seed": seed, "chunk_rows": chunk_rows,
            "source_fingerprint": src.fingerprint(),
            "queries_fingerprint": qsrc.fingerprint() if qsrc else None}
    dataset._make_folder(root, [base, queries])
    with locked(os.path.join(root, dataset.MANIFEST), what=f"the dataset in {root}"):
        return _import(root, spec, src, qsrc, held, keep, normalize, max_rows, base, chunk_rows,
                       progress, overwrite)


def _import(root, spec, src, qsrc, held, keep, normalize, max_rows, base, chunk_rows, progress,
            overwrite):
    manifest_path = os.path.join(root, dataset.MANIFEST)
    if os.path.exists(manifest_path):
        old = dataset._read_manifest(manifest_path)
        if {k: old.get(k) for k in spec} == spec and not overwrite:
            return dataclasses.replace(dataset.load_dataset(root), reused=True)
        if not overwrite:
            raise dataset.DatasetExistsError(
                f"{root} already holds another dataset ({old.get('kind')}, from "
                f"{old.get('base', 'the generator')}); choose another folder or pass overwrite=True")
    nq = len(held) if qsrc is None else qsrc.n
    if _in_place(src, qsrc, normalize, max_rows, len(held)):
        return _describe_in_place(root, spec, src, qsrc, chunk_rows)
    todo = (len(keep) + nq) * src.d * 4 - sum(
        dataset._bytes_done(os.path.join(root, f)) for f in ("base.npy", "queries.npy"))
    check_disk_space(root, todo, what=f"the imported copy of {base} in {root}")

    t0 = time.perf_counter()
    norms, qnorms, files = {}, {}, {}
    if nq:  # n_queries=0 without a query file: a base only, for building (export)
        files["queries"] = _write_rows(
            partial_path(os.path.join(root, "queries.npy")), qsrc or src, "queries",
            held if qsrc is None else np.arange(qsrc.n), normalize, spec, chunk_rows, progress, qnorms)
    files["base"] = _write_rows(partial_path(os.path.join(root, "base.npy")), src, "base vectors",
                                keep, normalize, spec, chunk_rows, progress, norms)
    manifest = dict(spec, format=dataset.FORMAT, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    n_queries=nq, files=files, import_s=round(time.perf_counter() - t0, 1))
    if norms.get("rows") == len(keep):  # all written in this call (else a resumed import)
        manifest["norms"] = {"min": norms["min"], "max": norms["max"],
                             "mean": norms["sum"] / norms["rows"]}
    manifest["fingerprint"] = combine_digests([files[r]["sha256"] for r in ("base", "queries") if r in files])
    dataset._commit(root, manifest)
    return dataset.load_dataset(root)


def _in_place(src, qsrc, normalize, max_rows, held):
    """Whether the dataset can use the user's files where they are, without a copy:
    single float32 files, nothing normalised, held out or subsampled (a base
    without queries, for building from recommended.json, qualifies too)."""
    return (not normalize and not max_rows and not held
            and all(s.kind == "file" and s.dtype == "float32" for s in (src, qsrc) if s is not None))


def _describe_in_place(root, spec, src, qsrc, chunk_rows):
    """A dataset whose manifest points at the user's float32 files: one checksum
    pass over each (NaN / inf refused with their rows), no copy written."""
    files = {}
    for role, vf in (("base", src.parts[0]), ("queries", qsrc.parts[0] if qsrc else None)):
        if vf is None:
            continue
        digests = dataset._chunk_digests(vf, chunk_rows, check_finite=True)
        files[role] = {"path": os.path.abspath(vf.path), "key": vf.key, "shape": list(vf.shape),
                       "dtype": "float32", "chunk_rows": chunk_rows, "sha256_chunks": digests,
                       "sha256": combine_digests(digests), "quick": quick_fingerprint(vf.path)}
    manifest = dict(spec, format=dataset.FORMAT, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    n_queries=qsrc.n if qsrc else 0, files=files, in_place=True,
                    fingerprint=combine_digests([files[r]["sha256"] for r in ("base", "queries")
                                                 if r in files]))
    write_json(os.path.join(root, dataset.MANIFEST), manifest)  # nothing to move: the commit point
    return dataset.load_dataset(root)


def held_out_rows(ds):
    """Source row numbers of the held-out queries of an imported dataset (int64), or
    an empty array when the queries came from their own file."""
    m = ds.manifest
    if m.get("kind") != "imported" or m.get("queries") is not None or not m.get("held_out"):
        return np.empty(0, np.int64)
    return held_out_ids(m["n_source"], m["held_out"], m["seed"])


def metric_note(ds):
    """One sentence on what the dataset's metric means for these vectors."""
    m = ds.manifest
    name, norms = m.get("metric_name", m["metric"].lower()), m.get("norms")
    if name == "cosine":
        return "cosine: every vector was L2-normalised on import, so inner product ranks as cosine does"
    if name == "ip" and norms and not (abs(norms["min"] - 1) < 1e-3 and abs(norms["max"] - 1) < 1e-3):
        return (f"inner product on vectors whose norms range {norms['min']:.3g}..{norms['max']:.3g}: "
                f"longer vectors score higher whatever their direction, so results differ from "
                f"cosine; import with metric='cosine' if direction is what matters")
    return {"ip": "inner product (the vectors are unit length, so it ranks as cosine does)",
            "l2": "Euclidean (L2) distance"}.get(name, name)


def cross_check_neighbors(ds, gt_I, k=10, sample=100, seed=0):
    """Compare our exact ground truth with an ann-benchmarks file's own
    ``neighbors`` on a sample of queries. Returns {"queries", "k",
    "mean_overlap"} (1.0: the same top-k sets), or None when the dataset is
    not a whole ann-benchmarks file with its own test queries."""
    import h5py

    m = ds.manifest
    if m.get("base_kind") != "file" or m.get("base_key") not in (None, "train") or \
            not m["base"].lower().endswith((".hdf5", ".h5")) or m.get("queries") != m["base"] \
            or m["n"] != m["n_source"]:
        return None
    with h5py.File(m["base"], "r") as f:
        if "neighbors" not in f:
            return None
        theirs = f["neighbors"]
        rng = np.random.default_rng(seed)
        qs = np.sort(rng.choice(len(gt_I), size=min(sample, len(gt_I)), replace=False))
        kk = min(k, theirs.shape[1], gt_I.shape[1])
        ref = theirs[qs][:, :kk]
    overlap = [len(set(a) & set(b)) / kk for a, b in zip(ref, gt_I[qs, :kk])]
    return {"queries": len(qs), "k": kk, "mean_overlap": float(np.mean(overlap))}


def file_metric(path):
    """The metric an ann-benchmarks HDF5 file declares ('l2', 'cosine' or 'ip' from its
    ``distance`` attribute), or None for any other source."""
    if not str(path).lower().endswith((".hdf5", ".h5")) or not os.path.isfile(path):
        return None
    import h5py

    with h5py.File(path, "r") as f:
        distance = f.attrs.get("distance")
    distance = distance.decode() if isinstance(distance, bytes) else distance
    return {"euclidean": "l2", "angular": "cosine", "dot": "ip"}.get(distance)


def describe(path, column="embedding", key=None):
    """What the runner needs to plan before importing: {"n", "d", "kind", "dtype"}."""
    src = open_source(path, column, key)
    return {"n": src.n, "d": src.d, "kind": src.kind, "dtype": src.dtype}

