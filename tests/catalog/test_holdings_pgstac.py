"""PostgreSQL + pgstac holdings answer like the static holdings (issue 13, point 4).

The same items go into a :class:`StaticHoldings` folder and a :class:`PgstacHoldings`
database; a grid of queries (collections, bbox, intersects, datetime ranges and instants,
max_cloud, CQL2 text and JSON filters) must give the same (collection, id) sets. Items:
the tiny sample scenario's, and real recorded items (Planetary Computer items of
odc-stac's test data, Earth Search items of pystac-client's cassettes).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pystac
import pytest

from mus_lab import catalog
from mus_lab.catalog import StaticHoldings, open_holdings, open_local
from mus_lab.catalog._pgstac import PgstacHoldings, pgstac_search_body
from mus_lab.catalog._query import build_query
from mus_lab.errors import CatalogError, UnknownCollectionError
from tests._postgres import new_database
from tests.catalog.conftest import local_items


def query(**kw: Any) -> Any:
    args: dict[str, Any] = dict(
        collections=None,
        bbox=None,
        intersects=None,
        datetime=None,
        max_cloud=None,
        filter=None,
        filter_lang=None,
        max_items=None,
        limit=None,
    )
    args.update(kw)
    return build_query(**args)


def keys(items: list[pystac.Item]) -> list[tuple[str, str]]:
    return sorted((i.collection_id or "", i.id) for i in items)


def both(
    tmp: Path, cluster: object, items: list[pystac.Item]
) -> tuple[StaticHoldings, PgstacHoldings]:
    static = StaticHoldings(tmp / "static")
    assert static.ingest(items) == len(items)
    pg = PgstacHoldings(new_database(cluster))
    assert pg.ingest(items) == len(items)
    return static, pg


# --- the tiny sample scenario -------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_backends(
    pg_cluster: object, _tiny_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    from mus_lab.testing import tiny_scenario

    # The shared scenario is only read; both backends get their own copy of its items.
    items = open_local(tiny_scenario(_tiny_root).catalog_path).find(query())
    static, pg = both(tmp_path_factory.mktemp("sample-holdings"), pg_cluster, items)
    yield static, pg
    pg.close()


AOI = {  # a triangle inside the scenario's footprint
    "type": "Polygon",
    "coordinates": [[[-73.727, 45.141], [-73.72, 45.141], [-73.72, 45.146], [-73.727, 45.141]]],
}
SAMPLE_QUERIES = {
    "everything": {},
    "one collection": {"collections": "sentinel-2-l2a"},
    "radar in March": {"collections": ["sentinel-1-grd", "rcm-grd"], "datetime": "2022-03"},
    "max_cloud": {"collections": "sentinel-2-l2a", "max_cloud": 20},
    "bbox inside, two months": {
        "bbox": (-73.725, 45.142, -73.722, 45.145),
        "datetime": "2022-01-01/2022-02-28",
    },
    "bbox elsewhere": {"bbox": (0.0, 0.0, 1.0, 1.0)},
    "open start": {"datetime": "../2022-01-15"},
    "open end": {"datetime": "2022-06-01/.."},
    "an item's instant": {"datetime": "2021-12-01T15:36:00Z"},
    "intersects": {"intersects": AOI, "collections": "sentinel-2-l2a", "max_cloud": 50},
    "cql2 text": {"filter": "eo:cloud_cover > 40"},
    "cql2 text, string": {"filter": "platform = 'sentinel-2a' AND eo:cloud_cover < 30"},
    "cql2 json, legacy op": {
        "filter": {"op": "lte", "args": [{"property": "eo:cloud_cover"}, 25]},
        "collections": "sentinel-2-l2a",
    },
    "cql2 between + max_cloud": {"filter": "eo:cloud_cover BETWEEN 1 AND 60", "max_cloud": 45},
}


@pytest.mark.parametrize("name", list(SAMPLE_QUERIES))
def test_sample_scenario_same_answers(sample_backends: Any, name: str) -> None:
    static, pg = sample_backends
    q = query(**SAMPLE_QUERIES[name])
    expected = keys(static.search(q))
    assert keys(pg.search(q)) == expected
    if name == "everything":
        assert len(expected) > 50


def test_sample_catalog_search_on_a_database_url(sample_backends: Any) -> None:
    static, pg = sample_backends
    url = pg._url
    args = {"collections": "sentinel-2-l2a", "max_cloud": 30, "datetime": "2022-03/2022-07"}
    from_db = catalog.search(url, **args)
    from_dir = catalog.search(static.location, **args)
    assert keys(list(from_db)) == keys(list(from_dir))
    # Same normalisation (the local profile): same asset keys on every item.
    by_id = {i.id: i for i in from_dir}
    assert all(set(i.assets) == set(by_id[i.id].assets) for i in from_db)
    assert from_db.source == pg.location
    assert from_db.query == from_dir.query
    assert {i.properties[catalog.PROVIDER_PROPERTY] for i in from_db} == {"local"}
    # A database among other sources: merged into one result.
    both_sources = catalog.search([static.location, url], **args)
    assert len(both_sources) == 2 * len(from_dir)
    assert both_sources.source == f"{from_dir.source} + {pg.location}"


def test_sample_get_and_collections_agree(sample_backends: Any) -> None:
    static, pg = sample_backends
    assert pg.collections() == static.collections()
    item = static.search(query(collections="sentinel-1-grd", max_items=1))[0]
    got = pg.get("sentinel-1-grd", item.id)
    assert got is not None and got.id == item.id
    assert got.properties == static.get("sentinel-1-grd", item.id).properties  # type: ignore[union-attr]
    assert {a.href for a in got.assets.values()} == {
        a.href
        for a in static.get("sentinel-1-grd", item.id).assets.values()  # type: ignore[union-attr]
    }
    assert pg.get("sentinel-1-grd", "no-such-item") is None


# --- real recorded items ------------------------------------------------------------------

CASSETTES = (
    "test_cli_TestCLISearch.test_filter_inprocess_.json",  # S1 GRD, S2 L2A/L1C/C1, Earth Search
    "test_cli_TestCLISearch.test_save_inprocess_.json",  # cop-dem-glo-30 at the south pole
    "test_item_search_test_multiple_collections.json",  # S2 L2A + Landsat C2 L2
)
PC_ITEMS = (  # Planetary Computer sentinel-2-l2a ItemCollections
    "site1-20200606-tall-strip-africa.geojson",
    "site2-2020_jun_jul-35MNM.geojson",
)


@pytest.fixture(scope="module")
def real_items(real_data: Path) -> list[pystac.Item]:
    base = real_data / "stac_real_responses"
    features: list[dict[str, Any]] = []
    for name in CASSETTES:
        for step in json.loads((base / "pystac_client_cassettes_json" / name).read_text())[
            "interactions"
        ]:
            answer = step.get("response_json")
            if isinstance(answer, dict) and answer.get("type") == "FeatureCollection":
                features += answer["features"]
    for name in PC_ITEMS:
        features += json.loads((base / "odc_stac_tests_data" / name).read_text())["features"]
    unique = {(f["collection"], f["id"]): f for f in reversed(features)}
    with warnings.catch_warnings():  # pystac migrating Earth Search's storage extension
        warnings.simplefilter("ignore", UserWarning)
        return [pystac.Item.from_dict(f) for f in unique.values()]


@pytest.fixture(scope="module")
def real_backends(
    pg_cluster: object, real_items: list[pystac.Item], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    static, pg = both(tmp_path_factory.mktemp("real-holdings"), pg_cluster, real_items)
    yield static, pg
    pg.close()


BRAZIL = {
    "type": "Polygon",
    "coordinates": [[[-40.0, -5.0], [-38.5, -5.0], [-38.5, -4.0], [-40.0, -5.0]]],
}
REAL_QUERIES = {
    "everything": {},
    "sentinel-2-l2a (PC and Earth Search)": {"collections": "sentinel-2-l2a"},
    "tile 35MNM bbox": {"bbox": (27.2, -8.0, 27.8, -7.5)},
    "June 2020": {"datetime": "2020-06-01/2020-06-30"},
    "instant with milliseconds": {"datetime": "2020-06-06T08:06:09.024Z"},
    "one microsecond later": {"datetime": "2020-06-06T08:06:09.024001Z/.."},
    "max_cloud 1": {"collections": "sentinel-2-l2a", "max_cloud": 1},
    "case-sensitive platform": {"filter": "platform = 'sentinel-2b'"},
    "legacy cql2-json": {"filter": {"op": "lte", "args": [{"property": "eo:cloud_cover"}, 25]}},
    "south pole, touching edge": {"bbox": (-180.0, -90.0, -175.0, -89.5)},
    "two collections in 2023": {
        "collections": ["sentinel-2-l2a", "landsat-c2-l2"],
        "datetime": "2023",
    },
    "intersects, Brazil": {"intersects": BRAZIL, "max_cloud": 40},
    "cql2 or + in": {
        "filter": "collection IN ('sentinel-2-l1c', 'sentinel-1-grd') OR eo:cloud_cover < 0.01"
    },
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(REAL_QUERIES))
def test_real_items_same_answers(real_backends: Any, name: str) -> None:
    static, pg = real_backends
    q = query(**REAL_QUERIES[name])
    expected = keys(static.search(q))
    assert keys(pg.search(q)) == expected
    if name in ("everything", "sentinel-2-l2a (PC and Earth Search)", "June 2020"):
        assert expected


@pytest.mark.realdata
def test_real_items_round_trip_unchanged(real_backends: Any, real_items: list[pystac.Item]) -> None:
    _, pg = real_backends
    searched = {(i.collection_id, i.id): i for i in pg.search(query())}  # hydrated here
    for item in real_items[::7]:
        got = pg.get(item.collection_id or "", item.id)  # hydrated by pgstac
        assert got is not None
        assert searched[(item.collection_id, item.id)].to_dict() == got.to_dict()
        assert got.properties == item.properties
        assert {k: a.href for k, a in got.assets.items()} == {
            k: a.href for k, a in item.assets.items()
        }
        assert got.bbox == pytest.approx(item.bbox)


# --- behaviour of the pgstac backend ----------------------------------------------------


@pytest.fixture
def small_db(pg_cluster: object) -> Any:
    pg = PgstacHoldings(new_database(pg_cluster), page_size=3)
    yield pg
    pg.close()


def test_paging_follows_tokens_and_max_items_caps(small_db: PgstacHoldings) -> None:
    assert small_db.ingest(local_items()) == 10
    everything = small_db.search(query())
    assert len(everything) == 10 == len({i.id for i in everything})  # 4 pages of 3
    assert [i.datetime or i.common_metadata.start_datetime for i in everything] == sorted(
        (i.datetime or i.common_metadata.start_datetime for i in everything), reverse=True
    )
    assert len(small_db.search(query(max_items=4))) == 4
    assert len(small_db.search(query(collections="sentinel-2-l2a", max_items=50))) == 6


def test_ingest_upserts_and_keeps_local_hrefs(small_db: PgstacHoldings, tmp_path: Path) -> None:
    items = local_items()
    small_db.ingest(items)
    changed = items[0].clone()
    changed.properties["eo:cloud_cover"] = 99.0
    changed.set_self_href(str(tmp_path / "s2" / "item.json"))  # relative assets resolve here
    assert small_db.ingest([changed]) == 1
    assert len(small_db.search(query())) == 10
    got = small_db.get("sentinel-2-l2a", changed.id)
    assert got is not None and got.properties["eo:cloud_cover"] == 99.0
    assert got.assets["B04"].href == str(tmp_path / "s2" / "B04.tif")
    assert small_db.collections() == ("sentinel-1-grd", "sentinel-2-l2a")


def test_collection_created_on_the_fly_with_extent(small_db: PgstacHoldings) -> None:
    small_db.ingest(local_items())
    conn = small_db._connection()
    row = conn.execute("SELECT content FROM collections WHERE id = 'sentinel-1-grd'").fetchone()
    assert row is not None
    extent = row[0]["extent"]
    assert extent["spatial"]["bbox"][0] == pytest.approx([0.0, 0.0, 3.0, 1.0])
    assert extent["temporal"]["interval"][0][0].startswith("2024-06-03")


def test_unknown_collection_and_empty_holdings(small_db: PgstacHoldings) -> None:
    assert small_db.search(query(collections="sentinel-2-l2a")) == []  # nothing held yet
    small_db.ingest(local_items())
    with pytest.raises(UnknownCollectionError, match="choose among"):
        small_db.search(query(collections="landsat-c2-l2"))


def test_same_item_twice_in_one_ingest(small_db: PgstacHoldings) -> None:
    first, second = local_items()[0], local_items()[0]
    second.properties["eo:cloud_cover"] = 42.0
    assert small_db.ingest([first, second]) == 2  # as the static backend counts
    got = small_db.get("sentinel-2-l2a", first.id)
    assert got is not None and got.properties["eo:cloud_cover"] == 42.0  # the last one wins


def test_item_without_collection_is_refused(small_db: PgstacHoldings) -> None:
    item = local_items()[0]
    item.collection_id = None
    with pytest.raises(CatalogError, match="has no collection id"):
        small_db.ingest([item])


def test_open_holdings_dispatches_database_urls(pg_cluster: object) -> None:
    holdings = open_holdings(new_database(pg_cluster))
    assert isinstance(holdings, PgstacHoldings)
    assert holdings.collections() == ()
    assert holdings.search(query()) == []
    holdings.close()


def test_search_body_joins_filter_and_max_cloud() -> None:
    body = pgstac_search_body(
        query(intersects=AOI, filter="platform = 'x'", max_cloud=10, max_items=5)
    )
    assert body["intersects"] == AOI and "bbox" not in body
    assert body["filter"]["op"] == "and" and body["filter-lang"] == "cql2-json"
    assert body["limit"] == 5
