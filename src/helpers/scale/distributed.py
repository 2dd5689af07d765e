"""Sharded IVF builds on a Dask cluster, merged on disk: faiss's large-scale recipe.

1. train one empty IVF index (the template) with the dataset's shared coarse
   quantizer and assignment (helpers.index.coarse), as the single-machine build does;
2. one Dask task per row range: it reads its rows from the shared dataset
   files, adds them with their precomputed lists and global ids
   (faiss.contrib.ivf_tools.add_preassigned) and writes its shard atomically,
   with a JSON record of what it was built from;
3. the shards' inverted lists are merged into one on-disk index
   (faiss.contrib.ondisk.merge_ondisk), searched memory-mapped.

A finished shard is never redone; a task whose worker died is retried by Dask
(`retries`). The template, shards and merged index live in one folder; the
merged index is loaded with IO_FLAG_ONDISK_SAME_DIR, so the folder can move.
Plain IVF with Flat, SQ or 8-bit PQ codes only: fast-scan codes sit in SIMD
blocks that on-disk lists cannot hold, a refine stage is not an inverted list,
and HNSW graphs do not shard this way.
"""

import os
import re
import time

import faiss
import numpy as np
import psutil
from dask.distributed import Client, LocalCluster
from dask.distributed import progress as dask_progress
from faiss.contrib.ivf_tools import add_preassigned

from ..core import heuristics, index_files, keyed_files, quiet
from ..core.files import atomic_path, check_disk_space, file_sha256, locked, read_json, write_json
from ..data.dataset import load_dataset
from ..data.vectors import iter_blocks
from ..index import build, coarse, factory_tree, memory, planner


SHARD_FORMAT = "faiss-workbook-shard/1"


class ShardError(ValueError):
    """A shard that does not belong to the index being merged, or a factory that cannot shard."""


def check_shardable(factory):
    """Refuse, with the reason, a factory merge_ondisk cannot assemble."""
    if not factory_tree.preassignable(factory) or re.search(r"fs\b|Refine|RFlat", factory):
        raise ShardError(f"{factory!r} cannot be built in shards and merged on disk: use plain IVF "
                         f"with Flat, SQ or 8-bit PQ codes, e.g. IVF4096,SQ8 (fast-scan codes live "
                         f"in SIMD blocks, refine stages and HNSW graphs are not inverted lists)")


