"""Fetching one asset for the harvest: checksums, resumable download into ``.part``, verification.

One call of :func:`fetch` does one attempt and answers what happened (:class:`Done`,
:class:`Retry`, :class:`Failed`, :class:`Fatal`, :class:`Stopped`); the scheduler in
:mod:`mus_lab.catalog._harvest` decides when to try again. The rules that make a harvest
safe to kill at any moment:

- bytes go to ``<file>.part``; a ``.part`` is resumed with an HTTP ``Range`` request
  (a ``206`` whose ``Content-Range`` starts where the part ends; a ``200`` restarts it);
- the part is renamed to ``<file>`` (``os.replace``, atomic) only once its size and
  checksum are verified, so a file under its final name is always complete;
- a file already under its final name is verified (checksum when one is known, size
  otherwise) instead of being downloaded again; a corrupt one is deleted and fetched.

No ``fsync`` before the rename: a killed process loses nothing the kernel has accepted;
only a machine crash could leave a renamed file short, and the next run's verification
finds it (checksum or size) and fetches it again.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import hashlib
import json
import mimetypes
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3

from mus_lab.catalog._access import Pending, Ready
from mus_lab.errors import DiskFullError, MusLabError

__all__ = [
    "CHUNK",
    "Checksum",
    "Done",
    "Failed",
    "Fatal",
    "Retry",
    "Stopped",
    "fetch_ready",
    "parse_checksum",
    "safe_url",
    "verify_file",
]

#: Bytes read and written at a time (memory per worker stays about this).
CHUNK = 1 << 20

# Multihash codes (https://github.com/multiformats/multicodec) -> hashlib names.
_MULTIHASH = {0x11: "sha1", 0x12: "sha256", 0x13: "sha512", 0xD5: "md5", 0x1E: "blake3"}
_NAMES = {"sha1": 0x11, "sha256": 0x12, "sha512": 0x13, "md5": 0xD5, "blake3": 0x1E}
_ALIASES = {"sha2-256": "sha256", "sha-256": "sha256", "sha2-512": "sha512", "sha-1": "sha1"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


@dataclass(frozen=True)
class Checksum:
    """An expected digest: algorithm (hashlib name, or ``"blake3"``) and lowercase hex.

    Examples
    --------
    >>> c = parse_checksum("1220" + "ab" * 32)
    >>> c.algorithm, c.multihash() == "1220" + "ab" * 32
    ('sha256', True)
    >>> parse_checksum("md5:" + "0F" * 16).multihash()[:4]
    'd501'
    """

    algorithm: str
    digest: str

    def multihash(self) -> str:
        """Return the digest as a STAC ``file:checksum`` multihash (hex)."""
        raw = bytes.fromhex(self.digest)
        return (_varint(_NAMES[self.algorithm]) + _varint(len(raw)) + raw).hex()

    def hasher(self) -> Any | None:
        """Return a fresh hash object, or ``None`` when the algorithm is not available here."""
        if self.algorithm == "blake3":
            try:
                import blake3  # type: ignore[import-not-found]
            except ImportError:
                return None
            return blake3.blake3()
        return hashlib.new(self.algorithm)


def parse_checksum(text: str) -> Checksum:
    """Read a STAC multihash (hex) or a ``"md5:<hex>"``-style checksum.

    Parameters
    ----------
    text
        ``"1220<64 hex>"`` (sha2-256 multihash), ``"d50110<32 hex>"`` (md5),
        ``"1e20<64 hex>"`` (blake3), ``"md5:<hex>"``, ``"sha256:<hex>"``, ``"blake3:<hex>"``,
        or a bare hex digest of 32 (md5) or 64 (sha256) characters.

    Returns
    -------
    Checksum
        The algorithm and the digest.

    Raises
    ------
    ValueError
        The text is no checksum this module knows.
    """
    value = text.strip()
    if ":" in value:
        name, _, digest = value.partition(":")
        name = _ALIASES.get(name.strip().lower(), name.strip().lower())
        digest = digest.strip().lower()
        if name not in _NAMES or not digest:
            raise ValueError(f"unknown checksum algorithm {name!r}")
        bytes.fromhex(digest)
        return Checksum(name, digest)
    data = bytes.fromhex(value)
    if len(data) in (16, 32):  # a bare digest (no multihash has these lengths for md5/sha256)
        return Checksum("md5" if len(data) == 16 else "sha256", data.hex())
    try:
        code, pos = _read_varint(data, 0)
        size, pos = _read_varint(data, pos)
    except IndexError:
        raise ValueError("not a multihash") from None
    if code not in _MULTIHASH or len(data) - pos != size:
        raise ValueError("not a multihash of a known algorithm")
    return Checksum(_MULTIHASH[code], data[pos:].hex())


def safe_url(url: str) -> str:
    """Return ``url`` without its query string and user info (they may hold credentials).

    Examples
    --------
    >>> safe_url("https://user:pw@host.example/a/b.tif?sig=SECRET&se=2024")
    'https://host.example/a/b.tif'
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- outcomes of one attempt -------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """The file is in place and verified (``skipped``: it already was, nothing downloaded)."""

    path: Path
    size: int
    sha256: str  # multihash hex
    verified: bool  # checked against a provider/held checksum (else: size only, or nothing)
    skipped: bool = False


