"""Every user error raises a mus_lab error whose message says what to change."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mus_lab import set_options
from mus_lab.catalog import search
from mus_lab.errors import (
    CatalogUnreachableError,
    EmptySearchError,
    InvalidBBoxError,
    InvalidQueryError,
    MusLabError,
    UnknownCollectionError,
)
from tests._stac_server import Interaction
from tests.catalog.conftest import EARTH_SEARCH, ServerFactory


def test_empty_local_search_says_what_to_widen(local_catalog: Path) -> None:
    with pytest.raises(
        EmptySearchError,
        match=r"No items for 'sentinel-2-l2a' in bbox \(10\.0, 10\.0, 11\.0, 11\.0\) between "
        r"2024-06-01T00:00:00\+00:00 and 2024-06-02T.*widen the dates, enlarge the area, raise max_cloud",
    ):
        search(
            local_catalog, collections="sentinel-2-l2a", bbox=(10, 10, 11, 11),
            datetime="2024-06-01/2024-06-02", max_cloud=5,
        )  # fmt: skip


def test_unknown_local_collection_lists_ids(local_catalog: Path) -> None:
    with pytest.raises(
        UnknownCollectionError,
        match=r"\['sentinel-2-l1c'\] not in the local catalog .*choose among "
        r"\['sentinel-1-grd', 'sentinel-2-l2a'\]",
    ):
        search(local_catalog, collections=["sentinel-2-l2a", "sentinel-2-l1c"])


@pytest.mark.parametrize(
    ("bbox", "pattern"),
    [
        (
            (3.0, 0.0, 2.0, 1.0),
            r"corners swapped.*\(min_lon, min_lat, max_lon, max_lat\); use \(2\.0, 0\.0, 3\.0, 1\.0\)",
        ),
        ((0.0, 1.0, 1.0, 0.0), r"corners swapped.*use \(0\.0, 0\.0, 1\.0, 1\.0\)"),
        ((0.0, 0.0, 1.0), r"must have four numbers \(min_lon, min_lat, max_lon, max_lat\), got 3"),
        ((0, 0, 0, 1, 1, 1), r"3-D boxes are not supported"),
        ((52.0, 100.0, 53.0, 101.0), r"min_lat=100\.0 is outside \[-90, 90\].*\(lat, lon\)"),
        (("a", 0, 1, 1), r"values must be numbers"),
        ("0;0;1;1", r"must have four numbers .*got 1"),
        ("1,0,0,1", r"corners swapped"),
        (b"0,0,1,1", r"four numbers .* or a string 'w,s,e,n'"),
    ],
)
def test_bad_bbox(local_catalog: Path, bbox: object, pattern: str) -> None:
    with pytest.raises(InvalidBBoxError, match=pattern):
        search(local_catalog, collections="sentinel-2-l2a", bbox=bbox)  # type: ignore[arg-type]


def test_bbox_may_be_a_string_as_on_the_command_line(local_catalog: Path) -> None:
    as_text = search(local_catalog, collections="sentinel-2-l2a", bbox="-180,-90,180,90")
    assert len(as_text) == len(search(local_catalog, collections="sentinel-2-l2a"))


def test_bad_bbox_is_caught_before_any_request() -> None:
    # No server behind this URL: the bbox error must come first.
    with pytest.raises(InvalidBBoxError, match="swapped"):
        search("http://127.0.0.1:9/v1", collections="x", bbox=(1, 0, 0, 1))


@pytest.mark.parametrize(
    ("when", "pattern"),
    [
        ("2024-13-01", r"'2024-13-01' cannot be read.*use an instant"),
        ("yesterday", r"'yesterday' cannot be read"),
        ("2024-06-10/2024-06-01", r"ends before it starts: swap"),
        ("2024-01-01/2024-02-01/2024-03-01", r"has 3 parts"),
    ],
)
def test_bad_datetime(local_catalog: Path, when: str, pattern: str) -> None:
    with pytest.raises(InvalidQueryError, match=pattern):
        search(local_catalog, collections="sentinel-2-l2a", datetime=when)


@pytest.mark.parametrize(
    ("cql", "lang", "pattern"),
    [
        (
            "eo:cloud_cover <<< 3",
            None,
            r"(?s)CQL2 text filter .* cannot be parsed.*Fix the expression",
        ),
        ({"op": "<", "args": "oops"}, None, r"(?s)CQL2-JSON filter .* is not valid.*Fix it"),
        ("eo:cloud_cover < 3", "cql2-json", r"pass a dict, or use filter_lang='cql2-text'"),
        ("eo:cloud_cover < 3", "cql-text", r"filter_lang='cql-text' is not supported"),
    ],
)
def test_bad_filter(local_catalog: Path, cql: object, lang: str | None, pattern: str) -> None:
    with pytest.raises(InvalidQueryError, match=pattern):
        search(local_catalog, collections=None, filter=cql, filter_lang=lang)  # type: ignore[arg-type]


def test_other_bad_arguments(local_catalog: Path) -> None:
    with pytest.raises(InvalidQueryError, match="not both"):
        search(local_catalog, collections=None, bbox=(0, 0, 1, 1),
               intersects={"type": "Point", "coordinates": [0, 0]})  # fmt: skip
    with pytest.raises(InvalidQueryError, match="cloud-cover percentage"):
        search(local_catalog, collections=None, max_cloud=150)
    with pytest.raises(InvalidQueryError, match="at least 1"):
        search(local_catalog, collections=None, max_items=0)
    with pytest.raises(InvalidQueryError, match="not GeoJSON"):
        search(local_catalog, collections=None, intersects="POINT (0 0)")


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(
        CatalogUnreachableError, match=r"No STAC catalog at .*nowhere.*generate one"
    ):
        search(tmp_path / "nowhere", collections="sentinel-2-l2a")
    with pytest.raises(CatalogUnreachableError, match=r"pass the folder that holds catalog.json"):
        search(tmp_path, collections="sentinel-2-l2a")


def test_broken_local_catalog(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(CatalogUnreachableError, match=r"cannot be read.*valid STAC JSON") as info:
        search(tmp_path, collections="sentinel-2-l2a")
    assert info.value.__cause__ is not None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_url_names_it_and_suggests_a_fix() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with (
        set_options(http_timeout=2.0),
        pytest.raises(
            CatalogUnreachableError,
            match=rf"Cannot reach the STAC API at '{url}'.*Check the URL.*local catalog path",
        ) as info,
    ):
        search(url, collections="sentinel-2-l2a")
    assert info.value.__cause__ is not None  # the pystac-client error is chained
    assert isinstance(info.value, MusLabError)


@pytest.mark.realdata
def test_unknown_api_collection_lists_available_ids(recorded_stac_api: ServerFactory) -> None:
    # The search POST is not recorded (the replay server answers 404, as Earth Search would
    # answer 4xx or nothing); the recorded /collections list is then used for the message.
    server = recorded_stac_api()
    with pytest.raises(
        UnknownCollectionError,
        match=r"\['sentinel-2-l3a'\] not offered by .*choose among \[.*'sentinel-2-c1-l2a'.*\]",
    ):
        search(server.url(EARTH_SEARCH), collections="sentinel-2-l3a", limit=None)


@pytest.mark.realdata
def test_empty_api_search_uses_query_extension(recorded_stac_api: ServerFactory) -> None:
    # Composed answer (an empty page) to the request search() must send to Earth Search,
    # which declares the Query extension but not Filter: max_cloud goes in "query".
    body = {
        "collections": ["sentinel-2-l2a"],
        "bbox": [5.0, 52.0, 5.1, 52.1],
        "query": {"eo:cloud_cover": {"lte": 1.0}},
    }
    empty = Interaction(
        "POST", f"{EARTH_SEARCH}/search", body, 200,
        {"type": "FeatureCollection", "features": [], "links": []},
    )  # fmt: skip
    server = recorded_stac_api(extra=[empty])
    with pytest.raises(
        EmptySearchError,
        match=r"No items for 'sentinel-2-l2a' in bbox \(5\.0, 52\.0, 5\.1, 52\.1\) at any date "
        r"with eo:cloud_cover <= 1 .*raise max_cloud",
    ):
        search(server.url(EARTH_SEARCH), collections="sentinel-2-l2a",
               bbox=(5.0, 52.0, 5.1, 52.1), max_cloud=1, limit=None)  # fmt: skip
    assert not server.unmatched
