"""Providers by name behind the one ``search``, against the local replay server.

The replay server (:class:`mus_lab.testing.ReplayServer`) serves the recorded real answers
(STAC cassettes, the CDSE OData page) and, where no recording exists, answers
reconstructed from the real files: the EODMS ``rcm-ard`` items are **reconstructed** from
the outputs of the executed EODMS notebook, the resto OpenSearch feed from the OData
products (see the module docstring of ``mus_lab/testing/_replay.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest

from mus_lab.catalog import PROVIDER_PROPERTY, Pending, Ready, access_for, search
from mus_lab.catalog._credentials import SasTokens
from mus_lab.catalog._providers import PROVIDER_COLLECTION, forget_tokens, get_provider
from mus_lab.catalog._providers._stac import PlanetaryComputerAccess
from mus_lab.errors import (
    InvalidQueryError,
    RepeatedPageWarning,
    UnknownCollectionError,
    UnknownProviderError,
)
from mus_lab.testing import ReplayServer

pytestmark = pytest.mark.realdata

OTTAWA = (-75.96666401487873, 45.23090774120208, -75.43410167132566, 45.516074722660285)
# The bbox and dates of the recorded CDSE OData answer (its nextLink).
CDSE_BOX = (137.7729, 13.1342, 153.7491, 23.8860)


def eodms_searches(server: ReplayServer) -> list[tuple[str, dict[str, list[str]]]]:
    """The STAC requests made to the EODMS replay (AAA logins left out)."""
    return [
        p for p in server.paths("www.eodms-sgdot.nrcan-rncan.gc.ca") if p[0].startswith("/search")
    ]


@pytest.fixture(scope="module")
def server(real_data: Path) -> Iterator[ReplayServer]:
    if not (real_data / "eodms_real_responses").is_dir():
        pytest.skip("eodms_real_responses is absent from the real data folder")
    with ReplayServer(real_data) as srv:
        yield srv


@pytest.fixture
def replay(server: ReplayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ReplayServer:
    """Every provider pointed at the replay server; no credential file or netrc of the user."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("MUS_LAB_CREDENTIALS_FILE", str(tmp_path / "none.toml"))
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    server.requests.clear()
    forget_tokens()
    yield server
    forget_tokens()


def test_eodms_rcm_ard_pages_and_normalised_items(replay: ReplayServer) -> None:
    # Reconstructed rcm-ard items (21, as the notebook found), 5 per page.
    result = search("eodms", collections="rcm-ard", bbox=OTTAWA,
                    datetime="2025-01-01/2025-05-31", limit=5)  # fmt: skip
    assert len(result) == 21 and result.collections == ("rcm-ard",)
    assert result.source == "eodms"
    first = result[0]
    assert (
        first.properties["title"] == "RCM1_OK3555463_PK3630004_1_SC30MCPB_20250530_225209_CH_CV_MLC"
    )
    assert first.properties[PROVIDER_PROPERTY] == "eodms"
    assert {"rr", "rl", "rrrl", "data_mask"} <= set(first.assets)
    assert first.assets["rr"].extra_fields["mus_lab:provider_key"] == "rr"
    pages = eodms_searches(replay)
    assert len(pages) == 5
    path, query = pages[0]
    assert path == "/search/collections/rcm-ard/items"
    assert query["datetime"] == ["2025-01-01T00:00:00Z/2025-05-31T23:59:59Z"]
    assert query["filter-lang"] == ["cql2-text"]
    assert query["filter"][0].startswith("S_INTERSECTS(geometry, POLYGON ((-75.434")
    assert all("token" in q for _, q in pages[1:])


def test_eodms_repeated_page_token_stops(replay: ReplayServer) -> None:
    # RCMImageProducts (3 real items) on a server whose 2nd page repeats its page token.
    with pytest.warns(RepeatedPageWarning, match="repeated the page token"):
        result = search("eodms", collections="RCMImageProducts", limit=2)
    assert len(result) == 3
    assert len(eodms_searches(replay)) == 2
    product = result[0].assets["product"]
    assert "/dds/v1/item/EODMS/RCMImageProducts/" in product.href
    assert product.extra_fields["auth:refs"] == ["bearer"]