@dataclass(frozen=True)
class Retry:
    """Try again later: after ``delay`` seconds (``None``: the scheduler's backoff)."""

    reason: str
    delay: float | None = None
    counts: bool = True  # spends one attempt of the asset's retry budget
    pending: bool = False  # the provider is preparing the file (order, restore)
    progressed: bool = False  # bytes arrived before the problem (a 401 after them is an expiry)
    reached: int | None = None  # bytes of the file held when it stopped (resume offset)
    unauthorized: bool = False  # HTTP 401: renew the credentials first


@dataclass(frozen=True)
class Failed:
    """Give up on this asset (its item is reported, not ingested)."""

    reason: str


@dataclass(frozen=True)
class Fatal:
    """Stop the whole harvest (disk full, credentials refused)."""

    error: MusLabError


@dataclass(frozen=True)
class Stopped:
    """The harvest is stopping (Ctrl-C, a fatal error elsewhere): the ``.part`` stays."""


Outcome = Done | Retry | Failed | Fatal | Stopped


@dataclass
class _Hashes:
    expected: Checksum | None
    sha256: Any = field(default_factory=hashlib.sha256)
    other: Any | None = None
    size: int = 0

    def __post_init__(self) -> None:
        if self.expected is not None and self.expected.algorithm != "sha256":
            self.other = self.expected.hasher()

    def update(self, chunk: bytes | memoryview) -> None:
        self.sha256.update(chunk)
        if self.other is not None:
            self.other.update(chunk)
        self.size += len(chunk)

    def multihash(self) -> str:
        return "1220" + self.sha256.hexdigest()

    def check(self) -> bool | None:
        """True/False against the expected digest; ``None`` when it cannot be checked."""
        if self.expected is None:
            return None
        if self.expected.algorithm == "sha256":
            return bool(self.sha256.hexdigest() == self.expected.digest)
        if self.other is None:
            return None
        return bool(self.other.hexdigest() == self.expected.digest)


def _hash_file(path: Path, hashes: _Hashes, stop: threading.Event | None = None) -> bool:
    """Feed the file's bytes to ``hashes``; False when stopped before the end."""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            hashes.update(chunk)
            if stop is not None and stop.is_set():
                return False
    return True


def verify_file(
    path: Path,
    expected: Checksum | None,
    size: int | None,
    *,
    stop: threading.Event | None = None,
) -> Done | None:
    """Verify a file already under its final name; ``None`` when it is corrupt (or stopped).

    With a checksum the file is read whole; without one its size must match when known,
    and a file with neither is trusted (the harvest renames a file only once complete).
    """
    actual = path.stat().st_size
    if size is not None and actual != size:
        return None
    hashes = _Hashes(expected)
    if not _hash_file(path, hashes, stop):
        return None
    ok = hashes.check()
    if ok is False:
        return None
    return Done(path, actual, hashes.multihash(), verified=bool(ok), skipped=True)


