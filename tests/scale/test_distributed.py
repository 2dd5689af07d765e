"""helpers.scale.distributed: sharded IVF builds on a real Dask LocalCluster, merged on disk."""

import shutil

import faiss
import numpy as np
import pytest

from helpers.data.vectors import read_rows
from helpers.index import build
from helpers.scale import distributed

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster_client():
    client = distributed.connect(n_workers=2)
    yield client
    distributed.disconnect(client)


def search(index, ds, k=10, nprobe=8):
    faiss.extract_index_ivf(index).nprobe = nprobe
    return index.search(read_rows(ds.queries, 0, ds.queries.n), k)


def test_distributed_build_equals_the_single_machine_index_and_moves_with_its_folder(
        small_ds, cluster_client, tmp_path):
    single = build.build_index(small_ds, "IVF64,SQ8", tmp_path / "single" / "i.faiss", progress=False)
    D1, I1 = search(single["index"], small_ds)
    # workers assigning their own rows, and workers reading the single-machine assignment
    for out, coarse_dir, preassigned in (("sharded", None, False),
                                         ("shared", str(tmp_path / "single" / "coarse"), True)):
        r = distributed.build_sharded(cluster_client, small_ds, "IVF64,SQ8", str(tmp_path / out),
                                      shards=5, coarse_dir=coarse_dir)
        assert r["ntotal"] == small_ds.n and r["built"] == 5 and r["reused"] == 0
        assert r["preassigned"] is preassigned
        D2, I2 = search(distributed.load_merged(r["path"]), small_ds)
        np.testing.assert_array_equal(I1, I2)
        np.testing.assert_array_equal(D1, D2)
    # the merged index and its .ivfdata move together (IO_FLAG_ONDISK_SAME_DIR)
    shutil.move(tmp_path / "sharded", tmp_path / "moved")
    D3, I3 = search(distributed.load_merged(str(tmp_path / "moved" / "merged.faiss")), small_ds)
    np.testing.assert_array_equal(I1, I3)
    # a rerun redoes no shard
    again = distributed.build_sharded(cluster_client, small_ds, "IVF64,SQ8", str(tmp_path / "moved"),
                                      shards=5)
    assert again["built"] == 0 and again["reused"] == 5


def test_distributed_build_resumes_after_a_worker_is_killed_mid_shard(small_ds, tmp_path):
    from dask.distributed import Client, LocalCluster

    trigger = tmp_path / "kill-one-worker"
    trigger.write_text("")
    # the first worker to commit anything is SIGKILLed at that instant (files.commit_point)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0",
                           env={"FAISS_WORKBOOK_CRASH_ONCE": str(trigger)})
    with Client(cluster) as client:
        r = distributed.build_sharded(client, small_ds, "IVF64,PQ8", str(tmp_path / "s"), shards=4)
    cluster.close()
    assert not trigger.exists()  # a worker died at a shard's commit point
    assert r["ntotal"] == small_ds.n
    for p in sorted((tmp_path / "s").glob("shard-*.faiss")):  # every shard complete, with its record
        assert p.with_name(p.name + ".json").exists()
    single = build.build_index(small_ds, "IVF64,PQ8", tmp_path / "single" / "i.faiss", progress=False)
    np.testing.assert_array_equal(search(single["index"], small_ds)[1],
                                  search(distributed.load_merged(r["path"]), small_ds)[1])


def test_distributed_merge_refuses_a_shard_of_another_factory(small_ds, tmp_path):
    shards = []
    for name, factory in (("a", "IVF64,SQ8"), ("b", "IVF64,Flat")):
        out = tmp_path / name
        template, assign = distributed.train_template(small_ds, factory, str(out))
        for i, (i0, i1) in enumerate(distributed.shard_ranges(small_ds.n, 2)):
            p = str(out / f"shard-{i}.faiss")
            distributed.build_shard(small_ds.root, template, assign, i0, i1, p)
            shards.append(p)
    template_a = str(tmp_path / "a" / "template.faiss")
    with pytest.raises(distributed.ShardError, match=r"shard-1.faiss was not built from .*IVF64,SQ8.*"
                                                     r"made by IVF64,Flat"):
        distributed.merge_shards(template_a, [shards[0], shards[3]], str(tmp_path / "m.faiss"))
    assert not (tmp_path / "m.faiss").exists()


