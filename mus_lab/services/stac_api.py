"""A STAC API of the holdings and products: stac-fastapi-pgstac behind a token guard.

:class:`StacApiServer` runs stac-fastapi-pgstac (through uvicorn, in a subprocess) over a
pgstac database on 127.0.0.1, with the transaction extension for publishing and the
``filter`` (CQL2), ``sort``, ``fields``, ``query``, ``pagination`` and collection-search
extensions. The app it serves is :func:`create_app`: stac-fastapi-pgstac's own app wrapped
in :class:`BearerTokenGuard`, since stac-fastapi has no authentication of its own, and
:class:`BodyCheck` (400 for bodies that are no JSON document or carry malformed ``links``;
``"links": []`` added to an item sent without them).

- Reads are public: ``GET``, ``HEAD``, ``OPTIONS`` anywhere and ``POST /search``. The
  notices' Atom feeds (``GET /notices/feeds/{feed_id}``, :mod:`mus_lab.services._feeds`)
  are read by whoever holds a subscription's unguessable feed id.
- Every other request (``POST``/``PUT``/``PATCH``/``DELETE`` on ``/collections...``, the
  bulk items route) needs ``Authorization: Bearer TOKEN``: 401 without it, 403 with a
  wrong one; nothing reaches the database. Refused by default: a route added later is a
  write unless listed as a read.
- The token is read from the file named by ``MUS_LAB_STAC_API_TOKEN_FILE`` (what
  :class:`StacApiServer` writes, mode 0600) or from ``MUS_LAB_STAC_API_TOKEN``; it never
  appears in a log, a response, a repr or an exception. Without a token every write is
  refused.

The products' queryables (:func:`install_queryables`): for every product collection of
:mod:`mus_lab.contracts`, ``processing:level`` (its one level; the description lists the
contract's variables, the item's raster assets) and ``proj:code``, added to pgstac's
``queryables`` table when the collection is created, so that ``/collections/{id}/queryables``
answers from the contract.

From a shell: ``python -m mus_lab.services.stac_api start|stop|status DIR --database URL``
(or ``--postgres PGDIR``, the folder of a :class:`~mus_lab.services.postgres.PostgresCluster`;
``make services`` calls it after starting PostgreSQL; the token is in ``DIR/token``).

stac-fastapi-pgstac and uvicorn are the ``serve`` extra (``pip install 'mus_lab[serve]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from mus_lab.errors import ServiceError
from mus_lab.services._life import TokenServer, child_env, command

if TYPE_CHECKING:
    from mus_lab.services.serve import ServeContext

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "BearerTokenGuard",
    "BodyCheck",
    "StacApiServer",
    "create_app",
    "install_queryables",
    "product_queryables",
    "service",
]

TOKEN_ENV = "MUS_LAB_STAC_API_TOKEN"
TOKEN_FILE_ENV = "MUS_LAB_STAC_API_TOKEN_FILE"
#: The search extensions served besides the transactions.
EXTENSIONS = ("query", "sort", "fields", "filter", "pagination", "collection_search", "free_text")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_POSTS = frozenset({"/search"})
_INSTALL_HINT = "install the serve extra: pip install 'mus_lab[serve]'"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What the service's command line holds (a recycled pid is never signalled).
_MARKER = b"mus_lab.services.stac_api:create_app"


# -- the app ---------------------------------------------------------------------------
class BearerTokenGuard:
    """ASGI middleware: public reads, writes only with ``Authorization: Bearer TOKEN``.

    Parameters
    ----------
    app
        The ASGI app behind (stac-fastapi-pgstac's).
    token
        The publishing token; ``None`` or empty refuses every write.

    Examples
    --------
    >>> guard = BearerTokenGuard(lambda s, r, w: None, "s3cret")
    >>> guard.is_write("GET", "/collections"), guard.is_write("POST", "/search")
    (False, False)
    >>> guard.is_write("POST", "/collections"), guard.is_write("DELETE", "/collections/x")
    (True, True)
    >>> "s3cret" in repr(guard)
    False
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = (token or "").encode("utf-8")

    def __repr__(self) -> str:
        return f"BearerTokenGuard(token={'set' if self._token else 'unset'})"

    @staticmethod
    def is_write(method: str, path: str) -> bool:
        """Whether a request needs the token (everything but the reads).

        Parameters
        ----------
        method, path
            The request's method and path (without the root path).

        Returns
        -------
        bool
        """
        method = method.upper()
        if method in _READ_METHODS:
            return False
        return not (method == "POST" and path.rstrip("/") in _READ_POSTS)

    def _allowed(self, scope: Scope) -> int:
        """200 when the request carries the token, else 401 (none) or 403 (wrong one)."""
        given = b""
        for key, value in scope.get("headers", ()):
            if key.lower() == b"authorization":
                given = bytes(value)
                break
        scheme, _, credential = given.partition(b" ")
        if scheme.lower() != b"bearer" or not credential.strip():
            return 401
        if not self._token or not hmac.compare_digest(credential.strip(), self._token):
            return 403
        return 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            root = str(scope.get("root_path", ""))
            if root and path.startswith(root):
                path = path[len(root) :]
            if self.is_write(str(scope.get("method", "GET")), path):
                status = self._allowed(scope)
                if status != 200:
                    await _refuse(send, status)
                    return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int) -> None:
    if status == 415:
        body = {"code": "UnsupportedMediaType", "description": "Send the body as JSON."}
    elif status == 400:
        body = {
            "code": "BadRequest",
            "description": "The body must be a JSON object (PATCH: an object or a list of "
            "operations) whose links, if any, are objects with rel and href.",
        }
    elif status == 401:
        body = {
            "code": "Unauthorized",
            "description": "Publishing needs a token: send the header "
            "'Authorization: Bearer TOKEN' (the token of the server's folder).",
        }
    else:
        body = {"code": "Forbidden", "description": "The publishing token is not this server's."}
    data = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="mus_lab"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _links_ok(data: Any) -> bool:
    """Whether a body leaves ``links`` and ``id`` well formed.

    A merge-patch is stored as sent: malformed links broke every later read of that
    collection, a ``null`` id crashed the item check. So ``links`` must be a list of objects
    with ``rel`` and ``href``, ``id`` a non-empty string, and a JSON-patch list may touch
    neither ``/links`` nor ``/id``.
    """
    if isinstance(data, list):
        return not any(
            isinstance(op, dict) and str(op.get("path", "")).startswith(("/links", "/id"))
            for op in data
        )
    if not isinstance(data, dict):
        return True
    if "id" in data and not (isinstance(data["id"], str) and data["id"]):
        return False
    if "links" not in data:
        return True
    links = data["links"]
    return isinstance(links, list) and all(
        isinstance(ln, dict) and isinstance(ln.get("rel"), str) and isinstance(ln.get("href"), str)
        for ln in links
    )


