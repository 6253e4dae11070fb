"""A local HTTP server replaying recorded STAC API interactions (offline tests).

Recordings are the JSON cassettes of ``<real_data>/stac_real_responses/
pystac_client_cassettes_json``: ``{"interactions": [{method, uri, request_body,
status, response_json}]}``. A request is answered with the first recorded
interaction of the same method, path (trailing slash ignored), query parameters and
JSON body (key order ignored). Every absolute URL of the recorded APIs in a response
(``https://earth-search.aws.element84.com``, ``https://planetarycomputer.microsoft.com``)
is rewritten to this server, so ``next`` links page through it. Unknown requests get
a 404 JSON body echoing the request, and are listed in ``server.unmatched``.

Usage::

    with RecordedStacServer(load_cassette(path)) as server:
        url = server.url("https://earth-search.aws.element84.com/v1")
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Interaction", "RecordedStacServer", "load_cassette"]


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its answer."""

    method: str
    uri: str
    body: Any
    status: int
    response: Any

    @property
    def origin(self) -> str:
        parts = urlsplit(self.uri)
        return f"{parts.scheme}://{parts.netloc}"

    def key(self) -> tuple[str, str, dict[str, list[str]], Any]:
        parts = urlsplit(self.uri)
        return self.method, parts.path.rstrip("/"), parse_qs(parts.query), self.body


def _body(raw: Any) -> Any:
    if raw in (None, "", b""):
        return None
    if isinstance(raw, str | bytes):
        return json.loads(raw)
    return raw


def load_cassette(path: str | Path, *, only: Iterable[str] | None = None) -> list[Interaction]:
    """Read a JSON cassette; ``only`` keeps interactions whose URI path ends with one of them."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for i in data["interactions"]:
        status = i["status"]["code"] if isinstance(i["status"], dict) else int(i["status"])
        inter = Interaction(
            i["method"].upper(), i["uri"], _body(i["request_body"]), status, i["response_json"]
        )
        if only is None or any(urlsplit(inter.uri).path.rstrip("/").endswith(s) for s in only):
            out.append(inter)
    return out


class RecordedStacServer:
    """Serve recorded interactions on ``127.0.0.1`` (free port) from a daemon thread."""

    def __init__(self, interactions: Iterable[Interaction]) -> None:
        self.interactions = list(interactions)
        self.origins = sorted({i.origin for i in self.interactions})
        self.requests: list[tuple[str, str, Any]] = []
        self.unmatched: list[tuple[str, str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, recorded_url: str) -> str:
        """Return the local URL serving ``recorded_url``."""
        for origin in self.origins:
            if recorded_url.startswith(origin):
                return self.base + recorded_url[len(origin) :]
        raise ValueError(f"{recorded_url} is not served: origins are {self.origins}")

    def _find(self, method: str, path: str, body: Any) -> Interaction | None:
        parts = urlsplit(path)
        key = (method, parts.path.rstrip("/"), parse_qs(parts.query), body)
        return next((i for i in self.interactions if i.key() == key), None)

    def _rewrite(self, payload: Any) -> bytes:
        text = json.dumps(payload)
        for origin in self.origins:
            text = text.replace(origin, self.base)
        return text.encode("utf-8")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = _body(raw)
                except json.JSONDecodeError:
                    body = raw.decode("utf-8", "replace")
                server.requests.append((method, self.path, body))
                found = server._find(method, self.path, body)
                if found is None:
                    server.unmatched.append((method, self.path, body))
                    status = 404
                    data = json.dumps(
                        {
                            "code": "NotRecorded",
                            "description": "no recorded interaction matches",
                            "method": method,
                            "path": self.path,
                            "body": body,
                        }
                    ).encode()
                else:
                    status, data = found.status, server._rewrite(found.response)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def start(self) -> RecordedStacServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> RecordedStacServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
