"""The lab's processes as OGC API Processes (pygeoapi) and WPS 1.0.0/2.0.0 (pywps).

:class:`ProcessesServer` runs one WSGI server (werkzeug, threaded, in a subprocess) on
127.0.0.1 with pygeoapi at the root (``/processes``, ``/jobs``, ``/openapi``) and pywps at
``/wps`` (status documents and outputs under ``/wps/outputs/``). The processes
(:mod:`mus_lab.services._jobs`): ``flood-map`` (mus_lab.flood), ``landcover-predict``
(mus_lab.classify, a saved model), ``fusion`` (mus_lab.fusion) and ``harvest``
(mus_lab.catalog.harvest). Jobs run asynchronously (pygeoapi's TinyDB job manager,
``Prefer: respond-async``; pywps ``storeExecuteResponse``/``status``) in threads of the
server; results are written through :mod:`mus_lab.publish` into the product store, with
their provenance, and sent to the STAC API when one is configured.

- Reads are public: process lists, descriptions, job status and results, the OpenAPI
  document, WPS GetCapabilities/DescribeProcess and status documents.
- Execution (and any other write: ``DELETE /jobs/{id}``, WPS ``Execute``) needs
  ``Authorization: Bearer TOKEN`` (401 without, 403 wrong), the pattern of
  :class:`~mus_lab.services.stac_api.BearerTokenGuard`; the token is in ``DIR/token``
  (0600), never in a log, a response or a repr.
- Inputs are checked before a job is queued (:func:`~mus_lab.services._jobs.check_inputs`):
  a file outside the product store and the allowed folders, or a host not allowed, is a
  400 that says so.

From a shell: ``python -m mus_lab.services.processes start|stop|status DIR --store STORE
[--allow FOLDER ...] [--stac-api URL --stac-api-token-file FILE] [--dask ADDRESS]``.
pygeoapi and pywps are the ``serve`` extra. See docs/design/0017-processes.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import logging
import mimetypes
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mus_lab.errors import ServiceError
from mus_lab.services._jobs import (
    PROCESSES,
    ProcessConfig,
    ProcessInputError,
    check_inputs,
)
from mus_lab.services._life import TokenServer, child_env, command

__all__ = [
    "PROCESSES",
    "ProcessConfig",
    "ProcessInputError",
    "ProcessesServer",
    "TokenGuard",
    "create_app",
    "main",
]

_INSTALL_HINT = "install the serve extra: pip install 'mus_lab[serve]'"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_EXECUTION = re.compile(r"^/processes/([^/]+)/execution/?$")
_WPS_READS = (b"GetCapabilities", b"DescribeProcess")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: What the service's command line holds (a recycled pid is never signalled).
_MARKER = b"mus_lab.services.processes\x00serve"


# -- the guard -------------------------------------------------------------------------
def _json_answer(
    start_response: Callable[..., Any], status: int, body: dict[str, Any]
) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="mus_lab"'))
    start_response(f"{status} {reason.get(status, 'Error')}", headers)
    return [data]


class TokenGuard:
    """WSGI middleware: public reads, execution only with ``Authorization: Bearer TOKEN``.

    Also checks the inputs of an OGC API execution request before pygeoapi queues a job
    (400 with the reason), and serves pywps' status documents and outputs.

    Parameters
    ----------
    app
        The WSGI app behind.
    token
        The execution token; ``None`` or empty refuses every execution.
    config
        What the processes may read (for the input checks); ``None``: no check here.
    outputs
        pywps' output folder (served read-only under ``/wps/outputs/``).

    Examples
    --------
    >>> guard = TokenGuard(lambda e, s: [], "s3cret")
    >>> guard.is_write("GET", "/jobs/1", b""), guard.is_write("POST", "/processes/x/execution", b"")
    (False, True)
    >>> guard.is_write("GET", "/wps", b"", "service=WPS&request=Execute&identifier=x")
    True
    >>> guard.is_write("POST", "/wps", b"<wps:DescribeProcess service='WPS'/>")
    False
    >>> "s3cret" in repr(guard)
    False
    """

    def __init__(
        self,
        app: WsgiApp,
        token: str | None,
        config: ProcessConfig | None = None,
        *,
        outputs: str | os.PathLike[str] | None = None,
    ) -> None:
        self.app = app
        self._token = (token or "").encode("utf-8")
        self.config = config
        self.outputs = Path(outputs) if outputs else None

    def __repr__(self) -> str:
        return f"TokenGuard(token={'set' if self._token else 'unset'})"

    @staticmethod
    def is_write(method: str, path: str, body: bytes, query: str = "") -> bool:
        """Whether a request needs the token.

        Parameters
        ----------
        method, path, body, query
            The request's method, path, body (for a POST to ``/wps``) and query string.

        Returns
        -------
        bool
        """
        method = method.upper()
        if path.rstrip("/") == "/wps":
            if method in _READ_METHODS:
                return "execute" in {
                    v.lower() for k, v in _query_pairs(query) if k.lower() == "request"
                }
            head = body.lstrip()[:400]
            root = re.search(rb"<\s*(?:[\w.-]+:)?(\w+)", re.sub(rb"<\?.*?\?>", b"", head))
            return not (method == "POST" and root is not None and root.group(1) in _WPS_READS)
        return method not in _READ_METHODS

    def _allowed(self, header: str) -> int:
        scheme, _, credential = header.encode("latin-1", "replace").partition(b" ")
        if scheme.lower() != b"bearer" or not credential.strip():
            return 401
        if not self._token or not hmac.compare_digest(credential.strip(), self._token):
            return 403
        return 200

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "")) or "/"
        body = b""
        if method not in _READ_METHODS:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
        if self.is_write(method, path, body, str(environ.get("QUERY_STRING", ""))):
            status = self._allowed(str(environ.get("HTTP_AUTHORIZATION", "")))
            if status == 401:
                return _json_answer(start_response, 401, {
                    "code": "Unauthorized",
                    "description": "Executing a process needs a token: send the header "
                    "'Authorization: Bearer TOKEN' (the token of the server's folder).",
                })  # fmt: skip
            if status == 403:
                return _json_answer(start_response, 403, {
                    "code": "Forbidden", "description": "The token is not this server's."
                })  # fmt: skip
            match = _EXECUTION.match(path)
            if match and method == "POST" and self.config is not None:
                try:
                    request = json.loads(body or b"{}")
                    if not isinstance(request, dict):
                        raise ProcessInputError("The body must be a JSON object with 'inputs'.")
                    if match.group(1) in PROCESSES:
                        check_inputs(match.group(1), request.get("inputs", {}), self.config)
                except ValueError:
                    return _json_answer(start_response, 400, {
                        "code": "InvalidParameterValue",
                        "description": "The body is no JSON document.",
                    })  # fmt: skip
                except ProcessInputError as exc:
                    return _json_answer(start_response, 400, {
                        "code": "InvalidParameterValue",
                        "description": " ".join(str(exc).split()),
                    })  # fmt: skip
        if path.startswith("/wps/outputs/") and method in _READ_METHODS:
            return self._output(path[len("/wps/outputs/") :], start_response)
        return self.app(environ, start_response)

    def _output(self, name: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        """A pywps status document or output, only from its output folder."""
        folder = self.outputs
        path = (folder / name).resolve() if folder is not None else None
        if (
            path is None
            or folder is None
            or not path.is_relative_to(folder.resolve())
            or not path.is_file()
        ):
            return _json_answer(start_response, 404, {"code": "NotFound", "description": name})
        data = path.read_bytes()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(data)))])
        return [data]


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


# -- the app (in the server's process) ---------------------------------------------------
def _pygeoapi_config(folder: Path, url: str) -> dict[str, Any]:
    from mus_lab.services._engines import pygeoapi_resources

    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": int(url.rsplit(":", 1)[1])},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "cors": False,
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 100},
            "map": {"url": "http://127.0.0.1/", "attribution": "none"},
            "manager": {
                "name": "TinyDB",
                "connection": str(folder / "jobs.tinydb"),
                "output_dir": str(folder / "outputs"),
            },
        },
        "logging": {"level": "WARNING", "logfile": str(folder / "pygeoapi.log")},
        "metadata": {
            "identification": {
                "title": {"en": "mus_lab processes"},
                "description": {"en": "Flood map, land cover, fusion and harvest as jobs"},
                "keywords": {"en": ["earth observation", "flood", "land cover"]},
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": url,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "mus_lab", "url": url},
            "contact": {
                "name": "mus_lab",
                "position": "lab",
                "address": "-",
                "city": "-",
                "stateorprovince": "-",
                "postalcode": "-",
                "country": "-",
                "phone": "-",
                "fax": "-",
                "email": "lab@127.0.0.1",
                "url": url,
                "hours": "-",
                "instructions": "-",
                "role": "pointOfContact",
            },
        },
        "resources": pygeoapi_resources(),
    }


def _pywps_config(folder: Path, url: str) -> str:
    return "\n".join([
        "[server]",
        f"url = {url}/wps",
        f"outputurl = {url}/wps/outputs",
        f"outputpath = {folder / 'wps-outputs'}",
        f"workdir = {folder / 'wps-work'}",
        "maxsingleinputsize = 10mb",
        "maxrequestsize = 20mb",
        "maxprocesses = 8",
        "parallelprocesses = 2",
        "[processing]",
        "mode = default",
        "[logging]",
        "level = WARNING",
        f"file = {folder / 'wps.log'}",
        f"database = sqlite:///{folder / 'wps-jobs.sqlite'}",
        "[metadata:main]",
        "identification_title = mus_lab processes",
        "identification_abstract = Flood map, land cover, fusion and harvest as jobs",
        "provider_name = mus_lab",
        f"provider_url = {url}",
        "",
    ])  # fmt: skip


def _self_contained(doc: Any, key: str = "") -> Any:
    """pygeoapi's OpenAPI document without references to schemas.opengis.net.

    Its responses and request bodies point at the OGC's published YAML: a client (or
    schemathesis) resolving them would leave 127.0.0.1. A response becomes its
    description, a schema any JSON object, each naming the OGC document it stands for.

    Examples
    --------
    >>> _self_contained({"responses": {"200": {"$ref": "https://schemas.opengis.net/x.yaml"}}})
    {'responses': {'200': {'description': 'See https://schemas.opengis.net/x.yaml'}}}
    """
    if isinstance(doc, list):
        return [_self_contained(v, key) for v in doc]
    if not isinstance(doc, dict):
        return doc
    ref = doc.get("$ref")
    if isinstance(ref, str) and "://" in ref:
        if key.isdigit() or key == "default":  # a response
            return {"description": f"See {ref}"}
        return {"type": "object", "description": f"See {ref}"}
    return {k: _self_contained(v, k) for k, v in doc.items()}


def create_app(folder: str | os.PathLike[str], url: str) -> WsgiApp:
    """pygeoapi at ``/`` and pywps at ``/wps``, behind :class:`TokenGuard`.

    Writes pygeoapi's configuration and OpenAPI document and pywps' configuration into
    ``folder`` and reads the :class:`ProcessConfig` from ``folder/processes-config.json``
    and the token from ``folder/token``. Call it once per process: pygeoapi reads its
    configuration when its Flask app is imported.

    Parameters
    ----------
    folder
        The server's folder.
    url
        The server's root URL (``http://127.0.0.1:PORT``).

    Returns
    -------
    WSGI app

    Raises
    ------
    ServiceError
        pygeoapi or pywps is not installed.
    """
    import yaml

    from mus_lab.services._engines import CONFIG_ENV, URL_ENV, wps_processes

    folder = Path(folder)
    for sub in ("outputs", "wps-outputs", "wps-work"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    cfg_file = folder / "processes-config.json"
    config = ProcessConfig.from_dict(json.loads(cfg_file.read_text("utf-8")))
    os.environ[CONFIG_ENV] = str(cfg_file)
    os.environ[URL_ENV] = url
    pyg = _pygeoapi_config(folder, url)
    (folder / "pygeoapi.yml").write_text(yaml.safe_dump(pyg, sort_keys=False), "utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(folder / "pygeoapi.yml")
    try:
        from pygeoapi.openapi import get_oas
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceError(f"pygeoapi is missing: {_INSTALL_HINT}.") from exc
    (folder / "openapi.json").write_text(json.dumps(_self_contained(get_oas(pyg))), "utf-8")
    os.environ["PYGEOAPI_OPENAPI"] = str(folder / "openapi.json")
    (folder / "pywps.cfg").write_text(_pywps_config(folder, url), "utf-8")
    from pygeoapi.flask_app import APP
    from pywps import Service

    wps = Service(wps_processes(), cfgfiles=[str(folder / "pywps.cfg")])

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).rstrip("/") == "/wps":
            return wps(environ, start_response)  # type: ignore[no-any-return]
        return APP.wsgi_app(environ, start_response)  # type: ignore[no-any-return]

    token = (folder / "token").read_text("utf-8").strip() or None
    if config.dask:
        from mus_lab import compute

        compute.get_client(config.dask)
    return TokenGuard(dispatch, token, config, outputs=folder / "wps-outputs")


def _serve(folder: Path) -> None:
    """Serve until SIGTERM (the server's own process)."""
    from werkzeug.serving import make_server

    state = json.loads((folder / "processes.json").read_text("utf-8"))
    url = f"http://127.0.0.1:{state['port']}"
    app = create_app(folder, url)
    server = make_server("127.0.0.1", int(state["port"]), app, threaded=True)

    def stop(*_: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(SystemExit, KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    logging.shutdown()
    os._exit(0)  # at once: running jobs end with the server (their status stays "running")


# -- the server ------------------------------------------------------------------------
def _free_port() -> int:
    from mus_lab.services.postgres import _free_port as free

    return free()


class ProcessesServer(TokenServer):
    """OGC API Processes and WPS (:func:`create_app`) in a subprocess on 127.0.0.1.

    Parameters
    ----------
    folder
        The server's folder: its log (``processes.log``), token (``token``, 0600), state
        (``processes.json``), engines' configurations, job stores and outputs.
    config
        What the processes may read and where they write (:class:`ProcessConfig`); default:
        the one of an earlier start in ``folder``.
    port
        TCP port (default: a free one).
    token
        The execution token (default: the one in ``folder/token``, else a new random one).

    Examples
    --------
    ``with ProcessesServer(folder, ProcessConfig(store)) as server:`` starts it;
    ``server.url`` is its root, ``server.token`` the execution token.

    >>> import tempfile
    >>> server = ProcessesServer(tempfile.mkdtemp(), token="T0K-SECRET")
    >>> "T0K-SECRET" in repr(server), server.running
    (False, False)
    """

    NAME = "processes"
    TITLE = "The process server"
    MARKER = _MARKER
    HEALTH = "/processes?f=json"
    PING_TIMEOUT = 3

    def __init__(
        self,
        folder: str | os.PathLike[str],
        config: ProcessConfig | None = None,
        *,
        port: int | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(folder, port=port, token=token)
        self.config = config

    @property
    def wps_url(self) -> str | None:
        """The WPS endpoint."""
        return f"{self.url}/wps" if self.url else None

    def start(self, *, timeout: float = 60) -> ProcessesServer:
        """Start the server and wait until it answers (the process outlives this object).

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Returns
        -------
        ProcessesServer
            ``self``.

        Raises
        ------
        ServiceError
            pygeoapi or pywps is missing, no configuration is known, or the server did
            not answer in time (the message quotes its log).
        """
        if self.running:
            return self
        try:
            import pygeoapi  # noqa: F401
            import pywps  # noqa: F401
        except ImportError:
            raise ServiceError(f"pygeoapi and pywps are missing: {_INSTALL_HINT}.") from None
        cfg_file = self.folder / "processes-config.json"
        if self.config is None and not cfg_file.is_file():
            raise ServiceError(
                f"No configuration in {self.folder}: give config=ProcessConfig(store) "
                "(or --store on the command line) the first time."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            cfg_file.write_text(json.dumps(self.config.to_dict(), indent=1), "utf-8")
        self._write_token()
        port = self._port or _free_port()
        # the server's own process reads its port from the state file
        self.state_file.write_text(json.dumps({"port": port}), "utf-8")
        env = child_env(("PYGEOAPI_", "MUS_LAB_STAC_API"))
        cmd = ["-m", "mus_lab.services.processes", "serve", str(self.folder)]
        return self._spawn(cmd, env, port=port, timeout=timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mus_lab.services.processes start|stop|status DIR [--store STORE ...]``.

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
        prog="python -m mus_lab.services.processes",
        description="OGC API Processes and WPS of the lab's stages on 127.0.0.1.",
    )
    parser.add_argument("action", choices=("start", "stop", "status", "serve"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--store", type=Path, default=None, help="product store (for start)")
    parser.add_argument("--allow", type=Path, action="append", default=[],
                        help="another folder inputs may be read from (repeatable)")  # fmt: skip
    parser.add_argument("--stac-api", default=None, help="STAC API to publish results to")
    parser.add_argument("--stac-api-token-file", type=Path, default=None,
                        help="that API's token file")  # fmt: skip
    parser.add_argument("--dask", default=None, help="Dask scheduler or gateway address")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)
    if args.action == "serve":  # the server's own process
        _serve(args.folder.absolute())
        return 0

    def build() -> ProcessesServer:
        config = None
        if args.store is not None:
            config = ProcessConfig(
                args.store.absolute(),
                allowed_roots=tuple(p.absolute() for p in args.allow),
                stac_api=args.stac_api,
                stac_api_token_file=args.stac_api_token_file,
                dask=args.dask,
            )
        return ProcessesServer(args.folder, config, port=args.port)

    return command(
        build,
        args.action,
        lambda s: (
            f"Processes running: {s.url} (OGC API Processes), {s.wps_url} (WPS); "
            f"execution token in {s.token_file}"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
