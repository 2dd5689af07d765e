from helpers import widgets


def test_budget_explorer_updates_when_controls_move():
    ex = widgets.BudgetExplorer(["IVF1024,SQ8", "HNSW32,Flat", "IVF1024,PQ64"], 10_000_000, 1024,
                                "IP", 24 * 2**30)
    before = ex.table.value
    fits = {f: not r for f, p, r in ex.rows()}
    assert fits == {"IVF1024,SQ8": True, "HNSW32,Flat": False, "IVF1024,PQ64": True}
    ex.ram.value = 64.0  # GiB: now HNSW32,Flat's build fits too?
    assert ex.table.value != before
    assert {f: not r for f, p, r in ex.rows()}["HNSW32,Flat"] is False  # its build peak is ~74 GB
    ex.ram.value = 128.0
    assert {f: not r for f, p, r in ex.rows()}["HNSW32,Flat"] is True
    ex.d.value = 1000  # PQ64 no longer divides d: reported, not crashed
    assert "must divide d=1000" in ex.table.value


def test_budget_explorer_n_changes_sizes():
    ex = widgets.BudgetExplorer(["IVF1024,SQ8"], 1_000_000, 1024, "L2", 2**30)
    small = ex.rows()[0][1]["index_ram"]
    ex.n.value = 2_000_000
    assert 1.9 < ex.rows()[0][1]["index_ram"] / small < 2.1