class BodyCheck:
    """ASGI middleware on request bodies: refuse what is no JSON document, default item links.

    - A body declared as something else than JSON gets 415.
    - 400 for: a body that is not JSON; a ``POST`` or ``PUT`` body that is not an object
      (``null``, a list, a number); a ``PATCH`` body that is neither an object nor a list;
      an empty ``PUT`` or ``PATCH``; ``links`` that are not a list of objects with ``rel``
      and ``href``; an ``id`` that is no string; a JSON-patch touching ``/links`` or
      ``/id``. stac-fastapi passes such bodies on unchecked and answered 500, or stored a
      collection no read could render any more (found by fuzzing).
    - An item posted or put to ``/collections/{id}/items...`` without ``links`` gets
      ``"links": []``: STAC makes ``links`` required and stac-fastapi's item model refuses
      an item without it (400), while clients (stac-api-validator's transaction test among
      them) leave it out because the server writes the links anyway.

    Parameters
    ----------
    app
        The ASGI app behind.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        data: Any = None
        if body.strip() and not _json_type(scope):
            await _refuse(send, 415)
            return
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:  # not JSON (FastAPI's validation crashed on some)
                await _refuse(send, 400)
                return
        if body.strip() or method != "POST":
            allowed: tuple[type, ...] = (dict, list) if method == "PATCH" else (dict,)
            if not isinstance(data, allowed) or not _links_ok(data):
                await _refuse(send, 400)
                return
        path = str(scope.get("path", ""))
        if (
            method != "PATCH"
            and isinstance(data, dict)
            and "/items" in path
            and path.startswith(str(scope.get("root_path", "")) + "/collections/")
        ):
            features = (
                data.get("features", []) if data.get("type") == "FeatureCollection" else [data]
            )
            changed = False
            for feature in features if isinstance(features, list) else []:
                if isinstance(feature, dict) and feature.get("type") == "Feature":
                    if "links" not in feature:
                        feature["links"] = []
                        changed = True
            if changed:
                body = json.dumps(data).encode("utf-8")
                scope = dict(scope)
                scope["headers"] = [
                    (k, v) for k, v in scope.get("headers", ()) if k.lower() != b"content-length"
                ] + [(b"content-length", str(len(body)).encode())]
        message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([message], receive), send)


def _json_type(scope: Scope) -> bool:
    """Whether the request declares no content type or a JSON one (``*json*``)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-type":
            return b"json" in bytes(value).lower()
    return True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


