"""Holdings: the catalogue of what the lab holds locally, behind one interface.

Two backends answer the same :class:`Holdings` protocol:

- :class:`StaticHoldings` (the embedded default): a static STAC catalog in a folder,
  ``DIR/catalog.json`` -> ``DIR/<collection>/collection.json`` ->
  ``DIR/<collection>/<item id>/<item id>.json``, each item's files beside its JSON. It
  needs no server and is what ``catalog.harvest`` fills.
- ``PgstacHoldings`` (``postgresql://`` URLs): PostgreSQL + pgstac, for many items and
  for the STAC API (``mus_lab.catalog._pgstac``).

:func:`open_holdings` picks the backend from the location.

An item's JSON is written last (temporary name, then rename), once its files are in
place, so an item file on disk always means a complete item. The collection and
catalog files are derived from the item files present, under a lock, so several
processes may ingest into one folder and a killed ingest is repaired by the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pystac

from mus_lab._process import pid_alive
from mus_lab.catalog._events import announce_new_items, has_listeners
from mus_lab.catalog._local import open_local
from mus_lab.catalog._query import SearchQuery
from mus_lab.errors import CatalogError, CatalogUnreachableError

__all__ = ["Holdings", "StaticHoldings", "open_holdings"]

_LOCKS = ".locks"
_TMP = ".tmp-"
_THREAD_LOCK = threading.Lock()


@runtime_checkable
class Holdings(Protocol):
    """A catalogue of local holdings that can be searched and ingested into."""

    location: str

    def ingest(self, items: Iterable[pystac.Item]) -> int:
        """Add or replace ``items`` (their asset hrefs already point at local files).

        Parameters
        ----------
        items
            Items with a collection id.

        Returns
        -------
        int
            How many items were written.
        """
        ...

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Return the items matching ``query``, as :func:`mus_lab.catalog.search` does.

        Parameters
        ----------
        query
            The checked request.

        Returns
        -------
        list of pystac.Item
            The matching items.
        """
        ...

    def collections(self) -> tuple[str, ...]:
        """Return the ids of the collections holding items.

        Returns
        -------
        tuple of str
            Sorted collection ids.
        """
        ...

    def get(self, collection: str, item_id: str) -> pystac.Item | None:
        """Return one item, or ``None`` if it is not held.

        Parameters
        ----------
        collection
            Collection id.
        item_id
            Item id.

        Returns
        -------
        pystac.Item or None
            The item, with absolute asset hrefs.
        """
        ...


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}{_TMP}{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sweep_temporaries(folders: Iterable[Path]) -> None:
    """Remove the temporary JSON files that dead writers left in ``folders``.

    Called under the holdings lock; a live writer's temporary file (its process still
    runs) is left alone. Harvest ``.part`` files are not temporaries of this kind.
    """
    for folder in folders:
        for tmp in folder.glob(f".*.json{_TMP}*"):
            pid = tmp.name.rpartition(_TMP)[2].split("-")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)


