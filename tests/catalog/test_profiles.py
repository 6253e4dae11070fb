"""Collection profiles, asset-key normalisation and local/API parity on real items."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest
from shapely.geometry import box, shape

from mus_lab.catalog import CollectionProfile, get_profile, normalise_item, search
from mus_lab.catalog._profiles import provider_for
from tests.catalog.conftest import write_catalog

S2_CANONICAL = {
    "blue", "green", "red", "rededge1", "rededge2", "rededge3",
    "nir", "nir08", "swir16", "swir22", "scl",
}  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "collection"),
    [
        ("earth-search", "sentinel-2-l2a"),
        ("earth-search", "sentinel-2-c1-l2a"),
        ("earth-search-v0", "sentinel-s2-l2a-cogs"),
        ("planetary-computer", "sentinel-2-l2a"),
        ("local", "sentinel-2-l2a"),
    ],
)
def test_s2_profiles_cover_the_contract(provider: str, collection: str) -> None:
    profile = get_profile(provider, collection)
    assert isinstance(profile, CollectionProfile) and not profile.is_fallback
    assert S2_CANONICAL <= set(profile.assets.values())
    assert profile.nodata == 0 and profile.mask_asset == "scl"
    assert profile.resolution["red"] == 10 and profile.resolution["swir16"] == 20
    assert profile.offset_from in {"raster:bands", "processing_baseline"}


@pytest.mark.parametrize(
    ("provider", "collection", "keys"),
    [
        ("planetary-computer", "sentinel-1-rtc", {"vv", "vh"}),
        ("planetary-computer", "sentinel-1-grd", {"vv", "vh"}),
        ("local", "sentinel-1-grd", {"vv", "vh"}),
        ("local", "rcm-grd", {"vv", "vh", "hh", "hv", "rh", "rv"}),
        ("local", "dem", {"dem"}),
    ],
)
def test_sar_and_dem_profiles(provider: str, collection: str, keys: set[str]) -> None:
    assert keys <= set(get_profile(provider, collection).assets.values())


def test_profiles_found_by_url_or_landing_page_id() -> None:
    assert provider_for("https://earth-search.aws.element84.com/v1") == "earth-search"
    assert provider_for("https://earth-search.aws.element84.com/v0") == "earth-search-v0"
    assert provider_for("http://127.0.0.1:1/api/stac/v1", root_id="microsoft-pc") == (
        "planetary-computer"
    )
    url_profile = get_profile(
        "https://planetarycomputer.microsoft.com/api/stac/v1", "sentinel-2-l2a"
    )
    assert url_profile == get_profile("planetary-computer", "sentinel-2-l2a")
    assert get_profile("local", "flood-truth").assets == {}
    fallback = get_profile("https://example.org/stac", "sentinel-2-l2a")
    assert fallback.is_fallback and fallback.assets == {}
    with pytest.raises(AttributeError):
        fallback.nodata = 1  # type: ignore[misc]


@pytest.mark.realdata
def test_earth_search_v0_item(real_data: Path) -> None:
    path = real_data / "stac_real_responses/odc_stac_tests_data/S2A_28QCH_20200714_0_L2A.json"
    item = pystac.Item.from_file(str(path))
    out = normalise_item(item, get_profile("earth-search-v0", "sentinel-s2-l2a-cogs"))
    assert S2_CANONICAL <= set(out.assets)
    assert out.assets["nir08"].extra_fields["mus_lab:provider_key"] == "B8A"
    assert out.assets["red"].href == item.assets["B04"].href
    assert "B04" in item.assets and "red" not in item.assets  # the input is untouched


@pytest.mark.realdata
def test_common_name_fallback_on_pc_item(real_data: Path) -> None:
    path = real_data / "stac_real_responses/odc_stac_tests_data/site2-2020_jun_jul-35MNM.geojson"
    item = pystac.ItemCollection.from_file(str(path)).items[0]
    out = normalise_item(item)  # no profile: eo:bands common names only
    assert out.assets["red"].extra_fields["mus_lab:provider_key"] == "B04"
    assert out.assets["nir"].extra_fields["mus_lab:provider_key"] == "B08"
    assert "B05" in out.assets  # common name 'rededge' is not canonical: key kept
    assert "SCL" in out.assets  # no eo:bands common name: key kept


@pytest.mark.realdata
def test_local_search_over_real_pc_items_matches_hand_filter(
    real_data: Path, tmp_path: Path
) -> None:
    path = real_data / "stac_real_responses/odc_stac_tests_data/site2-2020_jun_jul-35MNM.geojson"
    features = json.loads(path.read_text())["features"]
    items = [pystac.Item.from_dict(f) for f in features]
    write_catalog(tmp_path, items)

    aoi = (27.3, -8.0, 27.6, -7.6)
    result = search(
        tmp_path, collections="sentinel-2-l2a", bbox=aoi,
        datetime="2020-06-10/2020-07-20", max_cloud=5,
    )  # fmt: skip
    expected = [
        f["id"]
        for f in features
        if shape(f["geometry"]).intersects(box(*aoi))
        and "2020-06-10" <= f["properties"]["datetime"][:10] <= "2020-07-20"
        and f["properties"]["eo:cloud_cover"] <= 5
    ]
    assert sorted(i.id for i in result) == sorted(expected)
    assert 0 < len(expected) < len(features)
    assert all("red" in i.assets and "B04" not in i.assets for i in result)
