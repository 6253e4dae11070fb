"""Availability notices: tell subscribers when new items or products cover their area.

A *subscription* (an area of interest, optional collections, an optional CQL2 filter and one
channel: e-mail, a signed webhook or an Atom feed) is stored in the ``notices`` schema of the
holdings database (PostgreSQL + PostGIS, the same database as pgstac). When items arrive,
each matching subscription gets exactly one notice per item:

1. *How items arrive.* The stages must not import this module (it is the top layer), so the
   harvest and the publisher announce new items through the observer registry of
   :mod:`mus_lab.catalog._events`: the holdings' ``ingest`` (hence the harvest, which ingests
   each item once complete) and :func:`mus_lab.publish.write_collection` call it once their
   items are written. :meth:`Notifier.attach` registers a :class:`Notifier` there; without an
   attached notifier, :meth:`Notifier.notify` can be called with the items directly.
2. *Matching.* The area and the collections are matched in SQL (``ST_Intersects`` on the
   item's geometry); the CQL2 filter with the ``cql2`` package on the item's JSON.
3. *Exactly once.* A match becomes a row of ``notices.deliveries``, whose key
   ``(subscription, collection, item, channel)`` is unique: announcing the same item again
   (a re-ingest, a retried harvest, two notifiers) adds nothing. A delivery is sent while its
   row is locked (``FOR UPDATE SKIP LOCKED``) and marked ``sent`` in the same transaction, so
   two senders never send it twice; a failed send is retried with exponential backoff
   (:class:`Backoff`) and finally marked ``failed``. (A process killed between a successful
   send and the commit sends that one notice again on the next run: webhook receivers can
   drop it by its ``X-Mus-Lab-Delivery`` key.)

Channels: e-mail over SMTP (:class:`SmtpSettings`), a webhook ``POST`` of the notice as JSON
signed with HMAC-SHA256 of the body under the subscription's secret
(``X-Mus-Lab-Signature: sha256=<hex>``, :func:`sign`), and an Atom feed per subscription
written to a file (:func:`atom_feed` gives the same XML from the database). A notice holds
the item's id, collection, datetime, bbox and link, nothing secret.

Security: managing subscriptions (listing, removing, sending a test) needs the owner's token,
given once by :func:`subscribe`; the database keeps only its SHA-256. A subscription's Atom
feed is served over HTTP (by the STAC API, ``GET /notices/feeds/{feed_id}``) to whoever holds
its unguessable :attr:`Subscription.feed_id` (:func:`feed_id`), as feed readers send no
token. Tokens, webhook secrets
and SMTP passwords are :class:`Secret` values: their repr and str are ``***``, and no message,
log line or CLI output quotes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree as ET

import pystac

from mus_lab.catalog._credentials import Secret
from mus_lab.catalog._events import on_new_items
from mus_lab.catalog._geometry import parse_bbox
from mus_lab.catalog._harvest_fetch import safe_url
from mus_lab.catalog._pgstac import _connect, _scrub, redact_url
from mus_lab.errors import NoticeError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "FEED_PATH",
    "SIGNATURE_HEADER",
    "Backoff",
    "Delivery",
    "DeliveryReport",
    "Notifier",
    "Secret",
    "SmtpSettings",
    "Subscription",
    "atom_feed",
    "deliveries",
    "feed_id",
    "feed_owned",
    "feed_subscription",
    "init_notices",
    "send_test",
    "sign",
    "subscribe",
    "subscriptions",
    "unsubscribe",
]

SIGNATURE_HEADER = "X-Mus-Lab-Signature"
"""Header of a webhook POST: ``sha256=<hex HMAC-SHA256 of the body under the secret>``."""
DELIVERY_HEADER = "X-Mus-Lab-Delivery"
ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_PATH = "/notices/feeds/{feed_id}"
"""Route of a subscription's Atom feed on the STAC API (:mod:`mus_lab.services.stac_api`)."""
Channel = Literal["email", "webhook", "atom"]

