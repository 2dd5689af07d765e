from helpers.notebook import widgets


def test_budget_explorer_updates_when_controls_move():
    ex = widgets.BudgetExplorer(["IVF1024,SQ8", "HNSW32,Flat", "IVF1024,PQ64"], 10_000_000, 1024,
                                "IP", 24 * 2**30)
    before = ex.table.value
    fits = {f: not r for f, p, r in ex.rows()}
    assert fits == {"IVF1024,SQ8": True, "HNSW32,Flat": False, "IVF1024,PQ64": True}
    ex.ram.value = 40.0  # GiB: does HNSW32,Flat's build fit now?
    assert ex.table.value != before
    # no: its build peak is 40.9 GiB (the build helper reserves its storage, so no doubling)
    assert {f: not r for f, p, r in ex.rows()}["HNSW32,Flat"] is False
    ex.ram.value = 48.0
    assert {f: not r for f, p, r in ex.rows()}["HNSW32,Flat"] is True
    ex.d.value = 1000  # PQ64 no longer divides d: reported, not crashed
    assert "must divide d=1000" in ex.table.value


def test_budget_explorer_n_changes_sizes():
    ex = widgets.BudgetExplorer(["IVF1024,SQ8"], 1_000_000, 1024, "L2", 2**30)
    small = ex.rows()[0][1]["index_ram"]
    ex.n.value = 2_000_000
    assert 1.9 < ex.rows()[0][1]["index_ram"] / small < 2.1


def test_recall_explorer_moves_the_operating_point(small_ds, tmp_path):
    from helpers.data import groundtruth
    from helpers.data.vectors import read_rows
    from helpers.index import build
    from helpers.search import evaluate
    from helpers.notebook import plots

    reports = build.build_all(small_ds, ["IVF32,SQ8", "HNSW16,SQ8"], tmp_path, n_train=2000,
                              progress=False)
    paths = build.built_indexes(tmp_path, small_ds)
    assert set(paths) == {"IVF32,SQ8", "HNSW16,SQ8"}
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    indexes = {f: (r["path"], r["predicted"]["index_ram"]) for f, r in reports.items()}
    rows = evaluate.sweep(indexes, xq, gt_D, gt_I, None, small_ds.metric, repeats=1,
                          single_queries=5, progress=False)
    ex = widgets.RecallExplorer(paths, xq, gt_D, gt_I, rows, small_ds.metric, single_queries=5)
    assert ex.selector.value == "HNSW16,SQ8" and ex.nprobe.disabled and not ex.ef_search.disabled
    ex.ef_search.value = 16
    low = (ex.last["recall@10"], ex.readout.value, ex.fig.data[-1].x)
    ex.ef_search.value = 256
    assert ex.last["recall@10"] > low[0] and ex.readout.value != low[1]
    assert ex.fig.data[-1].x == (plots.recall_x(ex.last["recall@10"]),) != low[2]
    assert "efSearch=256" in ex.readout.value
    ex.selector.value = "IVF32,SQ8"
    assert ex.ef_search.disabled and not ex.nprobe.disabled
    ex.nprobe.value = 1
    one = ex.last["recall@10"]
    hist_one = ex.hist.data[0].x
    ex.nprobe.value = 32
    assert ex.last["recall@10"] > one and "nprobe=32" in ex.readout.value
    assert list(ex.hist.data[0].x) != list(hist_one) and len(ex.hist.data[0].x) == len(xq)
    every = ex.last["recall@10"]
    ex.nprobe.value = 64  # more than the 32 lists: searched at 32, and said
    assert ex.last["setting"] == "nprobe=32" and ex.last["recall@10"] == every
    assert "nprobe=64 is more than this index's 32 lists: clipped to 32" in ex.readout.value
    ex.selector.value = "HNSW16,SQ8"
    ex.selector.value = "IVF32,SQ8"
    assert not ex.nprobe.disabled and ex.ef_search.disabled


def test_recall_explorer_moves_the_refine_depth_and_opens_at_a_setting(small_ds, tmp_path):
    from helpers.data import groundtruth
    from helpers.data.vectors import read_rows
    from helpers.index import build

    f = "IVF32,PQ8x4fs,Refine(SQ8)"
    build.build_all(small_ds, [f], tmp_path, n_train=2000, progress=False)
    paths = build.built_indexes(tmp_path, small_ds)
    xq = read_rows(small_ds.queries, 0, small_ds.queries.n)
    gt_D, gt_I = groundtruth.ground_truth(small_ds, 10, progress=False)
    ex = widgets.RecallExplorer(paths, xq, gt_D, gt_I, [], small_ds.metric, single_queries=5)
    ex.open_at(f, "nprobe=8,k_factor_rf=1")
    assert not ex.k_factor.disabled and ex.last["setting"] == "nprobe=8,k_factor_rf=1"
    shallow = ex.last["recall@10"]
    ex.k_factor.value = 16  # re-ranking 16 x k candidates with SQ8 lifts recall
    assert ex.last["setting"] == "nprobe=8,k_factor_rf=16" and ex.last["recall@10"] > shallow
