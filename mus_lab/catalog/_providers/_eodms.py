"""EODMS (Natural Resources Canada): its STAC API and the order-then-download flow.

Search: ``GET <root>/collections/<id>/items`` with ``limit``, ``datetime`` and a CQL2-text
``filter`` (``filter-lang=cql2-text``), the area sent as ``S_INTERSECTS(geometry,
POLYGON (...))`` as the EODMS CLI does; the user's CQL2 filter and the profile's filter
(``rcm-grd`` -> ``RCMImageProducts`` with ``"product:type" = 'GRD'``) are joined with
``AND``. Pages follow the ``next`` link; a server that repeats a page token (the EODMS
CLI README shows it happening) stops the paging with a :class:`RepeatedPageWarning`.
The search is anonymous unless EODMS credentials are configured (then restricted
collections are visible too).

Download: ``rcm-ard`` COGs are public object-store URLs. Level-1 products
(``RCMImageProducts`` and the other restricted collections) are ordered through the
Data Delivery Service ``GET <origin>/dds/v1/item/EODMS/<collection>/<uuid>`` with an AAA
bearer token: HTTP 202 (``Queued`` / ``ItemsRestoring`` with ``suggested_retry_interval``)
-> :class:`Pending`; HTTP 200 with ``download_url`` -> :class:`Ready`. The DDS path is the
one eodms-py uses. RAPI orders (``/wes/rapi/order``, SAR Toolbox) are not driven here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pystac
import requests

from mus_lab._settings import get_settings
from mus_lab.catalog._access import Pending, PlainAccess, Ready
from mus_lab.catalog._credentials import EodmsTokens, find_credentials, require_credentials
from mus_lab.catalog._providers._base import (
    PageGuard,
    ProfileRoutes,
    Route,
    area_wkt,
    get_json,
    origin,
    provider_url,
)
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import CatalogUnreachableError, CredentialsError

__all__ = [
    "ORDER_COLLECTIONS",
    "EodmsAccess",
    "EodmsProvider",
    "eodms_params",
    "forget_tokens",
    "services_url",
]

DEFAULT_URL = "https://www.eodms-sgdot.nrcan-rncan.gc.ca/search"
#: Collections whose products are ordered through the DDS before download.
ORDER_COLLECTIONS = frozenset(
    {"RCMImageProducts", "Radarsat2", "Radarsat-1-Raw", "Radarsat-2_Tropical_Forest_Products"}
)

_TOKENS: dict[str, EodmsTokens] = {}
_TOKENS_LOCK = threading.Lock()


def services_url(root: str) -> str:
    """Return the origin of the EODMS AAA and DDS services (``MUS_LAB_PROVIDER_EODMS_SERVICES_URL``).

    Parameters
    ----------
    root
        The STAC root or any EODMS URL; its origin is the default.

    Returns
    -------
    str
        E.g. ``https://www.eodms-sgdot.nrcan-rncan.gc.ca``.
    """
    return provider_url("eodms", origin(root), part="SERVICES_URL")


def _tokens(root: str, *, required: bool) -> EodmsTokens | None:
    """The shared AAA token source of the EODMS origin, ``None`` when anonymous."""
    auth = services_url(root)
    host = urlsplit(auth).hostname
    with _TOKENS_LOCK:
        if auth in _TOKENS:
            return _TOKENS[auth]
        creds = (
            require_credentials("eodms", host=host)
            if required
            else find_credentials("eodms", host=host)
        )
        if creds is None:
            return None
        _TOKENS[auth] = EodmsTokens(auth, creds)
        return _TOKENS[auth]


def forget_tokens() -> None:
    """Drop the cached EODMS token sources (credentials are read again on next use).

    Returns
    -------
    None
    """
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def eodms_params(query: SearchQuery, route: Route) -> dict[str, str]:
    """Return the query parameters of an EODMS ``/collections/<id>/items`` request.

    Parameters
    ----------
    query
        The checked request.
    route
        The collection route (its ``filter`` is joined to the user's).

    Returns
    -------
    dict
        ``limit``, ``datetime``, ``filter`` and ``filter-lang`` as EODMS reads them.

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="rcm-ard", bbox=(-75.9, 45.2, -75.5, 45.5),
    ...                 intersects=None, datetime="2025-01-01/2025-05-31", max_cloud=None,
    ...                 filter="beam_mnemonic LIKE '5M%'", filter_lang=None,
    ...                 max_items=None, limit=20)
    >>> p = eodms_params(q, Route("rcm-ard", "rcm-ard"))
    >>> p["datetime"]
    '2025-01-01T00:00:00Z/2025-05-31T23:59:59Z'
    >>> p["filter"]
    "(beam_mnemonic LIKE '5M%') AND S_INTERSECTS(geometry, POLYGON ((-75.5 45.2, -75.5 45.5, -75.9 45.5, -75.9 45.2, -75.5 45.2)))"
    """
    params: dict[str, str] = {}
    if query.limit is not None:
        params["limit"] = str(query.limit)
    start, end = query.interval
    if start is not None or end is not None:
        params["datetime"] = f"{_iso(start) if start else '..'}/{_iso(end) if end else '..'}"
    parts = []
    if query.filter_expr is not None:
        parts.append(f"({query.filter_expr.to_text()})")
    if route.filter:
        parts.append(f"({route.filter})")
    wkt = area_wkt(query)
    if wkt is not None:
        parts.append(f"S_INTERSECTS(geometry, {wkt})")
    if parts:
        params["filter"] = " AND ".join(parts)
        params["filter-lang"] = "cql2-text"
    return params


def _next_link(page: Mapping[str, Any]) -> str | None:
    for link in page.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


def _page_token(href: str) -> str:
    qs = parse_qs(urlsplit(href).query)
    for key in ("token", "next", "page"):
        if qs.get(key):
            return qs[key][0]
    return href


class EodmsProvider(ProfileRoutes):
    """The EODMS STAC API (``rcm-ard``, ``RCMImageProducts``, ``Sentinel-1``...).

    Parameters
    ----------
    url
        The STAC root (default ``MUS_LAB_PROVIDER_EODMS_URL`` or
        ``https://www.eodms-sgdot.nrcan-rncan.gc.ca/search``).
    session
        HTTP session (a new one when ``None``).
    """

    name = "eodms"
    open = True

    def __init__(self, url: str | None = None, session: requests.Session | None = None) -> None:
        self.url = url or provider_url("eodms", DEFAULT_URL)
        self.session = session if session is not None else requests.Session()

    def queryables(self, collection: str) -> dict[str, Any]:
        """Return the CQL2 queryables of an EODMS collection (JSON Schema ``properties``).

        Parameters
        ----------
        collection
            The EODMS collection id.

        Returns
        -------
        dict
            Property name -> schema.

        Raises
        ------
        CatalogUnreachableError, InvalidQueryError
            The server cannot be reached or refused.
        """
        data = get_json(
            self.session,
            f"{self.url}/collections/{collection}/queryables",
            provider=self.name,
        )
        return dict(data.get("properties") or {})

    def search(self, query: SearchQuery, routes: list[Route]) -> list[tuple[Route, pystac.Item]]:
        """Search each route, following ``next`` links until a token repeats.

        Parameters
        ----------
        query
            The checked request.
        routes
            The collections to search.

        Returns
        -------
        list of (Route, pystac.Item)
            Items under EODMS collection ids with their route; order collections get a
            ``product`` asset pointing at the DDS.

        Raises
        ------
        CatalogUnreachableError, InvalidQueryError, CredentialsError
            The server cannot be reached, refused the request, or wants an account.
        """
        tokens = _tokens(self.url, required=False)
        headers = tokens.headers() if tokens is not None else None
        items: list[tuple[Route, pystac.Item]] = []
        for route in routes:
            url: str | None = f"{self.url}/collections/{route.remote}/items"
            params: dict[str, str] | None = eodms_params(query, route)
            guard = PageGuard(self.name)
            found = 0
            while url is not None:
                page = get_json(self.session, url, provider=self.name, params=params,
                                headers=headers)  # fmt: skip
                for feature in page.get("features") or ():
                    item = pystac.Item.from_dict(feature, preserve_dict=False)
                    item.collection_id = item.collection_id or route.remote
                    self._add_order_asset(item)
                    items.append((route, item))
                    found += 1
                if not page.get("features"):
                    break  # an empty last page: the end, whatever its next link says
                if query.max_items is not None and found >= query.max_items:
                    break
                href = _next_link(page)
                url, params = (
                    (href, None) if href and guard.fresh(_page_token(href)) else (None, None)
                )
        if query.max_cloud is not None:
            items = [
                (r, i)
                for r, i in items
                if (c := i.properties.get("eo:cloud_cover")) is not None and c <= query.max_cloud
            ]
        return items

    def _add_order_asset(self, item: pystac.Item) -> None:
        collection = item.collection_id or ""
        if collection not in ORDER_COLLECTIONS or "product" in item.assets:
            return
        dds = f"{services_url(self.url)}/dds/v1/item/EODMS/{collection}/{item.id}"
        item.add_asset(
            "product",
            pystac.Asset(
                dds,
                title="Level-1 product (ordered through the EODMS DDS)",
                media_type="application/zip",
                roles=["data", "archive"],
                extra_fields={"auth:refs": ["bearer"]},
            ),
        )


class EodmsAccess(PlainAccess):
    """EODMS assets: public COGs as they are; DDS products ordered, polled, then downloaded.

    Parameters
    ----------
    tokens
        The AAA token source (default: from the configured credentials, on first need).
    session
        HTTP session.
    """

    provider = "eodms"

    def __init__(
        self, tokens: EodmsTokens | None = None, session: requests.Session | None = None
    ) -> None:
        self._tokens = tokens
        self.session = session if session is not None else requests.Session()

    def __repr__(self) -> str:
        return f"<EodmsAccess {self._tokens!r}>"

    def _source(self, href: str) -> EodmsTokens:
        if self._tokens is None:
            found = _tokens(href, required=True)
            assert found is not None
            self._tokens = found
        return self._tokens

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        """Return a public asset as it is, or ask the DDS for an order product.

        Parameters
        ----------
        item
            The item.
        key
            The asset key.
        asset
            The asset.

        Returns
        -------
        Ready or Pending
            ``Pending(suggested_retry_interval, status)`` while EODMS prepares the product.

        Raises
        ------
        CredentialsError
            No EODMS credentials, or they were refused.
        CatalogUnreachableError
            The DDS cannot be reached or failed.
        """
        href = asset.get_absolute_href() or asset.href
        if "/dds/v1/item/" not in href:
            return super().prepare(item, key, asset)
        source = self._source(href)
        for _attempt in range(2):
            try:
                resp = self.session.get(
                    href, headers=source.headers(), timeout=get_settings().http_timeout
                )
            except requests.RequestException as exc:
                raise CatalogUnreachableError(
                    f"Cannot reach the EODMS DDS for {item.id} ({type(exc).__name__}): "
                    "check the network."
                ) from None
            if resp.status_code != 401:
                break
            source.invalidate()
        if resp.status_code in (401, 403):
            raise CredentialsError(
                f"EODMS refused the order of {item.id} (HTTP {resp.status_code}): check that "
                "the account may order this collection."
            )
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if isinstance(data, list):
            data = data[0] if data else {}
        if resp.status_code == 202:
            retry = data.get("suggested_retry_interval") or 30
            return Pending(float(retry), str(data.get("status") or "Queued"))
        url = data.get("download_url") if resp.status_code == 200 else None
        if not url:
            raise CatalogUnreachableError(
                f"The EODMS DDS answered HTTP {resp.status_code} for {item.id} without a "
                "download URL: try again later."
            )
        size = data.get("size") or data.get("file_size")
        name = urlsplit(str(url)).path.rsplit("/", 1)[-1] or None
        return Ready(url=str(url), size=int(size) if size else None, filename=name)

    def refresh(self) -> None:
        """Forget the access token (the next request refreshes or logs in again).

        Returns
        -------
        None
        """
        if self._tokens is not None:
            self._tokens.invalidate()
