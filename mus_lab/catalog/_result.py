"""The result of a search, the same type for STAC APIs and local catalogs."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import pystac

if TYPE_CHECKING:  # pragma: no cover
    import geopandas
    import pandas

__all__ = ["SearchResult"]


def _item_interval(item: pystac.Item) -> tuple[Any, Any]:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return start, end


@dataclass(frozen=True)
class SearchResult:
    """Items found by :func:`mus_lab.catalog.search`, with the request that found them.

    Attributes
    ----------
    items
        The items, in the order the catalog returned them.
    collections
        Ids of the collections the items belong to, in order of first appearance.
    query
        The normalised request (plain dict: collections, bbox, intersects, datetime
        interval, max_cloud, filter, max_items, limit).
    source
        The STAC API URL or the local ``catalog.json`` path searched.

    Examples
    --------
    >>> result = SearchResult(items=(), query={}, source="catalog.json")
    >>> len(result), result.collections
    (0, ())
    """

    items: tuple[pystac.Item, ...]
    query: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    collections: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        ids = dict.fromkeys(i.collection_id for i in self.items if i.collection_id)
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "collections", tuple(ids))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[pystac.Item]:
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> pystac.Item: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[pystac.Item, ...]: ...
    def __getitem__(self, index: int | slice) -> pystac.Item | tuple[pystac.Item, ...]:
        return self.items[index]

    def item_collection(self) -> pystac.ItemCollection:
        """Return the items as a :class:`pystac.ItemCollection` (items are not copied).

        Returns
        -------
        pystac.ItemCollection
            The same items, e.g. to save as GeoJSON (``.save_object(...)``).

        Examples
        --------
        >>> len(SearchResult(items=()).item_collection())
        0
        """
        return pystac.ItemCollection(self.items, clone_items=False)

    def to_geodataframe(self) -> geopandas.GeoDataFrame:
        """Return one row per item: geometry (EPSG:4326), ``id``, ``collection`` and properties.

        Returns
        -------
        geopandas.GeoDataFrame
            One row per item, in the result's order.

        Examples
        --------
        >>> SearchResult(items=()).to_geodataframe().shape[0]
        0
        """
        import geopandas
        import pandas

        rows = [{"id": i.id, "collection": i.collection_id, **i.properties} for i in self.items]
        geoms = [i.geometry for i in self.items]
        frame = pandas.DataFrame(rows, columns=None if rows else ["id", "collection"])
        from shapely.geometry import shape

        return geopandas.GeoDataFrame(
            frame,
            geometry=[shape(g) if g else None for g in geoms],
            crs="EPSG:4326",
        )

    def summary(self) -> pandas.DataFrame:
        """Return one row per collection: item count, first/last datetime, cloud cover, asset keys.

        Returns
        -------
        pandas.DataFrame
            Indexed by collection id, columns as below.

        Examples
        --------
        >>> list(SearchResult(items=()).summary().columns)
        ['count', 'first_datetime', 'last_datetime', 'min_cloud_cover', 'mean_cloud_cover', 'assets']
        """
        import pandas

        columns = [
            "count", "first_datetime", "last_datetime",
            "min_cloud_cover", "mean_cloud_cover", "assets",
        ]  # fmt: skip
        rows = {}
        for cid in dict.fromkeys(i.collection_id or "" for i in self.items):
            items = [i for i in self.items if (i.collection_id or "") == cid]
            starts = [s for s, _ in map(_item_interval, items) if s is not None]
            ends = [e for _, e in map(_item_interval, items) if e is not None]
            clouds = [
                float(c) for i in items if (c := i.properties.get("eo:cloud_cover")) is not None
            ]
            keys = sorted({k for i in items for k in i.assets})
            rows[cid] = {
                "count": len(items),
                "first_datetime": pandas.Timestamp(min(starts)) if starts else pandas.NaT,
                "last_datetime": pandas.Timestamp(max(ends)) if ends else pandas.NaT,
                "min_cloud_cover": min(clouds) if clouds else float("nan"),
                "mean_cloud_cover": sum(clouds) / len(clouds) if clouds else float("nan"),
                "assets": ", ".join(keys),
            }
        frame = pandas.DataFrame.from_dict(rows, orient="index", columns=columns)
        frame.index.name = "collection"
        return frame

    def __repr__(self) -> str:
        cols = ", ".join(self.collections) or "no collection"
        return f"<SearchResult {len(self)} items ({cols}) from {self.source}>"

    def _repr_html_(self) -> str:
        head = html.escape(repr(self))
        if not self.items:
            return f"<p>{head}</p>"
        table = self.summary()[["count", "first_datetime", "last_datetime", "min_cloud_cover"]]
        return f"<p>{head}</p>{table.to_html()}"
