"""Copernicus Data Space Ecosystem OData catalogue (``/odata/v1/Products``).

The search arguments become one ``$filter``, in the form of the recorded CDSE answer's
``@odata.nextLink``::

    Collection/Name eq 'SENTINEL-2'
    and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'
        and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A')
    and OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((...))')
    and ContentDate/Start ge 2024-06-01T00:00:00.000Z and ContentDate/Start le ...
    and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover'
        and att/OData.CSC.DoubleAttribute/Value le 20.00)

CQL2 comparisons (``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, joined by ``and`` / ``or``)
on the attributes of :data:`ATTRIBUTES` become attribute clauses too; anything else
raises :class:`InvalidQueryError` naming what is supported. Pages follow
``@odata.nextLink`` (a repeated link stops paging). Products become pystac items with one
``product`` asset, ``https://download.dataspace.copernicus.eu/odata/v1/Products(<Id>)/$value``,
carrying the ``Checksum`` list (MD5 as ``file:checksum`` multihash ``d510<hex>``).
Downloads need a CDSE token (:class:`CdseAccess`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pystac
import requests
import shapely.geometry

from mus_lab.catalog._access import Pending, PlainAccess, Ready
from mus_lab.catalog._credentials import OAuth2PasswordTokens, require_credentials
from mus_lab.catalog._providers._base import (
    PageGuard,
    ProfileRoutes,
    Route,
    area_wkt,
    get_json,
    provider_url,
)
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import InvalidQueryError

__all__ = [
    "ATTRIBUTES",
    "CdseAccess",
    "CdseODataProvider",
    "cdse_tokens",
    "forget_tokens",
    "odata_filter",
    "product_to_item",
]

DEFAULT_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
TOKEN_URL = (
    "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
)

#: Queryable name (STAC name or CDSE name) -> (CDSE attribute name, OData attribute type).
ATTRIBUTES: Mapping[str, tuple[str, str]] = {
    "eo:cloud_cover": ("cloudCover", "Double"),
    "cloudCover": ("cloudCover", "Double"),
    "sat:relative_orbit": ("relativeOrbitNumber", "Integer"),
    "relativeOrbitNumber": ("relativeOrbitNumber", "Integer"),
    "sat:absolute_orbit": ("orbitNumber", "Integer"),
    "orbitNumber": ("orbitNumber", "Integer"),
    "sat:orbit_state": ("orbitDirection", "String"),
    "orbitDirection": ("orbitDirection", "String"),
    "s2:mgrs_tile": ("tileId", "String"),
    "tileId": ("tileId", "String"),
    "productType": ("productType", "String"),
    "platformSerialIdentifier": ("platformSerialIdentifier", "String"),
    "sar:instrument_mode": ("operationalMode", "String"),
    "operationalMode": ("operationalMode", "String"),
    "polarisationChannels": ("polarisationChannels", "String"),
}
_OPS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_LEGACY = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _odata_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def _attribute(name: str, kind: str, op: str, value: Any) -> str:
    if kind == "String":
        literal = "'" + str(value).replace("'", "''") + "'"
    elif kind == "Double":
        literal = f"{float(value):.2f}"
    else:
        literal = str(int(value))
    return (
        f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.{kind}Attribute/Value {op} {literal})"
    )


def _cql(node: Any) -> str:
    """Translate a CQL2-JSON node into OData, or raise InvalidQueryError."""
    if not isinstance(node, Mapping) or "op" not in node:
        raise InvalidQueryError(f"CQL2 {node!r} cannot be sent to CDSE OData.")
    op = _LEGACY.get(str(node["op"]), str(node["op"])).lower()
    args = list(node.get("args") or ())
    if op in ("and", "or"):
        return "(" + f" {op} ".join(_cql(a) for a in args) + ")"
    if op in _OPS and len(args) == 2:
        prop, value = args
        if isinstance(value, Mapping) and "property" in value:
            prop, value = value, prop
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        name = prop.get("property") if isinstance(prop, Mapping) else None
        if name in ATTRIBUTES and not isinstance(value, Mapping | list):
            attr, kind = ATTRIBUTES[str(name)]
            return _attribute(attr, kind, _OPS[op], value)
        raise InvalidQueryError(
            f"CDSE OData cannot filter on {name!r}: use one of {sorted(ATTRIBUTES)} "
            "with =, <>, <, <=, >, >= (joined by and/or), or search 'cdse' (STAC) instead."
        )
    raise InvalidQueryError(
        f"CQL2 operator {node['op']!r} cannot be sent to CDSE OData: use comparisons "
        f"(=, <>, <, <=, >, >=) on {sorted(ATTRIBUTES)} joined by and/or."
    )


def odata_filter(query: SearchQuery, route: Route) -> str:
    """Return the OData ``$filter`` of ``query`` for one collection route.

    Parameters
    ----------
    query
        The checked request.
    route
        Collection (``SENTINEL-2``) and product type (``S2MSI2A``).

    Returns
    -------
    str
        The ``$filter`` text.

    Raises
    ------
    InvalidQueryError
        A CQL2 filter that OData cannot express.

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="sentinel-2-l2a", bbox=(5, 52, 6, 53), intersects=None,
    ...                 datetime="2024-06-01", max_cloud=20, filter=None, filter_lang=None,
    ...                 max_items=None, limit=None)
    >>> print(odata_filter(q, Route("sentinel-2-l2a", "SENTINEL-2", "S2MSI2A")))  # doctest: +NORMALIZE_WHITESPACE
    Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any(att:att/Name
    eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A') and
    OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((6 52, 6 53, 5 53, 5 52, 6 52))')
    and ContentDate/Start ge 2024-06-01T00:00:00.000Z and ContentDate/Start le
    2024-06-01T23:59:59.999Z and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq
    'cloudCover' and att/OData.CSC.DoubleAttribute/Value le 20.00)
    """
    parts = [f"Collection/Name eq '{route.remote}'"]
    if route.product_type:
        parts.append(_attribute("productType", "String", "eq", route.product_type))
    wkt = area_wkt(query)
    if wkt is not None:
        parts.append(f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')")
    start, end = query.interval
    if start is not None:
        parts.append(f"ContentDate/Start ge {_odata_time(start)}")
    if end is not None and end.year < 9999:
        parts.append(f"ContentDate/Start le {_odata_time(end)}")
    if query.max_cloud is not None:
        parts.append(_attribute("cloudCover", "Double", "le", query.max_cloud))
    if query.filter is not None:
        parts.append(_cql(query.filter))
    return " and ".join(parts)


def _attributes(product: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(a["Name"]): a.get("Value")
        for a in product.get("Attributes") or ()
        if isinstance(a, Mapping) and "Name" in a
    }


def product_checksum(product: Mapping[str, Any]) -> str | None:
    """Return ``"md5:<hex>"`` (or ``"blake3:<hex>"``) from a product's ``Checksum`` list.

    Parameters
    ----------
    product
        One OData product.

    Returns
    -------
    str or None
        MD5 when given, else BLAKE3, else ``None``.

    Examples
    --------
    >>> product_checksum({"Checksum": [{"Algorithm": "BLAKE3", "Value": "ab"},
    ...                                {"Algorithm": "MD5", "Value": "CD"}]})
    'md5:cd'
    """
    sums = {
        str(c.get("Algorithm", "")).lower(): str(c.get("Value", "")).lower()
        for c in product.get("Checksum") or ()
        if isinstance(c, Mapping) and c.get("Value")
    }
    for algo in ("md5", "blake3"):
        if algo in sums:
            return f"{algo}:{sums[algo]}"
    return None


def product_to_item(
    product: Mapping[str, Any], *, collection: str, download_url: str
) -> pystac.Item:
    """Convert one CDSE OData product into a pystac item.

    Parameters
    ----------
    product
        The product JSON (with ``Attributes`` expanded).
    collection
        The collection id the item gets.
    download_url
        The OData download root (``https://download.dataspace.copernicus.eu/odata/v1``).

    Returns
    -------
    pystac.Item
        Id = product name without ``.SAFE``; properties from the attributes
        (``eo:cloud_cover``, ``platform``, ``sat:relative_orbit``, ``s2:mgrs_tile``,
        ``cdse:*``); one ``product`` asset with ``file:size`` and ``file:checksum``.
    """
    attrs = _attributes(product)
    name = str(product["Name"])
    geometry = product.get("GeoFootprint")
    bbox = list(shapely.geometry.shape(geometry).bounds) if geometry else None
    dates = product.get("ContentDate") or {}
    start = dt.datetime.fromisoformat(str(dates["Start"]).replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(str(dates.get("End", dates["Start"])).replace("Z", "+00:00"))
    props: dict[str, Any] = {
        "cdse:id": product["Id"],
        "cdse:name": name,
        "cdse:online": product.get("Online"),
        "cdse:product_type": attrs.get("productType"),
    }
    if end != start:
        props["start_datetime"], props["end_datetime"] = (
            start.isoformat().replace("+00:00", "Z"),
            end.isoformat().replace("+00:00", "Z"),
        )
    for key, attr in (
        ("eo:cloud_cover", "cloudCover"),
        ("sat:relative_orbit", "relativeOrbitNumber"),
        ("sat:absolute_orbit", "orbitNumber"),
        ("s2:mgrs_tile", "tileId"),
        ("processing:level", "processingLevel"),
        ("instruments", "instrumentShortName"),
        ("sat:orbit_state", "orbitDirection"),
        ("constellation", "platformShortName"),
    ):
        if attrs.get(attr) is not None:
            value = attrs[attr]
            props[key] = [str(value).lower()] if key == "instruments" else value
    if attrs.get("platformSerialIdentifier") and attrs.get("platformShortName"):
        props["platform"] = (
            f"{attrs['platformShortName']}{attrs['platformSerialIdentifier']}".lower()
        )
    item = pystac.Item(
        id=name.removesuffix(".SAFE").removesuffix(".SEN3"),
        geometry=geometry,
        bbox=bbox,
        datetime=start,
        properties=props,
        collection=collection,
    )
    extra: dict[str, Any] = {"cdse:checksum": list(product.get("Checksum") or ())}
    if product.get("ContentLength") is not None:
        extra["file:size"] = int(product["ContentLength"])
    md5 = next(
        (
            str(c["Value"]).lower()
            for c in product.get("Checksum") or ()
            if str(c.get("Algorithm", "")).upper() == "MD5"
        ),
        None,
    )
    if md5:
        extra["file:checksum"] = "d510" + md5  # multihash: md5 (0xd5), 16 bytes
    item.add_asset(
        "product",
        pystac.Asset(
            f"{download_url}/Products({product['Id']})/$value",
            title=name,
            media_type="application/zip",
            roles=["data", "archive"],
            extra_fields=extra,
        ),
    )
    return item


class CdseODataProvider(ProfileRoutes):
    """CDSE OData search (``cdse-odata``).

    Parameters
    ----------
    url
        OData root (default ``MUS_LAB_PROVIDER_CDSE_ODATA_URL`` or the real one).
    session
        HTTP session.
    """

    name = "cdse-odata"
    open = False

    def __init__(self, url: str | None = None, session: requests.Session | None = None) -> None:
        self.url = url or provider_url(self.name, DEFAULT_URL)
        self.download_url = provider_url("cdse", DOWNLOAD_URL, part="DOWNLOAD_URL")
        self.session = session if session is not None else requests.Session()

    def search(self, query: SearchQuery, routes: list[Route]) -> list[tuple[Route, pystac.Item]]:
        """Search each route, following ``@odata.nextLink``.

        Parameters
        ----------
        query
            The checked request.
        routes
            Collections to search.

        Returns
        -------
        list of (Route, pystac.Item)
            Items (under the requested collection ids) with their route.

        Raises
        ------
        CatalogUnreachableError, InvalidQueryError
            No answer, or the server or the translation refused the request.
        """
        items: list[tuple[Route, pystac.Item]] = []
        top = min(query.limit or 100, 1000)
        for route in routes:
            url: str | None = f"{self.url}/Products"
            params: dict[str, str] | None = {
                "$filter": odata_filter(query, route),
                "$orderby": "ContentDate/Start asc",
                "$top": str(top),
                "$expand": "Attributes",
            }
            guard = PageGuard(self.name)
            found = 0
            while url is not None:
                page = get_json(self.session, url, provider=self.name, params=params)
                for product in page.get("value") or ():
                    item = product_to_item(
                        product, collection=route.requested, download_url=self.download_url
                    )
                    items.append((route, item))
                    found += 1
                if not page.get("value"):
                    break
                if query.max_items is not None and found >= query.max_items:
                    break
                link = page.get("@odata.nextLink")
                url, params = (str(link), None) if link and guard.fresh(str(link)) else (None, None)
        return items


_CDSE_TOKENS: dict[str, OAuth2PasswordTokens] = {}
_CDSE_LOCK = threading.Lock()


def forget_tokens() -> None:
    """Drop the cached CDSE token sources (credentials are read again on next use).

    Returns
    -------
    None
    """
    with _CDSE_LOCK:
        _CDSE_TOKENS.clear()


def cdse_tokens() -> OAuth2PasswordTokens:
    """Return the shared CDSE token source (credentials read on first call).

    Returns
    -------
    OAuth2PasswordTokens
        One per token URL.

    Raises
    ------
    CredentialsError
        No CDSE credentials configured.
    """
    url = provider_url("cdse", TOKEN_URL, part="TOKEN_URL")
    with _CDSE_LOCK:
        if url not in _CDSE_TOKENS:
            creds = require_credentials("cdse", host=urlsplit(url).hostname)
            _CDSE_TOKENS[url] = OAuth2PasswordTokens(url, creds, client_id="cdse-public")
        return _CDSE_TOKENS[url]


class CdseAccess(PlainAccess):
    """CDSE downloads (OData ``$value`` and STAC assets on CDSE hosts): bearer token.

    Parameters
    ----------
    tokens
        The token source (default :func:`cdse_tokens`, read on first need).
    """

    provider = "cdse"

    def __init__(self, tokens: OAuth2PasswordTokens | None = None) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"<CdseAccess {self._tokens!r}>"

    @property
    def tokens(self) -> OAuth2PasswordTokens:
        """The token source.

        Returns
        -------
        OAuth2PasswordTokens
            Created from the configured credentials on first use.
        """
        if self._tokens is None:
            self._tokens = cdse_tokens()
        return self._tokens

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        """Return the download URL with a fresh bearer token and the product checksum.

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
        Ready
            URL, ``Authorization`` header, ``md5:<hex>`` checksum, size, ``<name>.zip``.

        Raises
        ------
        CredentialsError
            No CDSE credentials, or they were refused.
        """
        plain = super().prepare(item, key, asset)
        assert isinstance(plain, Ready)
        checksum = product_checksum({"Checksum": asset.extra_fields.get("cdse:checksum")})
        name = item.properties.get("cdse:name")
        filename = (
            f"{str(name).removesuffix('.SAFE')}.zip" if "$value" in plain.url and name else None
        )
        return Ready(
            url=plain.url,
            headers=self.tokens.headers(),
            checksum=checksum or plain.checksum,
            size=plain.size,
            filename=filename,
        )

    def refresh(self) -> None:
        """Forget the access token after a 401.

        Returns
        -------
        None
        """
        if self._tokens is not None:
            self._tokens.invalidate()
