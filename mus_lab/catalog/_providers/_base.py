"""What every provider adapter shares: routes, URLs, HTTP errors, page-token guard.

A :class:`Route` says how one requested collection id (a canonical id such as
``sentinel-2-l2a`` or the provider's own id) is searched at one provider: the provider's
collection id, and for non-STAC APIs the product type, or for STAC APIs an extra CQL2
filter. Routes come from the ``offers:`` table of the provider's profile YAML
(``mus_lab/catalog/profiles/*.yaml``).

Base URLs are overridable with ``MUS_LAB_PROVIDER_<NAME>_URL`` (``<NAME>`` upper case,
``-`` -> ``_``), e.g. ``MUS_LAB_PROVIDER_CDSE_ODATA_URL``, so that tests point every
adapter at a local replay server.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

import pystac
import requests
import shapely.geometry
import yaml

from mus_lab._settings import get_settings
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import (
    CatalogUnreachableError,
    CredentialsError,
    InvalidQueryError,
    RepeatedPageWarning,
)

__all__ = [
    "PROVIDER_COLLECTION",
    "PageGuard",
    "Provider",
    "Route",
    "area_wkt",
    "get_json",
    "offers",
    "origin",
    "provider_url",
]

#: Item property keeping the provider's own collection id when the item was renamed.
PROVIDER_COLLECTION = "mus_lab:provider_collection"


@dataclass(frozen=True)
class Route:
    """How one requested collection is searched at one provider.

    Attributes
    ----------
    requested
        The id the user asked for (items come back under this id).
    remote
        The provider's collection id (``SENTINEL-2``, ``rcm-ard``, ``Sentinel2``...).
    product_type
        Product type narrowing the collection (OData/OpenSearch ``productType``).
    filter
        Extra CQL2 text filter (STAC providers), e.g. ``"product:type" = 'GRD'``.
    """

    requested: str
    remote: str
    product_type: str | None = None
    filter: str | None = None


class Provider(Protocol):
    """A searchable data provider behind :func:`mus_lab.catalog.search`."""

    name: str
    url: str
    #: Whether collection ids it does not list are passed to it as they are (STAC APIs).
    open: bool

    def routes(self) -> Mapping[str, Route]:
        """Return the collections it offers, by requested id."""
        ...

    def search(self, query: SearchQuery, routes: list[Route]) -> list[tuple[Route, pystac.Item]]:
        """Return the items of ``routes`` matching ``query``, each with its route."""
        ...


class ProfileRoutes:
    """The collections a provider offers are those of its profile's ``offers:`` table."""

    name: str

    def routes(self) -> Mapping[str, Route]:
        """Return the collections listed in the provider's profile.

        Returns
        -------
        Mapping
            Requested id -> route.
        """
        return offers(self.name)


def provider_url(name: str, default: str, *, part: str = "URL") -> str:
    """Return the base URL of ``name``: ``MUS_LAB_PROVIDER_<NAME>_<PART>`` or ``default``.

    Parameters
    ----------
    name
        Provider name, e.g. ``"cdse-odata"``.
    default
        The real service URL.
    part
        ``"URL"`` for the search root; other endpoints use their own part
        (``"TOKEN_URL"``, ``"DOWNLOAD_URL"``, ``"SAS_URL"``, ``"AUTH_URL"``).

    Returns
    -------
    str
        The URL without a trailing slash.

    Examples
    --------
    >>> provider_url("cdse-odata", "https://catalogue.dataspace.copernicus.eu/odata/v1")
    'https://catalogue.dataspace.copernicus.eu/odata/v1'
    """
    env = f"MUS_LAB_PROVIDER_{name.upper().replace('-', '_')}_{part}"
    return (os.environ.get(env) or default).rstrip("/")