class StaticHoldings:
    """Holdings kept as a static STAC catalog in a folder (the embedded default).

    Parameters
    ----------
    path
        The folder (created on first ingest).
    title
        Title of the root catalog when it is created.

    Examples
    --------
    >>> import datetime, shutil, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> item = pystac.Item("S2A_T31TCJ_20240601", {"type": "Point", "coordinates": [1.4, 43.6]},
    ...                    [1.4, 43.6, 1.4, 43.6], datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC),
    ...                    {}, collection="sentinel-2-l2a")
    >>> holdings = StaticHoldings(folder)
    >>> holdings.ingest([item])
    1
    >>> holdings.collections(), holdings.get("sentinel-2-l2a", "S2A_T31TCJ_20240601").id
    (('sentinel-2-l2a',), 'S2A_T31TCJ_20240601')
    >>> shutil.rmtree(folder)
    """

    def __init__(self, path: str | Path, *, title: str = "mus_lab holdings") -> None:
        self.path = Path(path).expanduser().absolute()
        self.location = str(self.path)
        self.title = title

    def __repr__(self) -> str:
        return f"StaticHoldings({self.location!r})"

    def item_dir(self, collection: str, item_id: str) -> Path:
        """Return the folder of one item: ``DIR/<collection>/<item id>``.

        Parameters
        ----------
        collection
            Collection id.
        item_id
            Item id.

        Returns
        -------
        Path
            The folder (not created).
        """
        return self.path / collection / item_id

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_dir = self.path / _LOCKS
        lock_dir.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCK, open(lock_dir / "holdings.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ingest(self, items: Iterable[pystac.Item]) -> int:
        """Write each item's JSON beside its files and relink the collections and catalog.

        Asset hrefs that are local paths inside the item's folder are written relative
        (``./B04.tif``); other hrefs are kept as they are.

        Parameters
        ----------
        items
            Items with a collection id.

        Returns
        -------
        int
            How many items were written.

        Raises
        ------
        CatalogError
            An item has no collection id, or the folder cannot be written.
        """
        touched: dict[str, dict[str, dict[str, Any]]] = {}
        count = 0
        listening = has_listeners()
        announced: list[pystac.Item] = []
        try:
            for item in items:
                collection = item.collection_id
                if not collection:
                    raise CatalogError(
                        f"Item {item.id!r} has no collection id: set item.collection_id "
                        "before ingesting it into the holdings."
                    )
                folder = self.item_dir(collection, item.id)
                folder.mkdir(parents=True, exist_ok=True)
                data = item.to_dict(include_self_link=False, transform_hrefs=False)
                for asset in data.get("assets", {}).values():
                    href = str(asset.get("href", ""))
                    local = Path(href[7:] if href.startswith("file://") else href)
                    if local.is_absolute() and local.parent == folder:
                        asset["href"] = f"./{local.name}"
                data["collection"] = collection
                data["links"] = [
                    link for link in data.get("links", []) if link.get("rel") not in _OWN_RELS
                ] + [
                    {"rel": "collection", "href": "../collection.json", "type": "application/json"},
                    {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                    {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
                ]
                _write_json(folder / f"{item.id}.json", data)
                touched.setdefault(collection, {})[item.id] = data
                count += 1
                if listening:
                    written = pystac.Item.from_dict(data, preserve_dict=True)
                    written.set_self_href(str(folder / f"{item.id}.json"))
                    announced.append(written)
            with self._locked():
                for collection, batch in touched.items():
                    _sweep_temporaries(
                        [self.path / collection, *(self.item_dir(collection, i) for i in batch)]
                    )
                    self._relink_collection(collection, batch)
                _sweep_temporaries([self.path])
                self._relink_catalog()
        except OSError as exc:
            raise CatalogError(
                f"Cannot write the holdings in {self.path} ({exc.strerror or exc}): "
                "free some disk space or choose another folder."
            ) from exc
        announce_new_items(announced, source=self.location)
        return count

    def _relink_collection(self, collection: str, batch: dict[str, dict[str, Any]]) -> None:
        # The extent grows with what is ingested: the old collection's extent joined with
        # this batch's items, plus any item on disk that the old collection did not list (a
        # killed ingest wrote it but never relinked). Only those are read, so an ingest costs
        # its batch, not the whole collection. Items are never removed, so the union is exact.
        folder = self.path / collection
        ids = sorted(p.parent.name for p in folder.glob("*/*.json") if p.stem == p.parent.name)
        path = folder / "collection.json"
        old: dict[str, Any] = {}
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(path.read_text(encoding="utf-8"))
        listed = {
            link["href"].split("/")[1]
            for link in old.get("links", [])
            if link.get("rel") == "item" and link.get("href", "").count("/") == 2
        }
        bboxes, starts, ends = [], [], []
        with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
            old_box = old["extent"]["spatial"]["bbox"][0]
            old_interval = old["extent"]["temporal"]["interval"][0]
            if listed:
                bboxes.append(old_box)
                starts.append(old_interval[0])
                ends.append(old_interval[1])
        unread = [i for i in ids if i not in batch and i not in listed]
        items = list(batch.values())
        for item_id in unread:
            with contextlib.suppress(OSError, ValueError):
                items.append(json.loads((folder / item_id / f"{item_id}.json").read_text("utf-8")))
        for data in items:
            box = data.get("bbox") or []
            if len(box) in (4, 6):  # a 3-D bbox is (minx, miny, minz, maxx, maxy, maxz)
                bboxes.append([box[0], box[1], box[-3], box[-2]] if len(box) == 6 else box)
            props = data.get("properties", {})
            starts.append(props.get("start_datetime") or props.get("datetime"))
            ends.append(props.get("end_datetime") or props.get("datetime"))
        spatial = (
            [
                [
                    min(b[0] for b in bboxes),
                    min(b[1] for b in bboxes),
                    max(b[2] for b in bboxes),
                    max(b[3] for b in bboxes),
                ]
            ]
            if bboxes
            else [[-180.0, -90.0, 180.0, 90.0]]
        )
        times = [t for t in starts if t], [t for t in ends if t]
        data = {
            "type": "Collection",
            "stac_version": pystac.get_stac_version(),
            "id": collection,
            "description": old.get("description", f"{collection} held locally"),
            "license": old.get("license", "other"),
            "extent": {
                "spatial": {"bbox": spatial},
                "temporal": {
                    "interval": [
                        [min(times[0]) if times[0] else None, max(times[1]) if times[1] else None]
                    ]
                },
            },
            "links": [
                {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
            ]
            + [
                {"rel": "item", "href": f"./{i}/{i}.json", "type": "application/geo+json"}
                for i in ids
            ],
        }
        for key in ("title", "providers", "summaries", "keywords", "stac_extensions"):
            if key in old:
                data[key] = old[key]
        _write_json(path, data)

    def _relink_catalog(self) -> None:
        collections = sorted(
            p.parent.name for p in self.path.glob("*/collection.json") if p.parent.is_dir()
        )
        _write_json(
            self.path / "catalog.json",
            {
                "type": "Catalog",
                "stac_version": pystac.get_stac_version(),
                "id": "mus-lab-holdings",
                "title": self.title,
                "description": "Files held locally by mus_lab (harvested or ingested).",
                "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
                + [
                    {"rel": "child", "href": f"./{c}/collection.json", "type": "application/json"}
                    for c in collections
                ],
            },
        )

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Search the held items.

        Parameters
        ----------
        query
            A request built by :func:`mus_lab.catalog._query.build_query`.

        Returns
        -------
        list of pystac.Item
            Matching items (empty when the folder holds none yet).

        Raises
        ------
        UnknownCollectionError
            A requested collection is not held.
        """
        if not (self.path / "catalog.json").is_file():
            return []
        return open_local(self.path).find(query)

    def collections(self) -> tuple[str, ...]:
        """Return the ids of the collections holding items.

        Returns
        -------
        tuple of str
            Sorted ids (empty before the first ingest).
        """
        return tuple(
            sorted(
                p.parent.name
                for p in self.path.glob("*/collection.json")
                if any(p.parent.glob("*/*.json"))
            )
        )

    def get(self, collection: str, item_id: str) -> pystac.Item | None:
        """Return one held item, or ``None``.

        Parameters
        ----------
        collection
            Collection id.
        item_id
            Item id.

        Returns
        -------
        pystac.Item or None
            The item with absolute asset hrefs, ``None`` if it is not held.
        """
        path = self.item_dir(collection, item_id) / f"{item_id}.json"
        if not path.is_file():
            return None
        item = pystac.Item.from_file(str(path))
        item.make_asset_hrefs_absolute()
        return item


_OWN_RELS = frozenset({"self", "root", "parent", "collection"})


def open_holdings(location: str | Path, **options: Any) -> Holdings:
    """Open the holdings at ``location``: a folder, or a ``postgresql://`` URL.

    Parameters
    ----------
    location
        A folder (static catalog, created on first ingest) or a PostgreSQL URL
        of a database holding the pgstac schema (``mus-lab holdings init``).
    **options
        Passed to the backend.

    Returns
    -------
    Holdings
        :class:`StaticHoldings` or ``PgstacHoldings``.

    Raises
    ------
    CatalogUnreachableError
        The location is an URL of another kind.

    Examples
    --------
    >>> open_holdings("holdings")
    StaticHoldings('.../holdings')
    """
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from mus_lab.catalog._pgstac import PgstacHoldings  # type: ignore[import-not-found]

        return PgstacHoldings(text, **options)  # type: ignore[no-any-return]
    if "://" in text and not text.startswith("file://"):
        raise CatalogUnreachableError(
            f"Holdings at {text!r} cannot be opened: give a folder or a postgresql:// URL."
        )
    return StaticHoldings(text[7:] if text.startswith("file://") else text, **options)
