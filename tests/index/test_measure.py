from helpers.core import index_files
from helpers.data import dataset, synthetic
from helpers.index import build, measure


def test_mapped_and_ondisk_loads_keep_codes_out_of_ram(tmp_path):
    ds = dataset.generate_dataset(tmp_path / "d", 60000, n_queries=20, n_train=0,
                                  params=synthetic.GeneratorParams(d=256), progress=False)
    path = str(tmp_path / "i.faiss")
    build.build_index(ds, "IVF64,SQ8", path, progress=False)  # 15 MiB of codes
    index_files.to_ondisk(path, str(tmp_path / "o.faiss"))
    read = measure.loaded_rss_fresh(path, False, tmp_path / "d", "nprobe=1")
    mapped = measure.loaded_rss_fresh(path, True, tmp_path / "d", "nprobe=1")
    ondisk = measure.loaded_rss_fresh(tmp_path / "o.faiss", False, tmp_path / "d", "nprobe=1")
    assert read["after_load"] > 0.9 * read["file"]
    assert mapped["after_load"] < 0.2 * read["after_load"]
    assert ondisk["after_load"] < 0.2 * read["after_load"] and ondisk["file"] < 0.1 * read["file"]
    # 20 queries probing 1 of 64 lists each touch a fraction of the codes
    assert mapped["after_search"] < 0.7 * read["after_search"]


def test_mapped_hnsw_and_flat_storage_stay_out_of_ram(tmp_path):
    """index_files.load_index(mmap=True) uses IO_FLAG_MMAP_IFC: the flat (or SQ8) codes of
    HNSW and Flat indexes are mapped in place, only the graph links are read.
    (Plain IO_FLAG_MMAP maps inverted lists only: it read these files whole.)"""
    ds = dataset.generate_dataset(tmp_path / "d", 60000, n_queries=20, n_train=0,
                                  params=synthetic.GeneratorParams(d=256), progress=False)
    for factory in ("HNSW16,Flat", "Flat"):
        path = str(tmp_path / f"{factory}.faiss")
        build.build_index(ds, factory, path, progress=False)  # 61 MiB of float32 codes
        read = measure.loaded_rss_fresh(path, False)
        mapped = measure.loaded_rss_fresh(path, True)
        assert read["after_load"] > 0.9 * read["file"], factory
        assert mapped["after_load"] < 0.2 * mapped["file"], factory


def test_private_peak_counts_what_a_process_holds_not_the_files_it_maps(tmp_path):
    import subprocess
    import sys

    import numpy as np

    from helpers.core import rss

    path = tmp_path / "f.npy"
    np.save(path, np.ones(64 << 20, dtype="uint8"))  # 64 MiB
    # a child maps and reads the file, then allocates 64 MiB of its own
    child = subprocess.Popen([sys.executable, "-c", (
        "import numpy as np, time\n"
        f"m = np.load({str(path)!r}, mmap_mode='r'); s = int(m.sum()); time.sleep(1.5)\n"
        "a = np.full(64 << 20, 2, dtype='uint8'); time.sleep(1.5)")])
    with rss.RSSTrace(interval=0.05, children=True) as trace:
        child.wait()
    assert child.returncode == 0
    # the mapped file's pages are resident, but only the array is the child's own
    assert trace.peak > 120 << 20
    assert 60 << 20 < trace.peak_private < trace.peak - (48 << 20)


def test_a_load_setting_faiss_would_abort_on_is_one_line(small_ds, tmp_path):
    import subprocess
    import sys

    path = str(tmp_path / "i.faiss")
    build.build_index(small_ds, "IVF16,PQ8x4fs", path, progress=False)
    for setting, says in (("nprobe=0", "nprobe=0 is invalid: it must be a whole number from 1 to "),
                          ("nprobe", "'nprobe' is not name=value")):
        out = subprocess.run([sys.executable, "-m", "helpers", "measure", "--load", path, "--dataset",
                              str(small_ds.root), "--setting", setting],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
        assert out.stderr.startswith("MEASURE FAILED: ") and says in out.stderr
