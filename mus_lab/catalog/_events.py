"""New-item events: how the harvest and the publisher tell later layers that items arrived.

The stages must not import the services that react to new data (availability notices live
in :mod:`mus_lab.services.notices`, the top layer). So the low layer keeps a small observer
registry: a service registers a callback with :func:`on_new_items`; the holdings' ``ingest``
(:class:`~mus_lab.catalog.StaticHoldings`, :class:`~mus_lab.catalog._pgstac.PgstacHoldings`,
hence the harvest) and the product writer (:func:`mus_lab.publish.write_collection`) call
:func:`announce_new_items` once their items are complete and visible.

A callback runs in the announcing thread, after the write succeeded; what it raises is
logged (type and message) and never fails the harvest or the publish. With no callback
registered an announcement costs nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import pystac

__all__ = ["NewItemsCallback", "announce_new_items", "has_listeners", "on_new_items"]

NewItemsCallback = Callable[[Sequence[pystac.Item], str], None]
"""``callback(items, source)``: the new items (do not modify them) and where they are held."""

_LOG = logging.getLogger("mus_lab.catalog.events")
_CALLBACKS: list[NewItemsCallback] = []
_LOCK = threading.Lock()


def on_new_items(callback: NewItemsCallback) -> Callable[[], None]:
    """Register ``callback`` to be called with every batch of new items.

    Parameters
    ----------
    callback
        ``callback(items, source)``; ``source`` is the holdings' location (password-free)
        or the product catalog's folder.

    Returns
    -------
    callable
        Call it (no argument) to unregister ``callback``; calling it twice does nothing.

    Examples
    --------
    >>> seen = []
    >>> remove = on_new_items(lambda items, source: seen.extend(i.id for i in items))
    >>> item = pystac.Item("a", None, None, __import__("datetime").datetime(2024, 1, 1), {})
    >>> announce_new_items([item], source="demo")
    >>> remove(); announce_new_items([item], source="demo")
    >>> seen
    ['a']
    """
    with _LOCK:
        _CALLBACKS.append(callback)

    def remove() -> None:
        with _LOCK:
            if callback in _CALLBACKS:
                _CALLBACKS.remove(callback)

    return remove


def has_listeners() -> bool:
    """Return whether any callback is registered (announcers skip building items otherwise)."""
    return bool(_CALLBACKS)


def announce_new_items(items: Sequence[pystac.Item], *, source: str) -> None:
    """Call every registered callback with ``items`` (nothing happens when there are none).

    Parameters
    ----------
    items
        Items just ingested or published, complete.
    source
        Where they are held (a location without any password).
    """
    if not items:
        return
    with _LOCK:
        callbacks = list(_CALLBACKS)
    for callback in callbacks:
        try:
            callback(items, source)
        except Exception as exc:  # a notice must never fail a harvest or a publish
            _LOG.warning(
                "A new-items callback failed on %d item(s) from %s: %s: %s",
                len(items),
                source,
                type(exc).__name__,
                exc,
            )
