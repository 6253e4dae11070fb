"""STAC API providers by name: Earth Search, Planetary Computer (SAS signing), CDSE STAC.

They search through :func:`mus_lab.catalog._api.search_api` (pystac-client), as a STAC
URL does; the name adds the collection routes of the profile and, for Planetary
Computer, an :class:`~mus_lab.catalog.AssetAccess` that signs asset hrefs with a SAS
token at download time (search results keep unsigned hrefs, so no token is ever
written into an item).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import cql2
import pystac

from mus_lab.catalog._access import Pending, PlainAccess, Ready
from mus_lab.catalog._api import search_api
from mus_lab.catalog._credentials import SasTokens, Secret
from mus_lab.catalog._providers._base import ProfileRoutes, Route, provider_url
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import InvalidQueryError

__all__ = ["PlanetaryComputerAccess", "StacProvider", "with_filter"]

DEFAULT_URLS = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
    "cdse": "https://stac.dataspace.copernicus.eu/v1",
}
PC_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"


def with_filter(query: SearchQuery, text: str | None) -> SearchQuery:
    """Return ``query`` with the CQL2 text ``text`` joined to its filter by ``and``.

    Parameters
    ----------
    query
        The checked request.
    text
        CQL2 text, or ``None`` (``query`` is returned unchanged).

    Returns
    -------
    SearchQuery
        The narrowed request.

    Raises
    ------
    InvalidQueryError
        ``text`` is not CQL2 (a broken profile).

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="x", bbox=None, intersects=None, datetime=None,
    ...                 max_cloud=None, filter=None, filter_lang=None, max_items=None, limit=None)
    >>> with_filter(q, "product:type = 'GRD'").filter_expr.to_text()
    "product:type = 'GRD'"
    """
    if not text:
        return query
    try:
        extra = cql2.Expr(text)
    except Exception as exc:  # cql2 raises a bare Exception
        raise InvalidQueryError(f"Profile filter {text!r} is not CQL2 text: {exc}.") from exc
    if query.filter is None:
        joined: dict[str, Any] = dict(extra.to_json())
    else:
        joined = {"op": "and", "args": [query.filter, extra.to_json()]}
    expr = cql2.Expr(joined)
    return replace(query, filter=joined, filter_expr=expr)


class StacProvider(ProfileRoutes):
    """A STAC API known by name.

    Parameters
    ----------
    name
        ``"earth-search"``, ``"planetary-computer"`` or ``"cdse"``.
    url
        The API root (default: ``MUS_LAB_PROVIDER_<NAME>_URL`` or the real service).
    """

    open = True

    def __init__(self, name: str, url: str | None = None) -> None:
        self.name = name
        self.url = url or provider_url(name, DEFAULT_URLS[name])

    def search(self, query: SearchQuery, routes: list[Route]) -> list[tuple[Route, pystac.Item]]:
        """Search the routes, one API search per distinct extra filter.

        Parameters
        ----------
        query
            The checked request.
        routes
            The collections to search.

        Returns
        -------
        list of (Route, pystac.Item)
            Each item (under the provider's collection id) with the route that found it.

        Raises
        ------
        CatalogUnreachableError, InvalidQueryError, UnknownCollectionError
            As :func:`mus_lab.catalog._api.search_api`.
        """
        groups: dict[str | None, dict[str, Route]] = {}
        for route in routes:
            groups.setdefault(route.filter, {})[route.remote] = route
        out: list[tuple[Route, pystac.Item]] = []
        for extra, by_remote in groups.items():
            narrowed = with_filter(replace(query, collections=tuple(by_remote)), extra)
            found, _client = search_api(self.url, narrowed)
            for item in found:
                cid = item.collection_id or ""
                route = by_remote.get(cid) or Route(cid, cid)
                out.append((route, item))
        return out


def _is_blob(href: str) -> bool:
    host = urlsplit(href).hostname or ""
    return host.endswith(".blob.core.windows.net")


class PlanetaryComputerAccess(PlainAccess):
    """Planetary Computer assets: Azure blob hrefs signed with the collection's SAS token.

    The token is asked of the SAS endpoint (``MUS_LAB_PROVIDER_PLANETARY_COMPUTER_SAS_URL``
    or the real one) once per collection and reused until shortly before it expires.

    Parameters
    ----------
    tokens
        The SAS token cache (default: one on the configured endpoint, with
        ``MUS_LAB_PC_SUBSCRIPTION_KEY`` when set).
    """

    provider = "planetary-computer"

    def __init__(self, tokens: SasTokens | None = None) -> None:
        if tokens is None:
            key = os.environ.get("MUS_LAB_PC_SUBSCRIPTION_KEY")
            tokens = SasTokens(
                provider_url("planetary-computer", PC_SAS_URL, part="SAS_URL"),
                subscription_key=Secret(key) if key else None,
            )
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"<PlanetaryComputerAccess {self.tokens!r}>"

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        """Return the asset's href, signed when it is an Azure blob.

        Parameters
        ----------
        item
            The item (its collection picks the token).
        key
            The asset key.
        asset
            The asset.

        Returns
        -------
        Ready
            The signed URL (the token is in its query string, as Azure requires).

        Raises
        ------
        CredentialsError
            The SAS endpoint refused.
        """
        plain = super().prepare(item, key, asset)
        assert isinstance(plain, Ready)
        if not _is_blob(plain.url) or "sig=" in plain.url:
            return plain
        token = self.tokens.token(item.collection_id or "").reveal()
        sep = "&" if "?" in plain.url else "?"
        name = urlsplit(plain.url).path.rsplit("/", 1)[-1]
        return replace(plain, url=f"{plain.url}{sep}{token}", filename=plain.filename or name)

    def refresh(self) -> None:
        """Forget the cached SAS tokens (blob storage answered 403/401).

        Returns
        -------
        None
        """
        self.tokens.invalidate()
