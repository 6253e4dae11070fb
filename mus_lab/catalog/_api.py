"""Search a STAC API through pystac-client, turning its errors into mus_lab errors.

``max_cloud`` is sent as a CQL2 filter (joined to the user's filter with ``and``)
when the API declares the Filter conformance class, else through the Query
extension when declared; with neither, it is applied to the returned items.
The user's own filter is always sent as CQL2-JSON: some APIs (Earth Search) accept
it without declaring the conformance class.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pystac

from mus_lab._settings import get_settings
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import (
    CatalogUnreachableError,
    InvalidQueryError,
    UnknownCollectionError,
)

if TYPE_CHECKING:  # pystac_client is imported when first used: it costs ~2 s to import
    import pystac_client
    from pystac_client.exceptions import APIError

__all__ = ["api_parameters", "search_api"]


def api_parameters(
    query: SearchQuery, *, has_filter: bool, has_query: bool
) -> tuple[dict[str, Any], bool]:
    """Return the keyword arguments for ``Client.search`` and whether to filter clouds locally.

    Parameters
    ----------
    query
        The checked request.
    has_filter, has_query
        Whether the API declares the Filter / Query conformance classes.

    Returns
    -------
    tuple of (dict, bool)
        Keyword arguments of ``pystac_client.Client.search``, and ``True`` when the API can
        filter on cloud cover neither way so that it is filtered here.

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="sentinel-2-l2a", bbox=None, intersects=None,
    ...                 datetime=None, max_cloud=20, filter=None, filter_lang=None,
    ...                 max_items=None, limit=None)
    >>> api_parameters(q, has_filter=False, has_query=True)[0]["query"]
    {'eo:cloud_cover': {'lte': 20.0}}
    """
    params: dict[str, Any] = {
        "collections": list(query.collections) or None,
        "bbox": list(query.bbox) if query.bbox is not None else None,
        "intersects": query.intersects,
        "datetime": query.datetime,
        "max_items": query.max_items,
        "limit": query.limit,
    }
    local_cloud = False
    cql: dict[str, Any] | None = query.filter
    if query.max_cloud is not None:
        cloud = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, query.max_cloud]}
        if has_filter:
            cql = cloud if cql is None else {"op": "and", "args": [cql, cloud]}
        elif has_query:
            params["query"] = {"eo:cloud_cover": {"lte": query.max_cloud}}
        else:
            local_cloud = True
    if cql is not None:
        params["filter"] = cql
        params["filter_lang"] = "cql2-json"
    return {k: v for k, v in params.items() if v is not None}, local_cloud


def _status(exc: APIError) -> int | None:
    """HTTP status of a pystac-client error; ``None`` when no answer came (connection, DNS, timeout)."""
    return getattr(exc, "status_code", None)


def _unreachable(url: str, exc: Exception) -> CatalogUnreachableError:
    return CatalogUnreachableError(
        f"Cannot reach the STAC API at {url!r} ({exc}). Check the URL and your network "
        "(or raise MUS_LAB_HTTP_TIMEOUT), or search a local catalog path instead."
    )


def _collection_ids(client: pystac_client.Client) -> list[str] | None:
    try:
        return sorted(c.id for c in client.get_collections())
    except Exception:  # listing collections is only a diagnostic: never mask the real error
        return None


def _check_collections(client: pystac_client.Client, url: str, query: SearchQuery) -> None:
    if not query.collections:
        return
    available = _collection_ids(client)
    if available is None:
        return
    unknown = [c for c in query.collections if c not in available]
    if unknown:
        raise UnknownCollectionError(
            f"Collection(s) {unknown} not offered by {url}: choose among {available}."
        )


def open_client(url: str) -> pystac_client.Client:
    """Open a STAC API client with the configured timeout, or raise a mus_lab error.

    Parameters
    ----------
    url
        The STAC API root, e.g. ``https://earth-search.aws.element84.com/v1``.

    Returns
    -------
    pystac_client.Client
        The client, its landing page read.

    Raises
    ------
    CatalogUnreachableError
        No answer, an HTTP error, or an answer that is not a STAC API landing page.

    Examples
    --------
    >>> open_client("http://127.0.0.1:9/v1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mus_lab.errors.CatalogUnreachableError: ...
    """
    import pystac_client
    from pystac_client.exceptions import APIError

    try:
        return pystac_client.Client.open(url, timeout=get_settings().http_timeout)
    except APIError as exc:
        status = _status(exc)
        if status is None or status >= 500:
            raise _unreachable(url, exc) from exc
        raise CatalogUnreachableError(
            f"{url!r} answered HTTP {status} for its landing page: check that the URL "
            "is the root of a STAC API (e.g. https://earth-search.aws.element84.com/v1)."
        ) from exc
    except (pystac.STACError, ValueError, OSError) as exc:
        raise CatalogUnreachableError(
            f"{url!r} did not answer with a STAC API landing page ({exc}): check the URL."
        ) from exc


def search_api(url: str, query: SearchQuery) -> tuple[list[pystac.Item], pystac_client.Client]:
    """Run ``query`` against the STAC API at ``url``; return the items and the client.

    Parameters
    ----------
    url
        The STAC API root.
    query
        The checked request.

    Returns
    -------
    tuple of (list of pystac.Item, pystac_client.Client)
        The items (pages followed, ``max_items`` honoured) and the client that found them.

    Raises
    ------
    CatalogUnreachableError
        The API cannot be reached (connection refused, DNS, timeout).
    UnknownCollectionError
        The search failed or found nothing and a requested collection does not exist.
    InvalidQueryError
        The server refused the request (HTTP 4xx) for another reason.
    """
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError
    from pystac_client.warnings import DoesNotConformTo

    client = open_client(url)
    has_filter = client.conforms_to(ConformanceClasses.FILTER)
    params, local_cloud = api_parameters(
        query, has_filter=has_filter, has_query=client.conforms_to(ConformanceClasses.QUERY)
    )
    try:
        with warnings.catch_warnings():
            # The user's filter is sent on purpose to APIs that accept CQL2 without
            # declaring it (Earth Search); a refusal is reported below.
            warnings.simplefilter("ignore", DoesNotConformTo)
            # pystac cannot migrate Earth Search's old storage-extension fields; the items
            # are still complete, so its per-item warning is only noise in notebooks.
            warnings.filterwarnings(
                "ignore", "Could not parse bucket/account", UserWarning, "pystac"
            )
            items = list(client.search(**params).items())
    except APIError as exc:
        status = _status(exc)
        if status is None or status >= 500:
            raise _unreachable(url, exc) from exc
        _check_collections(client, url, query)
        hint = (
            " The API does not declare CQL2 Filter support: drop filter= (max_cloud= still works)."
            if query.filter is not None and not has_filter
            else ""
        )
        raise InvalidQueryError(
            f"{url} refused the search {params} (HTTP {status}: {exc}). Change the "
            f"argument the server names, e.g. a filter property it does not know.{hint}"
        ) from exc
    except (pystac.STACError, ValueError, TypeError) as exc:
        raise InvalidQueryError(f"The search {params} could not be run: {exc}.") from exc
    if local_cloud and query.max_cloud is not None:
        items = [
            i
            for i in items
            if (c := i.properties.get("eo:cloud_cover")) is not None and c <= query.max_cloud
        ]
    if not items:
        _check_collections(client, url, query)
    return items, client
