"""One ``search`` for provider names, STAC APIs and local static catalogs, one or several.

A source is a provider name (:func:`mus_lab.catalog._providers.provider_names`), an
``http(s)://`` STAC API URL, or a local catalog. With several sources, each requested
collection goes to the sources that offer it (the ``offers:`` of the provider profiles;
STAC URLs and local catalogs take any id), and the items are merged into one
:class:`SearchResult`, each recording its provider in ``properties["mus_lab:provider"]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pystac

from mus_lab.catalog._access import PROVIDER_PROPERTY
from mus_lab.catalog._api import search_api
from mus_lab.catalog._local import LocalCatalog, open_local
from mus_lab.catalog._profiles import get_profile, normalise_item, provider_for
from mus_lab.catalog._providers import (
    PROVIDER_COLLECTION,
    PROVIDERS,
    Provider,
    Route,
    get_provider,
)
from mus_lab.catalog._providers._stac import StacProvider
from mus_lab.catalog._query import DatetimeLike, SearchQuery, build_query
from mus_lab.catalog._result import SearchResult
from mus_lab.errors import EmptySearchError, InvalidQueryError, UnknownCollectionError

__all__ = ["search"]

Source = str | Path | LocalCatalog
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _is_url(catalog: object) -> bool:
    return isinstance(catalog, str) and catalog.lower().startswith(("http://", "https://"))


@dataclass
class _Plan:
    """One source and the routes it searches (``None``: the query's collections as they are)."""

    label: str
    kind: str  # "provider", "url", "database" (pgstac holdings) or "local"
    target: Any
    routes: list[Route] | None = None

    @property
    def offered(self) -> Mapping[str, Route]:
        return self.target.routes() if self.kind == "provider" else {}

    @property
    def open(self) -> bool:
        return self.kind != "provider" or bool(self.target.open)


def _source(catalog: Source) -> _Plan:
    if isinstance(catalog, LocalCatalog):
        return _Plan(str(catalog.path), "local", catalog)
    if isinstance(catalog, str) and catalog in PROVIDERS:
        return _Plan(catalog, "provider", get_provider(catalog))
    if _is_url(catalog):
        return _Plan(str(catalog), "url", str(catalog))
    if isinstance(catalog, str) and catalog.startswith(("postgresql://", "postgres://")):
        from mus_lab.catalog._pgstac import redact_url  # pgstac holdings

        return _Plan(redact_url(catalog), "database", catalog)
    if isinstance(catalog, str) and _NAME.match(catalog) and not os.path.exists(catalog):
        get_provider(catalog)  # raises UnknownProviderError naming the known providers
    local = open_local(catalog)
    return _Plan(str(local.path), "local", local)


def _plans(catalog: Source | Sequence[Source], collections: tuple[str, ...]) -> list[_Plan]:
    many = isinstance(catalog, Sequence) and not isinstance(catalog, str)
    plans = [_source(c) for c in catalog] if many else [_source(catalog)]  # type: ignore[union-attr, arg-type]
    if not collections:
        return plans
    single = len(plans) == 1
    for plan in plans:
        plan.routes = []
    missing = []
    for cid in collections:
        takers = [p for p in plans if cid in p.offered]
        for plan in takers:
            assert plan.routes is not None
            plan.routes.append(plan.offered[cid])
        if takers:
            continue
        # STAC URLs and local catalogs take any id (they check it themselves); a STAC
        # provider searched alone too.
        anyone = [p for p in plans if p.kind != "provider" or (single and p.open)]
        for plan in anyone:
            assert plan.routes is not None
            plan.routes.append(Route(cid, cid))
        if not anyone:
            missing.append(cid)
    if missing:
        offers = "; ".join(f"{p.label} offers {sorted(p.offered)}" for p in plans)
        raise UnknownCollectionError(
            f"No source offers collection(s) {missing}: {offers}. Ask for one of these, or "
            "add a source that has it."
        )
    return [p for p in plans if p.routes]


def _tag(item: pystac.Item, provider: str, route: Route | None, *, normalise: bool) -> pystac.Item:
    if normalise:
        item = normalise_item(item, get_profile(provider, item.collection_id or ""))
    else:
        item = item.clone()  # never change a cached local item
    if route is not None and item.collection_id != route.requested:
        item.properties[PROVIDER_COLLECTION] = item.collection_id
        item.collection_id = route.requested
    item.properties[PROVIDER_PROPERTY] = provider
    return item


def _run(plan: _Plan, query: SearchQuery, *, normalise: bool) -> list[pystac.Item]:
    if plan.kind == "provider":
        provider: Provider = plan.target
        if not plan.routes and not isinstance(provider, StacProvider):
            raise InvalidQueryError(
                f"{provider.name} needs collections=: choose among {sorted(provider.routes())}."
            )
        if not plan.routes:  # a STAC provider, every collection
            items, _ = search_api(provider.url, query)
            return [_tag(i, provider.name, None, normalise=normalise) for i in items]
        pairs = provider.search(query, plan.routes)
        return [_tag(i, provider.name, r, normalise=normalise) for r, i in pairs]
    narrowed = (
        query
        if plan.routes is None
        else replace(query, collections=tuple(r.remote for r in plan.routes))
    )
    if plan.kind == "database":
        from mus_lab.catalog._pgstac import search_database

        items, _ = search_database(plan.target, narrowed)
        return [_tag(i, "local", None, normalise=normalise) for i in items]
    if plan.kind == "url":
        items, client = search_api(plan.target, narrowed)
        name = provider_for(plan.target, root_id=client.id)
        return [_tag(i, name, None, normalise=normalise) for i in items]
    # Local files are read as they are (PlainAccess): even an item harvested from a
    # provider is "local" now (the harvest records where it came from).
    return [_tag(i, "local", None, normalise=normalise) for i in plan.target.find(narrowed)]


def search(
    catalog: Source | Sequence[Source],
    *,
    collections: str | Sequence[str] | None,
    bbox: str | Sequence[float] | None = None,
    intersects: Any = None,
    datetime: DatetimeLike | None = None,
    max_cloud: float | None = None,
    filter: str | Mapping[str, Any] | None = None,
    filter_lang: str | None = None,
    max_items: int | None = None,
    limit: int | None = 100,
    normalise: bool = True,
) -> SearchResult:
    """Search providers, STAC APIs or local static catalogs, with the same arguments and result.

    Parameters
    ----------
    catalog
        One source or a list of sources, each: a provider name (``"earth-search"``,
        ``"planetary-computer"``, ``"cdse"``, ``"cdse-odata"``, ``"cdse-opensearch"``,
        ``"eodms"``), an ``http(s)://`` STAC API URL (searched through pystac-client,
        pages followed), a local folder holding ``catalog.json``, the
        ``catalog.json`` itself, a :class:`LocalCatalog` from :func:`open_local`
        (searched in memory), or the ``postgresql://`` URL of pgstac holdings
        (``mus-lab holdings init``). Several sources merge into one result.
    collections
        Collection id(s) to search: canonical ids (``sentinel-2-l2a``,
        ``sentinel-1-grd``, ``rcm-grd``...) or a provider's own ids (``rcm-ard``); each
        goes to the sources that offer it. ``None`` searches every collection (STAC
        APIs and local catalogs only).
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees, or the string ``"w,s,e,n"``
        (read by :func:`parse_bbox`).
    intersects
        A GeoJSON geometry dict or a shapely geometry (instead of ``bbox``).
    datetime
        An instant, a date (whole day), ``"start/end"``, ``"../end"`` or ``"start/.."``
        (RFC 3339 or plain dates), or a ``(start, end)`` pair.
    max_cloud
        Keep items with ``eo:cloud_cover`` at most this percentage; items without
        the property are dropped when it is set.
    filter
        A CQL2 filter, as text or as a CQL2-JSON dict.
    filter_lang
        ``"cql2-text"`` or ``"cql2-json"``; guessed from ``filter`` when left out.
    max_items
        Stop after this many items (``None``: every match).
    limit
        Page size asked of a STAC API (``None``: the server default).
    normalise
        Rename asset keys to the canonical band names of the collection profile
        (see :func:`normalise_item`).

    Returns
    -------
    SearchResult
        The items with the normalised request and the source(s); every item records
        its provider in ``properties["mus_lab:provider"]`` (and its provider's own
        collection id in ``"mus_lab:provider_collection"`` when it was renamed).

    Raises
    ------
    UnknownProviderError
        A source that is no provider name, URL or local catalog.
    CredentialsError
        A provider wants an account that is missing or refused.
    InvalidBBoxError
        ``bbox`` is malformed (order, length, latitude range).
    InvalidQueryError
        ``datetime``, ``filter`` or another argument cannot be understood, or the
        server refused the request.
    UnknownCollectionError
        A requested collection is not in the catalog, or no source offers it (the
        message lists what each source offers).
    CatalogUnreachableError
        The URL cannot be reached or the local path holds no catalog.
    EmptySearchError
        No item matches.

    Examples
    --------
    A local catalog (here the tiny sample scenario's); a STAC API URL is searched alike:

    >>> result = search(tiny.catalog_path, collections="sentinel-2-l2a",
    ...                 datetime="2022-04-01/2022-05-31", max_cloud=60)
    >>> {item.collection_id for item in result}
    {'sentinel-2-l2a'}
    >>> all(item.properties["eo:cloud_cover"] <= 60 for item in result)
    True
    """
    query = build_query(
        collections=collections,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        max_cloud=max_cloud,
        filter=filter,
        filter_lang=filter_lang,
        max_items=max_items,
        limit=limit,
    )
    plans = _plans(catalog, query.collections)
    items: list[pystac.Item] = []
    for plan in plans:
        items += _run(plan, query, normalise=normalise)
    if query.max_items is not None:
        items = items[: query.max_items]
    source = " + ".join(p.label for p in plans)
    if not items:
        raise EmptySearchError(
            f"No items for {query.describe()} in {source}: widen the dates, enlarge the "
            "area, raise max_cloud or relax the filter."
        )
    return SearchResult(items=tuple(items), query=query.as_dict(), source=source)
