"""Users' own vectors into a dataset folder, streamed, whatever the format.

Sources: see helpers.data.sources (npy, fvecs/bvecs/ivecs, ann-benchmarks hdf5,
npy shards, parquet).

import_vectors reads the source once in blocks, converts to float32,
refuses NaN / inf rows (and zero vectors for cosine) with their count and
first rows, L2-normalises for cosine, and writes base.npy and queries.npy
with the generator's resumable, checksummed chunk writer: memory stays at a
few blocks whatever the file size. Without a query file, `n_queries` random
rows are held out: they become the queries and are left out of the base.
"""

import dataclasses
import os
import time

import numpy as np

from ..core.files import (check_disk_space, combine_digests, locked, partial_path,
        quick_fingerprint, write_json)
from . import dataset, dataset_files
from .sources import BLOCK_ROWS, ImportVectorsError, iter_source, open_source
from .vectors import read_rows, sample_ids, take_rows


METRICS = {"l2": "L2", "ip": "IP", "cosine": "IP"}  # user's name -> faiss metric


def parse_metric(name):
    """(faiss metric 'L2' | 'IP', normalise: bool) for 'l2', 'ip' or 'cosine' (any case)."""
    key = str(name).lower()
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}: use l2, ip or cosine")
    return METRICS[key], key == "cosine"


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

    return dataset_files.write_chunked(tmp, (len(row_ids), src.d), "float32", make_chunk, chunk_rows,
                                  spec, what, progress)


def held_out_ids(n, n_queries, seed):
    """Sorted ids of `n_queries` random rows of n held out as queries (int64)."""
    return sample_ids(n, n_queries, [seed, 7])


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
        keep = keep[sample_ids(len(keep), max_rows, [seed, 11])]
    spec = {"kind": "imported", "base": os.path.abspath(base), "base_kind": src.kind,
            "queries": os.path.abspath(queries) if queries is not None else None,
            "column": src.column, "base_key": base_key, "queries_key": queries_key,
            "metric": faiss_metric, "metric_name": metric.lower(), "normalized": normalize,
            "n_source": src.n, "n": len(keep), "d": src.d, "held_out": len(held),
            "max_rows": max_rows, "seed": seed, "chunk_rows": chunk_rows,
            "source_fingerprint": src.fingerprint(),
            "queries_fingerprint": qsrc.fingerprint() if qsrc else None}
    dataset_files.make_folder(root, [base, queries])
    with locked(os.path.join(root, dataset.MANIFEST), what=f"the dataset in {root}"):
        return _import(root, spec, src, qsrc, held, keep, normalize, max_rows, base, chunk_rows,
                       progress, overwrite)


def _import(root, spec, src, qsrc, held, keep, normalize, max_rows, base, chunk_rows, progress,
            overwrite):
    manifest_path = os.path.join(root, dataset.MANIFEST)
    if os.path.exists(manifest_path):
        old = dataset_files.read_manifest(manifest_path)
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
        dataset_files.bytes_done(os.path.join(root, f)) for f in ("base.npy", "queries.npy"))
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
    dataset_files.commit(root, manifest)
    return dataset.load_dataset(root)


def _in_place(src, qsrc, normalize, max_rows, held):
    """Whether the dataset can use the user's files where they are, without a copy:
    single float32 or float16 files (.npy, .fvecs, HDF5: read as stored, as the
    generator's float16 base is), nothing normalised, held out or subsampled (a
    base without queries, for building from recommended.json, qualifies too).
    Those need a copy: the stored rows themselves change or leave the base."""
    return (not normalize and not max_rows and not held
            and all(s.kind == "file" and s.dtype in dataset.STORAGE_DTYPES
                    for s in (src, qsrc) if s is not None))


def _describe_in_place(root, spec, src, qsrc, chunk_rows):
    """A dataset whose manifest points at the user's float32 or float16 files: one
    checksum pass over each (NaN / inf refused with their rows), no copy written."""
    files = {}
    for role, vf in (("base", src.parts[0]), ("queries", qsrc.parts[0] if qsrc else None)):
        if vf is None:
            continue
        digests = dataset_files.chunk_digests(vf, chunk_rows, check_finite=True)
        files[role] = {"path": os.path.abspath(vf.path), "key": vf.key, "shape": list(vf.shape),
                       "dtype": vf.dtype.name, "chunk_rows": chunk_rows, "sha256_chunks": digests,
                       "sha256": combine_digests(digests), "quick": quick_fingerprint(vf.path)}
    manifest = dict(spec, format=dataset.FORMAT, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    n_queries=qsrc.n if qsrc else 0, files=files, in_place=True,
                    fingerprint=combine_digests([files[r]["sha256"] for r in ("base", "queries")
                                                 if r in files]))
    write_json(os.path.join(root, dataset.MANIFEST), manifest)  # nothing to move: the commit point
    return dataset.load_dataset(root)


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
    import h5py  # optional format: only HDF5 files need it

    m = ds.manifest
    if m.get("base_kind") != "file" or m.get("base_key") not in (None, "train") or \
            not m["base"].lower().endswith((".hdf5", ".h5")) or m.get("queries") != m["base"] \
            or m["n"] != m["n_source"]:
        return None
    with h5py.File(m["base"], "r") as f:
        if "neighbors" not in f:
            return None
        theirs = f["neighbors"]
        qs = sample_ids(len(gt_I), min(sample, len(gt_I)), seed)
        kk = min(k, theirs.shape[1], gt_I.shape[1])
        ref = theirs[qs][:, :kk]
    overlap = [len(set(a) & set(b)) / kk for a, b in zip(ref, gt_I[qs, :kk])]
    return {"queries": len(qs), "k": kk, "mean_overlap": float(np.mean(overlap))}


def file_metric(path):
    """The metric an ann-benchmarks HDF5 file declares ('l2', 'cosine' or 'ip' from its
    ``distance`` attribute), or None for any other source."""
    if not str(path).lower().endswith((".hdf5", ".h5")) or not os.path.isfile(path):
        return None
    import h5py  # optional format: only HDF5 files need it

    with h5py.File(path, "r") as f:
        distance = f.attrs.get("distance")
    distance = distance.decode() if isinstance(distance, bytes) else distance
    return {"euclidean": "l2", "angular": "cosine", "dot": "ip"}.get(distance)


def describe(path, column="embedding", key=None):
    """What the runner needs to plan before importing: {"n", "d", "kind", "dtype"}."""
    src = open_source(path, column, key)
    return {"n": src.n, "d": src.d, "kind": src.kind, "dtype": src.dtype}