# --- one attempt --------------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _restoring(resp: requests.Response) -> Retry:
    """A 202 "being prepared" answer (EODMS ``ItemsRestoring``) as a pending retry."""
    delay = _retry_after(resp.headers.get("Retry-After"))
    reason = "HTTP 202 (being prepared)"
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body: Any = json.loads(resp.content[:65536] or b"null")
        entry = body[0] if isinstance(body, list) and body else body
        if isinstance(entry, dict):
            reason = str(entry.get("status") or reason)
            if entry.get("suggested_retry_interval") is not None:
                delay = float(entry["suggested_retry_interval"])
    return Retry(reason, delay=delay if delay is not None else None, counts=False, pending=True)


def target_name(ready: Ready, fallback: str, key: str, media_type: str | None) -> str:
    """The file name of an asset: ``Ready.filename``, else the URL's last path part."""
    name = ready.filename or unquote(urlsplit(ready.url).path.rstrip("/").rpartition("/")[2])
    if not name or name.startswith("$") or name in (".", ".."):
        name = fallback
    if not name or name.startswith("$") or name in (".", ".."):
        ext = mimetypes.guess_extension((media_type or "").split(";")[0].strip()) or ""
        name = f"{key}{ext}"
    return name.replace("/", "_").replace("\\", "_")


def _disk_full(path: Path, exc: OSError) -> Fatal:
    import shutil

    free = shutil.disk_usage(path.parent).free
    return Fatal(
        DiskFullError(
            f"The disk holding {path.parent} is full ({free / 1e6:.1f} MB free) while "
            f"writing {path.name}: free some space or harvest into another folder (--out); "
            "the .part files are kept and the next run resumes them."
        )
    )


def fetch_ready(
    ready: Ready,
    target: Path,
    session: requests.Session,
    *,
    expected: Checksum | None,
    size: int | None,
    stop: threading.Event,
    timeout: float,
    progress: Callable[[int], None],
) -> Outcome:
    """One attempt at bringing ``ready`` to ``target`` through ``target.part``.

    Parameters
    ----------
    ready
        What the provider's access answered.
    target
        The final path.
    session
        This worker's HTTP session.
    expected, size
        The checksum and size to verify against (``None``: unknown).
    stop
        Set when the harvest stops: the attempt returns :class:`Stopped` at the next chunk.
    timeout
        Seconds to connect and between two reads.
    progress
        Called with each number of bytes received.

    Returns
    -------
    Done, Retry, Failed, Fatal or Stopped
        What happened.
    """
    part = target.with_name(target.name + ".part")
    try:
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        hashes = _Hashes(expected)
        if offset and not _hash_file(part, hashes, stop):
            return Stopped()
        if size is not None and offset == size:  # killed between the last byte and the rename
            return _finish(part, target, hashes, size)
        scheme = urlsplit(ready.url).scheme.lower()
        if scheme in ("http", "https"):
            return _fetch_http(
                ready, part, target, session, hashes, offset, size, stop, timeout, progress
            )
        if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
            source = Path(unquote(urlsplit(ready.url).path) if scheme == "file" else ready.url)
            return _fetch_local(source, part, target, hashes, offset, size, stop, progress)
        return Failed(
            f"cannot fetch {safe_url(ready.url)}: only http(s) URLs and local files are "
            "harvested (register an AssetAccess that gives an https URL for this provider)"
        )
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _disk_full(part, exc)
        return Failed(f"cannot write {part}: {exc.strerror or exc}")


def _finish(part: Path, target: Path, hashes: _Hashes, size: int | None) -> Outcome:
    if size is not None and hashes.size != size:
        part.unlink(missing_ok=True)
        return Retry(f"size {hashes.size} instead of {size} bytes: fetched again")
    ok = hashes.check()
    if ok is False:
        part.unlink(missing_ok=True)
        assert hashes.expected is not None
        return Retry(
            f"{hashes.expected.algorithm} checksum mismatch (the body differs from the "
            "provider's checksum): fetched again"
        )
    os.replace(part, target)
    return Done(target, hashes.size, hashes.multihash(), verified=bool(ok))


def _open_part(part: Path, offset: int) -> Any:
    fh = open(part, "r+b" if offset else "wb")
    if offset:
        fh.seek(offset)
        fh.truncate()
    return fh


