"""Every bad input of issue #15: a clear error naming the file or parameter, and
nothing written under a final name."""

import os

import numpy as np
import pytest

from helpers.core import files, limits
from helpers.data import dataset, groundtruth, ingest, synthetic, vectors
from helpers.index import build, factory_tree


@pytest.fixture
def users_ds(tmp_path):
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype("float32")
    np.save(tmp_path / "b.npy", x)
    np.save(tmp_path / "q.npy", x[:20] + 0.01)
    return ingest.import_vectors(tmp_path / "ds", tmp_path / "b.npy", tmp_path / "q.npy", metric="l2",
                                 progress=False)


@pytest.mark.parametrize("factory,message", [
    ("HNSW0", "HNSW0 is invalid"), ("HNSW1,SQ8", "HNSW1 is invalid"), ("IVF0,Flat", "IVF0 is invalid"),
])
def test_factories_faiss_accepts_but_that_make_no_index(users_ds, tmp_path, factory, message):
    with pytest.raises(factory_tree.FactoryError, match=message):
        build.build_index(users_ds, factory, tmp_path / "i.faiss", progress=False)
    assert not (tmp_path / "i.faiss").exists()


@pytest.mark.parametrize("kw,error,message", [
    ({"add_batch": -5}, limits.OutOfRange, r"add_batch=-5 is invalid: it must be a whole number from 1 to "),
    ({"add_batch": 0}, limits.OutOfRange, r"add_batch=0 is invalid"),
    ({"n_train": 5000}, limits.OutOfRange,
     r"n_train=5000 is invalid: .* from 1 to 3,000 \(the dataset has 3,000 rows\)"),
    ({"ef_construction": 0}, limits.OutOfRange, r"ef_construction=0 is invalid"),
    ({"ef_construction": 2**31}, limits.OutOfRange, r"ef_construction=2147483648 is invalid: .* to 2,147,483,647"),
    ({"threads": -1}, limits.OutOfRange, r"threads=-1 is invalid"),
    ({"checkpoint_seconds": -1}, build.BuildError, r"checkpoint_seconds=-1 is invalid"),
])
def test_build_parameters_are_validated_up_front(users_ds, tmp_path, kw, error, message):
    with pytest.raises(error, match=message):
        build.build_index(users_ds, "IVF16,Flat", tmp_path / "out" / "i.faiss", progress=False, **kw)
    assert not (tmp_path / "out").exists()


def test_output_folder_created_and_a_file_in_the_way_is_named(users_ds, tmp_path):
    r = build.build_index(users_ds, "IVF16,Flat", tmp_path / "new" / "deeper" / "i.faiss",
                          n_train=2000, progress=False)
    assert r["index"].ntotal == 3000
    (tmp_path / "afile").write_text("x")
    with pytest.raises(build.BuildError, match="afile is a file, not a folder"):
        build.build_index(users_ds, "IVF16,Flat", tmp_path / "afile" / "i.faiss", progress=False)
    with pytest.raises(dataset.DatasetError, match="afile is a file, not a folder"):
        dataset.generate_dataset(tmp_path / "afile", 100, n_queries=5, n_train=0,
                                 params=synthetic.GeneratorParams(d=8, intrinsic_dim=4), progress=False)


def test_ground_truth_block_rows_and_empty_queries(users_ds):
    with pytest.raises(ValueError, match="block_rows=-1 is invalid"):
        groundtruth.compute_ground_truth(np.ones((3, 16), "float32"), users_ds.base, 5, block_rows=-1)
    with pytest.raises(ValueError, match="non-empty"):
        groundtruth.compute_ground_truth(np.ones((0, 16), "float32"), users_ds.base, 5)


