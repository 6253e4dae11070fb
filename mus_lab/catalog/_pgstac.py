"""Holdings in PostgreSQL + pgstac: the second backend behind :class:`Holdings`.

The database holds the pgstac schema (``mus-lab holdings init URL`` runs
``pypgstac``'s migration). Items go in through ``pypgstac``'s ``Loader`` (their
collections created on the fly when missing, items upserted) and come out through
pgstac's ``search`` SQL function, the one stac-fastapi-pgstac serves, so that the
same database can later be published as a STAC API.

A :class:`~mus_lab.catalog._query.SearchQuery` becomes a pgstac search body
(:func:`pgstac_search_body`): collections, ``bbox`` or ``intersects``, the closed UTC
datetime interval, and one CQL2-JSON filter joining the user's filter and
``eo:cloud_cover <= max_cloud``. The answer is the same set of items as the static
backend gives for the same query (a test compares them); the order differs: pgstac
answers newest first.

Secrets: the URL's password never appears in a message, a repr or
:attr:`PgstacHoldings.location` (:func:`redact_url`). Connection and URL errors are
re-raised without the driver's exception chained (its text can quote the URL); the
reason is in the message.

psycopg and pypgstac are an optional extra (``pip install 'mus_lab[holdings]'``),
imported on first use.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import pystac
from pystac.utils import is_absolute_href, make_absolute_href

from mus_lab.catalog._events import announce_new_items, has_listeners
from mus_lab.catalog._query import SearchQuery, legacy_to_cql2
from mus_lab.errors import CatalogError, CatalogUnreachableError, UnknownCollectionError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PgstacHoldings",
    "database_url",
    "migrate_pgstac",
    "pgstac_search_body",
    "redact_url",
    "search_database",
]

_SCHEMES = ("postgresql://", "postgres://")
_OWN_RELS = frozenset({"self", "root", "parent", "collection"})
_CHUNK = 2000
_INIT_HINT = "run `mus-lab holdings init URL` on it (URL: the same database URL)"
_INSTALL_HINT = "install the holdings extra: pip install 'mus_lab[holdings]'"
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Return ``url`` with its password (in the user part or the query) replaced by ``***``.

    Parameters
    ----------
    url
        A database URL (``postgresql://user:password@host:port/db?...``) or a libpq
        ``key=value`` connection string.

    Returns
    -------
    str
        The same text without the password.

    Examples
    --------
    >>> redact_url("postgresql://lab:s3cret@db.example:5432/holdings?sslmode=require")
    'postgresql://lab:***@db.example:5432/holdings?sslmode=require'
    >>> redact_url("postgresql://lab@127.0.0.1/h?password=s3cret")
    'postgresql://lab@127.0.0.1/h?password=***'
    >>> redact_url("host=db user=lab password=s3cret")
    'host=db user=lab password=***'
    """
    text = str(url)
    if "://" not in text:
        return _KV_PASSWORD.sub(r"\1***", text)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
        query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query, flags=re.IGNORECASE)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return f"{text.split('://', 1)[0]}://***"


def _scrub(message: str, url: str) -> str:
    """Remove ``url``'s password from a driver message, in case the driver quoted it."""
    text = " ".join(str(message).split())
    try:
        secret = urlsplit(url).password
    except ValueError:
        secret = None
    if secret:
        text = text.replace(secret, "***")
    text = text.replace(url, redact_url(url))
    return _KV_PASSWORD.sub(r"\1***", text)


def _check_url(url: str) -> None:
    if not str(url).startswith(_SCHEMES):
        raise CatalogUnreachableError(
            f"{redact_url(url)!r} is not a PostgreSQL URL: write "
            "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE."
        )


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CatalogUnreachableError(
            f"PostgreSQL holdings need psycopg and pypgstac, which are missing: {_INSTALL_HINT}."
        ) from exc
    return psycopg