def _read_token() -> str | None:
    name = os.environ.get(TOKEN_FILE_ENV)
    if name:
        with contextlib.suppress(OSError):
            return Path(name).read_text("utf-8").strip() or None
    return os.environ.get(TOKEN_ENV) or None


def create_app() -> ASGIApp:
    """stac-fastapi-pgstac's app behind :class:`BearerTokenGuard` (a uvicorn factory).

    With one route of its own: ``GET /notices/feeds/{feed_id}``, the Atom feed of a notices
    subscription (:mod:`mus_lab.services._feeds`; public to whoever holds the feed id).

    Configured by environment variables: the database by ``PGHOST``, ``PGPORT``,
    ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``; the extensions by ``ENABLED_EXTENSIONS``
    and ``ENABLE_TRANSACTIONS_EXTENSIONS`` (stac-fastapi-pgstac's settings); the token by
    ``MUS_LAB_STAC_API_TOKEN_FILE`` or ``MUS_LAB_STAC_API_TOKEN``.
    ``uvicorn mus_lab.services.stac_api:create_app --factory`` serves it.

    Returns
    -------
    ASGI app

    Raises
    ------
    ServiceError
        stac-fastapi-pgstac is not installed.
    """
    try:
        from stac_fastapi.pgstac.app import create_app as pgstac_app
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceError(f"stac-fastapi-pgstac is missing: {_INSTALL_HINT}.") from exc
    from mus_lab.services._feeds import RedactFeedIds, add_feed_route

    app = pgstac_app()
    _bad_requests_are_400(app)
    add_feed_route(app)
    logging.getLogger("uvicorn.access").addFilter(RedactFeedIds())
    return BearerTokenGuard(BodyCheck(app), _read_token())


def _patch_errors() -> tuple[type[Exception], ...]:
    try:
        import jsonpatch
        import jsonpointer
    except ImportError:  # pragma: no cover - stac-fastapi-pgstac depends on jsonpatch
        return ()
    return (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException)


