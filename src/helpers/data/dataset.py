"""Datasets on disk: generation, manifest, loading, verification and import.

A dataset is a folder::

    base.npy       database vectors (n, d), float32 or float16
    queries.npy    held-out query vectors (nq, d), never database rows
    train.npy      training sample: random database rows (optional)
    manifest.json  shape, dtype, metric, seed, generator parameters and
                   per-chunk SHA-256 checksums of every file

Imported datasets (users' own files) have a manifest pointing at the files
where they are. The manifest's ``fingerprint`` identifies the data; anything
derived from a dataset (ground truth, indexes) records it, so stale results
are detected.
"""

import dataclasses
import os
import time

import faiss
import numpy as np

from ..core.files import (check_disk_space, combine_digests, LockedError, locked, partial_path,
        quick_fingerprint, write_json)
from . import synthetic
from .dataset_files import (MANIFEST, DatasetError, DatasetExistsError, bytes_done, chunk_digests,
        commit, make_folder, read_manifest, write_chunked)
from .vectors import VectorFile, open_vectors, sample_ids, take_rows


FORMAT = "faiss-workbook-dataset/1"
METRICS = ("L2", "IP")
STORAGE_DTYPES = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """An opened dataset: its folder, manifest and vector files (no data held)."""
    root: str
    manifest: dict
    base: VectorFile
    queries: VectorFile  # None for a base imported only to build from (export)
    train: VectorFile = None
    reused: bool = False  # generate_dataset found this very dataset already on disk

    @property
    def metric(self):
        return self.manifest["metric"]

    @property
    def fingerprint(self):
        return self.manifest["fingerprint"]

    @property
    def n(self):
        return self.base.n

    @property
    def d(self):
        return self.base.d


def check_metric(metric):
    """The metric's canonical name ('L2' or 'IP'); names are case-insensitive."""
    canonical = str(metric).upper() if isinstance(metric, str) else metric
    if canonical not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS} (any case)")
    return canonical


def faiss_metric(metric):
    """The faiss METRIC_* constant for 'L2' or 'IP'."""
    return faiss.METRIC_L2 if check_metric(metric) == "L2" else faiss.METRIC_INNER_PRODUCT


# --------------------------------------------------------------- generation


def generate_dataset(
    root,
    n,
    n_queries=1000,
    n_train=None,
    params=synthetic.GeneratorParams(),
    metric="IP",
    dtype="float32",
    chunk_rows=16384,
    overwrite=False,
    progress=True,
):
    """Write a synthetic dataset to folder `root` and return it opened.

    n, n_queries: database and query rows; n_train: rows of the training
    sample (default min(n, 100_000)), drawn at random from the database.
    params: synthetic.GeneratorParams (its d is the dimension); metric: 'L2'
    or 'IP'; dtype: storage dtype, 'float32' or 'float16'; chunk_rows: rows
    generated, written and checksummed at a time (peak memory ~ a few chunks).

    If `root` already holds this exact dataset it is returned as is; a
    different dataset there raises DatasetExistsError. With overwrite=True the
    dataset is generated anew and the new files replace the old ones only once
    complete.
    An interrupted generation resumes from its last complete chunk.
    """
    make_folder(root)
    with locked(os.path.join(root, MANIFEST), what=f"the dataset in {root}"):
        return _generate_dataset(root=root, n=n, n_queries=n_queries, n_train=n_train,
                                 params=params, metric=metric, dtype=dtype, chunk_rows=chunk_rows,
                                 overwrite=overwrite, progress=progress)


