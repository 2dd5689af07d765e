"""Sizes and durations as people write them (budgets on the command line and in
notebooks' parameters cells)."""

import pytest

from helpers.core.files import parse_duration, parse_size


def test_sizes_are_binary_and_bad_ones_say_how_to_write_them():
    assert parse_size("16G") == 16 * 2**30 and parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("500M") == 500 * 2**20 and parse_size("2048") == 2048
    assert parse_size("") == 0 and parse_size(4096) == 4096
    with pytest.raises(ValueError, match="write it as 16G, 500M"):
        parse_size("16 gigs")


def test_durations_in_hours_minutes_seconds():
    assert parse_duration("2h") == 7200 and parse_duration("1.5h") == 5400
    assert parse_duration("90min") == parse_duration("90m") == 5400
    assert parse_duration("600s") == parse_duration("600") == parse_duration(600) == 600
    assert parse_duration("") == 0
    for bad in ("2 weeks", "h", "-1h", "soon"):
        with pytest.raises(ValueError, match="write it as 2h, 90min, 600s"):
            parse_duration(bad)