def _fetch_local(
    source: Path,
    part: Path,
    target: Path,
    hashes: _Hashes,
    offset: int,
    size: int | None,
    stop: threading.Event,
    progress: Callable[[int], None],
) -> Outcome:
    if not source.is_file():
        return Failed(f"local file {source} does not exist")
    with open(source, "rb") as src, _open_part(part, offset) as dst:
        src.seek(offset)
        while chunk := src.read(CHUNK):
            if stop.is_set():
                return Stopped()
            dst.write(chunk)
            hashes.update(chunk)
            progress(len(chunk))
    return _finish(part, target, hashes, size)


_TRANSIENT = (
    urllib3.exceptions.HTTPError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ContentDecodingError,
)


def _fetch_http(
    ready: Ready,
    part: Path,
    target: Path,
    session: requests.Session,
    hashes: _Hashes,
    offset: int,
    size: int | None,
    stop: threading.Event,
    timeout: float,
    progress: Callable[[int], None],
) -> Outcome:
    url = safe_url(ready.url)
    headers = {"Accept-Encoding": "identity", **ready.headers}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = session.get(ready.url, headers=headers, stream=True, timeout=timeout)
    except _TRANSIENT as exc:
        return Retry(f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__})")
    except requests.RequestException as exc:
        return Failed(f"cannot request {url} ({type(exc).__name__})")
    received = 0
    with resp:
        code = resp.status_code
        if code == 202:
            return _restoring(resp)
        if code == 401:
            return Retry(
                "HTTP 401 (credentials expired or refused)", counts=False, unauthorized=True
            )
        if code in (403, 404, 410):
            what = {403: "access denied", 404: "not found", 410: "gone"}[code]
            return Failed(
                f"HTTP {code} ({what}) for {url}: check the credentials' rights for this "
                "product, or search again (the item may have been removed)"
            )
        if code == 416:
            part.unlink(missing_ok=True)
            return Retry("HTTP 416 (range not satisfiable): fetched again from the start")
        if code in (429, 503):
            delay = _retry_after(resp.headers.get("Retry-After"))
            return Retry(f"HTTP {code} (busy)", delay=delay)
        if code >= 500:
            return Retry(f"HTTP {code} (server error)")
        if code not in (200, 206):
            return Failed(f"unexpected HTTP {code} for {url}")
        if code == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                return Retry("the server resumed at another offset: fetched again from the start")
            if size is None and total is not None:
                size = total
        else:
            if offset:  # the server ignored the Range: start again from 0
                hashes = _Hashes(hashes.expected)
                offset = 0
            length = resp.headers.get("Content-Length")
            if size is None and length and length.isdigit():
                size = int(length)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        # Raw reads return what has arrived (at most CHUNK): a body cut short keeps every
        # byte received in the .part (iter_content's buffering would drop the last chunk).
        chunks = resp.iter_content(CHUNK) if encoded else iter(lambda: resp.raw.read1(CHUNK), b"")
        try:
            with _open_part(part, offset) as fh:
                for chunk in chunks:
                    if stop.is_set():
                        return Stopped()
                    fh.write(chunk)
                    hashes.update(chunk)
                    received += len(chunk)
                    progress(len(chunk))
        except _TRANSIENT as exc:
            return Retry(
                f"connection lost after {offset + received} bytes ({type(exc).__name__}): resumed",
                progressed=received > 0,
                reached=offset + received,
            )
    if size is not None and hashes.size < size:
        return Retry(
            f"body ended at {hashes.size} of {size} bytes: resumed",
            progressed=received > 0,
            reached=hashes.size,
        )
    return _finish(part, target, hashes, size)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` of ``Content-Range: bytes start-end/total``."""
    if not value or not value.strip().lower().startswith("bytes"):
        return None, None
    try:
        span, _, total = value.split(None, 1)[1].partition("/")
        start = int(span.partition("-")[0])
        return start, (int(total) if total.strip().isdigit() else None)
    except (IndexError, ValueError):
        return None, None


def pending_retry(pending: Pending) -> Retry:
    """A :class:`Pending` answer of the provider as a retry that spends no attempt."""
    return Retry(pending.reason, delay=pending.retry_after, counts=False, pending=True)
