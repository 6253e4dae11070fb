"""Invariants of argument checking (hypothesis); the docstring examples run under
``pytest --doctest-modules mus_lab`` (``make test``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mus_lab.catalog._geometry import parse_bbox
from mus_lab.catalog._query import parse_datetime
from mus_lab.errors import InvalidBBoxError

lon = st.floats(-180, 180, allow_nan=False)
lat = st.floats(-90, 90, allow_nan=False)


@given(lon, lat, lon, lat)
def test_bbox_is_accepted_iff_ordered_and_the_hint_is_valid(
    x1: float, y1: float, x2: float, y2: float
) -> None:
    if x1 <= x2 and y1 <= y2:
        assert parse_bbox([x1, y1, x2, y2]) == (x1, y1, x2, y2)
        return
    with pytest.raises(InvalidBBoxError, match=r"use \(") as info:
        parse_bbox([x1, y1, x2, y2])
    fixed = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    assert repr(fixed) in str(info.value)
    assert parse_bbox(fixed) == fixed


@given(st.dates(), st.dates())
def test_date_ranges_cover_whole_days(a: object, b: object) -> None:
    first, last = sorted([a, b])  # type: ignore[type-var]
    start, end = parse_datetime(f"{first.isoformat()}/{last.isoformat()}")
    assert start is not None and end is not None
    assert start.date() == first and end.date() == last
    assert (start.hour, start.minute) == (0, 0) and (end.hour, end.minute) == (23, 59)


@pytest.mark.parametrize(
    ("text", "last"),
    [("2024-02", "2024-02-29T23:59:59.999999"), ("2023-12", "2023-12-31T23:59:59.999999"),
     ("9999", "9999-12-31T23:59:59.999999"), ("9999-12-31", "9999-12-31T23:59:59.999999")],
)  # fmt: skip
def test_period_ends(text: str, last: str) -> None:
    end = parse_datetime(text)[1]
    assert end is not None and end.replace(tzinfo=None).isoformat() == last
