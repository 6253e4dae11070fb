"""Map tiles of the products and ARD: titiler-pgstac over the holdings' pgstac database.

:class:`TileServer` runs :func:`create_app` (titiler-pgstac's factories, through uvicorn,
in a subprocess) on 127.0.0.1 over the same pgstac database as the STAC API
(:mod:`mus_lab.services.stac_api`). Routes (all reads, ``GET`` only):

- ``/collections/{c}/items/{i}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?assets=...``: XYZ
  tiles of an item's assets (a product layer, an ARD band, a true-colour composite);
  ``.../WMTSCapabilities.xml`` the same as a WMTS layer, ``.../tilejson.json``,
  ``.../point/{lon},{lat}`` the values at a point;
- ``/collections/{c}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?assets=...&bbox=...&datetime=...``:
  a mosaic of the collection's items over an area and a period (``query``/``sortby``
  choose, e.g. the least cloudy Sentinel-2 scene on top), and its
  ``/collections/{c}/WMTSCapabilities.xml``;
- ``/colorMaps``, ``/tileMatrixSets``, ``/healthz``.

Colours (:mod:`mus_lab.publish._tiles`): class maps with the colours of their
``classification:classes`` (the legend colours of :mod:`mus_lab.publish._legend`), the
named maps ``mus-landcover``, ``mus-risk``, ``mus-extent`` and titiler's ramps for
confidence, likelihood and the fusion measures; :func:`mus_lab.publish.asset_render` gives
the query parameters of an asset.

Safety: only ``GET``/``HEAD``/``OPTIONS`` are served (405 otherwise: no search is
registered, nothing written); titiler's routes that open any URL (``/external``,
``/cog``) and its HTML viewers (which load scripts from CDNs) are left out; an asset is
read only when its href is a local file under one of the server's ``roots`` (the product
store and the holdings' data folders, ``MUS_LAB_TILES_ROOTS``): any other href, a
``..`` or a link leading out of them is answered 403 without opening it.

From a shell: ``python -m mus_lab.services.tiles start|stop|status DIR --database URL
--root FOLDER...`` (or ``--postgres PGDIR``). titiler.pgstac and uvicorn are the ``serve``
extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mus_lab.errors import ServiceError
from mus_lab.services._life import Server, child_env, command

__all__ = [
    "ROOTS_ENV",
    "TILE_MATRIX_SETS",
    "HrefOutsideRoots",
    "TileServer",
    "allowed_href",
    "colormaps",
    "create_app",
]

#: Folders whose files the server may read (``os.pathsep``-separated absolute paths).
ROOTS_ENV = "MUS_LAB_TILES_ROOTS"
#: The tiling schemes served (WMTS tile matrix sets).
TILE_MATRIX_SETS = ("WebMercatorQuad", "WGS1984Quad")
_INSTALL_HINT = "install the serve extra: pip install 'mus_lab[serve]'"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: What the service's command line holds (a recycled pid is never signalled).
_MARKER = b"mus_lab.services.tiles:create_app"


class HrefOutsideRoots(Exception):  # an HTTP 403 of the app, not a MusLabError
    """An asset href that is no local file under the server's roots (answered 403)."""


def _roots() -> list[Path]:
    return [Path(p).resolve() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]