def _bad_requests_are_400(app: Any) -> None:
    """Answer 400, not 500, to requests that stac-fastapi-pgstac passes on unchecked.

    Found by fuzzing (schemathesis): a malformed paging ``token`` (pgstac raises), a
    ``query`` parameter that is not JSON, text PostgreSQL cannot store (a ``\\u0000``
    escape) reach the database or the JSON parser and came back as server errors.
    """
    import asyncpg
    import orjson
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        reason = " ".join(str(exc).split())[:200]
        return JSONResponse({"code": "BadRequest", "description": reason}, status_code=400)

    for kind in (
        asyncpg.exceptions.RaiseError,  # pgstac's own checks (e.g. "Invalid paging token")
        asyncpg.exceptions.DataError,  # values PostgreSQL refuses (bad escapes, types)
        orjson.JSONDecodeError,
        json.JSONDecodeError,
        *_patch_errors(),  # a JSON-patch whose operations do not apply
    ):
        app.add_exception_handler(kind, bad_request)


# -- queryables ------------------------------------------------------------------------
def product_queryables() -> list[tuple[str, list[str], dict[str, Any]]]:
    """The queryables of the product collections, from :mod:`mus_lab.contracts`.

    Returns
    -------
    list of (name, collection ids, JSON schema)
        One ``processing:level`` and one ``proj:code`` entry per contract; the level's
        description names the contract's variables (the items' raster assets).

    Examples
    --------
    >>> rows = product_queryables()
    >>> [(n, c) for n, c, _ in rows if "flood-risk" in c]
    [('processing:level', ['flood-risk']), ('proj:code', ['flood-risk'])]
    >>> next(d for n, c, d in rows if c == ["flood-risk"])["enum"]
    ['L4-flood-risk']
    """
    from mus_lab import contracts

    rows: list[tuple[str, list[str], dict[str, Any]]] = []
    for contract in contracts.CONTRACTS.values():
        ids = [contract.collection]
        if contract is contracts.LANDCOVER:
            ids = sorted({contract.collection, *contracts.LANDCOVER_COLLECTIONS.values()})
        variables = ", ".join(
            f"{v.name} ({v.dtype}{', ' + v.unit if v.unit else ''})" for v in contract.variables
        )
        rows.append(
            (
                "processing:level",
                ids,
                {
                    "title": "Processing level",
                    "description": f"{contract.kind} products; raster assets: {variables}",
                    "type": "string",
                    "enum": [contract.level],
                },
            )
        )
        rows.append(
            (
                "proj:code",
                ids,
                {"title": "CRS of the assets", "type": "string", "pattern": "^[A-Z]+:[0-9]+$"},
            )
        )
    return rows


_QUERYABLES_SQL = """
CREATE TABLE IF NOT EXISTS public.mus_lab_queryables (
    name text NOT NULL, collection_id text NOT NULL, definition jsonb NOT NULL,
    PRIMARY KEY (name, collection_id));
CREATE OR REPLACE FUNCTION public.mus_lab_add_queryables() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pgstac.queryables (name, collection_ids, definition)
    SELECT q.name, ARRAY[NEW.id], q.definition FROM public.mus_lab_queryables q
    WHERE q.collection_id = NEW.id AND NOT EXISTS (
        SELECT 1 FROM pgstac.queryables p WHERE p.name = q.name AND NEW.id = ANY(p.collection_ids));
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER mus_lab_queryables AFTER INSERT ON pgstac.collections
    FOR EACH ROW EXECUTE FUNCTION public.mus_lab_add_queryables();
"""