def _connect(url: str, *, timeout: float, create_database: bool = False) -> psycopg.Connection:
    """Open an autocommit connection with ``pgstac`` first on the search path."""
    _check_url(url)
    pg = _psycopg()
    shown = redact_url(url)
    try:
        return cast(
            "psycopg.Connection",
            pg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, round(timeout)),
                options="-c search_path=pgstac,public",
            ),
        )
    except pg.ProgrammingError:
        # libpq's own text quotes the malformed string: leave it out.
        raise CatalogUnreachableError(
            f"{shown!r} is not a valid PostgreSQL URL: write "
            "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (percent-encode special "
            "characters in the password)."
        ) from None
    except pg.OperationalError as exc:
        reason = _scrub(str(exc), url)
        if create_database and "does not exist" in reason and "database" in reason:
            _create_database(url, timeout=timeout)
            return _connect(url, timeout=timeout)
        if "invalid" in reason and ("connection option" in reason or "URI" in reason):
            raise CatalogUnreachableError(
                f"{shown!r} is not a valid PostgreSQL URL ({reason}): write "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE."
            ) from None
        if "password authentication failed" in reason or "no password supplied" in reason:
            fix = "check the user and password in the URL (or its passfile)"
        elif "does not exist" in reason:
            fix = f"create it, or {_INIT_HINT}, which creates a missing database"
        else:
            fix = (
                "start the server (`make services` starts the lab's own on 127.0.0.1) or "
                "correct the host and port"
            )
        raise CatalogUnreachableError(
            f"Cannot connect to the holdings database {shown} ({reason}): {fix}."
        ) from None


def _create_database(url: str, *, timeout: float) -> None:
    """Create the database named in ``url`` through the server's ``postgres`` database."""
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        return
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))
    conn = _connect(admin, timeout=timeout)
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except Exception as exc:
        raise CatalogUnreachableError(
            f"The database {name!r} does not exist on {redact_url(url)} and cannot be created "
            f"({_scrub(str(exc), url)}): create it as an administrator, then {_INIT_HINT}."
        ) from None
    finally:
        conn.close()


def _pgstac_version(conn: psycopg.Connection) -> str | None:
    row = conn.execute("SELECT to_regclass('pgstac.migrations') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    row = conn.execute(
        "SELECT version FROM pgstac.migrations ORDER BY datetime DESC, version DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _pypgstac_version() -> str:
    try:
        from pypgstac.version import __version__
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CatalogUnreachableError(
            f"PostgreSQL holdings need pypgstac, which is missing: {_INSTALL_HINT}."
        ) from exc
    return str(__version__)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


class _PinnedDb:
    """Build a ``pypgstac.db.PgstacDB`` that works on one connection we own.

    pypgstac's ``PgstacDB`` opens a pool of its own; the Loader and the migration
    only need ``connect()`` to return a connection with ``pgstac`` on its search path.
    """

    @staticmethod
    def make(conn: psycopg.Connection) -> Any:
        from pypgstac.db import PgstacDB

        class Pinned(PgstacDB):  # type: ignore[misc]
            def connect(self) -> Any:
                return conn

            def get_pool(self) -> Any:
                return _NoPool()

            def disconnect(self) -> None:
                return None

        return Pinned(dsn="")


class _NoPool:
    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


def migrate_pgstac(url: str, *, timeout: float = 10.0) -> str:
    """Install or upgrade the pgstac schema in a database (``mus-lab holdings init``).

    Creates the database when it is missing and the user may, checks that PostGIS is
    available, then runs ``pypgstac``'s migration to the installed pypgstac version.

    Parameters
    ----------
    url
        ``postgresql://`` URL of the database. The user needs the rights to create
        extensions (PostGIS, btree_gist, unaccent) and roles the first time.
    timeout
        Seconds to wait for the connection.

    Returns
    -------
    str
        The pgstac version now in the database.

    Raises
    ------
    CatalogUnreachableError
        The server cannot be reached, PostGIS is not installed on it, or the migration
        failed (the message says why and what to do).
    """
    conn = _connect(url, timeout=timeout, create_database=True)
    shown = redact_url(url)
    try:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int / 10000, "
            "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis')"
        ).fetchone()
        major, has_postgis = (row[0], row[1]) if row else (None, False)
        if not has_postgis:
            raise CatalogUnreachableError(
                f"PostGIS is not installed on the server of {shown} (PostgreSQL {major}): "
                f"install it (Debian: `make postgis`, i.e. apt-get install "
                f"postgresql-{major}-postgis-3), then run `mus-lab holdings init` again."
            )
        from pypgstac.migrate import Migrate

        try:
            version = str(Migrate(_PinnedDb.make(conn)).run_migration())
        except CatalogUnreachableError:
            raise
        except Exception as exc:
            if not conn.closed:
                conn.rollback()
            raise CatalogUnreachableError(
                f"The pgstac migration of {shown} failed ({_scrub(str(exc), url)[:400]}): "
                "the user needs the rights to create extensions and roles the first time "
                "(run it once as a superuser), and the database must be PostgreSQL 13 or later."
            ) from None
        return version
    finally:
        conn.close()


