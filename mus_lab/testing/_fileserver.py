"""A fault-injecting HTTP file server on 127.0.0.1, to test (and benchmark) downloads.

:class:`FileServer` serves the files of a folder with ``Range`` support (``206`` with
``Content-Range``; ``sendfile`` when no fault applies, so it is fast enough for
benchmarks) and, on plan, misbehaves the ways real archives do (:class:`Fault`): drop the
connection mid-body, close early with the full ``Content-Length``, answer 500/503/429
with ``Retry-After``, trickle, send a body whose checksum does not match, answer ``202``
``ItemsRestoring`` (EODMS) a few times before the file, ignore ``Range``. With
``token=...`` every request needs ``Authorization: Bearer <token>``; ``token_bytes=N``
makes each token expire after N bytes (the connection is cut, later requests get 401)
until :meth:`FileServer.rotate_token` issues a new one, as an expiring access token does.

It counts the bytes served per file and logs every request, so a test can prove that
nothing complete was downloaded twice.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

__all__ = ["Fault", "FileServer", "ServedRequest"]

FaultKind = Literal["drop", "truncate", "status", "trickle", "corrupt", "restoring", "no_range"]


@dataclass(frozen=True)
class Fault:
    """One way of misbehaving, for ``times`` requests (``None``: every request).

    Build them with the class methods, e.g. ``Fault.status(503, retry_after=1, times=2)``.
    A ``trickle`` applies together with any other fault.

    Examples
    --------
    >>> Fault.drop(after=1000).kind, Fault.trickle(chunk=4096, delay=0.01).times is None
    ('drop', True)
    """

    kind: FaultKind
    times: int | None = 1
    after: int = 0
    code: int = 500
    retry_after: str | None = None
    chunk: int = 8192
    delay: float = 0.0
    ignore_range: bool = False

    @classmethod
    def drop(cls, after: int, *, times: int | None = 1) -> Fault:
        """Reset the connection (RST) after ``after`` bytes of the body.

        Parameters
        ----------
        after
            Body bytes sent before the reset.
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("drop", times, after=after)

    @classmethod
    def truncate(cls, after: int, *, times: int | None = 1, ignore_range: bool = False) -> Fault:
        """Close the connection cleanly after ``after`` bytes (``Content-Length`` says more).

        Parameters
        ----------
        after
            Body bytes sent before closing.
        times
            Requests it applies to (``None``: every request).
        ignore_range
            Also ignore ``Range`` (send from byte 0 with 200): a resume never gets further.

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("truncate", times, after=after, ignore_range=ignore_range)

    @classmethod
    def status(
        cls, code: int, *, retry_after: float | str | None = None, times: int | None = 1
    ) -> Fault:
        """Answer ``code`` (500, 503, 429...) with an optional ``Retry-After`` (seconds or date).

        Parameters
        ----------
        code
            HTTP status.
        retry_after
            ``Retry-After`` value: seconds, or an HTTP date as text.
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        text = None if retry_after is None else str(retry_after)
        return cls("status", times, code=code, retry_after=text)

    @classmethod
    def trickle(cls, *, chunk: int = 8192, delay: float = 0.01, times: int | None = None) -> Fault:
        """Send the body ``chunk`` bytes at a time, ``delay`` seconds apart.

        Parameters
        ----------
        chunk
            Bytes per send.
        delay
            Seconds between two sends.
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("trickle", times, chunk=chunk, delay=delay)

    @classmethod
    def corrupt(cls, *, times: int | None = 1) -> Fault:
        """Send a body of the right length whose bytes differ (checksum mismatch).

        Parameters
        ----------
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("corrupt", times)

    @classmethod
    def restoring(cls, *, retry: float = 1.0, times: int | None = 1) -> Fault:
        """Answer 202 with EODMS's ``ItemsRestoring`` JSON (``suggested_retry_interval``).

        Parameters
        ----------
        retry
            The ``suggested_retry_interval`` in seconds.
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("restoring", times, delay=retry)

    @classmethod
    def no_range(cls, *, times: int | None = None) -> Fault:
        """Ignore ``Range`` and send the whole file with 200.

        Parameters
        ----------
        times
            Requests it applies to (``None``: every request).

        Returns
        -------
        Fault
            The fault, for :meth:`FileServer.add_fault`.
        """
        return cls("no_range", times)


@dataclass(frozen=True)
class ServedRequest:
    """One request as the server saw it."""

    path: str
    start: int  # first byte asked (0 without Range)
    status: int
    sent: int  # body bytes written to the socket
    authorized: bool = True
    at: float = field(default_factory=time.monotonic)  # when the request arrived


class _Plan:
    """Faults per path (``None``: every path), consumed under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: dict[str | None, list[list[Any]]] = {}

    def add(self, fault: Fault, path: str | None) -> None:
        with self.lock:
            self.faults.setdefault(path, []).append([fault, fault.times])

    def take(self, path: str) -> tuple[Fault | None, Fault | None]:
        """The fault and the trickle applying to one request (each use counted)."""
        picked: dict[bool, Fault] = {}
        with self.lock:
            for key in (path, None):
                for entry in self.faults.get(key, []):
                    fault, left = entry
                    is_trickle = fault.kind == "trickle"
                    if is_trickle in picked or left == 0:
                        continue
                    picked[is_trickle] = fault
                    if left is not None:
                        entry[1] = left - 1
        return picked.get(False), picked.get(True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _empty(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, *, head: bool) -> None:
        t0 = time.monotonic()
        owner = self.server.owner
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        path = (owner.root / rel).resolve()
        if owner.root not in path.parents or not path.is_file():
            owner._log(ServedRequest(rel, 0, 404, 0, at=t0))
            self._empty(404, body=b"not found")
            return
        token = owner._current_token()
        if owner.token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            owner._log(ServedRequest(rel, 0, 401, 0, authorized=False, at=t0))
            self._empty(401, {"WWW-Authenticate": 'Bearer realm="mus_lab"'}, b"unauthorized")
            return
        fault, trickle = owner.plan.take(rel)
        if fault is not None and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            owner._log(ServedRequest(rel, 0, fault.code, 0, at=t0))
            self._empty(fault.code, extra, b"try again later")
            return
        if fault is not None and fault.kind == "restoring":
            body = json.dumps(
                [
                    {
                        "code": 202,
                        "status": "ItemsRestoring",
                        "format": "Zip",
                        "suggested_retry_interval": fault.delay,
                    }
                ]
            ).encode()
            owner._log(ServedRequest(rel, 0, 202, 0, at=t0))
            self._empty(202, {"Content-Type": "application/json"}, body)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        ranged = False
        spec = self.headers.get("Range")
        if spec and not (fault is not None and (fault.kind == "no_range" or fault.ignore_range)):
            try:
                unit, _, span = spec.partition("=")
                first, _, last = span.split(",")[0].strip().partition("-")
                if unit.strip() != "bytes" or not first:
                    raise ValueError(spec)
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
                ranged = True
            except ValueError:
                start, end, ranged = 0, size - 1, False
            if ranged and start >= size:
                owner._log(ServedRequest(rel, start, 416, 0, at=t0))
                self._empty(416, {"Content-Range": f"bytes */{size}"})
                return
        length = end - start + 1
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            owner._log(ServedRequest(rel, start, 206 if ranged else 200, 0, at=t0))
            return
        self.wfile.flush()
        sent = 0
        try:
            sent = self._body(path, rel, start, length, fault, trickle, token)
        finally:
            owner._log(ServedRequest(rel, start, 206 if ranged else 200, sent, at=t0))

    def _body(
        self,
        path: Path,
        rel: str,
        start: int,
        length: int,
        fault: Fault | None,
        trickle: Fault | None,
        token: str | None,
    ) -> int:
        owner = self.server.owner
        sock = self.connection
        cut = fault.after if fault is not None and fault.kind in ("drop", "truncate") else None
        budget = owner._token_left(token)
        if budget is not None:
            cut = budget if cut is None else min(cut, budget)
        sent = 0
        with open(path, "rb") as fh:
            if fault is None and trickle is None and cut is None:  # the fast path
                try:  # socket.sendfile waits for a timeout socket's buffer (os.sendfile would not)
                    sent = sock.sendfile(fh, start, length)
                except OSError:
                    self.close_connection = True
                    sent = max(0, fh.tell() - start)
                owner._count(rel, sent, token)
                if sent < length:
                    self.close_connection = True
                return sent
            fh.seek(start)
            step = trickle.chunk if trickle is not None else 1 << 16
            while sent < length and not owner.stopping.is_set():
                want = min(step, length - sent)
                if cut is not None:
                    want = min(want, cut - sent)
                if want <= 0:
                    break
                data = fh.read(want)
                if not data:
                    break
                if fault is not None and fault.kind == "corrupt":
                    data = bytes(b ^ 0x5A for b in data)
                try:
                    sock.sendall(data)
                except OSError:
                    self.close_connection = True
                    return sent
                sent += len(data)
                owner._count(rel, len(data), token)
                if trickle is not None and trickle.delay:
                    time.sleep(trickle.delay)
        if sent < length:  # cut: RST for drop and token expiry, FIN for truncate
            self.close_connection = True
            if fault is None or fault.kind != "truncate":
                time.sleep(0.05)  # let the client read what was sent: a reset discards it
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        return sent


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    owner: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that go away (killed, reset) are expected here: stay quiet about them."""
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FileServer:
    """Serve ``root``'s files on ``http://127.0.0.1:<free port>/``, with planned faults.

    Parameters
    ----------
    root
        Folder whose files are served (paths relative to it).
    token
        When given, requests need ``Authorization: Bearer <token>`` (else 401).
    token_bytes
        Each token expires after this many body bytes: the connection is cut and later
        requests with it get 401, until :meth:`rotate_token`.

    Examples
    --------
    >>> import tempfile, requests
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.bin").write_bytes(bytes(range(256)) * 4)
    >>> with FileServer(folder) as server:
    ...     server.add_fault(Fault.status(503, retry_after=1), "a.bin")
    ...     first = requests.get(server.url_for("a.bin"))
    ...     part = requests.get(server.url_for("a.bin"), headers={"Range": "bytes=1000-"})
    >>> first.status_code, first.headers["Retry-After"], part.status_code, len(part.content)
    (503, '1', 206, 24)
    >>> server.served["a.bin"]
    24
    """

    def __init__(
        self, root: str | Path, *, token: str | None = None, token_bytes: int | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.token = token
        self.token_bytes = token_bytes
        self.plan = _Plan()
        self.served: dict[str, int] = {}
        self.requests: list[ServedRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._token_used = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # plan -----------------------------------------------------------------------------------
    def add_fault(self, fault: Fault, path: str | None = None) -> None:
        """Misbehave on ``path`` as ``fault`` says.

        Faults of one path apply in the order added, before the global ones; each is used
        ``fault.times`` times.

        Parameters
        ----------
        fault
            What to do.
        path
            File path relative to the root (``/``-separated); ``None``: every path.
        """
        self.plan.add(fault, path)

    def clear_faults(self) -> None:
        """Forget every planned fault: behave from now on."""
        with self.plan.lock:
            self.plan.faults.clear()

    def rotate_token(self) -> str:
        """Issue a new token (the old one stops working) with a fresh byte budget.

        Returns
        -------
        str
            The new token.
        """
        with self._lock:
            self.token = secrets.token_urlsafe(16)
            self._token_used = 0
            return self.token

    def reset_counts(self) -> None:
        """Forget the bytes served and the requests logged so far."""
        with self._lock:
            self.served.clear()
            self.requests.clear()

    # counting ---------------------------------------------------------------------------------
    def _current_token(self) -> str | None:
        with self._lock:
            if self.token_bytes is not None and self._token_used >= self.token_bytes:
                return None  # expired: nothing matches
            return self.token

    def _token_left(self, token: str | None) -> int | None:
        if self.token_bytes is None or token is None:
            return None
        with self._lock:
            return max(0, self.token_bytes - self._token_used)

    def _count(self, path: str, n: int, token: str | None) -> None:
        with self._lock:
            self.served[path] = self.served.get(path, 0) + n
            if token is not None and token == self.token:
                self._token_used += n

    def _log(self, request: ServedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # life -----------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        """Return the URL of a file.

        Parameters
        ----------
        path
            Path relative to the root (``/``-separated).

        Returns
        -------
        str
            ``http://127.0.0.1:<port>/<path>``.
        """
        return f"{self.url}/{quote(path)}"

    def start(self) -> FileServer:
        """Start serving in a thread (bound to 127.0.0.1 on a free port).

        Returns
        -------
        FileServer
            The server itself, its :attr:`url` set.
        """
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (open transfers end at their next chunk)."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FileServer({str(self.root)!r}, url={self.url!r})"

    # helpers for tests ---------------------------------------------------------------------
    def access(self, provider: str = "fileserver") -> Any:
        """Return an :class:`~mus_lab.catalog.AssetAccess` sending this server's bearer token.

        Its ``refresh()`` rotates the token, as a provider's token endpoint would. Register
        it with ``register_access(provider, lambda: server.access(provider))``.

        Parameters
        ----------
        provider
            The provider name it answers for.

        Returns
        -------
        AssetAccess
            Reads the current token at each ``prepare``; counts its ``refreshes``.
        """
        return _BearerAccess(self, provider)

    def requests_for(self, path: str) -> list[ServedRequest]:
        """Return the logged requests of one path.

        Parameters
        ----------
        path
            Path relative to the root.

        Returns
        -------
        list of ServedRequest
            In the order they ended.
        """
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def files(self) -> Iterator[str]:
        """Yield the paths (relative, ``/``-separated) of the files served.

        Yields
        ------
        str
            One path per file, sorted.
        """
        for p in sorted(self.root.rglob("*")):
            if p.is_file():
                yield p.relative_to(self.root).as_posix()


class _BearerAccess:
    def __init__(self, server: FileServer, provider: str) -> None:
        self.server = server
        self.provider = provider
        self.refreshes = 0

    def prepare(self, item: Any, key: str, asset: Any) -> Any:
        from mus_lab.catalog import PlainAccess, Ready

        ready = PlainAccess().prepare(item, key, asset)
        assert isinstance(ready, Ready)
        token = self.server.token or ""
        return replace(ready, headers={"Authorization": f"Bearer {token}"})

    def refresh(self) -> None:
        self.refreshes += 1
        self.server.rotate_token()