def install_queryables(database_url: str, *, timeout: float = 30) -> None:
    """Give every product collection its :func:`product_queryables`, now and when created.

    pgstac's ``queryables`` rows must name existing collections, so the definitions go to
    a table of their own (``public.mus_lab_queryables``) and a trigger on
    ``pgstac.collections`` copies a collection's rows when the collection is created
    (by a transaction of the API or by the holdings' loader); collections already there
    get theirs at once. Safe to run again.

    Parameters
    ----------
    database_url
        The pgstac database.
    timeout
        Connection timeout in seconds.

    Raises
    ------
    CatalogUnreachableError
        The database cannot be reached or holds no pgstac schema.
    """
    from mus_lab.catalog._pgstac import _connect

    with _connect(database_url, timeout=timeout) as conn, conn.transaction():
        conn.execute(_QUERYABLES_SQL)
        for name, ids, definition in product_queryables():
            for collection_id in ids:
                conn.execute(
                    "INSERT INTO public.mus_lab_queryables (name, collection_id, definition) "
                    "VALUES (%s, %s, %s::jsonb) ON CONFLICT (name, collection_id) "
                    "DO UPDATE SET definition = EXCLUDED.definition",
                    (name, collection_id, json.dumps(definition)),
                )
        conn.execute(
            "INSERT INTO pgstac.queryables (name, collection_ids, definition) "
            "SELECT q.name, ARRAY[c.id], q.definition FROM public.mus_lab_queryables q "
            "JOIN pgstac.collections c ON c.id = q.collection_id WHERE NOT EXISTS ("
            "SELECT 1 FROM pgstac.queryables p WHERE p.name = q.name "
            "AND c.id = ANY(p.collection_ids))"
        )


# -- the server ------------------------------------------------------------------------
def _free_port() -> int:
    from mus_lab.services.postgres import _free_port as free

    return free()


def _database_env(url: str) -> dict[str, str]:
    """PGHOST... for stac-fastapi-pgstac, the password read from the URL or its passfile."""
    from mus_lab.catalog._pgstac import redact_url

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = parts.hostname or query.get("host", "127.0.0.1")
    port = str(parts.port or query.get("port", 5432))
    database = unquote(parts.path.lstrip("/")) or "postgres"
    user = unquote(parts.username or query.get("user", ""))
    password = unquote(parts.password) if parts.password else query.get("password")
    passfile = query.get("passfile") or os.environ.get("PGPASSFILE")
    if password is None and passfile:
        with contextlib.suppress(OSError):
            for line in Path(passfile).read_text("utf-8").splitlines():
                fields = line.split(":", 4)
                if len(fields) == 5 and all(
                    want == "*" or want == have
                    for want, have in zip(fields[:4], (host, port, database, user), strict=True)
                ):
                    password = fields[4]
                    break
    if not user or password is None:
        raise ServiceError(
            f"{redact_url(url)!r} names no user or no password (in the URL or its passfile): "
            "the STAC API needs both; use the URL of `python -m mus_lab.services.postgres start`."
        )
    return {
        "PGHOST": host,
        "PGPORT": port,
        "PGDATABASE": database,
        "PGUSER": user,
        "PGPASSWORD": password,
    }