def test_distributed_worker_memory_limit_follows_the_memory_model(small_ds):
    from helpers.index import memory

    one = distributed.shard_memory("IVF64,SQ8", small_ds, 1)
    four = distributed.shard_memory("IVF64,SQ8", small_ds, 4)
    assert four < one
    assert one >= memory.predict("IVF64,SQ8", small_ds.n, small_ds.d, small_ds.metric)["add_peak"]
    # the limit a worker gets: the prediction, with a floor (07 says both)
    assert four < distributed.WORKER_FLOOR == 256 * 2**20
    assert distributed.worker_memory_limit("IVF64,SQ8", small_ds, 4) == distributed.WORKER_FLOOR
    big = distributed.shard_memory("IVF64,SQ8", small_ds, 1)
    assert distributed.worker_memory_limit("IVF64,SQ8", small_ds, 1) == max(big, distributed.WORKER_FLOOR)


def test_distributed_refuses_what_cannot_shard_and_an_unreachable_scheduler():
    for factory in ("IVF64,PQ16x4fs", "IVF64,PQ8,Refine(SQ8)", "HNSW32,SQ8"):
        with pytest.raises(distributed.ShardError, match="cannot be built in shards"):
            distributed.check_shardable(factory)
    with pytest.raises(OSError, match=r"no Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"):
        distributed.connect("tcp://127.0.0.1:9", timeout=2)


def test_distributed_build_without_room_for_shards_and_merge_is_refused_up_front(
        small_ds, cluster_client, tmp_path, monkeypatch):
    import collections

    from helpers.core import files

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 4096))
    with pytest.raises(OSError, match="shards and merged index of IVF64,SQ8"):
        distributed.build_sharded(cluster_client, small_ds, "IVF64,SQ8", str(tmp_path / "s"), shards=2)
    assert not (tmp_path / "s").exists()


def test_local_cluster_listens_on_loopback_only():
    import psutil

    def workers():  # multiprocessing's spawned processes (its resource tracker stays)
        return {p.pid for p in psutil.Process().children(recursive=True)
                if "spawn_main" in " ".join(p.cmdline())}

    before = workers()
    client = distributed.connect(n_workers=1)
    try:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        ours = [c for c in psutil.Process().net_connections(kind="tcp") if c.status == "LISTEN"]
        assert ours and all(c.laddr.ip == "127.0.0.1" for c in ours), ours  # dashboard included
        assert workers() - before  # its worker
    finally:
        distributed.disconnect(client)
    # no worker outlives its scheduler (it would log heartbeat tracebacks at exit)
    gone, alive = psutil.wait_procs([psutil.Process(p) for p in workers() - before], timeout=10)
    assert alive == [], alive


def test_a_cluster_over_tls():
    pytest.importorskip("cryptography", reason="Security.temporary() needs the cryptography package")
    from distributed.security import Security

    client = distributed.connect(n_workers=1, security=Security.temporary())
    try:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        assert client.submit(sum, [1, 2], pure=False).result() == 3
    finally:
        distributed.disconnect(client)


def test_scale_out_plan_flags_workers_without_the_ram():
    args = ("IVF{nlist},SQ8", 1_000_000_000, 1024, "IP", 8, 4, 2.5e11, 5e4)
    plan = distributed.scale_out_plan(*args, worker_ram=2**40)
    assert plan["fits_worker"] and plan["factory"] == "IVF65536,SQ8"
    assert plan["worker_ram"] > 2**30  # 31M rows per shard of 1 KiB codes
    assert not distributed.scale_out_plan(*args, worker_ram=plan["worker_ram"] - 1)["fits_worker"]
