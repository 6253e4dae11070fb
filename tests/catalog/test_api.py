"""Searching recorded real STAC APIs (Earth Search v1, Planetary Computer) through a local server.

Each search uses exactly the arguments that produced the recording (read from its
``request_body``); the replay server answers only requests equal to the recorded ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mus_lab.catalog import SearchResult, search
from mus_lab.catalog._api import api_parameters
from mus_lab.catalog._query import build_query
from tests._stac_server import Interaction
from tests.catalog.conftest import EARTH_SEARCH, PLANETARY_COMPUTER, ServerFactory

pytestmark = pytest.mark.realdata

PAGING = "test_item_search_TestItemSearch.test_result_paging_max_items.json"
FILTER = "test_cli_TestCLISearch.test_filter_inprocess_.json"
MULTI = "test_item_search_test_multiple_collections.json"
INTERSECTS = "test_item_search_TestItemSearch.test_intersects_results.json"


def posted(server_requests: list[tuple[str, str, object]]) -> list[object]:
    return [body for method, path, body in server_requests if method == "POST"]


def test_paging_follows_next_tokens(recorded_stac_api: ServerFactory) -> None:
    # Recorded: POST /search {'limit': 10, 'collections': ['naip']} then two 'token' pages.
    server = recorded_stac_api(PAGING)
    result = search(server.url(PLANETARY_COMPUTER), collections="naip", limit=10, max_items=30)
    assert isinstance(result, SearchResult)
    assert len(result) == 30 and len({i.id for i in result}) == 30
    ids = [i.id for i in result]
    assert ids[0] == "mt_m_4911664_se_11_060_20231117_20240103"  # page 1
    assert ids[10] == "mt_m_4811501_nw_11_060_20231117_20240103"  # page 2
    assert ids[-1] == "mt_m_4511352_sw_12_060_20231117_20240103"  # page 3
    bodies = posted(server.requests)
    assert len(bodies) == 3 and not server.unmatched
    assert [b.get("token") for b in bodies] == [  # type: ignore[union-attr]
        None,
        "next:naip:mt_m_4811501_se_11_060_20231117_20240103",
        "next:naip:mt_m_4511355_sw_12_060_20231117_20240103",
    ]
    assert result.collections == ("naip",)
    assert result.source == server.url(PLANETARY_COMPUTER)
    assert result.query["limit"] == 10 and result.query["max_items"] == 30


def test_cql2_filter_across_collections(recorded_stac_api: ServerFactory) -> None:
    # Recorded: {'filter': lte(eo:cloud_cover, 40), 'filter-lang': 'cql2-json'}, no collections,
    # no limit; page 2 asked with the 'next' body of the link (merge: false).
    server = recorded_stac_api(FILTER)
    cql = {"op": "lte", "args": [{"property": "eo:cloud_cover"}, 40]}
    result = search(
        server.url(EARTH_SEARCH), collections=None, filter=cql, limit=None, max_items=20
    )
    assert len(result) == 20 and not server.unmatched
    assert set(result.collections) == {
        "sentinel-1-grd", "sentinel-2-c1-l2a", "sentinel-2-l2a", "sentinel-2-l1c",
    }  # fmt: skip
    assert result[0].id == "S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E"
    assert result[19].id == "S2B_24MUA_20250731_0_L2A"  # last item of page 2
    c1 = next(i for i in result if i.id == "S2B_T20EPT_20250731T131905_L2A")
    assert {"red", "green", "blue", "nir", "swir22", "visual"} <= set(c1.assets)
    assert all(a.extra_fields["mus_lab:provider_key"] == k for k, a in c1.assets.items())


def test_multiple_collections_intersects_point(recorded_stac_api: ServerFactory) -> None:
    # Recorded: datetime '2023-10-08T00:00:00Z/2023-10-08T23:59:59Z' (pystac-client's form
    # of '2023-10-08'), two collections, a Point; page 2 is empty.
    server = recorded_stac_api(MULTI)
    result = search(
        server.url(EARTH_SEARCH),
        collections=["sentinel-2-l2a", "landsat-c2-l2"],
        intersects={"type": "Point", "coordinates": [-105.1019, 40.1672]},
        datetime="2023-10-08",
        limit=None,
    )
    assert not server.unmatched
    assert [i.id for i in result] == ["S2A_13TDE_20231008_0_L2A", "LC08_L2SP_033032_20231008_02_T1"]
    assert result.collections == ("sentinel-2-l2a", "landsat-c2-l2")
    s2 = result[0]
    # Earth Search v1 keys are already canonical: nothing renamed, provider key recorded.
    assert {"blue", "green", "red", "nir", "nir08", "swir16", "swir22", "scl"} <= set(s2.assets)
    assert s2.assets["red"].extra_fields["mus_lab:provider_key"] == "red"
    assert "red-jp2" in s2.assets  # same common name, kept under its own key
    summary = result.summary()
    assert list(summary.index) == ["sentinel-2-l2a", "landsat-c2-l2"]
    assert summary["count"].tolist() == [1, 1]


def test_intersects_polygon(recorded_stac_api: ServerFactory) -> None:
    server = recorded_stac_api(INTERSECTS)
    aoi = {
        "type": "Polygon",
        "coordinates": [
            [[-73.21, 43.99], [-73.21, 44.05], [-73.12, 44.05], [-73.12, 43.99], [-73.21, 43.99]]
        ],
    }
    result = search(server.url(PLANETARY_COMPUTER), collections="naip", intersects=aoi, limit=None)
    assert len(result) == 42 and not server.unmatched
    assert result[0].id == "vt_m_4307308_nw_18_030_20230622_20231113"
    gdf = result.to_geodataframe()
    assert gdf.intersects(__import__("shapely").geometry.shape(aoi)).all()


def test_planetary_computer_s2_keys_become_canonical(
    recorded_stac_api: ServerFactory, real_data: Path
) -> None:
    # No cassette recorded a PC sentinel-2-l2a search, so this interaction is composed: the
    # request body is what search() must send to an API declaring Filter (max_cloud as CQL2),
    # the answer is the real PC ItemCollection of odc-stac's tests (site2, tile 35MNM).
    site2 = json.loads(
        (
            real_data / "stac_real_responses/odc_stac_tests_data/site2-2020_jun_jul-35MNM.geojson"
        ).read_text()
    )
    clear = [f for f in site2["features"] if f["properties"]["eo:cloud_cover"] <= 1.0]
    body = {
        "collections": ["sentinel-2-l2a"],
        "bbox": [27.0, -8.2, 28.0, -7.3],
        "datetime": "2020-06-01T00:00:00Z/2020-07-31T23:59:59Z",  # pystac-client's form
        "limit": 100,
        "filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 1.0]},
        "filter-lang": "cql2-json",
    }
    composed = Interaction(
        "POST", f"{PLANETARY_COMPUTER}/search", body, 200,
        {"type": "FeatureCollection", "features": clear, "links": []},
    )  # fmt: skip
    server = recorded_stac_api(extra=[composed])
    request = {
        "collections": "sentinel-2-l2a",
        "bbox": (27.0, -8.2, 28.0, -7.3),
        "datetime": "2020-06-01/2020-07-31",
        "max_cloud": 1,
    }
    result = search(server.url(PLANETARY_COMPUTER), **request)  # type: ignore[arg-type]
    assert not server.unmatched
    assert [i.id for i in result] == [f["id"] for f in clear] and len(result) == 7
    item = result[0]
    assert "B04" not in item.assets
    red = item.assets["red"]
    assert red.extra_fields["mus_lab:provider_key"] == "B04"
    assert red.href.endswith("_B04_10m.tif")
    assert item.assets["nir08"].extra_fields["mus_lab:provider_key"] == "B8A"
    assert item.assets["scl"].extra_fields["mus_lab:provider_key"] == "SCL"
    assert {"blue", "green", "rededge1", "rededge2", "rededge3", "nir", "swir16", "swir22"} <= set(
        item.assets
    )
    raw = search(server.url(PLANETARY_COMPUTER), **request, normalise=False)  # type: ignore[arg-type]
    assert "B04" in raw[0].assets and "red" not in raw[0].assets


def _query(**kwargs: object) -> object:
    base: dict[str, object] = dict(
        collections="sentinel-2-l2a", bbox=None, intersects=None, datetime=None,
        max_cloud=None, filter=None, filter_lang=None, max_items=None, limit=None,
    )  # fmt: skip
    base.update(kwargs)
    return build_query(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("has_filter", "has_query", "key", "local"),
    [(True, True, "filter", False), (False, True, "query", False), (False, False, None, True)],
)
def test_max_cloud_translation_follows_conformance(
    has_filter: bool, has_query: bool, key: str | None, local: bool
) -> None:
    user = "platform = 'sentinel-2a'"
    params, local_cloud = api_parameters(
        _query(max_cloud=20, filter=user),  # type: ignore[arg-type]
        has_filter=has_filter,
        has_query=has_query,
    )
    assert local_cloud is local
    assert params["filter_lang"] == "cql2-json"
    if key == "filter":
        assert params["filter"]["op"] == "and"
        assert params["filter"]["args"][1] == {
            "op": "<=", "args": [{"property": "eo:cloud_cover"}, 20.0],
        }  # fmt: skip
        assert "query" not in params
    else:
        assert params["filter"] == {
            "op": "=", "args": [{"property": "platform"}, "sentinel-2a"],
        }  # fmt: skip
    if key == "query":
        assert params["query"] == {"eo:cloud_cover": {"lte": 20.0}}