class StacApiServer(TokenServer):
    """stac-fastapi-pgstac (:func:`create_app`) in a subprocess on 127.0.0.1.

    Parameters
    ----------
    database_url
        The pgstac database (e.g. :attr:`PostgresCluster.url`; its password may sit in a
        passfile).
    folder
        Where the server keeps its log (``stac-api.log``), its token (``token``, mode 0600)
        and its state (``stac-api.json``).
    port
        TCP port (default: a free one).
    token
        The publishing token (default: the one in ``folder/token``, else a new random one).

    Examples
    --------
    ``with StacApiServer(url, folder) as api:`` starts the server, ``api.url`` is its
    address and ``api.token`` the publishing token; the block's end stops it.

    >>> import tempfile
    >>> server = StacApiServer("postgresql://u@127.0.0.1/db", tempfile.mkdtemp(), token="T0K-SECRET")
    >>> "T0K-SECRET" in repr(server), server.running
    (False, False)
    """

    NAME = "stac-api"
    TITLE = "The STAC API"
    MARKER = _MARKER
    HEALTH = "/_mgmt/ping"

    def __init__(
        self,
        database_url: str,
        folder: str | os.PathLike[str],
        *,
        port: int | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(folder, port=port, token=token)
        self.database_url = database_url

    def start(self, *, timeout: float = 60) -> StacApiServer:
        """Start the server and wait until it answers (the process outlives this object).

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Returns
        -------
        StacApiServer
            ``self``.

        Raises
        ------
        ServiceError
            stac-fastapi-pgstac is missing, the database URL lacks credentials, or the
            server did not answer in time (the message quotes its log).
        """
        if self.running:
            return self
        try:
            import stac_fastapi.pgstac  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise ServiceError(
                f"stac-fastapi-pgstac and uvicorn are missing: {_INSTALL_HINT}."
            ) from None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_token()
        install_queryables(self.database_url)
        port = self._port or _free_port()
        env = child_env(
            (
                "PG",
                "POSTGRES_",
                "MUS_LAB_STAC_API",
                "ENABLED_EXTENSIONS",
                "ENABLE_TRANSACTIONS_EXTENSIONS",
            )
        )
        env.update(_database_env(self.database_url))
        env.update(
            {
                "ENABLED_EXTENSIONS": ",".join(EXTENSIONS),
                "ENABLE_TRANSACTIONS_EXTENSIONS": "true",
                "STAC_FASTAPI_TITLE": "mus_lab products",
                "STAC_FASTAPI_DESCRIPTION": "Holdings and products of the lab (pgstac)",
                "STAC_FASTAPI_LANDING_ID": "mus_lab",
                "DB_MIN_CONN_SIZE": "1",
                "DB_MAX_CONN_SIZE": "4",
                TOKEN_FILE_ENV: str(self.token_file),
            }
        )
        cmd = [
            "-m", "uvicorn", "mus_lab.services.stac_api:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
        ]  # fmt: skip
        return self._spawn(cmd, env, port=port, timeout=timeout)


def service(folder: Path, context: ServeContext) -> StacApiServer:
    """The STAC API of ``mus-lab serve`` (the :mod:`mus_lab.services.serve` registry's hook).

    Parameters
    ----------
    folder
        The server's folder (log, token, state).
    context
        A :class:`~mus_lab.services.serve.ServeContext` (its ``database_url`` is used).

    Returns
    -------
    StacApiServer
        Not started.
    """
    return StacApiServer(context.database_url, folder)


def database_option(database: str | None, postgres: Path | None, action: str) -> str:
    """The database URL of a server's command line: ``--database``, else ``--postgres``'s.

    Parameters
    ----------
    database, postgres
        The two options (``None`` when not given).
    action
        ``start`` needs one of them.

    Returns
    -------
    str
        The URL, ``""`` when neither is given and the action is not ``start``.

    Raises
    ------
    ServiceError
        ``start`` without either option.
    """
    url = database or ""
    if postgres is not None and not url:
        from mus_lab.services.postgres import PostgresCluster

        url = PostgresCluster(postgres).url
    if action == "start" and not url:
        raise ServiceError("start needs --database URL (the pgstac database) or --postgres DIR.")
    return url


def main(argv: list[str] | None = None) -> int:
    """``python -m mus_lab.services.stac_api start|stop|status DIR [--database URL | --postgres DIR]``.

    Parameters
    ----------
    argv
        The arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        0 on success (``status``: running), 1 for ``status`` of a server that is not
        running, 2 on an error (one line on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m mus_lab.services.stac_api",
        description="The lab's STAC API (stac-fastapi-pgstac) on 127.0.0.1.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--database", default=None, help="pgstac database URL (for start)")
    parser.add_argument(
        "--postgres",
        type=Path,
        default=None,
        help="or: the folder of a PostgresCluster (for start)",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)

    def build() -> StacApiServer:
        database = database_option(args.database, args.postgres, args.action)
        return StacApiServer(database, args.folder, port=args.port)

    return command(
        build,
        args.action,
        lambda s: f"STAC API running: {s.url} (publishing token in {s.token_file})",
    )


if __name__ == "__main__":
    sys.exit(main())
