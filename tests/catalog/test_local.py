"""Searching a static catalog on disk, with no server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas
import pandas
import pystac
import pytest
from shapely.geometry import Point, box

from mus_lab.catalog import LocalCatalog, SearchResult, open_local, search


def ids(result: SearchResult) -> set[str]:
    return {i.id for i in result}


def test_folder_and_file_give_the_same_items(local_catalog: Path) -> None:
    by_folder = search(local_catalog, collections=["sentinel-2-l2a", "sentinel-1-grd"])
    by_file = search(local_catalog / "catalog.json", collections=None)
    assert len(by_folder) == len(by_file) == 10
    assert by_folder.collections == ("sentinel-2-l2a", "sentinel-1-grd")
    assert isinstance(by_folder, SearchResult)
    assert by_folder.source == str((local_catalog / "catalog.json").resolve())


def test_open_local_is_cached_per_path(local_catalog: Path) -> None:
    first = open_local(local_catalog)
    assert open_local(local_catalog / "catalog.json") is first
    assert isinstance(first, LocalCatalog) and len(first) == 10
    assert first.collections == ("sentinel-1-grd", "sentinel-2-l2a")
    assert open_local(local_catalog, refresh=True) is not first
    assert len(search(first, collections="sentinel-1-grd")) == 4


def test_bbox_keeps_intersecting_items(local_catalog: Path) -> None:
    east = search(local_catalog, collections="sentinel-2-l2a", bbox=(2.5, 0.2, 4.0, 0.8))
    assert ids(east) == {"s2-0611-e", "s2-0616-e", "s2-0621-e"}
    assert east.query["bbox"] == [2.5, 0.2, 4.0, 0.8]


def test_intersects_accepts_geojson_and_shapely(local_catalog: Path) -> None:
    point = {"type": "Point", "coordinates": [0.5, 0.5]}
    by_dict = search(local_catalog, collections="sentinel-1-grd", intersects=point)
    by_shape = search(local_catalog, collections="sentinel-1-grd", intersects=Point(0.5, 0.5))
    assert ids(by_dict) == ids(by_shape) == {"s1-0603-w", "s1-0615-w"}
    both = search(local_catalog, collections=None, intersects=box(0.9, 0.1, 2.1, 0.2))
    assert len(both) == 10


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2024-06-11", {"s2-0611-w", "s2-0611-e"}),
        ("2024-06-11T10:31:00Z", {"s2-0611-e"}),
        ("2024-06-15/2024-06-30", {"s2-0616-e", "s2-0621-e"}),
        ("../2024-06-05", {"s2-0601-w"}),
        ("2024-06-20T00:00:00Z/..", {"s2-0621-e"}),
        ("2024-06", {"s2-0601-w", "s2-0606-w", "s2-0611-w", "s2-0611-e", "s2-0616-e", "s2-0621-e"}),
        ((dt.datetime(2024, 6, 5), dt.date(2024, 6, 7)), {"s2-0606-w"}),
    ],
)
def test_datetime_forms(local_catalog: Path, when: object, expected: set[str]) -> None:
    result = search(local_catalog, collections="sentinel-2-l2a", datetime=when)  # type: ignore[arg-type]
    assert ids(result) == expected


def test_datetime_overlaps_item_start_end(local_catalog: Path) -> None:
    # s1-0620-range spans 2024-06-20T23:00 .. 2024-06-22T01:00 (datetime null).
    result = search(local_catalog, collections="sentinel-1-grd", datetime="2024-06-21")
    assert ids(result) == {"s1-0620-range"}
    assert result.query["datetime"] == (
        "2024-06-21T00:00:00+00:00/2024-06-21T23:59:59.999999+00:00"
    )


def test_max_cloud_drops_cloudy_and_unknown(local_catalog: Path) -> None:
    result = search(local_catalog, collections="sentinel-2-l2a", max_cloud=15)
    assert ids(result) == {"s2-0601-w", "s2-0606-w", "s2-0611-e"}  # s2-0621-e has no cover
    assert len(search(local_catalog, collections="sentinel-2-l2a")) == 6


def test_cql2_text_and_json(local_catalog: Path) -> None:
    text = search(
        local_catalog,
        collections=None,
        filter="eo:cloud_cover BETWEEN 10 AND 40 AND collection = 'sentinel-2-l2a'",
    )
    as_json = search(
        local_catalog,
        collections=None,
        filter={
            "op": "and",
            "args": [
                {"op": ">=", "args": [{"property": "eo:cloud_cover"}, 10]},
                {"op": "lte", "args": [{"property": "eo:cloud_cover"}, 40]},  # legacy name
            ],
        },
        filter_lang="cql2-json",
    )
    assert ids(text) == ids(as_json) == {"s2-0606-w", "s2-0616-e"}
    assert text.query["filter"]["op"] == "and"


def test_cql2_and_max_cloud_combine(local_catalog: Path) -> None:
    result = search(
        local_catalog, collections="sentinel-2-l2a", filter="id LIKE '%-w'", max_cloud=20
    )
    assert ids(result) == {"s2-0601-w", "s2-0606-w"}


def test_max_items_caps_in_catalog_order(local_catalog: Path) -> None:
    result = search(local_catalog, collections="sentinel-2-l2a", max_items=2)
    assert [i.id for i in result] == ["s2-0601-w", "s2-0606-w"]


def test_normalisation_renames_pc_keys_and_keeps_provider_key(local_catalog: Path) -> None:
    item = search(local_catalog, collections="sentinel-2-l2a", max_items=1)[0]
    assert set(item.assets) == {"red", "nir", "scl", "rededge1"}
    assert item.assets["red"].extra_fields["mus_lab:provider_key"] == "B04"
    assert item.assets["scl"].extra_fields["mus_lab:provider_key"] == "SCL"
    assert Path(item.assets["red"].href).is_absolute()
    raw = search(local_catalog, collections="sentinel-2-l2a", max_items=1, normalise=False)[0]
    assert set(raw.assets) == {"B04", "B08", "SCL", "B05"}


def test_results_are_copies(local_catalog: Path) -> None:
    first = search(local_catalog, collections="sentinel-1-grd", normalise=False)[0]
    first.properties["touched"] = True
    again = search(local_catalog, collections="sentinel-1-grd", normalise=False)[0]
    assert "touched" not in again.properties


def test_result_views(local_catalog: Path) -> None:
    result = search(local_catalog, collections=None)
    assert result[0] is result.items[0] and len(result[1:3]) == 2
    assert [i.id for i in result] == [i.id for i in result.items]
    ic = result.item_collection()
    assert isinstance(ic, pystac.ItemCollection) and len(ic) == 10

    gdf = result.to_geodataframe()
    assert isinstance(gdf, geopandas.GeoDataFrame)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 10
    assert gdf.loc[gdf["id"] == "s2-0611-e", "eo:cloud_cover"].item() == 2.0

    summary = result.summary()
    assert isinstance(summary, pandas.DataFrame)
    s2 = summary.loc["sentinel-2-l2a"]
    assert s2["count"] == 6 and s2["min_cloud_cover"] == 2.0
    assert s2["mean_cloud_cover"] == pytest.approx((5 + 15 + 60 + 2 + 35) / 5)
    assert s2["first_datetime"] == pandas.Timestamp("2024-06-01T10:30:00Z")
    assert s2["assets"] == "nir, red, rededge1, scl"
    s1 = summary.loc["sentinel-1-grd"]
    assert s1["last_datetime"] == pandas.Timestamp("2024-06-22T01:00:00Z")
    assert "10 items" in result._repr_html_() and "<table" in result._repr_html_()
