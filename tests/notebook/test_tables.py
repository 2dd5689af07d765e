import pandas as pd

from helpers.notebook import tables


def test_numbers_are_shown_for_people():
    assert tables.for_people(41390.146) == "41,390" and tables.for_people(0.98213) == "0.982"
    df = tables.frame([{"qps": 41390.146, "recall": 0.98213, "why": None},
                       {"qps": 12.5, "recall": 1.0, "why": "over budget"}],
                      ["qps", "recall", ("why", "", "why not")])
    html = df._repr_html_()
    assert "41,390" in html and "0.982" in html and "NaN" not in html and "None" not in html
    assert list(df.columns) == ["qps", "recall", "why not"] and isinstance(df, pd.DataFrame)


def test_missing_values_and_large_counts_read_as_words_and_numbers():
    df = tables.frame([{"n": 100_000_000, "p50_ms": None}, {"n": 3000, "p50_ms": 1.234}], ["n", "p50_ms"])
    assert list(df["n"]) == ["100,000,000", "3,000"] and list(df["p50_ms"]) == ["–", "1.234"]
    assert "NaN" not in df._repr_html_()
