import pandas as pd

from helpers import tables


def test_numbers_are_shown_for_people():
    assert tables.for_people(41390.146) == "41,390" and tables.for_people(0.98213) == "0.982"
    df = tables.frame([{"qps": 41390.146, "recall": 0.98213, "why": None},
                       {"qps": 12.5, "recall": 1.0, "why": "over budget"}],
                      ["qps", "recall", ("why", "", "why not")])
    html = df._repr_html_()
    assert "41,390" in html and "0.982" in html and "NaN" not in html and "None" not in html
    assert list(df.columns) == ["qps", "recall", "why not"] and isinstance(df, pd.DataFrame)
