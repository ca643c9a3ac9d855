"""Every duration carries a unit; bare numbers are refused (spec §3, 2004 recall in §12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host_tools.durations import format_duration, parse_duration
from host_tools.errors import UsageError


@pytest.mark.parametrize("text,ms", [
    ("90s", 90_000), ("15m", 900_000), ("6h", 21_600_000), ("2d", 172_800_000),
    ("1h30m", 5_400_000), ("250ms", 250), (" 6H ", 21_600_000),
])
def test_units(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bare", ["6", "90", "1.5", "0"])
def test_bare_numbers_are_refused_with_a_reason(bare):
    with pytest.raises(UsageError, match="has no unit"):
        parse_duration(bare, "--every")


@pytest.mark.parametrize("bad", ["", "h", "6x", "-6h", "6 h", "1.5h", "six hours"])
def test_nonsense_is_refused(bad):
    with pytest.raises(UsageError, match="not a duration|has no unit"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_round_trips(ms):
    assert parse_duration(format_duration(ms)) == ms
