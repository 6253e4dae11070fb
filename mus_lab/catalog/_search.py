"""One ``search`` for STAC APIs and local static catalogs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pystac

from mus_lab.catalog._api import search_api
from mus_lab.catalog._local import LocalCatalog, open_local
from mus_lab.catalog._profiles import get_profile, normalise_item, provider_for
from mus_lab.catalog._query import DatetimeLike, build_query
from mus_lab.catalog._result import SearchResult
from mus_lab.errors import EmptySearchError

__all__ = ["search"]


def _is_url(catalog: object) -> bool:
    return isinstance(catalog, str) and catalog.lower().startswith(("http://", "https://"))


def search(
    catalog: str | Path | LocalCatalog,
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
    """Search a STAC API or a local static catalog, with the same arguments and result.

    Parameters
    ----------
    catalog
        An ``http(s)://`` STAC API URL (searched through pystac-client, pages
        followed), a local folder holding ``catalog.json``, the ``catalog.json``
        itself, a :class:`LocalCatalog` from :func:`open_local` (searched in memory),
        or the ``postgresql://`` URL of pgstac holdings (``mus-lab holdings init``).
    collections
        Collection id(s) to search; ``None`` searches every collection.
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
        The items with the normalised request and the source.

    Raises
    ------
    InvalidBBoxError
        ``bbox`` is malformed (order, length, latitude range).
    InvalidQueryError
        ``datetime``, ``filter`` or another argument cannot be understood, or the
        server refused the request.
    UnknownCollectionError
        A requested collection is not in the catalog.
    CatalogUnreachableError
        The URL cannot be reached or the local path holds no catalog.
    EmptySearchError
        No item matches.

    Examples
    --------
    A local catalog (here the tiny sample scenario's); a STAC API URL is searched alike:

    >>> result = search(tiny.catalog_path, collections="sentinel-2-l2a",
    ...                 datetime="2022-04-01/2022-05-31", max_cloud=30)
    >>> {item.collection_id for item in result}
    {'sentinel-2-l2a'}
    >>> all(item.properties["eo:cloud_cover"] <= 30 for item in result)
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
    items: list[pystac.Item]
    if _is_url(catalog):
        url = str(catalog)
        items, client = search_api(url, query)
        provider = provider_for(url, root_id=client.id)
        source = url
    elif str(catalog).startswith(("postgresql://", "postgres://")):  # pgstac holdings
        from mus_lab.catalog._pgstac import search_database

        items, source = search_database(str(catalog), query)
        provider = "local"
    else:
        local = catalog if isinstance(catalog, LocalCatalog) else open_local(catalog)  # type: ignore[arg-type]
        items = local.find(query)
        provider, source = "local", str(local.path)
    if not items:
        raise EmptySearchError(
            f"No items for {query.describe()} in {source}: widen the dates, enlarge the "
            "area, raise max_cloud or relax the filter."
        )
    if normalise:
        items = [normalise_item(i, get_profile(provider, i.collection_id or "")) for i in items]
    return SearchResult(items=tuple(items), query=query.as_dict(), source=source)