def pgstac_search_body(query: SearchQuery, *, limit: int = 1000) -> dict[str, Any]:
    """Translate a checked search request into the JSON body of pgstac's ``search``.

    Parameters
    ----------
    query
        The request, as :func:`mus_lab.catalog._query.build_query` makes it.
    limit
        Page size (capped by ``query.max_items``).

    Returns
    -------
    dict
        ``collections``, ``bbox`` or ``intersects``, ``datetime`` (the closed UTC
        interval, ``..`` for an open end), ``filter`` (CQL2-JSON joining the filter and
        ``eo:cloud_cover <= max_cloud``), ``filter-lang``, ``limit`` and ``conf``.

    Examples
    --------
    >>> from mus_lab.catalog._query import build_query
    >>> q = build_query(collections="sentinel-2-l2a", bbox=(1, 43, 2, 44), intersects=None,
    ...                 datetime="2024-06", max_cloud=20, filter=None, filter_lang=None,
    ...                 max_items=None, limit=None)
    >>> body = pgstac_search_body(q)
    >>> body["datetime"], body["filter"]
    ('2024-06-01T00:00:00.000000Z/2024-06-30T23:59:59.999999Z', {'op': '<=', 'args': [{'property': 'eo:cloud_cover'}, 20.0]})
    """
    body: dict[str, Any] = {"conf": {"context": "off", "nohydrate": True}}
    if query.collections:
        body["collections"] = list(query.collections)
    if query.bbox is not None:
        body["bbox"] = list(query.bbox)
    elif query.intersects is not None:
        body["intersects"] = query.intersects
    start, end = query.interval
    if start is not None or end is not None:
        body["datetime"] = f"{_iso(start)}/{_iso(end)}"
    parts: list[Any] = []
    if query.filter is not None:
        parts.append(legacy_to_cql2(query.filter))
    if query.max_cloud is not None:
        parts.append({"op": "<=", "args": [{"property": "eo:cloud_cover"}, query.max_cloud]})
    if parts:
        body["filter"] = parts[0] if len(parts) == 1 else {"op": "and", "args": parts}
        body["filter-lang"] = "cql2-json"
    body["limit"] = min(limit, query.max_items) if query.max_items else limit
    return body


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return ".."
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hydrate(feature: dict[str, Any]) -> dict[str, Any]:
    """Merge a non-hydrated pgstac item with the base item it carries (as pgstac would).

    pgstac stores items without what their collection's base item holds; merging here,
    with pypgstac's merge, gives the same JSON as pgstac's own hydration and is quicker
    (docs/design/0009-holdings.md).
    """
    base = feature.pop("pgstac:base_item", None)
    if not base:
        return feature
    from pypgstac.hydration import hydrate

    return cast("dict[str, Any]", hydrate(base, feature))


def _next_token(page: dict[str, Any]) -> str | None:
    for link in page.get("links") or ():
        if link.get("rel") == "next":
            href = str(link.get("href", ""))
            tokens = parse_qs(urlsplit(href).query).get("token")
            if tokens:
                return tokens[0]
    return None


def _record(item: pystac.Item) -> dict[str, Any]:
    """The item as pgstac stores it: absolute asset hrefs, no file-tree links."""
    collection = item.collection_id
    if not collection:
        raise CatalogError(
            f"Item {item.id!r} has no collection id: set item.collection_id before "
            "ingesting it into the holdings."
        )
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    base = item.get_self_href()
    for asset in (data.get("assets") or {}).values():
        href = str(asset.get("href", ""))
        if base and href and not is_absolute_href(href):
            asset["href"] = make_absolute_href(href, base)
    data["links"] = [link for link in data.get("links", []) if link.get("rel") not in _OWN_RELS]
    data["collection"] = collection
    return data


