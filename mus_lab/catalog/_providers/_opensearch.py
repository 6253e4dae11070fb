"""OpenSearch Geo & Time feeds in the resto style (CDSE ``/resto/api/collections/...``).

``GET <root>/<Collection>/search.json`` with ``box=w,s,e,n`` (or ``geometry=<WKT>``),
``startDate`` / ``completionDate`` (UTC, ``...Z``), ``cloudCover=[0,N]``, ``productType``,
``maxRecords`` and ``page``; the answer is a GeoJSON FeatureCollection whose
``properties.links`` hold the ``next`` page. Features become pystac items with one
``product`` asset (``properties.services.download``). OpenSearch takes no CQL2 filter:
use ``cdse-odata`` or ``cdse`` (STAC) for that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pystac
import requests
import shapely.geometry

from mus_lab.catalog._providers._base import (
    PageGuard,
    ProfileRoutes,
    Route,
    get_json,
    provider_url,
)
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import InvalidQueryError

__all__ = ["OpenSearchProvider", "feature_to_item", "opensearch_params"]

DEFAULT_URL = "https://catalogue.dataspace.copernicus.eu/resto/api/collections"


def _z(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def opensearch_params(query: SearchQuery, route: Route, *, page: int = 1) -> dict[str, str]:
    """Return the query parameters of a resto ``search.json`` request.

    Parameters
    ----------
    query
        The checked request.
    route
        The collection route (its product type is sent as ``productType``).
    page
        1-based page number.

    Returns
    -------
    dict
        The parameters.

    Raises
    ------
    InvalidQueryError
        A CQL2 filter (OpenSearch has none).

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="sentinel-2-l1c", bbox=(137.77, 13.13, 153.75, 23.89),
    ...                 intersects=None, datetime="2020-08-08/2020-08-15", max_cloud=50,
    ...                 filter=None, filter_lang=None, max_items=None, limit=20)
    >>> opensearch_params(q, Route("sentinel-2-l1c", "Sentinel2", "S2MSI1C"))
    {'box': '137.77,13.13,153.75,23.89', 'startDate': '2020-08-08T00:00:00Z', 'completionDate': '2020-08-15T23:59:59Z', 'cloudCover': '[0,50]', 'productType': 'S2MSI1C', 'maxRecords': '20', 'page': '1'}
    """
    if query.filter is not None:
        raise InvalidQueryError(
            "OpenSearch feeds take no CQL2 filter: drop filter=, or search 'cdse-odata' or "
            "'cdse' (STAC), which do."
        )
    params: dict[str, str] = {}
    if query.bbox is not None:
        params["box"] = ",".join(f"{v:g}" for v in query.bbox)
    elif query.intersects is not None:
        params["geometry"] = shapely.geometry.shape(query.intersects).wkt
    start, end = query.interval
    if start is not None:
        params["startDate"] = _z(start)
    if end is not None and end.year < 9999:
        params["completionDate"] = _z(end)
    if query.max_cloud is not None:
        params["cloudCover"] = f"[0,{query.max_cloud:g}]"
    if route.product_type:
        params["productType"] = route.product_type
    params["maxRecords"] = str(min(query.limit or 100, 2000))
    params["page"] = str(page)
    return params


def feature_to_item(feature: Mapping[str, Any], *, collection: str) -> pystac.Item:
    """Convert one resto feature into a pystac item.

    Parameters
    ----------
    feature
        The GeoJSON feature.
    collection
        The collection id the item gets.

    Returns
    -------
    pystac.Item
        Id = title without ``.SAFE``; ``eo:cloud_cover``, ``platform``, ``sat:*`` from the
        feature; a ``product`` asset from ``services.download``.
    """
    props = dict(feature.get("properties") or {})
    title = str(props.get("title") or feature["id"])
    geometry = feature.get("geometry")
    start = dt.datetime.fromisoformat(str(props["startDate"]).replace("Z", "+00:00"))
    end_raw = props.get("completionDate") or props["startDate"]
    end = dt.datetime.fromisoformat(str(end_raw).replace("Z", "+00:00"))
    out: dict[str, Any] = {"cdse:id": feature.get("id"), "cdse:name": title,
                           "cdse:product_type": props.get("productType")}  # fmt: skip
    if end != start:
        out["start_datetime"] = start.isoformat().replace("+00:00", "Z")
        out["end_datetime"] = end.isoformat().replace("+00:00", "Z")
    for key, src in (
        ("eo:cloud_cover", "cloudCover"),
        ("sat:relative_orbit", "relativeOrbitNumber"),
        ("sat:absolute_orbit", "orbitNumber"),
        ("sat:orbit_state", "orbitDirection"),
        ("platform", "platform"),
    ):
        if props.get(src) is not None:
            out[key] = props[src]
    item = pystac.Item(
        id=title.removesuffix(".SAFE"),
        geometry=geometry,
        bbox=list(shapely.geometry.shape(geometry).bounds) if geometry else None,
        datetime=start,
        properties=out,
        collection=collection,
    )
    download = (props.get("services") or {}).get("download") or {}
    if download.get("url"):
        extra = {"file:size": int(download["size"])} if download.get("size") else {}
        item.add_asset(
            "product",
            pystac.Asset(
                str(download["url"]),
                title=title,
                media_type=download.get("mimeType") or "application/zip",
                roles=["data", "archive"],
                extra_fields=extra,
            ),
        )
    return item


def _next(page: Mapping[str, Any]) -> str | None:
    links = (page.get("properties") or {}).get("links") or page.get("links") or ()
    for link in links:
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


class OpenSearchProvider(ProfileRoutes):
    """CDSE's resto OpenSearch feeds (``cdse-opensearch``).

    Parameters
    ----------
    url
        Collections root (default ``MUS_LAB_PROVIDER_CDSE_OPENSEARCH_URL`` or the real one).
    session
        HTTP session.
    """

    name = "cdse-opensearch"
    open = False

    def __init__(self, url: str | None = None, session: requests.Session | None = None) -> None:
        self.url = url or provider_url(self.name, DEFAULT_URL)
        self.session = session if session is not None else requests.Session()

    def search(self, query: SearchQuery, routes: list[Route]) -> list[tuple[Route, pystac.Item]]:
        """Search each route, following the feed's ``next`` links.

        Parameters
        ----------
        query
            The checked request.
        routes
            Collections to search.

        Returns
        -------
        list of (Route, pystac.Item)
            Items (under the requested ids) with their route.

        Raises
        ------
        CatalogUnreachableError, InvalidQueryError
            No answer, a refusal, or a CQL2 filter.
        """
        items: list[tuple[Route, pystac.Item]] = []
        for route in routes:
            url: str | None = f"{self.url}/{route.remote}/search.json"
            params: dict[str, str] | None = opensearch_params(query, route)
            guard = PageGuard(self.name)
            found = 0
            while url is not None:
                page = get_json(self.session, url, provider=self.name, params=params)
                for feature in page.get("features") or ():
                    items.append((route, feature_to_item(feature, collection=route.requested)))
                    found += 1
                if not page.get("features"):
                    break
                if query.max_items is not None and found >= query.max_items:
                    break
                href = _next(page)
                url, params = (href, None) if href and guard.fresh(href) else (None, None)
        return items