def test_canonical_rcm_grd_routes_to_level1_products(replay: ReplayServer) -> None:
    result = search("eodms", collections="rcm-grd", limit=10)
    assert result.collections == ("rcm-grd",)
    assert len(result) == 2  # the two GRD products of the three
    assert {i.properties[PROVIDER_COLLECTION] for i in result} == {"RCMImageProducts"}
    (_, query), *_ = eodms_searches(replay)
    assert query["filter"] == ["(product:type = 'GRD')"]


def test_eodms_queryables(replay: ReplayServer) -> None:
    queryables = get_provider("eodms").queryables("RCMImageProducts")  # type: ignore[attr-defined]
    assert "GRD" in queryables["product:type"]["enum"]
    assert queryables["relative_orbit"]["type"] == "integer"


def test_cdse_odata_search_follows_next_link(replay: ReplayServer) -> None:
    result = search("cdse-odata", collections="sentinel-2-l1c", bbox=CDSE_BOX,
                    datetime="2020-08-08/2020-08-15", limit=1)  # fmt: skip
    assert [i.id for i in result] == [
        "S2A_MSIL1C_20200808T010311_N0500_R045_T54PXA_20230413T212505",
        "S2A_MSIL1C_20200808T010311_N0500_R045_T55PBR_20230413T212505",
    ]
    item = result[0]
    assert (
        item.collection_id == "sentinel-2-l1c"
        and item.properties[PROVIDER_PROPERTY] == "cdse-odata"
    )
    assert item.properties["eo:cloud_cover"] == pytest.approx(95.136736479015)
    asset = item.assets["product"]
    assert asset.href.endswith("/odata/v1/Products(05edf2bb-d103-49f1-a677-9e474138d84f)/$value")
    assert asset.extra_fields["file:checksum"] == "d510923ac4992d90b57d41e7ace4d9d90757"
    assert asset.extra_fields["file:size"] == 224105657
    pages = list(replay.paths("catalogue.dataspace.copernicus.eu"))
    assert len(pages) == 2 and pages[1][1]["$skip"] == ["1"]
    assert pages[0][1]["$filter"] == [
        "Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any(att:att/Name "
        "eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI1C') and "
        "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((153.7491 13.1342, 153.7491 "
        "23.886, 137.7729 23.886, 137.7729 13.1342, 153.7491 13.1342))') and ContentDate/Start "
        "ge 2020-08-08T00:00:00.000Z and ContentDate/Start le 2020-08-15T23:59:59.999Z"
    ]


def test_cdse_opensearch_feed(replay: ReplayServer) -> None:
    # The resto feed is reconstructed from the OData products (no recorded feed exists).
    result = search("cdse-opensearch", collections="sentinel-2-l1c", bbox=CDSE_BOX,
                    datetime="2020-08-08/2020-08-15", max_cloud=100, limit=1)  # fmt: skip
    assert len(result) == 2 and result.collections == ("sentinel-2-l1c",)
    assert {i.properties[PROVIDER_PROPERTY] for i in result} == {"cdse-opensearch"}
    pages = list(replay.paths("catalogue.dataspace.copernicus.eu"))
    assert pages[0][0] == "/resto/api/collections/Sentinel2/search.json"
    assert pages[0][1]["box"] == ["137.773,13.1342,153.749,23.886"]
    assert pages[0][1]["productType"] == ["S2MSI1C"] and pages[1][1]["page"] == ["2"]


def test_stac_providers_by_name(replay: ReplayServer) -> None:
    # The same recorded requests as tests/catalog/test_api.py, through provider names.
    es = search("earth-search", collections=["sentinel-2-l2a", "landsat-c2-l2"],
                intersects={"type": "Point", "coordinates": [-105.1019, 40.1672]},
                datetime="2023-10-08", limit=None)  # fmt: skip
    assert [i.id for i in es] == ["S2A_13TDE_20231008_0_L2A", "LC08_L2SP_033032_20231008_02_T1"]
    assert {i.properties[PROVIDER_PROPERTY] for i in es} == {"earth-search"}
    pc = search("planetary-computer", collections="naip", limit=10, max_items=30)
    assert len(pc) == 30 and pc[10].id == "mt_m_4811501_nw_11_060_20231117_20240103"
    assert isinstance(access_for(pc[0]), PlanetaryComputerAccess)