def allowed_href(href: str, roots: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The file ``href`` names when it is a local file inside one of ``roots``, else None.

    Links and ``..`` are resolved first, so that neither leads out of a root; URLs (``http``,
    ``s3``, GDAL's ``/vsi...``) are refused.

    Parameters
    ----------
    href
        An asset's href (a path or a ``file://`` URL).
    roots
        The folders that may be read.

    Returns
    -------
    pathlib.Path or None
        The resolved file, or None when it is outside every root (or no local path).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.tif").write_bytes(b"")
    >>> allowed_href(str(root / "a.tif"), [root]) == (root / "a.tif").resolve()
    True
    >>> allowed_href(str(root / ".." / "etc" / "passwd"), [root]) is None
    True
    >>> allowed_href("https://example.com/a.tif", [root]), allowed_href("/vsicurl/x", [root])
    (None, None)
    """
    parts = urlsplit(href)
    if parts.scheme == "file":
        href = unquote(parts.path)
    elif parts.scheme or href.startswith("/vsi"):
        return None
    path = Path(href)
    if not path.is_absolute():
        return None
    resolved = path.resolve()
    for root in roots:
        base = Path(root).resolve()
        if resolved == base or base in resolved.parents:
            return resolved
    return None


def colormaps() -> Any:
    """rio-tiler's colour maps with the lab's named class maps added.

    Returns
    -------
    rio_tiler.colormap.ColorMaps
        titiler's defaults plus :data:`mus_lab.publish.CLASS_COLORMAPS` (``mus-landcover``,
        ``mus-risk``, ``mus-extent``: code -> RGBA, other codes transparent).

    Raises
    ------
    ServiceError
        rio-tiler (the serve extra) is not installed.
    """
    try:
        from rio_tiler.colormap import cmap as default
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceError(f"titiler.pgstac is missing: {_INSTALL_HINT}.") from exc
    from mus_lab.publish import CLASS_COLORMAPS

    def rgba(hex_colour: str) -> tuple[int, int, int, int]:
        h = hex_colour.lstrip("#")
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)

    return default.register(
        {
            name: {int(code): rgba(colour) for code, colour in colours.items()}
            for name, colours in CLASS_COLORMAPS.items()
        },
        overwrite=True,
    )


def _guarded_readers() -> tuple[type, type]:
    """titiler-pgstac's item and mosaic readers whose asset reader checks the href first."""
    import attr
    from rio_tiler.io import Reader
    from titiler.pgstac.reader import PgSTACReader, SimpleSTACReader

    @attr.s
    class GuardedReader(Reader):  # type: ignore[misc]
        def __attrs_post_init__(self) -> None:
            if allowed_href(str(self.input), _roots()) is None:
                raise HrefOutsideRoots("This asset is not in the product store.")
            super().__attrs_post_init__()

    @attr.s
    class GuardedItemReader(PgSTACReader):  # type: ignore[misc]
        reader: type = attr.ib(default=GuardedReader)

    @attr.s
    class GuardedMosaicReader(SimpleSTACReader):  # type: ignore[misc]
        reader: type = attr.ib(default=GuardedReader)

    return GuardedItemReader, GuardedMosaicReader


class ReadOnly:
    """ASGI middleware: 405 for every method but ``GET``, ``HEAD`` and ``OPTIONS``.

    Parameters
    ----------
    app
        The ASGI app behind.

    Examples
    --------
    >>> ReadOnly(None).allowed("GET"), ReadOnly(None).allowed("POST")
    (True, False)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    @staticmethod
    def allowed(method: str) -> bool:
        """Whether ``method`` is a read.

        Parameters
        ----------
        method
            An HTTP method.

        Returns
        -------
        bool
        """
        return method.upper() in _READ_METHODS

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.allowed(str(scope.get("method", "GET"))):
            body = json.dumps(
                {"detail": "The tile service only reads: use GET (publish through the STAC API)."}
            ).encode("utf-8")
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"allow", b"GET, HEAD, OPTIONS"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def create_app() -> Any:
    """The tile service's ASGI app (a uvicorn factory): titiler-pgstac, read-only, guarded.

    Configured by environment variables: the database by ``PGHOST``, ``PGPORT``,
    ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE`` (or ``DATABASE_URL``), the readable folders
    by :data:`ROOTS_ENV`. ``uvicorn mus_lab.services.tiles:create_app --factory`` serves it.

    Returns
    -------
    ASGI app

    Raises
    ------
    ServiceError
        titiler.pgstac is not installed.
    """
    try:
        from fastapi import FastAPI
        from starlette.middleware.cors import CORSMiddleware
        from titiler.core.dependencies import create_colormap_dependency
        from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
        from titiler.core.factory import ColorMapFactory, MultiBaseTilerFactory, TMSFactory
        from titiler.extensions import wmtsExtension
        from titiler.mosaic.errors import MOSAIC_STATUS_CODES
        from titiler.mosaic.extensions.wmts import wmtsExtension as wmtsMosaicExtension
        from titiler.pgstac.db import close_db_connection, connect_to_db
        from titiler.pgstac.dependencies import CollectionIdParams, ItemIdParams
        from titiler.pgstac.errors import PGSTAC_STATUS_CODES
        from titiler.pgstac.factory import MosaicTilerFactory
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceError(f"titiler.pgstac is missing: {_INSTALL_HINT}.") from exc

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await connect_to_db(app)
        yield
        await close_db_connection(app)

    app = FastAPI(
        title="mus_lab tiles",
        description="Tiles of the lab's products and ARD (titiler-pgstac, read-only).",
        openapi_url="/api",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    errors: dict[type[Exception], int] = {HrefOutsideRoots: 403}
    for codes in (DEFAULT_STATUS_CODES, MOSAIC_STATUS_CODES, PGSTAC_STATUS_CODES):
        errors.update(dict(codes.items()))
    add_exception_handlers(app, errors)
    _empty_tiles_are_transparent(app)
    import morecantile

    # Web Mercator for web maps and GIS clients, WGS 84 for the others: a short WMTS.
    supported = morecantile.TileMatrixSets({k: morecantile.tms.get(k) for k in TILE_MATRIX_SETS})
    cmap = colormaps()
    colormap_dependency = create_colormap_dependency(cmap)
    item_reader, mosaic_reader = _guarded_readers()
    items = MultiBaseTilerFactory(
        reader=item_reader,
        path_dependency=ItemIdParams,
        router_prefix="/collections/{collection_id}/items/{item_id}",
        colormap_dependency=colormap_dependency,
        supported_tms=supported,
        add_viewer=False,
        extensions=[wmtsExtension()],
    )
    app.include_router(
        items.router, prefix="/collections/{collection_id}/items/{item_id}", tags=["Item"]
    )
    mosaics = MosaicTilerFactory(
        path_dependency=CollectionIdParams,
        dataset_reader=mosaic_reader,
        router_prefix="/collections/{collection_id}",
        colormap_dependency=colormap_dependency,
        supported_tms=supported,
        add_viewer=False,
        add_statistics=False,
        add_part=False,
        add_ogc_maps=False,
        extensions=[wmtsMosaicExtension()],
    )
    app.include_router(mosaics.router, prefix="/collections/{collection_id}", tags=["Mosaic"])
    app.include_router(TMSFactory(supported_tms=supported).router, tags=["Tiling Schemes"])
    app.include_router(ColorMapFactory(supported_colormaps=cmap).router, tags=["ColorMaps"])

    @app.get("/healthz", tags=["Health Check"])
    def healthz() -> dict[str, str]:
        """The service is up."""
        return {"status": "ok"}

    # Tiles are drawn into the dashboards' canvases from another port of 127.0.0.1.
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], allow_headers=["*"]
    )
    return ReadOnly(_CacheTiles(app))


def _transparent_png(size: int = 256) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (size, size), (0, 0, 0, 0)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _empty_tiles_are_transparent(app: Any) -> None:
    """A tile outside the item or without any scene is a transparent PNG, not 404/204.

    A web map asks for every tile of its view, also around the product: titiler answers
    those with 404 (an item's tile outside its bounds) or 204 (a mosaic tile without
    scenes), which browsers log as failed loads. Other routes keep titiler's answers.
    """
    from rio_tiler.errors import EmptyMosaicError, NoAssetFoundError, TileOutsideBounds
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    empty = _transparent_png()

    async def handler(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if "/tiles/" in path and path.endswith(".png"):
            return Response(empty, media_type="image/png", headers=_CACHE)
        status = 404 if isinstance(exc, TileOutsideBounds) else 204
        if status == 204:
            return Response(status_code=204)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    for kind in (TileOutsideBounds, EmptyMosaicError, NoAssetFoundError):
        app.add_exception_handler(kind, handler)


class _CacheTiles:
    """ASGI middleware: ``Cache-Control`` on successful tile answers (maps share tiles)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/tiles/" not in str(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_cached(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"cache-control"]
                message = {
                    **message,
                    "headers": [*headers, (b"cache-control", _CACHE["cache-control"].encode())],
                }
            await send(message)

        await self.app(scope, receive, send_cached)


_CACHE = {"cache-control": "public, max-age=600"}


# -- the server ------------------------------------------------------------------------
class TileServer(Server):
    """The tile service (:func:`create_app`) in a subprocess on 127.0.0.1.

    Parameters
    ----------
    database_url
        The pgstac database (the STAC API's; its password may sit in a passfile).
    folder
        Where the server keeps its log (``tiles.log``) and state (``tiles.json``).
    roots
        The folders whose files may be served (the product store, the holdings' data).
    port
        TCP port (default: a free one).

    Examples
    --------
    ``with TileServer(url, folder, roots=[store]) as tiles:`` starts it, ``tiles.url`` is
    its address; the block's end stops it.

    >>> import tempfile
    >>> server = TileServer("postgresql://u:PW-SECRET@127.0.0.1/db", tempfile.mkdtemp(), roots=[])
    >>> server.running, "PW-SECRET" in repr(server)
    (False, False)
    """

    NAME = "tiles"
    TITLE = "The tile service"
    MARKER = _MARKER

    def __init__(
        self,
        database_url: str,
        folder: str | os.PathLike[str],
        *,
        roots: Sequence[str | os.PathLike[str]] = (),
        port: int | None = None,
    ) -> None:
        super().__init__(folder, port=port)
        self.database_url = database_url
        self.roots = tuple(Path(r).expanduser().resolve() for r in roots)

    def start(self, *, timeout: float = 60) -> TileServer:
        """Start the server and wait until it answers (the process outlives this object).

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Returns
        -------
        TileServer
            ``self``.

        Raises
        ------
        ServiceError
            titiler.pgstac is missing, no root is given, the database URL lacks
            credentials, or the server did not answer in time (the message quotes its log).
        """
        if self.running:
            return self
        try:
            import titiler.pgstac  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise ServiceError(
                f"titiler.pgstac and uvicorn are missing: {_INSTALL_HINT}."
            ) from None
        if not self.roots:
            raise ServiceError(
                "The tile service needs the folders it may read: pass roots=[the product "
                "store, ...] (--root FOLDER on the command line)."
            )
        from mus_lab.services.stac_api import _database_env, _free_port

        self.folder.mkdir(parents=True, exist_ok=True)
        port = self._port or _free_port()
        env = child_env(("PG", "POSTGRES_", "DATABASE_URL", "TITILER", ROOTS_ENV))
        env.update(_database_env(self.database_url))
        env.update(
            {
                ROOTS_ENV: os.pathsep.join(str(r) for r in self.roots),
                "DB_MIN_CONN_SIZE": "1",
                "DB_MAX_CONN_SIZE": "4",
                "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
                "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
            }
        )
        cmd = [
            "-m", "uvicorn", "mus_lab.services.tiles:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip
        roots = {"roots": [str(r) for r in self.roots]}
        return self._spawn(cmd, env, port=port, timeout=timeout, state=roots)


def main(argv: list[str] | None = None) -> int:
    """``python -m mus_lab.services.tiles start|stop|status DIR [--database URL] [--root DIR]``.

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
        prog="python -m mus_lab.services.tiles",
        description="The lab's tile service (titiler-pgstac) on 127.0.0.1.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--database", default=None, help="pgstac database URL (for start)")
    parser.add_argument(
        "--postgres", type=Path, default=None, help="or: the folder of a PostgresCluster"
    )
    parser.add_argument(
        "--root",
        action="append",
        type=Path,
        default=[],
        help="a folder whose files may be served (repeat it; for start)",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)
    from mus_lab.services.stac_api import database_option

    def build() -> TileServer:
        database = database_option(args.database, args.postgres, args.action)
        return TileServer(database, args.folder, roots=args.root, port=args.port)

    return command(build, args.action, lambda s: f"Tile service running: {s.url}")


if __name__ == "__main__":
    sys.exit(main())