def origin(url: str) -> str:
    """Return ``scheme://host[:port]`` of ``url``.

    Parameters
    ----------
    url
        Any URL.

    Returns
    -------
    str
        Its origin.

    Examples
    --------
    >>> origin("https://www.eodms-sgdot.nrcan-rncan.gc.ca/search")
    'https://www.eodms-sgdot.nrcan-rncan.gc.ca'
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.cache
def _offers_by_provider() -> dict[str, dict[str, Route]]:
    out: dict[str, dict[str, Route]] = {}
    folder = resources.files("mus_lab.catalog") / "profiles"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
        table: dict[str, Route] = {}
        # Without an offers: table, a provider offers the collections it has profiles for.
        listed = raw.get("offers") or {cid: {"collection": cid} for cid in raw["collections"]}
        for requested, spec in listed.items():
            spec = spec if isinstance(spec, Mapping) else {"collection": spec or requested}
            table[str(requested)] = Route(
                requested=str(requested),
                remote=str(spec.get("collection", requested)),
                product_type=spec.get("product_type"),
                filter=spec.get("filter"),
            )
        out[str(raw["provider"])] = table
    return out


def offers(provider: str) -> dict[str, Route]:
    """Return the collections ``provider`` offers: its profile's ``offers:`` (or ``collections:``).

    Parameters
    ----------
    provider
        Provider name.

    Returns
    -------
    dict
        Requested id -> :class:`Route`.

    Examples
    --------
    >>> offers("cdse-odata")["sentinel-2-l2a"].product_type
    'S2MSI2A'
    """
    return dict(_offers_by_provider().get(provider, {}))


def area_wkt(query: SearchQuery) -> str | None:
    """Return the query's area (bbox or intersects) as WKT, ``None`` when it has none.

    Parameters
    ----------
    query
        The checked request.

    Returns
    -------
    str or None
        E.g. ``POLYGON ((5 52, 6 52, 6 53, 5 53, 5 52))``.
    """
    if query.bbox is not None:
        return str(shapely.geometry.box(*query.bbox).wkt)
    if query.intersects is not None:
        return str(shapely.geometry.shape(query.intersects).wkt)
    return None


def get_json(
    session: requests.Session,
    url: str,
    *,
    provider: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """GET ``url`` and return its JSON body, turning failures into mus_lab errors.

    Parameters
    ----------
    session
        The HTTP session.
    url
        The URL.
    provider
        Provider name, for messages.
    params, headers
        Query parameters and headers.

    Returns
    -------
    Any
        The decoded JSON.

    Raises
    ------
    CatalogUnreachableError
        No answer, HTTP 5xx or not JSON.
    CredentialsError
        HTTP 401/403.
    InvalidQueryError
        Another HTTP 4xx (the server's message is quoted).
    """
    try:
        resp = session.get(url, params=params, headers=headers, timeout=get_settings().http_timeout)
    except requests.RequestException as exc:
        raise CatalogUnreachableError(
            f"Cannot reach {provider} at {url} ({type(exc).__name__}): check the network, "
            f"or MUS_LAB_PROVIDER_{provider.upper().replace('-', '_')}_URL."
        ) from None
    if resp.status_code in (401, 403):
        raise CredentialsError(
            f"{provider} answered HTTP {resp.status_code} to the search: this collection "
            "needs an account; set its credentials (see mus_lab.catalog._credentials)."
        )
    if resp.status_code >= 500:
        raise CatalogUnreachableError(
            f"{provider} answered HTTP {resp.status_code} at {resp.url}: try again later."
        )
    if resp.status_code >= 400:
        raise InvalidQueryError(
            f"{provider} refused the search (HTTP {resp.status_code}: {resp.text[:300]}). "
            "Change the argument it names."
        )
    try:
        return resp.json()
    except ValueError:
        raise CatalogUnreachableError(
            f"{provider} did not answer JSON at {resp.url}: check the provider URL."
        ) from None


class PageGuard:
    """Stops paging when a server repeats a page token (or a whole next link).

    Parameters
    ----------
    provider
        Provider name, for the warning.

    Examples
    --------
    >>> guard = PageGuard("x")
    >>> guard.fresh("abc"), guard.fresh("def")
    (True, True)
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.seen: set[str] = set()

    def fresh(self, token: str) -> bool:
        """Return whether ``token`` is new; warn (and return ``False``) when it repeats.

        Parameters
        ----------
        token
            The page token or next URL.

        Returns
        -------
        bool
            ``False`` when paging must stop.
        """
        if token in self.seen:
            warnings.warn(
                f"{self.provider} repeated the page token {token[:60]!r}: paging stopped "
                f"after {len(self.seen)} page(s) to avoid an endless loop; the result may be "
                "incomplete (narrow the search to get fewer pages).",
                RepeatedPageWarning,
                stacklevel=4,
            )
            return False
        self.seen.add(token)
        return True
