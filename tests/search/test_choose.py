import json

from helpers.core.files import write_csv
from helpers.search import choose


def _row(index, setting, recall, lo, qps, batches=5, timed="in full"):
    return {"index": index, "setting": setting, "recall@10": recall, "recall@10_ci": [lo, recall + 0.01],
            "qps_median": qps, "batches": batches, "timed": timed, "file_bytes": 10**6, "threads": 2}


ROWS = [_row("a", "nprobe=8", 0.90, 0.89, 5000),
        _row("a", "nprobe=16", 0.955, 0.951, 3000),
        _row("a", "nprobe=32", 0.97, 0.965, 2000),
        # fastest of all, but one batch: it may not decide
        _row("a", "nprobe=24", 0.96, 0.955, 4000, batches=1, timed="one batch"),
        _row("b", "efSearch=64", 0.953, 0.948, 9000),  # its interval does not clear 0.95
        _row("b", "efSearch=128", 0.94, 0.93, 8000)]


def test_best_setting_needs_the_interval_and_full_timing():
    best, top = choose.best_setting(ROWS[:4], 0.95)
    assert best["setting"] == "nprobe=16" and top["setting"] == "nprobe=32"
    best, top = choose.best_setting(ROWS[4:], 0.95)
    assert best is None and top["setting"] == "efSearch=64"
    assert choose.best_setting([], 0.95) == (None, None)


def test_best_per_index_keeps_the_sweep_order():
    found = choose.best_per_index(ROWS, 0.95)
    assert list(found) == ["a", "b"]
    assert found["a"][0]["setting"] == "nprobe=16" and found["b"][0] is None


def test_recommend_picks_across_indexes_within_the_budget():
    best, text = choose.recommend(ROWS, 0.95, 10**7)
    assert best["setting"] == "nprobe=16" and "3,000 queries/s" in text
    assert choose.recommend(ROWS, 0.95, 10**5)[1].startswith("no index fits")


def test_read_sweep_round_trips_and_renames_older_columns(tmp_path):
    write_csv(tmp_path / "new.csv", ROWS)
    again = choose.read_sweep(tmp_path / "new.csv")
    assert again == ROWS
    old = [{"index": "a", "setting": "nprobe=8", "recall@10": 0.9, "qps": 1234.5,
            "index_bytes": 77, "p50_ms": ""}]
    write_csv(tmp_path / "old.csv", old)
    row, = choose.read_sweep(tmp_path / "old.csv")
    assert row == {"index": "a", "setting": "nprobe=8", "recall@10": 0.9, "qps_median": 1234.5,
                   "file_bytes": 77, "p50_ms": None}
    assert json.dumps(row)  # plain values only
