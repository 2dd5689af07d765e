"""A dataset folder's files: created only where the workbook owns the folder,
written in checksummed chunks that a rerun resumes, and committed together
under one manifest (the commit point). helpers.data.dataset (generation) and
helpers.data.ingest (users' vectors) write datasets through this module."""

import json
import math
import os

import numpy as np

from ..core.files import (combine_digests, commit_point, explain_write_error, partial_path,
        quick_fingerprint, read_json, sha256_bytes, write_json)
from ..core.keyed_files import StreamedPass
from ..core.progress import tqdm
from .vectors import open_vectors, read_rows


MANIFEST = "manifest.json"


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete, or does not match its manifest."""


class DatasetExistsError(DatasetError):
    """A different dataset already lives where a new one would be written."""


DATA_FILES = ("base.npy", "queries.npy", "train.npy")  # what a dataset folder's manifest names
COMMITTING = "manifest.json.committing"  # a dataset's files being renamed into place


def make_folder(root, sources=()):
    """Create the dataset folder `root`, refusing one that holds vector files the
    workbook did not write (no manifest, no resumable state of its own) or that
    holds one of `sources` (the user's files, which an import must not touch)."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise DatasetError(f"{root} is a file, not a folder: choose another path for the dataset")
    real = os.path.realpath(root)
    for src in sources:
        if src and os.path.dirname(os.path.realpath(src)) == real:
            raise DatasetError(f"{src} lives in {root}, where the dataset would be written: choose "
                               f"another data folder, so that your file is never touched")
    ours = [MANIFEST, COMMITTING]
    if os.path.isdir(root) and not any(os.path.exists(os.path.join(root, f)) for f in ours):
        foreign = [f for f in DATA_FILES if os.path.exists(os.path.join(root, f))]
        if foreign:
            raise DatasetError(f"{root} holds {', '.join(foreign)} but no {MANIFEST}: files this "
                               f"workbook did not write; choose another data folder (they are "
                               f"left as they are)")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise explain_write_error(e, root) from e


def read_manifest(path):
    try:
        return read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} is damaged (not valid JSON: {e}); regenerate the dataset "
                           f"with overwrite=True, or import the files again") from None


def bytes_done(path):
    state = read_state(partial_path(path))
    if not state:
        return 0
    return sum(c["rows"] for c in state["chunks"]) * state["shape"][1] * np.dtype(state["dtype"]).itemsize


def read_state(tmp):
    state_path = tmp + ".json"
    if os.path.exists(tmp) and os.path.exists(state_path):
        return read_json(state_path)
    return None


def write_chunked(tmp, shape, dtype, make_chunk, chunk_rows, spec, desc, progress):
    """Write rows make_chunk(0), make_chunk(1), ... to .npy file `tmp`.

    Progress is recorded in `tmp`.json after every chunk, so a rerun with the
    same spec resumes after the last complete chunk. Each chunk is written
    through its own short-lived memory map, so resident memory stays at about
    one chunk. Returns the file's manifest entry.
    """
    n, d = shape
    dtype = np.dtype(dtype)
    state = read_state(tmp)
    fresh = {"spec": spec, "shape": [n, d], "dtype": dtype.str, "chunk_rows": chunk_rows}
    if state is None or {k: state.get(k) for k in fresh} != fresh:
        try:
            mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n, d))
            del mm  # only creates the (sparse) file and its header
        except OSError as e:
            raise explain_write_error(e, tmp) from e
        state = dict(fresh, chunks=[])
        write_json(tmp + ".json", state)
    offset = open_vectors(tmp).offset
    nchunks = math.ceil(n / chunk_rows)
    done = len(state["chunks"])
    fd = os.open(tmp, os.O_WRONLY)
    try:
        with StreamedPass(n, min(n, done * chunk_rows), desc, lambda _: write_json(tmp + ".json", state),
                          checkpoint_seconds=0, progress=progress, save_last=True) as stream:
            for i in range(done, nchunks):
                x = make_chunk(i)
                # plain writes, not a memory map of the sparse file: a full disk is
                # then an error naming the file, not a SIGBUS
                try:
                    os.pwrite(fd, np.ascontiguousarray(x).tobytes(),
                              offset + i * chunk_rows * d * dtype.itemsize)
                    os.fsync(fd)  # the chunk is on disk before the state counts it
                except OSError as e:
                    raise explain_write_error(e, tmp) from e
                state["chunks"].append({"rows": len(x), "sha256": sha256_bytes(x)})
                stream.advance(min(n, (i + 1) * chunk_rows))
    finally:
        os.close(fd)
    digests = [c["sha256"] for c in state["chunks"]]
    return {
        "file": os.path.basename(tmp)[: -len(".partial")],
        "shape": [n, d],
        "dtype": dtype.name,
        "chunk_rows": chunk_rows,
        "sha256_chunks": digests,
        "sha256": combine_digests(digests),
    }


def commit(root, manifest):
    """Move complete .partial files into place, then write the manifest.

    The old manifest goes first: a crash between renames leaves a folder
    without manifest (reported as incomplete), never a manifest describing
    other files.
    """
    manifest_path = os.path.join(root, MANIFEST)
    # marks the folder as this workbook's while neither manifest is there (make_folder)
    write_json(os.path.join(root, COMMITTING), {"files": list(manifest["files"])})
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    for entry in manifest["files"].values():
        final = os.path.join(root, entry["file"])
        if os.path.exists(partial_path(final)):  # else moved by an attempt cut short here
            os.replace(partial_path(final), final)
            commit_point()
            os.remove(partial_path(final) + ".json")
        entry["quick"] = quick_fingerprint(final)
    write_json(manifest_path, manifest)  # the commit point of the whole dataset
    os.remove(os.path.join(root, COMMITTING))


def chunk_digests(vf, chunk_rows, progress=False, desc=None, check_finite=False):
    """SHA-256 of each chunk of stored rows; with check_finite, NaN / inf rows
    anywhere in the file are refused, naming how many and the first ones."""
    out, bad, bad_values = [], [], 0
    for i0 in tqdm(range(0, vf.n, chunk_rows), desc=desc, disable=not progress):
        x = read_rows(vf, i0, min(i0 + chunk_rows, vf.n), as_float32=False)
        out.append(sha256_bytes(x))
        if check_finite and x.dtype.kind == "f" and not np.isfinite(x.sum(dtype=np.float64)):
            rows = ~np.isfinite(x).all(axis=1)
            bad += (i0 + np.flatnonzero(rows))[:max(0, 10 - len(bad))].tolist()
            bad_values += int((~np.isfinite(x)).sum())
    if bad_values:
        raise DatasetError(f"{vf.path}: {bad_values} NaN or inf values (first rows: "
                           f"{', '.join(map(str, bad))}); remove or repair those rows first")
    return out