def test_several_sources_merge(replay: ReplayServer) -> None:
    result = search(["cdse-odata", "eodms"], collections=["sentinel-2-l1c", "rcm-ard"],
                    datetime="2020-01-01/2025-12-31", limit=50)  # fmt: skip
    assert result.collections == ("sentinel-2-l1c", "rcm-ard")
    assert result.source == "cdse-odata + eodms"
    providers = {i.collection_id: i.properties[PROVIDER_PROPERTY] for i in result}
    assert providers == {"sentinel-2-l1c": "cdse-odata", "rcm-ard": "eodms"}
    assert len(result) == 2 + 21


def test_unknown_provider_and_collection(replay: ReplayServer) -> None:
    with pytest.raises(UnknownProviderError, match=r"Unknown provider 'nasa-cmr': use one of"):
        search("nasa-cmr", collections="sentinel-2-l2a")
    with pytest.raises(UnknownCollectionError, match=r"cdse-odata offers \[.*eodms offers \["):
        search(["cdse-odata", "eodms"], collections=["landsat-c2-l2"])
    with pytest.raises(UnknownCollectionError, match=r"'sentinel-2-l3'"):
        search("cdse-odata", collections="sentinel-2-l3")
    with pytest.raises(InvalidQueryError, match="needs collections="):
        search("cdse-odata", collections=None)
    assert not replay.requests  # nothing was asked of any server


def test_eodms_order_then_download(replay: ReplayServer) -> None:
    item = search("eodms", collections="RCMImageProducts", limit=10)[0]
    access = access_for(item)
    assert access.provider == "eodms"
    first = access.prepare(item, "product", item.assets["product"])
    assert isinstance(first, Pending) and first.reason == "ItemsRestoring"
    assert first.retry_after == pytest.approx(0.01)
    ready = access.prepare(item, "product", item.assets["product"])
    assert isinstance(ready, Ready) and ready.filename == f"{item.id}.zip"
    assert ready.url.endswith(f"/files/{item.id}.zip") and ready.size == 8 * len(
        f"mus-lab replay file {item.id}.zip\n"
    )
    public = search("eodms", collections="rcm-ard", limit=30)[0]
    plain = access_for(public).prepare(public, "rr", public.assets["rr"])
    assert isinstance(plain, Ready) and plain.url.endswith("_RR.tif")


def test_cdse_download_access_carries_token_and_checksum(replay: ReplayServer) -> None:
    item = search("cdse-odata", collections="sentinel-2-l1c", limit=5)[0]
    ready = access_for(item).prepare(item, "product", item.assets["product"])
    assert isinstance(ready, Ready)
    assert ready.checksum == "md5:923ac4992d90b57d41e7ace4d9d90757"
    assert ready.filename == "S2A_MSIL1C_20200808T010311_N0500_R045_T54PXA_20230413T212505.zip"
    assert ready.headers["Authorization"].startswith("Bearer cdse-access-")
    assert "cdse-access-" not in repr(ready)
    import requests

    body = requests.get(ready.url, headers=dict(ready.headers), timeout=5)
    assert body.status_code == 200 and body.content.startswith(b"PK")


def test_planetary_computer_sas_signing_cached_and_renewed(replay: ReplayServer) -> None:
    import time

    now = [time.time()]
    tokens = SasTokens(replay.env()["MUS_LAB_PROVIDER_PLANETARY_COMPUTER_SAS_URL"],
                       clock=lambda: now[0])  # fmt: skip
    access = PlanetaryComputerAccess(tokens)
    item = pystac.Item("S2B_x", None, None, __import__("datetime").datetime(2024, 1, 1), {},
                       collection="sentinel-2-l2a")  # fmt: skip
    href = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/10/T/x/B04.tif"
    asset = pystac.Asset(href)
    one = access.prepare(item, "red", asset)
    two = access.prepare(item, "red", asset)
    assert isinstance(one, Ready) and isinstance(two, Ready)
    assert one.url.startswith(href + "?st=") and "sig=" in one.url
    assert one.url == two.url and one.filename == "B04.tif" and tokens.requests_made == 1
    now[0] += 3600 - 30  # within the renewal margin of the 1 h token
    three = access.prepare(item, "red", asset)
    assert isinstance(three, Ready) and three.url != one.url and tokens.requests_made == 2
    assert "sig=" not in repr(tokens)
    not_blob = access.prepare(item, "x", pystac.Asset("https://example.org/a.tif"))
    assert isinstance(not_blob, Ready) and not_blob.url == "https://example.org/a.tif"