_LOG = logging.getLogger("mus_lab.services.notices")
_TEST_ID = "mus-lab-test-notice"
_FEED_SIZE = 100
_MIN_TOKEN = 16
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS notices;
CREATE TABLE IF NOT EXISTS notices.subscriptions (
    id bigserial PRIMARY KEY,
    owner_hash text NOT NULL,
    aoi geometry(Geometry, 4326) NOT NULL,
    collections text[],
    filter jsonb,
    channel text NOT NULL CHECK (channel IN ('email', 'webhook', 'atom')),
    target text NOT NULL,
    secret text,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subscriptions_aoi ON notices.subscriptions USING gist (aoi);
CREATE INDEX IF NOT EXISTS subscriptions_owner ON notices.subscriptions (owner_hash);
CREATE TABLE IF NOT EXISTS notices.deliveries (
    id bigserial PRIMARY KEY,
    subscription bigint NOT NULL REFERENCES notices.subscriptions (id) ON DELETE CASCADE,
    collection text NOT NULL,
    item text NOT NULL,
    channel text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created timestamptz NOT NULL DEFAULT now(),
    sent timestamptz,
    UNIQUE (subscription, collection, item, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON notices.deliveries (next_attempt)
    WHERE status = 'pending';
"""


def _secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


def _hash_token(token: Secret) -> str:
    return hashlib.sha256(token.reveal().encode()).hexdigest()


def sign(body: bytes, secret: str | Secret) -> str:
    """Return the webhook signature header value of ``body``: ``sha256=<hex HMAC-SHA256>``.

    A receiver recomputes it with the secret it was given and compares it with
    :func:`hmac.compare_digest`.

    Parameters
    ----------
    body
        The exact bytes of the POST body.
    secret
        The subscription's webhook secret.

    Returns
    -------
    str

    Examples
    --------
    >>> sign(b'{"item": "a"}', "key")
    'sha256=8f3b028e08d2fa1036e60af60dce62cb2325c5a6257a026bf997fd2e17d90ae5'
    """
    key = (secret.reveal() if isinstance(secret, Secret) else str(secret)).encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


_FEED_ID = re.compile(r"^([1-9][0-9]{0,17})-([0-9a-f]{32})$")


def _feed_mac(subscription: int, owner_hash: str) -> str:
    message = f"mus_lab atom feed {int(subscription)}".encode()
    return hmac.new(owner_hash.encode(), message, hashlib.sha256).hexdigest()[:32]


def feed_id(subscription: int, *, token: str | Secret) -> str:
    """The unguessable id under which a subscription's Atom feed is served.

    ``<subscription>-<HMAC-SHA256 of the number under the owner's token hash, 128 bits>``:
    only the owner (the token) or the database (its hash) can make it, so the route
    ``GET /notices/feeds/{feed_id}`` of the STAC API needs no token (feed readers send
    none) and still serves a feed to nobody who was not given the id. Nothing is stored;
    unsubscribing revokes it.

    Parameters
    ----------
    subscription
        The subscription's number.
    token
        Its owner's token.

    Returns
    -------
    str

    Raises
    ------
    NoticeError
        No token, or one too short.

    Examples
    --------
    >>> fid = feed_id(7, token="an-owner-token-of-16+")
    >>> fid.startswith("7-"), len(fid)
    (True, 34)
    >>> owner = _hash_token(Secret("an-owner-token-of-16+"))
    >>> feed_owned(fid, owner), feed_owned(fid, _hash_token(Secret("someone-else-entirely")))
    (7, None)
    """
    return f"{int(subscription)}-{_feed_mac(subscription, _hash_token(_token(token)))}"


def feed_owned(value: str, owner_hash: str | None) -> int | None:
    """The subscription number of a feed id, if ``owner_hash`` made it (else ``None``).

    Parameters
    ----------
    value
        A feed id as given in the URL.
    owner_hash
        The ``owner_hash`` stored with the subscription it names (``None``: no such one).

    Returns
    -------
    int or None
    """
    match = _FEED_ID.match(value)
    if match is None or owner_hash is None:
        return None
    sid = int(match.group(1))
    return sid if hmac.compare_digest(_feed_mac(sid, owner_hash), match.group(2)) else None


def feed_subscription(value: str) -> int | None:
    """The subscription number a well-formed feed id claims (unchecked: :func:`feed_owned`).

    Parameters
    ----------
    value
        A feed id as given in the URL.

    Returns
    -------
    int or None
        ``None`` for a malformed id.

    Examples
    --------
    >>> feed_subscription("12-" + "0" * 32), feed_subscription("../../etc/passwd")
    (12, None)
    """
    match = _FEED_ID.match(value)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Subscription:
    """One subscription as stored (its token and secret only on the value :func:`subscribe` returns).

    Attributes
    ----------
    id
        Its number in the database.
    channel
        ``"email"``, ``"webhook"`` or ``"atom"``.
    target
        The e-mail address, the webhook URL (shown without user info or query) or the Atom
        feed's file.
    aoi
        The area of interest (GeoJSON geometry, EPSG:4326).
    collections
        The collections it follows (empty: all).
    filter
        The CQL2-JSON filter on the item's properties, or ``None``.
    created
        When it was made (UTC).
    token
        The owner's token (only as returned by :func:`subscribe`); never shown.
    secret
        The webhook's signing secret (only as returned by :func:`subscribe`); never shown.
    feed_id
        Where its Atom feed is served (``FEED_PATH``; only as returned by :func:`subscribe`
        and :func:`subscriptions`, which know the token); not in the repr: whoever holds it
        reads the feed.
    """

    id: int
    channel: Channel
    target: str
    aoi: Mapping[str, Any]
    collections: tuple[str, ...]
    filter: Mapping[str, Any] | None
    created: dt.datetime
    token: Secret | None = field(default=None, repr=False, compare=False)
    secret: Secret | None = field(default=None, repr=False, compare=False)
    feed_id: str | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """One line for a listing: id, channel, target, collections, area, filter.

        Returns
        -------
        str
            No token or secret in it.
        """
        coll = ",".join(self.collections) or "all collections"
        try:
            from shapely.geometry import shape

            area = "bbox " + ",".join(f"{v:g}" for v in shape(self.aoi).bounds)
        except Exception:  # pragma: no cover - a stored geometry is valid GeoJSON
            area = str(self.aoi.get("type", "area"))
        where = f"{self.channel} {self.target}"
        text = f"{self.id}: {where}; {coll}; {area}"
        if self.filter is not None:
            text += f"; filter {_filter_text(self.filter)}"
        return text


@dataclass(frozen=True)
class Delivery:
    """One notice of one item to one subscription (a row of ``notices.deliveries``).

    Attributes
    ----------
    subscription, collection, item, channel
        What it is about (unique together).
    status
        ``"pending"`` (to send, maybe after a failure), ``"sent"`` or ``"failed"`` (gave up).
    attempts
        How many sends were tried.
    created, sent
        When it was queued and sent (UTC; ``sent`` is ``None`` until then).
    error
        The last failure's reason (no secret in it), or ``None``.
    """

    subscription: int
    collection: str
    item: str
    channel: str
    status: str
    attempts: int
    created: dt.datetime
    sent: dt.datetime | None
    error: str | None


@dataclass(frozen=True)
class DeliveryReport:
    """What :meth:`Notifier.notify` / :meth:`Notifier.deliver` did.

    Attributes
    ----------
    queued
        New deliveries queued (matches not queued before).
    sent
        Notices sent.
    retried
        Failed sends that will be retried.
    failed
        Deliveries given up after the last attempt.
    pending
        Deliveries still waiting (a later :meth:`Notifier.deliver` sends them).
    """

    queued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    pending: int = 0


@dataclass(frozen=True)
class Backoff:
    """How failed sends are retried: ``first * factor**(n - 1)`` seconds after the n-th failure.

    Attributes
    ----------
    attempts
        Sends tried before a delivery is marked ``failed``.
    first
        Seconds before the first retry.
    factor
        Growth of the wait between retries.
    max_wait
        Seconds :meth:`Notifier.deliver` may sleep waiting for retries before returning (the
        remaining ones stay ``pending`` for the next call).
    """

    attempts: int = 5
    first: float = 1.0
    factor: float = 2.0
    max_wait: float = 30.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed sends.

        Parameters
        ----------
        failures
            How many sends failed so far (1 or more).

        Returns
        -------
        float

        Examples
        --------
        >>> Backoff(first=0.5).delay(3)
        2.0
        """
        return float(self.first * self.factor ** max(0, failures - 1))


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail notices go out.

    Attributes
    ----------
    host, port
        The SMTP server.
    sender
        The ``From`` address.
    starttls
        Upgrade the connection with STARTTLS before logging in.
    user, password
        Login, if the server needs one (the password is a :class:`Secret`).
    timeout
        Seconds for the connection.
    """

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "mus-lab@localhost"
    starttls: bool = False
    user: str | None = None
    password: Secret | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``MUS_LAB_SMTP_HOST``, ``_PORT``, ``_SENDER``, ``_STARTTLS``, ``_USER``, ``_PASSWORD``.

        Parameters
        ----------
        environ
            Variables to read (default: ``os.environ``).

        Returns
        -------
        SmtpSettings

        Examples
        --------
        >>> SmtpSettings.from_env({"MUS_LAB_SMTP_PORT": "2525", "MUS_LAB_SMTP_PASSWORD": "pw"})
        SmtpSettings(host='127.0.0.1', port=2525, sender='mus-lab@localhost', starttls=False, user=None, timeout=10.0)
        """
        env = os.environ if environ is None else environ
        return cls(
            host=env.get("MUS_LAB_SMTP_HOST", cls.host),
            port=int(env.get("MUS_LAB_SMTP_PORT", cls.port)),
            sender=env.get("MUS_LAB_SMTP_SENDER", cls.sender),
            starttls=env.get("MUS_LAB_SMTP_STARTTLS", "") in ("1", "true", "yes"),
            user=env.get("MUS_LAB_SMTP_USER") or None,
            password=_secret(env.get("MUS_LAB_SMTP_PASSWORD") or None),
        )


# --- the database -------------------------------------------------------------------------------


def init_notices(db_url: str, *, connect_timeout: float = 10.0) -> None:
    """Create the ``notices`` schema (subscriptions and deliveries) if it is missing.

    Every function of this module does it on first use; it is idempotent.

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database (PostGIS installed, as pgstac needs).
    connect_timeout
        Seconds to wait for the server.

    Raises
    ------
    CatalogUnreachableError
        The server cannot be reached.
    NoticeError
        The schema cannot be created (the user lacks the right to).
    """
    _db(db_url, connect_timeout).close()


def _db(db_url: str, timeout: float) -> psycopg.Connection:
    """Connect (autocommit) and create the ``notices`` schema when it is missing."""
    conn = _connect(db_url, timeout=timeout)
    try:
        row = conn.execute("SELECT to_regclass('notices.deliveries') IS NOT NULL").fetchone()
        if not (row and row[0]):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('mus_lab.notices'))")
                conn.execute(_SCHEMA)
    except Exception as exc:
        conn.close()
        raise NoticeError(
            f"Cannot create the notices schema in {redact_url(db_url)} "
            f"({_scrub(str(exc), db_url)[:300]}): the user needs CREATE on the database, "
            "and PostGIS must be installed (`mus-lab holdings init URL`)."
        ) from None
    return conn


def _aoi(bbox: Any, intersects: Any) -> dict[str, Any]:
    if (bbox is None) == (intersects is None):
        raise NoticeError(
            "A subscription needs its area of interest: give bbox=(w, s, e, n) or "
            "intersects=<GeoJSON geometry>, one of them."
        )
    if bbox is not None:
        w, s, e, n = parse_bbox(bbox)
        return {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        }
    geometry = getattr(intersects, "__geo_interface__", intersects)
    if isinstance(geometry, str):
        try:
            geometry = json.loads(geometry)
        except ValueError:
            geometry = None
    if not isinstance(geometry, Mapping) or "type" not in geometry:
        raise NoticeError(
            "intersects= is not a GeoJSON geometry: give a dict like "
            '{"type": "Polygon", "coordinates": [...]} (EPSG:4326) or a shapely geometry.'
        )
    from shapely.geometry import shape

    try:
        if not shape(geometry).is_valid:
            raise ValueError("invalid")
    except Exception:
        raise NoticeError(
            "intersects= is not a valid geometry (self-intersecting or malformed): "
            "fix it, e.g. with shapely's make_valid."
        ) from None
    return dict(geometry)


def _parse_filter(value: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    import cql2

    try:
        expr = cql2.Expr(dict(value) if isinstance(value, Mapping) else str(value))
        expr.validate()
        return cast("dict[str, Any]", expr.to_json())
    except Exception as exc:
        raise NoticeError(
            f"The filter is not valid CQL2 ({' '.join(str(exc).split())[:200]}): write it "
            "as CQL2 text, e.g. \"eo:cloud_cover < 20 AND platform = 'sentinel-2a'\", or "
            "CQL2-JSON."
        ) from None


def _filter_text(value: Mapping[str, Any]) -> str:
    try:
        import cql2

        return str(cql2.Expr(dict(value)).to_text())
    except Exception:  # pragma: no cover - a stored filter is valid
        return json.dumps(value)


def _channel(
    email: str | None, webhook: str | None, atom: str | os.PathLike[str] | None
) -> tuple[Channel, str]:
    given = [(k, v) for k, v in (("email", email), ("webhook", webhook), ("atom", atom)) if v]
    if len(given) != 1:
        raise NoticeError(
            "A subscription has exactly one channel: give email=ADDRESS, webhook=URL or "
            "atom=FEED_FILE (one of them)."
        )
    kind, value = given[0]
    if kind == "email":
        address = str(value).strip()
        if not _EMAIL.match(address):
            raise NoticeError(
                f"{address!r} is not an e-mail address: write it as name@example.org."
            )
        return "email", address
    if kind == "webhook":
        url = str(value).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or _CONTROL.search(url):
            raise NoticeError(
                f"{safe_url(url)!r} is not a webhook URL: write http(s)://HOST[:PORT]/PATH."
            )
        return "webhook", url
    return "atom", str(Path(os.fspath(cast("str", value))).expanduser().absolute())


def _shown_target(channel: str, target: str) -> str:
    return safe_url(target) if channel == "webhook" else target


def _row_subscription(row: Sequence[Any]) -> Subscription:
    sid, channel, target, aoi, collections, filt, created = row
    return Subscription(
        id=int(sid),
        channel=channel,
        target=_shown_target(channel, target),
        aoi=json.loads(aoi) if isinstance(aoi, str) else aoi,
        collections=tuple(collections or ()),
        filter=filt,
        created=created,
    )


_SELECT = (
    "SELECT id, channel, target, ST_AsGeoJSON(aoi)::jsonb, collections, filter, created "
    "FROM notices.subscriptions"
)


def _token(token: str | Secret | None) -> Secret:
    value = _secret(token)
    if value is None or len(value.reveal()) < _MIN_TOKEN:
        raise NoticeError(
            "Managing subscriptions needs the owner's token (at least 16 characters): pass "
            "token= (what subscribe() returned) or, on the command line, --token-file / "
            "MUS_LAB_NOTICES_TOKEN."
        )
    return value


def subscribe(
    db_url: str,
    *,
    bbox: str | Sequence[float] | None = None,
    intersects: Any = None,
    collections: str | Sequence[str] | None = None,
    filter: str | Mapping[str, Any] | None = None,
    email: str | None = None,
    webhook: str | None = None,
    secret: str | Secret | None = None,
    atom: str | os.PathLike[str] | None = None,
    token: str | Secret | None = None,
    connect_timeout: float = 10.0,
) -> Subscription:
    """Subscribe to notices of new items over an area (a notebook cell's one call).

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    bbox
        Area of interest ``(w, s, e, n)`` in degrees, or ``"w,s,e,n"``.
    intersects
        Area of interest as a GeoJSON geometry (EPSG:4326) instead of ``bbox``.
    collections
        Collection ids to follow (a comma-separated string or a list); ``None``: all.
    filter
        Optional CQL2 filter on the item (text or CQL2-JSON), e.g. ``"eo:cloud_cover < 20"``.
    email
        Send e-mails to this address ...
    webhook
        ... or POST signed JSON to this URL ...
    secret
        ... signed with this secret (default: a new random one, returned once) ...
    atom
        ... or add entries to an Atom feed in this file.
    token
        The owner's token, to group subscriptions under one owner; ``None`` makes a new one.
        Keep it: it is needed to list, test or remove the subscription.
    connect_timeout
        Seconds to wait for the server.

    Returns
    -------
    Subscription
        With ``token`` (and ``secret`` for a webhook) set; both print as ``***``: use
        ``.reveal()`` to store them. ``feed_id`` names its Atom feed on the STAC API
        (``FEED_PATH``).

    Raises
    ------
    NoticeError
        No area or two areas, not exactly one channel, a malformed address, URL or filter,
        a token shorter than 16 characters.
    InvalidBBoxError
        A malformed bbox.
    CatalogUnreachableError
        The database cannot be reached.
    """
    aoi = _aoi(bbox, intersects)
    channel, target = _channel(email, webhook, atom)
    filt = _parse_filter(filter)
    colls = [c.strip() for c in collections.split(",")] if isinstance(collections, str) else None
    if collections is not None and not isinstance(collections, str):
        colls = [str(c).strip() for c in collections]
    if colls is not None:
        colls = [c for c in colls if c]
        if not colls:
            raise NoticeError("collections= is empty: name at least one, or pass None for all.")
    owner = _token(token) if token is not None else Secret(secrets.token_urlsafe(32))
    signing = _secret(secret) if channel == "webhook" else None
    if channel == "webhook" and signing is None:
        signing = Secret(secrets.token_urlsafe(32))
    if signing is not None and len(signing.reveal()) < _MIN_TOKEN:
        raise NoticeError("A webhook secret needs at least 16 characters: choose a longer one.")
    from psycopg.types.json import Jsonb

    conn = _db(db_url, connect_timeout)
    try:
        row = conn.execute(
            "INSERT INTO notices.subscriptions "
            "(owner_hash, aoi, collections, filter, channel, target, secret) "
            "VALUES (%s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s, %s, %s, %s, %s) "
            "RETURNING id, channel, target, ST_AsGeoJSON(aoi)::jsonb, collections, filter, "
            "created",
            (
                _hash_token(owner),
                json.dumps(aoi),
                colls,
                Jsonb(filt) if filt is not None else None,
                channel,
                target,
                signing.reveal() if signing is not None else None,
            ),
        ).fetchone()
    except Exception as exc:
        raise NoticeError(
            f"The database {redact_url(db_url)} refused the subscription "
            f"({_scrub(str(exc), db_url)[:300]})."
        ) from None
    finally:
        conn.close()
    assert row is not None
    sub = _row_subscription(row)
    _LOG.info("New notice subscription %s", sub.describe())
    fid = f"{sub.id}-{_feed_mac(sub.id, _hash_token(owner))}"
    return Subscription(**{**sub.__dict__, "token": owner, "secret": signing, "feed_id": fid})


def subscriptions(
    db_url: str, *, token: str | Secret, connect_timeout: float = 10.0
) -> list[Subscription]:
    """List the subscriptions owned by ``token``.

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    token
        The owner's token.
    connect_timeout
        Seconds to wait for the server.

    Returns
    -------
    list of Subscription
        Oldest first (empty for an unknown token).

    Raises
    ------
    NoticeError
        No token, or one too short.
    CatalogUnreachableError
        The database cannot be reached.
    """
    owner = _token(token)
    conn = _db(db_url, connect_timeout)
    try:
        rows = conn.execute(
            f"{_SELECT} WHERE owner_hash = %s ORDER BY id", (_hash_token(owner),)
        ).fetchall()
    finally:
        conn.close()
    owner_hash = _hash_token(owner)
    return [
        dataclasses.replace(sub, feed_id=f"{sub.id}-{_feed_mac(sub.id, owner_hash)}")
        for sub in map(_row_subscription, rows)
    ]


def _owned(
    conn: psycopg.Connection, subscription: int | Subscription, owner: Secret
) -> tuple[Subscription, str, str | None]:
    sid = subscription.id if isinstance(subscription, Subscription) else int(subscription)
    row = conn.execute(
        f"{_SELECT.replace('SELECT id,', 'SELECT target AS raw, secret, id,')} "
        "WHERE id = %s AND owner_hash = %s",
        (sid, _hash_token(owner)),
    ).fetchone()
    if row is None:
        raise NoticeError(
            f"No subscription {sid} is owned by this token: check the number "
            "(`mus-lab notices list`) and the token."
        )
    return _row_subscription(row[2:]), str(row[0]), row[1]


def unsubscribe(
    db_url: str,
    subscription: int | Subscription,
    *,
    token: str | Secret,
    connect_timeout: float = 10.0,
) -> None:
    """Remove a subscription and its deliveries.

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    subscription
        Its id (or the :class:`Subscription`).
    token
        The owner's token.
    connect_timeout
        Seconds to wait for the server.

    Raises
    ------
    NoticeError
        No such subscription owned by ``token``.
    """
    owner = _token(token)
    conn = _db(db_url, connect_timeout)
    try:
        sub, _, _ = _owned(conn, subscription, owner)
        conn.execute("DELETE FROM notices.subscriptions WHERE id = %s", (sub.id,))
    finally:
        conn.close()


def deliveries(
    db_url: str,
    subscription: int | Subscription,
    *,
    token: str | Secret,
    connect_timeout: float = 10.0,
) -> list[Delivery]:
    """List the notices of one subscription (queued, sent or given up), oldest first.

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    subscription
        Its id (or the :class:`Subscription`).
    token
        The owner's token.
    connect_timeout
        Seconds to wait for the server.

    Returns
    -------
    list of Delivery

    Raises
    ------
    NoticeError
        No such subscription owned by ``token``.
    """
    owner = _token(token)
    conn = _db(db_url, connect_timeout)
    try:
        sub, _, _ = _owned(conn, subscription, owner)
        rows = conn.execute(
            "SELECT subscription, collection, item, channel, status, attempts, created, sent, "
            "last_error FROM notices.deliveries WHERE subscription = %s ORDER BY id",
            (sub.id,),
        ).fetchall()
    finally:
        conn.close()
    return [Delivery(*r) for r in rows]


# --- notices and channels -----------------------------------------------------------------------


class _SendError(Exception):
    """A channel failed (the message holds no secret)."""


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _link(href: str | None) -> str | None:
    if not href:
        return None
    if "://" in href:
        return href
    path = Path(href)
    return path.as_uri() if path.is_absolute() else None


def _payload(item: pystac.Item, item_url: str | None) -> dict[str, Any]:
    """The notice of one item: id, collection, datetime, bbox and link, nothing else."""
    props = item.properties
    when = item.datetime or (
        pystac.utils.str_to_datetime(props["start_datetime"])
        if props.get("start_datetime")
        else None
    )
    bbox = list(item.bbox) if item.bbox else None
    if bbox is None and item.geometry:
        from shapely.geometry import shape

        bbox = list(shape(item.geometry).bounds)
    collection = item.collection_id or ""
    link: str | None
    if item_url:
        link = item_url.format(collection=quote(collection, safe=""), id=quote(item.id, safe=""))
    else:
        link = _link(item.get_self_href())
    return {
        "type": "mus_lab.notice",
        "item": item.id,
        "collection": collection,
        "datetime": _iso(when),
        "bbox": bbox,
        "link": link,
    }


def _clean(text: Any) -> str:
    return _CONTROL.sub(" ", str(text))


def _text(notice: Mapping[str, Any]) -> str:
    lines = [
        f"New data covers your area of interest (subscription {notice.get('subscription')}).",
        "",
        f"Item:       {_clean(notice['item'])}",
        f"Collection: {_clean(notice['collection'])}",
        f"Datetime:   {notice.get('datetime') or 'unknown'}",
        f"Bbox:       {', '.join(f'{v:g}' for v in notice.get('bbox') or []) or 'unknown'}",
        f"Link:       {notice.get('link') or 'none'}",
    ]
    return "\n".join(lines) + "\n"


def _send_email(smtp: SmtpSettings, address: str, notice: Mapping[str, Any]) -> None:
    msg = EmailMessage()
    msg["Subject"] = _clean(f"[mus_lab] New item {notice['item']} in {notice['collection']}")[:200]
    msg["From"] = smtp.sender
    msg["To"] = address
    msg.set_content(_text(notice))
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as server:
            if smtp.starttls:
                server.starttls()
            if smtp.user and smtp.password is not None:
                server.login(smtp.user, smtp.password.reveal())
            server.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise _SendError(f"the SMTP server {smtp.host}:{smtp.port} refused the login") from None
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if smtp.password is not None:
            reason = reason.replace(smtp.password.reveal(), "***")
        raise _SendError(f"SMTP {smtp.host}:{smtp.port}: {reason}") from None


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        # A proxy from the environment must not take loopback traffic elsewhere.
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _send_webhook(
    url: str, secret: str | None, notice: Mapping[str, Any], key: str, timeout: float
) -> None:
    body = json.dumps(notice, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mus_lab-notices",
        DELIVERY_HEADER: key,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    shown = safe_url(url)
    try:
        with _opener(url).open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise _SendError(f"the webhook {shown} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _SendError(f"the webhook {shown} cannot be reached ({reason})") from None
    if not 200 <= status < 300:
        raise _SendError(f"the webhook {shown} answered HTTP {status}")


def _atom_xml(subscription: int, entries: Sequence[tuple[Mapping[str, Any], dt.datetime]]) -> str:
    """An Atom 1.0 feed (RFC 4287) of a subscription's notices, newest first."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = _clean(text)
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"urn:mus-lab:notices:{subscription}")
    sub(feed, "title", f"mus_lab notices, subscription {subscription}")
    newest = max((when for _, when in entries), default=dt.datetime.now(dt.UTC))
    sub(feed, "updated", _iso(newest))
    author = sub(feed, "author")
    sub(author, "name", "mus_lab")
    sub(feed, "generator", "mus_lab")
    for notice, when in entries:
        entry = sub(feed, "entry")
        key = f"{quote(str(notice['collection']), safe='')}:{quote(str(notice['item']), safe='')}"
        sub(entry, "id", f"urn:mus-lab:notice:{subscription}:{key}")
        sub(entry, "title", f"New item {notice['item']} in {notice['collection']}")
        sub(entry, "updated", _iso(when))
        if notice.get("datetime"):
            sub(entry, "published", str(notice["datetime"]))
        if notice.get("link"):
            sub(entry, "link", href=str(notice["link"]), rel="alternate")
        sub(entry, "category", term=_clean(notice["collection"]))
        sub(entry, "summary", _text(notice))
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def _sent_atom_entries(
    conn: psycopg.Connection, subscription: int
) -> list[tuple[Mapping[str, Any], dt.datetime]]:
    rows = conn.execute(
        "SELECT payload, sent FROM notices.deliveries WHERE subscription = %s "
        "AND status = 'sent' ORDER BY sent DESC, id DESC LIMIT %s",
        (subscription, _FEED_SIZE),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _write_atom(path: str, xml: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(xml, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise _SendError(f"cannot write the Atom feed {target} ({exc.strerror or exc})") from None


def atom_feed(db_url: str, subscription: int, *, connect_timeout: float = 10.0) -> str:
    """Return the Atom feed of a subscription's sent notices (newest first, 100 at most).

    Reads are public: a feed holds only what the notices hold (no token, no secret).

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    subscription
        Its id.
    connect_timeout
        Seconds to wait for the server.

    Returns
    -------
    str
        Atom 1.0 XML.

    Raises
    ------
    NoticeError
        No such subscription.
    """
    conn = _db(db_url, connect_timeout)
    try:
        row = conn.execute(
            "SELECT 1 FROM notices.subscriptions WHERE id = %s", (int(subscription),)
        ).fetchone()
        if row is None:
            raise NoticeError(f"No subscription {subscription}: check the number.")
        return _atom_xml(int(subscription), _sent_atom_entries(conn, int(subscription)))
    finally:
        conn.close()


# --- the notifier -------------------------------------------------------------------------------


class Notifier:
    """Match new items against the subscriptions and send their notices, exactly once.

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database (with the ``notices`` schema; created
        when missing).
    smtp
        Where e-mails go out (default: :meth:`SmtpSettings.from_env`).
    backoff
        How failed sends are retried.
    item_url
        Template of an item's link in a notice, e.g.
        ``"http://127.0.0.1:8081/collections/{collection}/items/{id}"`` (a STAC API); by
        default the item's own ``self`` link (a file URI for local holdings).
    timeout
        Seconds for one webhook POST and for the database connection.
    feed_dir
        Where Atom feeds may be written: a feed file outside this folder is refused (the
        delivery fails with the reason). ``None`` (a researcher's own lab) allows any path.

    Examples
    --------
    >>> Notifier("postgresql://lab:s3cret@127.0.0.1:5432/holdings")
    Notifier('postgresql://lab:***@127.0.0.1:5432/holdings')
    """

    def __init__(
        self,
        db_url: str,
        *,
        smtp: SmtpSettings | None = None,
        backoff: Backoff = Backoff(),
        item_url: str | None = None,
        timeout: float = 10.0,
        feed_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._url = str(db_url)
        self.feed_dir = None if feed_dir is None else Path(feed_dir).expanduser().resolve()
        self.location = redact_url(self._url)
        self.smtp = smtp if smtp is not None else SmtpSettings.from_env()
        self.backoff = backoff
        self.item_url = item_url
        self.timeout = timeout
        self._remove: Any = None
        self._filters: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._again = False

    def __repr__(self) -> str:
        return f"Notifier({self.location!r})"

    # -- hooking into the harvest and the publisher
    def attach(self) -> Notifier:
        """Notify on every item the holdings ingest or the publisher writes in this process.

        The matches are queued at once, in the thread that announced the items (so they are
        recorded even if the process stops); they are sent by one background thread, so a
        slow or failing channel never holds the harvest or the publish up. :meth:`detach`
        (the end of a ``with`` block) waits for that thread.

        Returns
        -------
        Notifier
            ``self`` (also a context manager that detaches at the end of a ``with`` block).
        """
        if self._remove is None:
            self._remove = on_new_items(self._on_new_items)
        return self

    def detach(self) -> None:
        """Stop notifying on new items and wait for the sends in progress.

        What could not be sent within ``backoff.max_wait`` stays pending for the next
        :meth:`deliver` (``mus-lab notices deliver``).
        """
        if self._remove is not None:
            self._remove()
            self._remove = None
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.join(self.backoff.max_wait + 2 * self.timeout)

    def __enter__(self) -> Notifier:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()

    def _on_new_items(self, items: Sequence[pystac.Item], source: str) -> None:
        queued = self.enqueue(items)
        _LOG.info("%d notice(s) queued for %d new item(s) from %s", queued, len(items), source)
        if queued:
            self._kick()

    def _kick(self) -> None:
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                self._again = True
                return
            self._again = False
            self._worker = threading.Thread(target=self._drain, name="mus-lab-notices", daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        while True:
            try:
                report = self.deliver(wait=True)
                _LOG.info(
                    "Notices: %d sent, %d to retry, %d given up, %d pending",
                    report.sent,
                    report.retried,
                    report.failed,
                    report.pending,
                )
            except Exception as exc:  # a background sender reports, never raises
                _LOG.warning("Sending notices failed: %s: %s", type(exc).__name__, exc)
            with self._lock:
                if not self._again:
                    self._worker = None
                    return
                self._again = False

    # -- work
    def _connect(self) -> psycopg.Connection:
        return _db(self._url, self.timeout)

    def notify(self, items: Iterable[pystac.Item], *, wait: bool = True) -> DeliveryReport:
        """Queue the notices of ``items`` for every matching subscription, then send them.

        Parameters
        ----------
        items
            New items (with a collection id and a geometry or bbox).
        wait
            Sleep for retries of failed sends (up to ``backoff.max_wait`` seconds).

        Returns
        -------
        DeliveryReport

        Raises
        ------
        CatalogUnreachableError
            The database cannot be reached.
        """
        queued = self.enqueue(items)
        report = self.deliver(wait=wait)
        return DeliveryReport(queued, report.sent, report.retried, report.failed, report.pending)

    def _matches(self, sid: int, filt: Any, record: Mapping[str, Any]) -> bool:
        if filt is None:
            return True
        import cql2

        key = json.dumps(filt, sort_keys=True)
        expr = self._filters.get(key)
        if expr is None:
            expr = self._filters[key] = cql2.Expr(filt)
        try:
            return bool(expr.matches(dict(record)))
        except Exception as exc:
            _LOG.warning(
                "Subscription %s: its filter cannot be evaluated on item %s (%s); no notice",
                sid,
                record.get("id"),
                type(exc).__name__,
            )
            return False

    def enqueue(self, items: Iterable[pystac.Item]) -> int:
        """Queue one delivery per (matching subscription, item); nothing is sent here.

        Parameters
        ----------
        items
            New items.

        Returns
        -------
        int
            Deliveries newly queued (an item already notified to a subscription adds none).

        Raises
        ------
        CatalogUnreachableError
            The database cannot be reached.
        """
        from psycopg.types.json import Jsonb

        count = 0
        conn = self._connect()
        try:
            for item in items:
                geometry = item.geometry
                if not geometry and item.bbox:
                    box = list(item.bbox)
                    w, s, e, n = box[0], box[1], box[-2], box[-1]
                    geometry = {
                        "type": "Polygon",
                        "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                    }
                if not geometry or not item.collection_id:
                    _LOG.info("Item %s has no geometry or collection: no notice", item.id)
                    continue
                rows = conn.execute(
                    "SELECT id, filter, channel FROM notices.subscriptions "
                    "WHERE (collections IS NULL OR %s = ANY(collections)) AND "
                    "ST_Intersects(aoi, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)) ORDER BY id",
                    (item.collection_id, json.dumps(geometry)),
                ).fetchall()
                if not rows:
                    continue
                record = item.to_dict(include_self_link=False, transform_hrefs=False)
                record["collection"] = item.collection_id
                notice = _payload(item, self.item_url)
                for sid, filt, channel in rows:
                    if not self._matches(sid, filt, record):
                        continue
                    cur = conn.execute(
                        "INSERT INTO notices.deliveries "
                        "(subscription, collection, item, channel, payload) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (
                            sid,
                            item.collection_id,
                            item.id,
                            channel,
                            Jsonb({**notice, "subscription": sid}),
                        ),
                    )
                    count += cur.rowcount
        finally:
            conn.close()
        return count

    def _send(
        self,
        conn: psycopg.Connection,
        sid: int,
        channel: str,
        target: str,
        secret: str | None,
        notice: Mapping[str, Any],
    ) -> None:
        key = f"{sid}:{notice['collection']}:{notice['item']}"
        if channel == "email":
            _send_email(self.smtp, target, notice)
        elif channel == "webhook":
            _send_webhook(target, secret, notice, key, self.timeout)
        elif channel == "atom":
            if self.feed_dir is not None and not Path(target).resolve().is_relative_to(
                self.feed_dir
            ):
                raise _SendError(f"the Atom feed {target} is outside the feed folder")
            entries = [
                e
                for e in _sent_atom_entries(conn, sid)
                if (e[0].get("collection"), e[0].get("item"))
                != (notice["collection"], notice["item"])
            ]
            now = dt.datetime.now(dt.UTC)
            _write_atom(target, _atom_xml(sid, [(notice, now), *entries][:_FEED_SIZE]))
        else:  # pragma: no cover - the table's CHECK forbids it
            raise _SendError(f"unknown channel {channel!r}")

    def _deliver_one(self, conn: psycopg.Connection) -> str | None:
        with conn.transaction():
            row = conn.execute(
                "SELECT d.id, d.subscription, d.channel, d.payload, d.attempts, s.target, "
                "s.secret FROM notices.deliveries d JOIN notices.subscriptions s "
                "ON s.id = d.subscription WHERE d.status = 'pending' AND d.next_attempt <= now() "
                "ORDER BY d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED"
            ).fetchone()
            if row is None:
                return None
            did, sid, channel, notice, attempts, target, secret = row
            try:
                self._send(conn, sid, channel, target, secret, notice)
            except _SendError as exc:
                failures = attempts + 1
                final = failures >= self.backoff.attempts
                reason = str(exc)
                if secret:
                    reason = reason.replace(secret, "***")
                conn.execute(
                    "UPDATE notices.deliveries SET attempts = %s, last_error = %s, "
                    "status = %s, next_attempt = now() + make_interval(secs => %s) "
                    "WHERE id = %s",
                    (
                        failures,
                        reason[:500],
                        "failed" if final else "pending",
                        self.backoff.delay(failures),
                        did,
                    ),
                )
                _LOG.warning(
                    "Notice %s of subscription %s, attempt %d: %s%s",
                    f"{notice['collection']}/{notice['item']}",
                    sid,
                    failures,
                    reason,
                    " (given up)" if final else "",
                )
                return "failed" if final else "retried"
            conn.execute(
                "UPDATE notices.deliveries SET status = 'sent', attempts = attempts + 1, "
                "sent = now(), last_error = NULL WHERE id = %s",
                (did,),
            )
            return "sent"

    def deliver(self, *, wait: bool = True) -> DeliveryReport:
        """Send the pending notices that are due (retries included).

        Parameters
        ----------
        wait
            Sleep until failed sends are due again, up to ``backoff.max_wait`` seconds in
            all; with ``False`` only what is due now is tried.

        Returns
        -------
        DeliveryReport
            ``queued`` is 0; ``pending`` counts what is left for a later call.

        Raises
        ------
        CatalogUnreachableError
            The database cannot be reached.
        """
        counts = {"sent": 0, "retried": 0, "failed": 0}
        deadline = time.monotonic() + self.backoff.max_wait
        conn = self._connect()
        try:
            while True:
                outcome = self._deliver_one(conn)
                if outcome is not None:
                    counts[outcome] += 1
                    continue
                row = conn.execute(
                    "SELECT count(*), extract(epoch FROM min(next_attempt) - now()) "
                    "FROM notices.deliveries WHERE status = 'pending'"
                ).fetchone()
                pending, due_in = (int(row[0]), row[1]) if row else (0, None)
                if not wait or pending == 0 or due_in is None:
                    break
                delay = max(0.0, float(due_in)) + 0.01
                if time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)
        finally:
            conn.close()
        return DeliveryReport(0, counts["sent"], counts["retried"], counts["failed"], pending)

    def send_test(self, subscription: int | Subscription, *, token: str | Secret) -> None:
        """Send a test notice through a subscription's channel (nothing is recorded).

        Parameters
        ----------
        subscription
            Its id (or the :class:`Subscription`).
        token
            The owner's token.

        Raises
        ------
        NoticeError
            No such subscription owned by ``token``, or the channel failed (the reason is
            in the message).
        """
        owner = _token(token)
        conn = self._connect()
        try:
            sub, target, secret = _owned(conn, subscription, owner)
            from shapely.geometry import shape

            notice = {
                "type": "mus_lab.notice",
                "test": True,
                "subscription": sub.id,
                "item": _TEST_ID,
                "collection": sub.collections[0] if sub.collections else "any",
                "datetime": _iso(dt.datetime.now(dt.UTC)),
                "bbox": list(shape(sub.aoi).bounds),
                "link": None,
            }
            try:
                self._send(conn, sub.id, sub.channel, target, secret, notice)
            except _SendError as exc:
                reason = str(exc).replace(secret, "***") if secret else str(exc)
                raise NoticeError(
                    f"The test notice of subscription {sub.id} failed: {reason}. Check the "
                    "address, URL or file, and the SMTP settings (MUS_LAB_SMTP_HOST, ...)."
                ) from None
        finally:
            conn.close()


def send_test(
    db_url: str,
    subscription: int | Subscription,
    *,
    token: str | Secret,
    smtp: SmtpSettings | None = None,
    timeout: float = 10.0,
) -> None:
    """Send a test notice through a subscription's channel (:meth:`Notifier.send_test`).

    Parameters
    ----------
    db_url
        ``postgresql://`` URL of the holdings database.
    subscription
        Its id (or the :class:`Subscription`).
    token
        The owner's token.
    smtp
        Where e-mails go out (default: :meth:`SmtpSettings.from_env`).
    timeout
        Seconds for the database and a webhook.

    Raises
    ------
    NoticeError
        No such subscription owned by ``token``, or the channel failed.
    """
    Notifier(db_url, smtp=smtp, timeout=timeout).send_test(subscription, token=token)
