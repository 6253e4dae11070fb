"""Filter translation of the non-STAC providers (CDSE OData, resto OpenSearch, EODMS): exact strings."""

from __future__ import annotations

from typing import Any

import pytest

from mus_lab.catalog._providers import Route
from mus_lab.catalog._providers._eodms import eodms_params
from mus_lab.catalog._providers._odata import odata_filter
from mus_lab.catalog._providers._opensearch import opensearch_params
from mus_lab.catalog._query import SearchQuery, build_query
from mus_lab.errors import InvalidQueryError

S2A = Route("sentinel-2-l2a", "SENTINEL-2", "S2MSI2A")


def query(**kw: Any) -> SearchQuery:
    args: dict[str, Any] = dict(collections="sentinel-2-l2a", bbox=None, intersects=None,
                                datetime=None, max_cloud=None, filter=None, filter_lang=None,
                                max_items=None, limit=None)  # fmt: skip
    args.update(kw)
    return build_query(**args)


def test_odata_intersects_and_open_interval() -> None:
    aoi = {"type": "Polygon", "coordinates": [[[5, 52], [6, 52], [6, 53], [5, 52]]]}
    text = odata_filter(query(intersects=aoi, datetime="2024-06-01T10:00:00Z/.."), S2A)
    assert text == (
        "Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any("
        "att:att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A') "
        "and OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((5 52, 6 52, 6 53, 5 52))') "
        "and ContentDate/Start ge 2024-06-01T10:00:00.000Z"
    )


def test_odata_cql2_comparisons() -> None:
    cql = "eo:cloud_cover < 10.5 AND (sat:relative_orbit = 45 OR s2:mgrs_tile <> '54PXA')"
    text = odata_filter(query(filter=cql), Route("sentinel-2-l1c", "SENTINEL-2"))
    assert text == (
        "Collection/Name eq 'SENTINEL-2' and (Attributes/OData.CSC.DoubleAttribute/any("
        "att:att/Name eq 'cloudCover' and att/OData.CSC.DoubleAttribute/Value lt 10.50) and "
        "(Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
        "att/OData.CSC.IntegerAttribute/Value eq 45) or Attributes/OData.CSC.StringAttribute/"
        "any(att:att/Name eq 'tileId' and att/OData.CSC.StringAttribute/Value ne '54PXA')))"
    )


def test_odata_legacy_json_and_reversed_operands() -> None:
    cql = {"op": "gte", "args": [30, {"property": "eo:cloud_cover"}]}  # 30 >= cloud
    assert odata_filter(query(filter=cql), S2A).endswith(
        "att/OData.CSC.DoubleAttribute/Value le 30.00)"
    )


@pytest.mark.parametrize(
    ("cql", "match"),
    [
        ("platform = 'sentinel-2a'", r"cannot filter on 'platform': use one of"),
        ("eo:cloud_cover BETWEEN 1 AND 5", r"operator 'between' cannot be sent"),
        ("NOT (eo:cloud_cover < 5)", r"operator 'not' cannot be sent"),
    ],
)
def test_odata_refuses_what_it_cannot_say(cql: str, match: str) -> None:
    with pytest.raises(InvalidQueryError, match=match):
        odata_filter(query(filter=cql), S2A)


def test_opensearch_params_and_refusals() -> None:
    aoi = {"type": "Point", "coordinates": [5.1, 52.2]}
    params = opensearch_params(query(intersects=aoi, datetime="../2024-06-30", limit=5),
                               Route("sentinel-1-grd", "Sentinel1", "IW_GRDH_1S"), page=3)  # fmt: skip
    assert params == {
        "geometry": "POINT (5.1 52.2)",
        "completionDate": "2024-06-30T23:59:59Z",
        "productType": "IW_GRDH_1S",
        "maxRecords": "5",
        "page": "3",
    }
    with pytest.raises(InvalidQueryError, match="OpenSearch feeds take no CQL2 filter"):
        opensearch_params(query(filter="eo:cloud_cover < 5"), S2A)


def test_eodms_params_join_filters() -> None:
    q = query(collections="rcm-grd", filter="beam_mnemonic LIKE '5M%'", datetime="2025-03-01/..")
    params = eodms_params(q, Route("rcm-grd", "RCMImageProducts", filter="product:type = 'GRD'"))
    assert params == {
        "datetime": "2025-03-01T00:00:00Z/..",
        "filter": "(beam_mnemonic LIKE '5M%') AND (product:type = 'GRD')",
        "filter-lang": "cql2-text",
    }