def shard_ranges(n, shards):
    """[(i0, i1)]: `shards` contiguous row ranges covering [0, n)."""
    bounds = np.linspace(0, n, shards + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def train_template(ds, factory, out_dir, n_train=None, coarse_dir=None, progress=False):
    """The trained, empty index for `factory` in out_dir/template.faiss, and the
    path of the coarse assignment of every row when one was already computed in
    coarse_dir (default out_dir/coarse; pass a single-machine build's
    <index_dir>/coarse to share its quantizer and assignment), else None: the
    workers then assign their own rows. Reused when present for the same
    dataset, factory and sample size."""
    check_shardable(factory)
    n_train = n_train or memory.predict(factory, ds.n, ds.d, ds.metric)["n_train"]
    os.makedirs(out_dir, exist_ok=True)
    coarse_dir = coarse_dir or os.path.join(out_dir, "coarse")
    cname = factory_tree.coarse_factory(factory)
    assign_path = coarse.paths(coarse_dir, cname)[1]
    if os.path.exists(assign_path):  # reused (and checked) as the single-machine build does
        quantizer, _, _ = coarse.coarse_assignment(ds, cname, n_train, coarse_dir, progress=progress)
    else:  # at 1B rows one machine assigning them all is the bottleneck: workers do it
        quantizer, _ = coarse.train_quantizer(ds, cname, n_train, coarse_dir, progress=progress)
        assign_path = None
    path = os.path.join(out_dir, "template.faiss")
    key = {"dataset": ds.fingerprint, "factory": factory, "n_train": n_train, "metric": ds.metric}
    if not keyed_files.cached(path, key):
        template, _ = build.train(ds, factory_tree.parse(factory, ds.d, ds.metric), n_train, None,
                                  quantizer)
        keyed_files.cache_index(template, path, key)
    return path, assign_path


def build_shard(data_dir, template_path, assign_path, i0, i1, out_path, block_rows=16384):
    """Add rows [i0, i1) of the dataset in data_dir to a copy of the template, with
    their global row numbers as ids and their lists from assign_path (or assigned
    here by the template's quantizer when None), and write it to out_path
    (atomically) with out_path.json describing it. Runs on a Dask worker; returns
    the shard's record. An existing shard with the same record is kept as it is."""
    record = {"format": SHARD_FORMAT, "template_sha256": file_sha256(template_path),
              "rows": [i0, i1], "preassigned": bool(assign_path)}
    if os.path.exists(out_path) and os.path.exists(out_path + ".json"):
        done = read_json(out_path + ".json")
        if {k: done.get(k) for k in record} == record and done.get("sha256") == file_sha256(out_path):
            return done

    ds = load_dataset(data_dir)
    index = faiss.read_index(template_path)
    ivf = faiss.extract_index_ivf(index)
    assign = None
    if assign_path:
        with np.load(assign_path) as f:
            assign = np.ascontiguousarray(f["assign"][i0:i1], dtype="int64")
    t0 = time.perf_counter()
    for b0, x in iter_blocks(ds.base, block_rows, start=i0, stop=i1):
        ids = np.arange(b0, b0 + len(x), dtype="int64")
        if assign is None:
            ivf.add_with_ids(x, ids)
        else:
            add_preassigned(ivf, x, assign[b0 - i0:b0 - i0 + len(x)], ids)
    index.ntotal = ivf.ntotal
    add_s = time.perf_counter() - t0
    with atomic_path(out_path) as tmp:
        index_files.write_index_file(index, tmp)
        # the record first, then the rename: a shard under its final name always has its
        # record, and a record whose shard is missing or differs is rebuilt
        record.update(factory=read_json(template_path + ".json")["factory"],
                      ntotal=int(index.ntotal), add_s=add_s, sha256=file_sha256(tmp))
        write_json(out_path + ".json", record)
    return record


def merge_shards(template_path, shard_paths, out_path):
    """Merge the shards' inverted lists into out_path (+ out_path.ivfdata beside
    it) with faiss.contrib.ondisk.merge_ondisk. Refuses a shard built from another
    template (another factory or trained quantizer), naming it; the merged index
    is committed by its final rename. Returns the number of vectors."""
    want = file_sha256(template_path)
    factory = read_json(template_path + ".json")["factory"]
    rows = []
    for p in shard_paths:
        rec = read_json(p + ".json") if os.path.exists(p + ".json") else {}
        if rec.get("template_sha256") != want or rec.get("sha256") != file_sha256(p):
            raise ShardError(f"{p} was not built from {template_path} ({factory}): it was made by "
                             f"{rec.get('factory', 'an unknown build')} from another trained index; "
                             f"remove it and rebuild that shard")
        rows.append(rec["rows"])
    rows.sort()
    if rows[0][0] != 0 or any(a[1] != b[0] for a, b in zip(rows, rows[1:])):
        raise ShardError(f"the shards' row ranges {rows} do not cover the dataset once, in order")
    template = faiss.read_index(template_path)
    with locked(out_path, what=f"the merged index {out_path}"):
        index_files.write_ondisk(template, shard_paths, out_path)
    return int(template.ntotal)


def load_merged(path):
    """The merged index, its lists memory-mapped from the .ivfdata beside it
    (IO_FLAG_ONDISK_SAME_DIR: found next to the index file wherever the folder is)."""
    with quiet.captured():  # faiss says it "updates the ondisk filename" on every load
        return faiss.read_index(path, faiss.IO_FLAG_ONDISK_SAME_DIR)


def shard_memory(factory, ds, shards):
    """Bytes a worker needs to build one shard (the memory model's add peak of a
    shard's rows, plus the template it loads): the workers' memory limit."""
    rows = -(-ds.n // shards)
    # the add peak of `rows`, with the trained sample size of the whole build (the template)
    node = factory_tree.parse(factory, ds.d, ds.metric)
    n_train = memory.predict_tree(node, ds.n)["n_train"]
    p = memory.predict_tree(node, rows, n_train=min(n_train, rows))
    return int(p["add_peak"] + memory.index_ram(node, 0))


# the smallest memory limit a worker gets: a tiny shard's prediction is below what a
# worker process holds before it builds anything
WORKER_FLOOR = 256 << 20


def worker_memory_limit(factory, ds, shards):
    """Bytes each Dask worker may use: shard_memory, and at least WORKER_FLOOR."""
    return max(shard_memory(factory, ds, shards), WORKER_FLOOR)


def connect(address=None, n_workers=None, threads_per_worker=1, memory_limit="auto", timeout=5,
            security=None):
    """A dask.distributed Client: to the scheduler at `address`, or to a new
    LocalCluster (processes, one per core by default) whose scheduler and
    dashboard listen on 127.0.0.1 only. Dask moves pickles: whoever reaches a
    scheduler runs code on its workers, so a remote one should be reached over
    TLS with certificates (`security`: a distributed.security.Security, its
    address "tls://host:port"; README). An unreachable address raises OSError
    within `timeout` seconds, saying what to check."""
    if address:
        try:
            return Client(address, timeout=f"{timeout}s", security=security)
        except (OSError, TimeoutError) as e:
            raise OSError(f"no Dask scheduler answered at {address} within {timeout} s ({e}); "
                          f"check the address and that `dask scheduler` runs there, or pass "
                          f"address=None for a LocalCluster on this machine") from None
    n_workers = n_workers or os.cpu_count()
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                           memory_limit=memory_limit, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", security=security)
    return Client(cluster)


def disconnect(client):
    """Close `client` and the LocalCluster connect() started for it, if any: left
    open, its workers outlive the scheduler at the kernel's shutdown and log
    heartbeat tracebacks. A remote scheduler and its workers are left running."""
    cluster = client.cluster  # None for a client of a remote scheduler
    client.close()
    if cluster is not None:
        cluster.close()


def build_sharded(client, ds, factory, out_dir, shards, n_train=None, retries=2, progress=False,
                  coarse_dir=None):
    """Build `factory` on dataset `ds` in `shards` Dask tasks and merge it into
    out_dir/merged.faiss. Shards already built from the same template are not
    redone. coarse_dir: see train_template. Returns {"path", "shards", "ntotal",
    "built", "reused", "preassigned"}."""
    pred = memory.predict(factory, ds.n, ds.d, ds.metric)
    # shards and the merged lists both hold every code once, plus the template
    check_disk_space(out_dir, 2 * pred["disk"], f"the shards and merged index of {factory}")
    template, assign_path = train_template(ds, factory, out_dir, n_train, coarse_dir, progress)
    ranges = shard_ranges(ds.n, shards)
    paths = [os.path.join(out_dir, f"shard-{i:04d}.faiss") for i in range(len(ranges))]
    # task keys unique per build: two builds on one scheduler never share a result
    run_id = f"{os.path.realpath(out_dir)}-{os.getpid()}-{os.urandom(4).hex()}"
    before = {p: os.path.exists(p) and os.path.exists(p + ".json") for p in paths}
    futures = [client.submit(build_shard, ds.root, template, assign_path, i0, i1, p,
                             key=f"shard-{run_id}-{i}", retries=retries, pure=False)
               for i, ((i0, i1), p) in enumerate(zip(ranges, paths))]
    if progress:

        dask_progress(futures)
    records = client.gather(futures)
    out = os.path.join(out_dir, "merged.faiss")
    ntotal = merge_shards(template, paths, out)
    return {"path": out, "shards": records, "ntotal": ntotal,
            "built": sum(not before[p] for p in paths), "reused": sum(before.values()),
            "preassigned": assign_path is not None}


def scale_out_plan(factory, n, d, metric, workers, shards_per_worker, gemm_rate, add_rate,
                   disk_rate=1.4e9, worker_ram=None):
    """Estimated resources and wall time of build_sharded for n x d on `workers`
    machines like this one. factory has "{nlist}" filled in from n (4 sqrt(n) as a
    power of two, at most 65536). gemm_rate: multiply-adds/s of one worker
    (planner.gemm_rate), for k-means and assigning rows; add_rate: rows/s one
    worker encodes and adds once rows are assigned (measured on shards here);
    disk_rate: bytes/s the merge reads and writes; worker_ram: a worker's memory
    in bytes (default: this machine's), against which "fits_worker" says whether
    a worker's build peak fits. Returns a dict; every time is an estimate from
    these rates, not a measurement."""
    nlist = heuristics.nlist_rule(n)
    f = factory.format(nlist=nlist)
    shards = workers * shards_per_worker
    rows = -(-n // shards)
    n_train = heuristics.kmeans_sample(n, nlist)
    shard = memory.predict(f, rows, d, metric, n_train=min(n_train, rows))
    node = factory_tree.parse(f, d, metric)
    template = memory.index_ram(node, 0)
    merged = {"disk": memory.disk_bytes(node, n), "index_ram": memory.index_ram(node, n)}
    train_s = planner.kmeans_seconds(n_train, nlist, d, gemm_rate)
    per_worker_rows = -(-n // workers)
    workers_s = per_worker_rows * (nlist * d / gemm_rate + 1 / add_rate)
    merge_s = 2 * merged["disk"] / disk_rate
    return {"n": n, "factory": f, "workers": workers, "shards": shards, "rows_per_shard": rows,
            "worker_ram": int(shard["add_peak"] + template),
            "fits_worker": shard["add_peak"] + template <= (worker_ram or psutil.virtual_memory().total),
            "worker_disk": int(shards_per_worker * shard["disk"] + per_worker_rows * d * 4),
            "merged_disk": int(merged["disk"]), "merged_index_ram": int(merged["index_ram"]),
            "train_s": train_s, "workers_s": workers_s, "merge_s": merge_s,
            "total_s": train_s + workers_s + merge_s}