def test_empty_queries_file_is_named(tmp_path):
    np.save(tmp_path / "b.npy", np.ones((100, 8), "float32"))
    np.save(tmp_path / "q.npy", np.ones((0, 8), "float32"))
    with pytest.raises(dataset.DatasetError, match=r"q.npy holds no vectors \(0 rows\)"):
        ingest.import_vectors(tmp_path / "ds", tmp_path / "b.npy", tmp_path / "q.npy", metric="l2",
                              progress=False)
    assert not (tmp_path / "ds" / dataset.MANIFEST).exists()


def test_nan_rows_are_named_before_anything_is_built(tmp_path):
    x = np.random.default_rng(0).standard_normal((500, 8)).astype("float32")
    x[[3, 77, 150], 2] = np.nan
    x[150, 5] = np.inf
    np.save(tmp_path / "b.npy", x)
    np.save(tmp_path / "q.npy", x[200:210])
    with pytest.raises(dataset.DatasetError, match=r"b.npy: 4 NaN or inf values \(first rows: 3, 77, 150\)"):
        ingest.import_vectors(tmp_path / "ds", tmp_path / "b.npy", tmp_path / "q.npy", metric="l2",
                              progress=False)


def test_corrupt_npy_header_and_int64_vectors(tmp_path):
    np.save(tmp_path / "ok.npy", np.ones((10, 4), "float32"))
    raw = bytearray((tmp_path / "ok.npy").read_bytes())
    raw[20:40] = b"((((((((((((((((((((("[:20]
    (tmp_path / "bad.npy").write_bytes(bytes(raw))
    with pytest.raises(vectors.VectorFileError, match="bad.npy: not a valid .npy file: its header is corrupt"):
        vectors.open_vectors(tmp_path / "bad.npy")
    np.save(tmp_path / "ids.npy", np.arange(40, dtype="int64").reshape(10, 4))
    with pytest.raises(vectors.VectorFileError, match="ids.npy: unsupported dtype int64.*ids, not vectors"):
        vectors.open_vectors(tmp_path / "ids.npy")


def test_truncated_manifest_is_named(users_ds):
    path = os.path.join(users_ds.root, dataset.MANIFEST)
    text = open(path).read()
    open(path, "w").write(text[: len(text) // 2])
    with pytest.raises(dataset.DatasetError, match="manifest.json is damaged"):
        dataset.load_dataset(users_ds.root)


def test_full_disk_names_the_file_and_leaves_nothing(users_ds, tmp_path, monkeypatch):
    # a real ENOSPC: the file being written is /dev/full
    target = tmp_path / "gt.npz"
    os.symlink("/dev/full", files.partial_path(target))
    monkeypatch.setattr(files, "temp_path", files.partial_path)
    with pytest.raises(files.WriteError, match=r"cannot write .*gt.npz: the disk is full"):
        groundtruth._save(str(target), D=np.ones((100, 100)))
    assert not target.exists() and not os.path.lexists(files.partial_path(target))


def test_disk_margin_is_proportional(tmp_path):
    free = files.check_disk_space(tmp_path, 131 << 10)
    with pytest.raises(files.NotEnoughDiskError, match="needs"):
        files.check_disk_space(tmp_path, free)  # the margin is on top of what is asked
    files.check_disk_space(tmp_path, int(free / 1.06))  # 5% margin, not a fixed 64 MiB


def test_full_disk_during_generation_is_an_error_naming_the_file(tmp_path):
    # a real ENOSPC from the kernel (the file being written is /dev/full), where a
    # memory map of a sparse file would have died by SIGBUS
    root = tmp_path / "ds"
    root.mkdir()
    os.symlink("/dev/full", files.partial_path(root / "base.npy"))
    with pytest.raises(files.WriteError, match=r"cannot write .*base.npy.partial: the disk is full"):
        dataset.generate_dataset(root, 1000, n_queries=5, n_train=0, progress=False,
                                 params=synthetic.GeneratorParams(d=8, intrinsic_dim=4))
    assert not (root / "base.npy").exists() and not (root / dataset.MANIFEST).exists()
