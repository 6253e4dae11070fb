"""How the harvest reaches the assets of one provider: URLs, credentials, orders.

A provider adapter registers an :class:`AssetAccess` factory under its name; every
item a search returns records that name in ``properties["mus_lab:provider"]``
(:data:`PROVIDER_PROPERTY`), so the harvest asks :func:`access_for` how to fetch each
asset. :meth:`AssetAccess.prepare` answers either :class:`Ready` (a URL, request
headers holding credentials, the checksum the provider gives) or :class:`Pending`
(an order-then-download product being prepared: ask again after ``retry_after``
seconds). On an HTTP 401 in the middle of a download the harvest calls
:meth:`AssetAccess.refresh` once and prepares the asset again.

Credentials travel only in :attr:`Ready.headers`, whose ``repr`` is redacted, so they
never reach logs, error messages or written items.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pystac

__all__ = [
    "HARVEST_PROPERTY",
    "PROVIDER_PROPERTY",
    "AssetAccess",
    "Pending",
    "PlainAccess",
    "Ready",
    "access_for",
    "clear_access",
    "register_access",
]

#: Item property naming the provider an item was found at (``"earth-search"``, ``"eodms"``...).
PROVIDER_PROPERTY = "mus_lab:provider"
#: Item property the harvest writes: where and when the item's files came from.
HARVEST_PROPERTY = "mus_lab:harvest"


class _RedactedHeaders(dict[str, str]):
    """A header dict whose ``repr`` hides the values (tokens must never be printed)."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: '***'" for k in self) + "}"


@dataclass(frozen=True)
class Ready:
    """An asset that can be downloaded now.

    Attributes
    ----------
    url
        ``http(s)://`` URL, ``file://`` URL or local path of the file.
    headers
        Request headers (credentials included); never printed.
    checksum
        The provider's checksum: a STAC ``file:checksum`` multihash (hex), or
        ``"md5:<hex>"`` / ``"blake3:<hex>"`` / ``"sha256:<hex>"``; ``None`` if it gives none.
    size
        Size in bytes, when the provider says.
    filename
        Name of the file in the item's folder (``None``: the last part of the URL path).
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    checksum: str | None = None
    size: int | None = None
    filename: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _RedactedHeaders(self.headers))


@dataclass(frozen=True)
class Pending:
    """An asset the provider is still preparing (ordered, restoring from tape, offline).

    Attributes
    ----------
    retry_after
        Seconds to wait before calling :meth:`AssetAccess.prepare` again.
    reason
        What the provider said (``"Queued"``, ``"ItemsRestoring"``...), for the progress line.
    """

    retry_after: float
    reason: str


@runtime_checkable
class AssetAccess(Protocol):
    """What the harvest needs from a provider to fetch an item's assets."""

    provider: str

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        """Say how to download ``asset`` now, or that it is not ready yet.

        Parameters
        ----------
        item
            The item holding the asset.
        key
            The asset's key in the item.
        asset
            The asset.

        Returns
        -------
        Ready or Pending
            The URL, headers and checksum, or when to ask again.
        """
        ...

    def refresh(self) -> None:
        """Renew the credentials after the server answered 401 (expired token)."""
        ...


class PlainAccess:
    """Assets fetched as they are: public URLs or local files, no credentials, no order.

    Examples
    --------
    >>> item = pystac.Item("a", None, None, __import__("datetime").datetime(2024, 1, 1), {})
    >>> asset = pystac.Asset("https://example.org/a/B04.tif",
    ...                      extra_fields={"file:checksum": "1220" + "00" * 32})
    >>> ready = PlainAccess().prepare(item, "red", asset)
    >>> ready.url, ready.checksum[:4]
    ('https://example.org/a/B04.tif', '1220')
    """

    provider = "plain"

    def prepare(self, item: pystac.Item, key: str, asset: pystac.Asset) -> Ready | Pending:
        """Return the asset's own href with its ``file:checksum`` and ``file:size``.

        Parameters
        ----------
        item
            The item holding the asset.
        key
            The asset's key in the item.
        asset
            The asset.

        Returns
        -------
        Ready
            Always ready.
        """
        fields = asset.extra_fields
        size = fields.get("file:size")
        return Ready(
            url=asset.get_absolute_href() or asset.href,
            checksum=fields.get("file:checksum"),
            size=int(size) if size is not None else None,
        )

    def refresh(self) -> None:
        """Nothing to renew.

        Returns
        -------
        None
        """


_FACTORIES: dict[str, Callable[[], AssetAccess]] = {}
_INSTANCES: dict[str, AssetAccess] = {}
_LOCK = threading.Lock()


def register_access(provider: str, factory: Callable[[], AssetAccess]) -> None:
    """Register how the assets of ``provider``'s items are fetched.

    The factory is called once, on first use (it may read credentials then).

    Parameters
    ----------
    provider
        The provider name that its items carry in ``mus_lab:provider``.
    factory
        Returns the provider's :class:`AssetAccess`.

    Returns
    -------
    None

    Examples
    --------
    >>> register_access("my-archive", PlainAccess)
    >>> item = pystac.Item("a", None, None, __import__("datetime").datetime(2024, 1, 1),
    ...                    {PROVIDER_PROPERTY: "my-archive"})
    >>> type(access_for(item)).__name__
    'PlainAccess'
    """
    with _LOCK:
        _FACTORIES[provider] = factory
        _INSTANCES.pop(provider, None)


def access_for(item: pystac.Item, *, default: AssetAccess | None = None) -> AssetAccess:
    """Return the :class:`AssetAccess` of the provider ``item`` came from.

    Parameters
    ----------
    item
        An item returned by :func:`mus_lab.catalog.search`.
    default
        Used when the item's provider registered nothing (default: :class:`PlainAccess`).

    Returns
    -------
    AssetAccess
        One shared instance per provider.
    """
    provider: Any = item.properties.get(PROVIDER_PROPERTY)
    with _LOCK:
        if provider in _INSTANCES:
            return _INSTANCES[provider]
        factory = _FACTORIES.get(provider) if isinstance(provider, str) else None
        if factory is None:
            return default if default is not None else PlainAccess()
        access = _INSTANCES[provider] = factory()
        return access


def clear_access() -> None:
    """Forget the provider access objects made so far (the next use makes new ones).

    Call it after changing the provider settings (URLs, credentials) in a running
    session; the local replay server of the tests calls it when it starts and stops.

    Returns
    -------
    None
    """
    with _LOCK:
        _INSTANCES.clear()