def _collection_record(cid: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A minimal STAC collection for items whose collection is not in the database yet."""
    boxes = [r["bbox"] for r in records if r.get("bbox")]
    times = [
        t
        for r in records
        for t in (
            r["properties"].get("start_datetime") or r["properties"].get("datetime"),
            r["properties"].get("end_datetime") or r["properties"].get("datetime"),
        )
        if t
    ]
    bbox = (
        [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[-2] for b in boxes),
            max(b[-1] for b in boxes),
        ]
        if boxes
        else [-180.0, -90.0, 180.0, 90.0]
    )
    return {
        "type": "Collection",
        "stac_version": pystac.get_stac_version(),
        "id": cid,
        "description": f"{cid} held locally",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [[min(times), max(times)] if times else [None, None]]},
        },
        "links": [],
    }


class PgstacHoldings:
    """Holdings in a PostgreSQL database with the pgstac schema.

    Open it with :func:`~mus_lab.catalog.open_holdings` (``postgresql://`` URL) or
    directly. The connection is opened on first use and kept; :meth:`close` (or a
    ``with`` block) closes it.

    Parameters
    ----------
    url
        ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?passfile=...]``; the
        database must hold the pgstac schema (``mus-lab holdings init URL``).
    connect_timeout
        Seconds to wait for the server.
    page_size
        Items asked of pgstac per page when searching.

    Attributes
    ----------
    location
        The URL without its password.

    Raises
    ------
    CatalogUnreachableError
        ``url`` is not a PostgreSQL URL (raised here); the server cannot be reached or
        has no pgstac schema (raised on first use).

    Examples
    --------
    >>> PgstacHoldings("postgresql://lab:s3cret@127.0.0.1:5432/holdings")
    PgstacHoldings('postgresql://lab:***@127.0.0.1:5432/holdings')
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0, page_size: int = 1000) -> None:
        _check_url(url)
        self._url = str(url)
        self.location = redact_url(self._url)
        self.connect_timeout = connect_timeout
        self.page_size = page_size
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"PgstacHoldings({self.location!r})"

    def __enter__(self) -> PgstacHoldings:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        conn = _connect(self._url, timeout=self.connect_timeout)
        try:
            version = _pgstac_version(conn)
        except Exception as exc:  # the server went away right after the connection
            conn.close()
            raise self._database_error("reading the pgstac version", exc) from None
        expected = _pypgstac_version()
        if version is None or _minor(version) != _minor(expected):
            conn.close()
            what = (
                "has no pgstac schema"
                if version is None
                else f"holds pgstac {version}, this lab speaks pgstac {expected}"
            )
            raise CatalogUnreachableError(f"The database {self.location} {what}: {_INIT_HINT}.")
        self._conn = conn
        return conn

    def _database_error(self, action: str, exc: Exception) -> CatalogError:
        psycopg = _psycopg()
        if isinstance(exc, psycopg.OperationalError):
            self.close()
            return CatalogUnreachableError(
                f"The holdings database {self.location} went away while {action} "
                f"({_scrub(str(exc), self._url)[:300]}): check that the server still runs."
            )
        return CatalogError(
            f"The holdings database {self.location} refused {action} "
            f"({_scrub(str(exc), self._url)[:400]})."
        )

    def collections(self) -> tuple[str, ...]:
        """Return the ids of the collections holding items.

        Returns
        -------
        tuple of str
            Sorted ids.

        Raises
        ------
        CatalogUnreachableError
            The database cannot be reached or has no pgstac schema.
        """
        with self._lock:
            conn = self._connection()
            try:
                rows = conn.execute(
                    "SELECT c.id FROM pgstac.collections c WHERE EXISTS "
                    "(SELECT 1 FROM pgstac.items i WHERE i.collection = c.id) ORDER BY c.id"
                ).fetchall()
            except Exception as exc:
                raise self._database_error("listing the collections", exc) from None
        return tuple(str(r[0]) for r in rows)

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
            The item as ingested (absolute asset hrefs), ``None`` if it is not held.

        Raises
        ------
        CatalogUnreachableError
            The database cannot be reached or has no pgstac schema.
        """
        with self._lock:
            conn = self._connection()
            try:
                row = conn.execute(
                    "SELECT pgstac.get_item(%s, %s)", (item_id, collection)
                ).fetchone()
            except Exception as exc:
                raise self._database_error(f"reading item {item_id!r}", exc) from None
        if row is None or row[0] is None:
            return None
        return pystac.Item.from_dict(row[0], preserve_dict=False)

    def ingest(self, items: Iterable[pystac.Item]) -> int:
        """Add or replace ``items`` (upsert), creating their collections when missing.

        Items are loaded in chunks through ``pypgstac``'s ``Loader``; each touched
        collection's extent is recomputed at the end.

        Parameters
        ----------
        items
            Items with a collection id and a datetime (or start/end datetimes).
            Relative asset hrefs are made absolute from the item's self link.

        Returns
        -------
        int
            How many items were written.

        Raises
        ------
        CatalogError
            An item has no collection id, or the database refused an item.
        CatalogUnreachableError
            The database cannot be reached or has no pgstac schema.
        """
        from pypgstac.load import Loader, Methods

        count = 0
        touched: set[str] = set()
        listening = has_listeners()
        announced: list[pystac.Item] = []
        iterator: Iterator[pystac.Item] = iter(items)
        with self._lock:
            conn = self._connection()
            loader = Loader(_PinnedDb.make(conn))
            while batch := list(islice(iterator, _CHUNK)):
                given = [_record(i) for i in batch]
                # One upsert may not touch a row twice: the last copy of an item wins.
                chunk = list({(r["collection"], r["id"]): r for r in given}.values())
                ids = sorted({r["collection"] for r in chunk})
                try:
                    rows = conn.execute(
                        "SELECT id FROM pgstac.collections WHERE id = ANY(%s)", (ids,)
                    ).fetchall()
                    missing = [c for c in ids if c not in {r[0] for r in rows}]
                    if missing:
                        loader.load_collections(
                            iter(
                                [
                                    _collection_record(
                                        c, [r for r in chunk if r["collection"] == c]
                                    )
                                    for c in missing
                                ]
                            ),
                            insert_mode=Methods.ignore,
                        )
                    loader.load_items(iter(chunk), insert_mode=Methods.upsert)
                except Exception as exc:
                    raise self._database_error("the items", exc) from None
                touched.update(ids)
                count += len(given)
                if listening:  # as given: their self links lead to them
                    announced += batch
            if touched:
                try:
                    conn.execute(
                        "UPDATE pgstac.collections SET content = jsonb_set_lax(content, "
                        "'{extent}', pgstac.collection_extent(id, TRUE), true, 'return_target') "
                        "WHERE id = ANY(%s)",
                        (sorted(touched),),
                    )
                except Exception as exc:
                    raise self._database_error("updating the collection extents", exc) from None
        announce_new_items(announced, source=self.location)
        return count

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Search the held items with pgstac's ``search`` function, following its pages.

        Parameters
        ----------
        query
            A request built by :func:`mus_lab.catalog._query.build_query`. Its ``limit``
            (a STAC API page size) is not used; :attr:`page_size` is.

        Returns
        -------
        list of pystac.Item
            The matches, newest first, at most ``query.max_items``; empty when the
            database holds no items yet.

        Raises
        ------
        UnknownCollectionError
            A requested collection is not held.
        CatalogUnreachableError
            The database cannot be reached or has no pgstac schema.
        CatalogError
            The database refused the query (e.g. a filter pgstac cannot translate).
        """
        held = self.collections()
        unknown = [c for c in query.collections if c not in held]
        if unknown:
            if not held:
                return []
            raise UnknownCollectionError(
                f"Collection(s) {unknown} not in the holdings {self.location}: choose among "
                f"{list(held)}."
            )
        body = pgstac_search_body(query, limit=self.page_size)
        found: list[pystac.Item] = []
        seen: set[str] = set()
        from psycopg.types.json import Jsonb

        with self._lock:
            conn = self._connection()
            while True:
                try:
                    row = conn.execute("SELECT pgstac.search(%s)", (Jsonb(body),)).fetchone()
                except Exception as exc:
                    raise self._database_error(f"the search {query.describe()}", exc) from None
                page: dict[str, Any] = row[0] if row else {}
                for feature in page.get("features") or ():
                    found.append(pystac.Item.from_dict(_hydrate(feature), preserve_dict=False))
                    if query.max_items is not None and len(found) >= query.max_items:
                        return found
                token = _next_token(page)
                if token is None or token in seen:
                    return found
                seen.add(token)
                body["token"] = token


