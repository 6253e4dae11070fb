"""The notices' Atom feeds over HTTP: a route of the STAC API app.

``GET /notices/feeds/{feed_id}`` answers a subscription's Atom 1.0 feed (the 100 newest
notices sent to it, as :func:`mus_lab.services.notices.atom_feed` gives it), read through the
STAC API's own connection pool.

Who may read it: whoever holds the feed id (:func:`mus_lab.services.notices.feed_id`, a
128-bit HMAC under the owner's token hash), not the bearer token. Feed readers cannot send an
``Authorization`` header, and a feed shows which items fell in a subscriber's area, so the
number alone (guessable) is not enough. Unknown, malformed or forged ids all get the same 404
(no oracle). The id is a credential: answers carry ``Referrer-Policy: no-referrer`` and
``Cache-Control: private``, and :class:`RedactFeedIds` keeps it out of uvicorn's access log.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from mus_lab.services import notices

__all__ = ["RedactFeedIds", "add_feed_route"]

_ATOM = "application/atom+xml"
_SHOWN = re.compile(r"(/notices/feeds/)[^/?#\s\"]+")
_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "private, max-age=60"}


class RedactFeedIds(logging.Filter):
    """A logging filter writing ``/notices/feeds/***`` for every feed id in a record.

    Examples
    --------
    >>> record = logging.LogRecord("uvicorn.access", 20, "", 0, "%s %s", ("GET", "/notices/feeds/3-ab"), None)
    >>> RedactFeedIds().filter(record), record.getMessage()
    (True, 'GET /notices/feeds/***')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and arguments; always keep the record.

        Parameters
        ----------
        record
            The log record.

        Returns
        -------
        bool
            ``True``.
        """
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SHOWN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SHOWN.sub(r"\1***", record.msg)
        return True


async def _feed(pool: Any, value: str) -> str | None:
    """The feed's XML, or ``None`` when ``value`` names no feed."""
    sid = notices.feed_subscription(value)
    if sid is None:
        return None
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT to_regclass('notices.deliveries') IS NOT NULL"):
            return None
        owner = await conn.fetchval(
            "SELECT owner_hash FROM notices.subscriptions WHERE id = $1", sid
        )
        if notices.feed_owned(value, owner) is None:
            return None
        rows = await conn.fetch(
            "SELECT payload, sent FROM notices.deliveries WHERE subscription = $1 "
            "AND status = 'sent' ORDER BY sent DESC, id DESC LIMIT $2",
            sid,
            notices._FEED_SIZE,
        )
    entries: list[tuple[Any, dt.datetime]] = []
    for payload, sent in rows:
        if isinstance(payload, bytes | str):
            import json

            payload = json.loads(payload)
        entries.append((payload, sent))
    return notices._atom_xml(sid, entries)


def add_feed_route(app: Any) -> None:
    """Add ``GET /notices/feeds/{feed_id}`` to a stac-fastapi-pgstac app (its OpenAPI too).

    Parameters
    ----------
    app
        The FastAPI app (its ``state.readpool`` is the asyncpg pool stac-fastapi opens).
    """
    from starlette.responses import JSONResponse, Response

    not_found = {
        "code": "NotFound",
        "description": "No feed has this id: use the feed id given with the subscription "
        "(Subscription.feed_id, `mus-lab notices list`).",
    }

    async def notices_feed(feed_id: str) -> Any:
        """Atom feed of a subscription's availability notices (public to its feed id)."""
        xml = await _feed(app.state.readpool, feed_id)
        if xml is None:
            return JSONResponse(not_found, status_code=404, headers=_HEADERS)
        return Response(xml, media_type=_ATOM, headers=_HEADERS)

    app.add_api_route(
        notices.FEED_PATH,
        notices_feed,
        methods=["GET"],
        tags=["Notices"],
        summary="Atom feed of a subscription's notices",
        response_class=Response,
        response_model=None,
        responses={
            200: {"content": {_ATOM: {"schema": {"type": "string"}}}, "description": "Atom 1.0"},
            404: {"description": "No feed has this id"},
        },
    )
