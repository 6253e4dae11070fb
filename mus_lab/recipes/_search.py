"""What every recipe starts with: items of a collection, from a catalog, an API or a result."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pystac
from odc.geo.geobox import GeoBox

from mus_lab import catalog as cat
from mus_lab import cube
from mus_lab.errors import CatalogError, EmptySearchError

__all__ = ["CatalogLike", "find", "reference_grid", "source_of"]

#: A local catalog (folder or ``catalog.json``), a STAC API URL, or a
#: :class:`~mus_lab.catalog.SearchResult` (or sequence of items) already found.
CatalogLike = str | os.PathLike[str] | cat.SearchResult | Sequence[pystac.Item]


def source_of(where: CatalogLike) -> str | None:
    """The catalog path or API URL behind ``where`` (None for bare items).

    Parameters
    ----------
    where
        A catalog path, an API URL, a search result or items.

    Returns
    -------
    str or None

    Examples
    --------
    >>> source_of("https://example.org/stac")
    'https://example.org/stac'
    """
    if isinstance(where, str | os.PathLike):
        return os.fspath(where)
    return getattr(where, "source", None) or None


def find(
    where: CatalogLike,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    required: bool = True,
) -> list[pystac.Item]:
    """Items of one collection from a catalog, an API URL or items already found.

    A :class:`~mus_lab.catalog.SearchResult` (or a list of items) is filtered by collection,
    never searched again; a path or URL is searched with ``bbox`` and ``datetime``.

    Parameters
    ----------
    where
        Catalog path, STAC API URL, search result or items.
    collection
        Collection id.
    bbox, datetime
        Search filters (for a path or URL).
    required
        Raise when nothing is found (else return an empty list).

    Returns
    -------
    list of pystac.Item

    Raises
    ------
    EmptySearchError
        Nothing found and ``required``.

    Examples
    --------
    >>> len(find(tiny.catalog_path, "dem"))
    1
    """
    if isinstance(where, str | os.PathLike):
        try:
            return list(
                cat.search(os.fspath(where), collections=collection, bbox=bbox, datetime=datetime)
            )
        except CatalogError:
            if required:
                raise
            return []
    items = [it for it in where if it.collection_id == collection]
    if not items and required:
        raise EmptySearchError(
            f"The items given hold no {collection!r} item: search that collection too, or pass "
            "the catalog itself."
        )
    return items


def reference_grid(items: Sequence[pystac.Item], *, bbox: Sequence[float] | None = None) -> GeoBox:
    """The one reference grid of a recipe: the Sentinel-2 grid of the items (10 m), over bbox.

    Parameters
    ----------
    items
        Items whose grid sets the reference (Sentinel-2 first; SAR when there is none).
    bbox
        Area (lon/lat) to cover.

    Returns
    -------
    odc.geo.geobox.GeoBox

    Raises
    ------
    CubeError
        No item, or items without projection.
    """
    return cube.reference_geobox(items, bbox=bbox)