def search_database(url: str, query: SearchQuery) -> tuple[list[pystac.Item], str]:
    """Search the pgstac holdings at ``url`` once (:func:`mus_lab.catalog.search`'s branch).

    Parameters
    ----------
    url
        ``postgresql://`` URL.
    query
        The checked request.

    Returns
    -------
    tuple
        The items and the URL without its password (the result's source).

    Raises
    ------
    UnknownCollectionError
        A requested collection is not held.
    CatalogUnreachableError
        The database cannot be reached or has no pgstac schema.
    """
    with PgstacHoldings(url) as holdings:
        return holdings.search(query), holdings.location


def database_url(
    *, host: str, port: int, database: str, user: str, passfile: str | None = None
) -> str:
    """Build a ``postgresql://`` URL that names a passfile instead of holding a password.

    Parameters
    ----------
    host, port, database, user
        Where and as whom to connect.
    passfile
        A libpq password file (``host:port:db:user:password`` lines, mode 0600).

    Returns
    -------
    str
        The URL, safe to print.

    Examples
    --------
    >>> database_url(host="127.0.0.1", port=5433, database="mus_lab", user="mus_lab",
    ...              passfile="pg/pgpass")
    'postgresql://mus_lab@127.0.0.1:5433/mus_lab?passfile=pg/pgpass'
    """
    url = f"postgresql://{quote(user, safe='')}@{host}:{port}/{quote(database, safe='')}"
    return f"{url}?passfile={quote(passfile, safe='/')}" if passfile else url