def _generate_dataset(root, n, n_queries, n_train, params, metric, dtype, chunk_rows, overwrite,
                      progress):
    n_train = min(n, 100_000) if n_train is None else n_train
    spec = _spec(n, n_queries, n_train, params, check_metric(metric), dtype, chunk_rows)
    manifest_path = os.path.join(root, MANIFEST)
    if os.path.exists(manifest_path):
        old = read_manifest(manifest_path)
        if {k: old.get(k) for k in spec} == spec and not overwrite:
            return dataclasses.replace(load_dataset(root), reused=True)
        if not overwrite:
            changed = sorted(k for k in spec if old.get(k) != spec[k])
            raise DatasetExistsError(
                f"{root} already holds a different dataset (differs in: "
                f"{', '.join(changed)}). Pass overwrite=True to replace it, "
                f"or choose another folder."
            )
    sizes = {"base": n, "queries": n_queries, "train": n_train}
    todo = sum(rows * params.d * np.dtype(dtype).itemsize for rows in sizes.values())
    todo -= sum(bytes_done(os.path.join(root, f"{k}.npy")) for k in sizes)
    check_disk_space(root, todo, what=f"the dataset in {root}")
    files = _write_files(root, spec, params, progress)
    manifest = dict(spec, format=FORMAT, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    manifest["files"] = files
    manifest["fingerprint"] = combine_digests(
        [files["base"]["sha256"], files["queries"]["sha256"]])
    commit(root, manifest)
    return load_dataset(root)


def _spec(n, n_queries, n_train, params, metric, dtype, chunk_rows):
    """What a synthetic dataset is made from (its manifest's key), checked."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {STORAGE_DTYPES}, got {dtype!r}")
    for name, v in (("n", n), ("n_queries", n_queries), ("chunk_rows", chunk_rows)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if not 0 <= n_train <= n:
        raise ValueError(f"n_train must be in [0, n={n}], got {n_train}")
    return {"kind": "synthetic", "n": n, "n_queries": n_queries, "n_train": n_train,
            "d": params.d, "metric": metric, "dtype": dtype, "chunk_rows": chunk_rows,
            "seed": params.seed, "generator": dataclasses.asdict(params)}


def _write_files(root, spec, params, progress):
    """Generate base, queries and the training sample as .partial files in root,
    resumably (dataset_files.write_chunked). Returns their manifest entries."""
    n, n_queries, n_train = spec["n"], spec["n_queries"], spec["n_train"]
    dtype, chunk_rows = spec["dtype"], spec["chunk_rows"]
    base_tmp = partial_path(os.path.join(root, "base.npy"))

    def base_chunk(i):
        return synthetic.chunk(params, synthetic.BASE, i, chunk_rows, n, dtype)

    def query_chunk(i):
        return synthetic.chunk(params, synthetic.QUERIES, i, chunk_rows, n_queries, dtype)

    files = {"base": write_chunked(base_tmp, (n, params.d), dtype, base_chunk,
                                   chunk_rows, spec, "base vectors", progress)}
    files["queries"] = write_chunked(
        partial_path(os.path.join(root, "queries.npy")), (n_queries, params.d),
        dtype, query_chunk, chunk_rows, spec, "queries", progress)
    if n_train:
        base_vf = open_vectors(base_tmp)
        ids = train_ids(n, n_train, params.seed)

        def train_chunk(i):
            return _take_stored(base_vf, ids[i * chunk_rows:(i + 1) * chunk_rows])

        files["train"] = write_chunked(
            partial_path(os.path.join(root, "train.npy")), (n_train, params.d),
            dtype, train_chunk, chunk_rows, spec, "training sample", progress)
    return files


def train_ids(n, n_train, seed):
    """Sorted ids of the training sample: n_train distinct rows of n (int64)."""
    return sample_ids(n, n_train, [seed, synthetic.TRAIN])


def _take_stored(vf, ids):
    """Rows `ids` in their stored dtype (take_rows returns float32)."""
    return take_rows(vf, ids).astype(vf.dtype, copy=False)


# ------------------------------------------------------------------ loading


def load_dataset(root):
    """Open the dataset in folder `root`, checking its files against the manifest.

    The check is cheap (headers and sizes); verify_dataset re-reads the data.
    """
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.exists(manifest_path):
        if os.path.isdir(root) and any(f.endswith(".partial") for f in os.listdir(root)):
            raise DatasetError(
                f"{root}: dataset generation is incomplete (.partial files, no "
                f"manifest); rerun generate_dataset with the same arguments to resume"
            )
        raise DatasetError(f"{root}: no {MANIFEST}; not a dataset folder")
    manifest = read_manifest(manifest_path)
    if manifest.get("format") != FORMAT:
        raise DatasetError(
            f"{manifest_path}: unknown format {manifest.get('format')!r}, expected {FORMAT}"
        )
    opened = {}
    for role, entry in manifest["files"].items():
        path = entry.get("path") or os.path.join(root, entry["file"])
        try:
            vf = open_vectors(path, key=entry.get("key"))
        except (FileNotFoundError, ValueError) as e:
            raise DatasetError(f"{root}: {role} file does not match the manifest: {e}") from None
        if vf.n == 0:
            raise DatasetError(f"{root}: the {role} file {path} holds no vectors")
        if list(vf.shape) != entry["shape"] or vf.dtype.name != entry["dtype"]:
            raise DatasetError(
                f"{root}: manifest does not match data: manifest says {role} is "
                f"{tuple(entry['shape'])} {entry['dtype']} but {path} holds "
                f"{vf.shape} {vf.dtype.name}; regenerate the dataset "
                f"(overwrite=True) or restore the original file"
            )
        _check_unchanged(root, manifest_path, manifest, entry, vf)
        opened[role] = vf
    if "queries" in opened and opened["queries"].d != opened["base"].d:
        raise DatasetError(
            f"{root}: queries have dimension {opened['queries'].d} but the "
            f"database has {opened['base'].d}"
        )
    return Dataset(root, manifest, opened["base"], opened.get("queries"), opened.get("train"))


def _check_unchanged(root, manifest_path, manifest, entry, vf):
    """Refuse a file whose content changed since it was recorded. The quick
    fingerprint (size, time, sampled blocks) decides when size or samples
    differ; when only the time moved (a copy with cp -r, a touch) the full
    checksum decides, and an unchanged file is accepted and its new time
    recorded where the folder is writable."""
    quick, now = entry.get("quick"), quick_fingerprint(vf.path)
    if not quick or quick == now:
        return
    same_samples = all(quick[k] == now[k] for k in ("size", "sample_sha256"))
    if same_samples and "sha256_chunks" in entry:
        print(f"{vf.path}: modified time changed since it was recorded; verifying its "
              f"checksum ...", flush=True)
        _verify_file(vf, entry)
        entry["quick"] = now
        try:  # recorded only if no writer holds the dataset, and only over the same manifest
            with locked(manifest_path, wait=False):
                if read_manifest(manifest_path).get("fingerprint") == manifest["fingerprint"]:
                    write_json(manifest_path, manifest)
        except (OSError, LockedError):
            pass  # a read-only copy, or a writer at work: verified again next time
        return
    raise DatasetError(
        f"{vf.path} changed since the dataset in {root} was recorded (size or content "
        f"differ), so results cached from it may be wrong; "
        + ("import it again (overwrite=True)" if entry.get("path") else
           "regenerate the dataset (overwrite=True)") + " or restore the file")


def _verify_file(vf, entry, progress=False):
    """Compare the stored rows of `vf` with the checksums of its manifest entry."""
    digests = chunk_digests(vf, entry["chunk_rows"], progress, os.path.basename(vf.path))
    for i, (got, want) in enumerate(zip(digests, entry["sha256_chunks"])):
        if got != want:
            r0 = i * entry["chunk_rows"]
            raise DatasetError(
                f"{vf.path}: rows [{r0}, {min(r0 + entry['chunk_rows'], vf.n)}) "
                f"do not match the manifest's checksum: the file was modified "
                f"or corrupted; regenerate it (overwrite=True) or restore it"
            )


def verify_dataset(ds, progress=False):
    """Re-read every file of `ds` and compare with the manifest's checksums.

    Raises DatasetError naming the first chunk that differs.
    """
    for role, entry in ds.manifest["files"].items():
        _verify_file(getattr(ds, role), entry, progress)
