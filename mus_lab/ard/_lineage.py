"""What an ARD cube records of how it was made: the search and the grid (a recipe's start).

The stages after ARD (time series, features) add their options to the same record
(``attrs["mus_lab:recipe"]``, :data:`mus_lab.contracts.RECIPE_ATTR`), so that a model trained
on features built stage by stage records a recipe ``mus-lab landcover predict`` can replay.
"""

from __future__ import annotations

from typing import Any

from odc.geo.geobox import GeoBox

__all__ = ["grid_record", "search_record"]


def grid_record(gbox: GeoBox) -> dict[str, Any]:
    """A grid as JSON (CRS, affine transform, shape), to rebuild the very same grid.

    Parameters
    ----------
    gbox
        The grid.

    Returns
    -------
    dict

    Examples
    --------
    >>> g = GeoBox.from_bbox((0, 0, 20, 20), "EPSG:32631", resolution=10)
    >>> grid_record(g)["shape"]
    [2, 2]
    """
    return {
        "crs": str(gbox.crs),
        "transform": [float(v) for v in list(gbox.affine)[:6]],
        "shape": [int(gbox.shape[0]), int(gbox.shape[1])],
    }


def search_record(items: Any, gbox: GeoBox, *, source_key: str) -> dict[str, Any]:
    """The search that found ``items`` (when they are a search result) and the grid used.

    Parameters
    ----------
    items
        What the stage was given: a :class:`~mus_lab.catalog.SearchResult` records its catalog
        and query; bare items record only their collection.
    gbox
        The grid of the stage's output.
    source_key
        Recipe key of the collection (``"optical_source"`` or ``"radar_sources"``).

    Returns
    -------
    dict
        ``catalog``, ``bbox``, ``datetime``, ``grid`` and the collection key.
    """
    query = getattr(items, "query", None) or {}
    source = getattr(items, "source", None) or None
    ids = dict.fromkeys(getattr(it, "collection_id", None) for it in items)
    collections = [str(c) for c in ids if c]
    record: dict[str, Any] = {
        "catalog": source,
        "bbox": list(query["bbox"]) if query.get("bbox") else None,
        "datetime": query.get("datetime"),
        "grid": grid_record(gbox),
    }
    if source_key == "optical_source":
        record[source_key] = collections[0] if collections else None
    else:
        record[source_key] = list(collections)
    return record
