"""The normalised search request shared by the API and local searches.

Arguments are checked here, once, before any network or disk access, so that
both back ends see the same values and raise the same errors.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cql2

from mus_lab.catalog._geometry import BBox, parse_bbox, to_geojson
from mus_lab.errors import InvalidQueryError

__all__ = [
    "DatetimeLike",
    "Interval",
    "SearchQuery",
    "build_query",
    "legacy_to_cql2",
    "parse_datetime",
]

Interval = tuple[dt.datetime | None, dt.datetime | None]
DatetimeLike = str | dt.datetime | dt.date | Sequence[str | dt.datetime | dt.date | None]
FilterLang = Literal["cql2-text", "cql2-json"]

_YEAR = re.compile(r"^\d{4}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OPEN = {"", ".."}
_FORMS = (
    "an instant '2020-06-01T10:00:00Z', a date '2020-06-01', a month '2020-06', a year "
    "'2020', or a range 'start/end' with open ends '../end' or 'start/..'"
)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _bounds(text: str) -> Interval:
    """Return the (first, last) instants covered by one datetime string."""
    text = text.strip()
    try:
        if _YEAR.match(text):
            start = dt.datetime(int(text), 1, 1, tzinfo=dt.UTC)
            end = _month_end(int(text), 12)
        elif _MONTH.match(text):
            year, month = (int(p) for p in text.split("-"))
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            end = _month_end(year, month)
        elif _DAY.match(text):
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start, dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        else:
            instant = _utc(dt.datetime.fromisoformat(text.replace("z", "Z")))
            return instant, instant
    except ValueError as exc:
        raise InvalidQueryError(f"datetime {text!r} cannot be read ({exc}): use {_FORMS}.") from exc
    return start, end


def _month_end(year: int, month: int) -> dt.datetime:
    """Last instant of a month (``datetime.max`` for December 9999)."""
    if (year, month) == (9999, 12):
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    first_of_next = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return first_of_next - dt.timedelta(microseconds=1)


def _one(value: str | dt.datetime | dt.date | None) -> Interval:
    if value is None:
        return None, None
    if isinstance(value, dt.datetime):
        return _utc(value), _utc(value)
    if isinstance(value, dt.date):
        return _bounds(value.isoformat())
    if isinstance(value, str):
        if value.strip() in _OPEN:
            return None, None
        return _bounds(value)
    raise InvalidQueryError(f"datetime part {value!r} is a {type(value).__name__}: use {_FORMS}.")


def parse_datetime(value: DatetimeLike | None) -> Interval:
    """Return the closed UTC interval ``(start, end)`` covered by a STAC datetime argument.

    ``None`` for an open end. A date covers the whole day, a month or year the whole
    month or year; naive datetimes are taken as UTC.

    Parameters
    ----------
    value
        A string (instant, date, ``start/end``, ``../end``, ``start/..``), a
        :class:`datetime.datetime` or :class:`datetime.date`, or a pair ``(start, end)``.

    Returns
    -------
    tuple of (datetime.datetime or None, datetime.datetime or None)
        UTC start and end, both included.

    Raises
    ------
    InvalidQueryError
        The value cannot be read, or the range ends before it starts.

    Examples
    --------
    >>> start, end = parse_datetime("2020-06-01/..")
    >>> start.isoformat(), end
    ('2020-06-01T00:00:00+00:00', None)
    """
    if value is None:
        return None, None
    if isinstance(value, str) and "/" in value:
        parts: Sequence[Any] = value.split("/")
    elif isinstance(value, str | dt.date):
        return _one(value)
    else:
        parts = list(value)
    if len(parts) != 2:
        raise InvalidQueryError(f"datetime {value!r} has {len(parts)} parts: use {_FORMS}.")
    start, end = _one(parts[0])[0], _one(parts[1])[1]
    if start is not None and end is not None and start > end:
        raise InvalidQueryError(f"datetime {value!r} ends before it starts: swap the two ends.")
    return start, end


_LEGACY_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=", "neq": "<>"}


def legacy_to_cql2(node: Any) -> Any:
    """Rewrite pre-1.0 CQL2-JSON operators (``lte``, ``eq``, ...) as the standard symbols.

    Servers such as Earth Search still accept the old names; the ``cql2`` evaluator
    used for local catalogs only knows the standard ones.

    Parameters
    ----------
    node
        A CQL2-JSON expression (dicts, lists and values, nested).

    Returns
    -------
    Any
        The same expression with standard operator symbols.

    Examples
    --------
    >>> legacy_to_cql2({"op": "lte", "args": [{"property": "eo:cloud_cover"}, 40]})
    {'op': '<=', 'args': [{'property': 'eo:cloud_cover'}, 40]}
    """
    if isinstance(node, Mapping):
        out = {k: legacy_to_cql2(v) for k, v in node.items()}
        if isinstance(out.get("op"), str):
            out["op"] = _LEGACY_OPS.get(out["op"], out["op"])
        return out
    if isinstance(node, list):
        return [legacy_to_cql2(v) for v in node]
    return node


def _parse_filter(
    filter: str | Mapping[str, Any], filter_lang: str | None
) -> tuple[dict[str, Any], cql2.Expr]:
    """Return (JSON to send, expression to evaluate locally) for a CQL2 filter."""
    if filter_lang not in (None, "cql2-text", "cql2-json"):
        raise InvalidQueryError(
            f"filter_lang={filter_lang!r} is not supported: use 'cql2-text' or 'cql2-json' "
            "(or leave it out to guess from the filter)."
        )
    if isinstance(filter, str) and filter_lang != "cql2-json":
        try:
            expr = cql2.Expr(filter)
        except Exception as exc:  # cql2 raises a bare Exception / ParseError
            raise InvalidQueryError(
                f"CQL2 text filter {filter!r} cannot be parsed: {exc}\n"
                "Fix the expression, e.g. \"eo:cloud_cover < 20 AND platform = 'sentinel-2a'\"."
            ) from exc
        return dict(expr.to_json()), expr
    if isinstance(filter, str):
        raise InvalidQueryError(
            "filter is a string but filter_lang='cql2-json': pass a dict, or use filter_lang='cql2-text'."
        )
    if not isinstance(filter, Mapping):
        raise InvalidQueryError(
            f"filter must be CQL2 text or a CQL2-JSON dict, got {type(filter).__name__}."
        )
    sent = dict(filter)
    try:
        expr = cql2.Expr(legacy_to_cql2(sent))
        expr.validate()
    except Exception as exc:
        raise InvalidQueryError(
            f"CQL2-JSON filter {sent!r} is not valid: {exc}\n"
            "Fix it, e.g. {'op': '<', 'args': [{'property': 'eo:cloud_cover'}, 20]}."
        ) from exc
    return sent, expr


@dataclass(frozen=True)
class SearchQuery:
    """A checked search request, the same for every back end.

    Attributes
    ----------
    collections
        Requested collection ids; empty for "every collection".
    bbox, intersects
        Area of interest (EPSG:4326), either or none.
    datetime
        The datetime argument as given (strings are sent unchanged to STAC APIs).
    interval
        The closed UTC interval it covers, ``None`` for open ends.
    max_cloud
        Highest ``eo:cloud_cover`` kept (percent), or ``None``.
    filter
        The CQL2-JSON filter as given/converted, or ``None``.
    max_items, limit
        Result cap and page size.
    """

    collections: tuple[str, ...]
    bbox: BBox | None
    intersects: dict[str, Any] | None
    datetime: DatetimeLike | None
    interval: Interval
    max_cloud: float | None
    filter: dict[str, Any] | None
    filter_expr: cql2.Expr | None
    max_items: int | None
    limit: int | None

    def as_dict(self) -> dict[str, Any]:
        """Return the request as a plain dict (ISO strings, lists), for records and messages.

        Returns
        -------
        dict
            ``collections``, ``bbox``, ``intersects``, ``datetime`` (the interval),
            ``max_cloud``, ``filter``, ``max_items`` and ``limit``.
        """
        start, end = self.interval
        return {
            "collections": list(self.collections),
            "bbox": list(self.bbox) if self.bbox else None,
            "intersects": self.intersects,
            "datetime": None
            if start is None and end is None
            else f"{start.isoformat() if start else '..'}/{end.isoformat() if end else '..'}",
            "max_cloud": self.max_cloud,
            "filter": self.filter,
            "max_items": self.max_items,
            "limit": self.limit,
        }

    def describe(self) -> str:
        """Describe the request in words, for error messages.

        Returns
        -------
        str
            E.g. ``"'sentinel-2-l2a' anywhere at any date"``.
        """
        cols = ", ".join(repr(c) for c in self.collections) or "any collection"
        if self.bbox is not None:
            where = f"in bbox {self.bbox!r}"
        elif self.intersects is not None:
            where = f"intersecting the given {self.intersects.get('type', 'geometry')}"
        else:
            where = "anywhere"
        start, end = self.interval
        if start is None and end is None:
            when = "at any date"
        else:
            when = (
                f"between {start.isoformat() if start else 'the beginning'} and "
                f"{end.isoformat() if end else 'now'}"
            )
        text = f"{cols} {where} {when}"
        if self.max_cloud is not None:
            text += f" with eo:cloud_cover <= {self.max_cloud:g}"
        if self.filter is not None and self.filter_expr is not None:
            text += f" matching filter {self.filter_expr.to_text()!r}"
        return text


def build_query(
    *,
    collections: str | Sequence[str] | None,
    bbox: str | Sequence[float] | None,
    intersects: Any,
    datetime: DatetimeLike | None,
    max_cloud: float | None,
    filter: str | Mapping[str, Any] | None,
    filter_lang: str | None,
    max_items: int | None,
    limit: int | None,
) -> SearchQuery:
    """Check every search argument and return a :class:`SearchQuery`.

    Parameters
    ----------
    collections, bbox, intersects, datetime, max_cloud, filter, filter_lang, max_items, limit
        As for :func:`mus_lab.catalog.search`.

    Returns
    -------
    SearchQuery
        The checked, normalised request.

    Raises
    ------
    InvalidBBoxError
        A malformed ``bbox``.
    InvalidQueryError
        Both ``bbox`` and ``intersects``, a bad datetime, filter, ``max_cloud`` outside
        [0, 100], or ``max_items`` / ``limit`` below 1.

    Examples
    --------
    >>> q = build_query(collections="sentinel-2-l2a", bbox=None, intersects=None,
    ...                 datetime="2020-06", max_cloud=20, filter=None, filter_lang=None,
    ...                 max_items=None, limit=100)
    >>> q.collections, q.as_dict()["datetime"]
    (('sentinel-2-l2a',), '2020-06-01T00:00:00+00:00/2020-06-30T23:59:59.999999+00:00')
    """
    if collections is None:
        cols: tuple[str, ...] = ()
    elif isinstance(collections, str):
        cols = (collections,)
    else:
        cols = tuple(str(getattr(c, "id", c)) for c in collections)
    if bbox is not None and intersects is not None:
        raise InvalidQueryError("Give bbox or intersects, not both: drop one of them.")
    box = parse_bbox(bbox) if bbox is not None else None
    geom = to_geojson(intersects) if intersects is not None else None
    if max_cloud is not None and not 0 <= float(max_cloud) <= 100:
        raise InvalidQueryError(
            f"max_cloud={max_cloud} is outside [0, 100]: it is a cloud-cover percentage."
        )
    for name, value in (("max_items", max_items), ("limit", limit)):
        if value is not None and int(value) < 1:
            raise InvalidQueryError(f"{name}={value} must be at least 1 (or None for no cap).")
    sent, expr = _parse_filter(filter, filter_lang) if filter is not None else (None, None)
    return SearchQuery(
        collections=cols,
        bbox=box,
        intersects=geom,
        datetime=datetime,
        interval=parse_datetime(datetime),
        max_cloud=None if max_cloud is None else float(max_cloud),
        filter=sent,
        filter_expr=expr,
        max_items=max_items,
        limit=limit,
    )
