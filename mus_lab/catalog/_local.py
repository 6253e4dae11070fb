"""Search a static STAC catalog on disk, with no server.

The catalog is walked once per path (and ``catalog.json`` modification time) and
its items kept in memory, each with its shapely geometry, time interval and dict
form for CQL2 evaluation; searches then only filter that index.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from mus_lab.catalog._geometry import to_shape
from mus_lab.catalog._query import SearchQuery, legacy_to_cql2
from mus_lab.errors import CatalogUnreachableError, UnknownCollectionError

__all__ = ["LocalCatalog", "open_local"]


@dataclass(frozen=True)
class _Entry:
    item: pystac.Item
    collection: str
    shape: BaseGeometry | None
    start: dt.datetime | None
    end: dt.datetime | None
    cloud: float | None
    as_dict: dict[str, Any]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _entry(item: pystac.Item, collection: str) -> _Entry:
    if item.get_self_href() is not None:
        item.make_asset_hrefs_absolute()
    cm = item.common_metadata
    cloud = item.properties.get("eo:cloud_cover")
    as_dict = item.to_dict(include_self_link=False, transform_hrefs=False)
    as_dict.setdefault("collection", collection or None)
    return _Entry(
        item=item,
        collection=collection,
        shape=to_shape(item.geometry, item.bbox),
        start=_utc(cm.start_datetime or item.datetime),
        end=_utc(cm.end_datetime or item.datetime),
        cloud=None if cloud is None else float(cloud),
        as_dict=as_dict,
    )


class LocalCatalog:
    """An in-memory index of the items of a static STAC catalog.

    Build it with :func:`open_local`, which caches one per path.

    Attributes
    ----------
    path
        The resolved ``catalog.json`` path.
    collections
        Ids of the collections holding items, sorted.
    """

    def __init__(self, path: Path, entries: tuple[_Entry, ...]) -> None:
        self.path = path
        self._entries = entries
        self.collections: tuple[str, ...] = tuple(sorted({e.collection for e in entries}))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<LocalCatalog {self.path} ({len(self)} items in {', '.join(self.collections)})>"

    def find(self, query: SearchQuery) -> list[pystac.Item]:
        """Return copies of the items matching ``query``, in catalog order.

        Parameters
        ----------
        query
            A checked request (:func:`mus_lab.catalog._query.build_query`, as
            :func:`~mus_lab.catalog.search` makes it).

        Returns
        -------
        list of pystac.Item
            Copies: changing them leaves the catalog's index as it was.

        Raises
        ------
        UnknownCollectionError
            A requested collection is not in this catalog.

        Examples
        --------
        >>> from mus_lab.catalog._query import build_query
        >>> q = build_query(collections="sentinel-1-grd", bbox=None, intersects=None,
        ...                 datetime="2022-04", max_cloud=None, filter=None, filter_lang=None,
        ...                 max_items=None, limit=None)
        >>> items = open_local(tiny.catalog_path).find(q)
        >>> {i.collection_id for i in items}, all(i.datetime.month == 4 for i in items)
        ({'sentinel-1-grd'}, True)
        """
        unknown = [c for c in query.collections if c not in self.collections]
        if unknown:
            raise UnknownCollectionError(
                f"Collection(s) {unknown} not in the local catalog {self.path}: choose among "
                f"{list(self.collections)}."
            )
        wanted = set(query.collections)
        area: BaseGeometry | None = None
        if query.bbox is not None:
            area = box(*query.bbox)
        elif query.intersects is not None:
            area = shape(query.intersects)
        start, end = query.interval
        expr = None
        if query.filter is not None:
            import cql2

            expr = cql2.Expr(legacy_to_cql2(query.filter))
        found: list[pystac.Item] = []
        for e in self._entries:
            if wanted and e.collection not in wanted:
                continue
            if area is not None and (e.shape is None or not e.shape.intersects(area)):
                continue
            if start is not None and (e.end is None or e.end < start):
                continue
            if end is not None and (e.start is None or e.start > end):
                continue
            if query.max_cloud is not None and (e.cloud is None or e.cloud > query.max_cloud):
                continue
            if expr is not None and not _matches(expr, e.as_dict):
                continue
            found.append(e.item.clone())
            if query.max_items is not None and len(found) >= query.max_items:
                break
        return found


def _matches(expr: Any, item: dict[str, Any]) -> bool:
    try:
        return bool(expr.matches(item))
    except Exception:  # cql2 cannot reduce: a property the item lacks (SQL NULL) -> no match
        return False


_CACHE: dict[tuple[Path, int], LocalCatalog] = {}
_LOCK = threading.Lock()


def _catalog_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "catalog.json"
    if not p.is_file():
        hint = (
            "generate one with mus_lab.sample.generate(out) and pass out/'catalog'"
            if not Path(path).exists()
            else "pass the folder that holds catalog.json, or the catalog.json itself"
        )
        raise CatalogUnreachableError(f"No STAC catalog at {str(path)!r}: {hint}.")
    return p.resolve()


def open_local(path: str | Path, *, refresh: bool = False) -> LocalCatalog:
    """Open a static STAC catalog on disk and index its items in memory.

    The index is built once per path and reused while ``catalog.json`` is unchanged.

    Parameters
    ----------
    path
        A folder holding ``catalog.json`` (e.g. ``<out>/catalog`` of the generated
        scenario) or the ``catalog.json`` file itself.
    refresh
        Re-read the catalog even if it is cached.

    Returns
    -------
    LocalCatalog
        The indexed catalog, accepted by :func:`search` in place of the path.

    Raises
    ------
    CatalogUnreachableError
        There is no catalog at ``path`` or it cannot be read as STAC.

    Examples
    --------
    >>> from mus_lab.sample import generate  # doctest: +SKIP
    >>> cat = open_local(generate("scenario") / "catalog")  # doctest: +SKIP
    >>> cat.collections  # doctest: +SKIP
    ('dem', 'flood-truth', 'landcover-truth', 'rcm-grd', 'sentinel-1-grd', 'sentinel-2-l2a')
    """
    file = _catalog_file(path)
    key = (file, file.stat().st_mtime_ns)
    with _LOCK:
        if not refresh and key in _CACHE:
            return _CACHE[key]
    try:
        root = pystac.read_file(str(file))
        if not isinstance(root, pystac.Catalog):
            raise CatalogUnreachableError(
                f"{file} is a STAC {type(root).__name__}, not a catalog or collection: "
                "pass the catalog.json at the top of the static catalog."
            )
        entries = []
        for parent, _children, items in root.walk():
            default = parent.id if isinstance(parent, pystac.Collection) else ""
            for item in items:
                entries.append(_entry(item, item.collection_id or default))
    except (pystac.STACError, OSError, ValueError, KeyError) as exc:
        raise CatalogUnreachableError(
            f"The static catalog {file} cannot be read ({type(exc).__name__}: {exc}): "
            "check that it is valid STAC JSON with relative or reachable hrefs."
        ) from exc
    catalog = LocalCatalog(file, tuple(entries))
    with _LOCK:
        for stale in [k for k in _CACHE if k[0] == file]:  # an older version of this file
            del _CACHE[stale]
        _CACHE[key] = catalog
    return catalog
