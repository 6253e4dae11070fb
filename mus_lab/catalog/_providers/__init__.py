"""Data providers known by name behind :func:`mus_lab.catalog.search`.

=====================  ===========================================================
name                   service
=====================  ===========================================================
``earth-search``       Element 84 Earth Search v1 (STAC)
``planetary-computer`` Microsoft Planetary Computer (STAC; SAS-signed downloads)
``cdse``               Copernicus Data Space Ecosystem STAC API
``cdse-odata``         CDSE OData catalogue (filter translation, checksums)
``cdse-opensearch``    CDSE resto OpenSearch Geo & Time feeds
``eodms``              EODMS STAC API (RCM ARD, level-1 products ordered via the DDS)
=====================  ===========================================================

Each is created on demand (nothing is read or contacted at import); each base URL can
be redirected with ``MUS_LAB_PROVIDER_<NAME>_URL``. Importing this package registers
the providers' :class:`~mus_lab.catalog.AssetAccess` factories (signing, tokens, orders)
with :func:`~mus_lab.catalog.register_access`.
"""

from __future__ import annotations

from collections.abc import Callable

from mus_lab.catalog._access import register_access
from mus_lab.catalog._providers import _eodms, _odata
from mus_lab.catalog._providers._base import PROVIDER_COLLECTION, Provider, Route, offers
from mus_lab.catalog._providers._eodms import EodmsAccess, EodmsProvider
from mus_lab.catalog._providers._odata import CdseAccess, CdseODataProvider
from mus_lab.catalog._providers._opensearch import OpenSearchProvider
from mus_lab.catalog._providers._stac import PlanetaryComputerAccess, StacProvider
from mus_lab.errors import UnknownProviderError

__all__ = [
    "PROVIDERS",
    "PROVIDER_COLLECTION",
    "Provider",
    "Route",
    "forget_tokens",
    "get_provider",
    "offers",
    "provider_names",
]

#: Provider name -> factory (called per search, so URL overrides are read each time).
PROVIDERS: dict[str, Callable[[], Provider]] = {
    "earth-search": lambda: StacProvider("earth-search"),
    "planetary-computer": lambda: StacProvider("planetary-computer"),
    "cdse": lambda: StacProvider("cdse"),
    "cdse-odata": CdseODataProvider,
    "cdse-opensearch": OpenSearchProvider,
    "eodms": EodmsProvider,
}


def provider_names() -> tuple[str, ...]:
    """Return the provider names :func:`mus_lab.catalog.search` accepts.

    Returns
    -------
    tuple of str
        Sorted names.

    Examples
    --------
    >>> provider_names()
    ('cdse', 'cdse-odata', 'cdse-opensearch', 'earth-search', 'eodms', 'planetary-computer')
    """
    return tuple(sorted(PROVIDERS))


def get_provider(name: str) -> Provider:
    """Return the provider called ``name``.

    Parameters
    ----------
    name
        One of :func:`provider_names`.

    Returns
    -------
    Provider
        A new adapter on the configured URL.

    Raises
    ------
    UnknownProviderError
        An unknown name (the message lists the known ones).

    Examples
    --------
    >>> get_provider("eodms").url
    'https://www.eodms-sgdot.nrcan-rncan.gc.ca/search'
    """
    factory = PROVIDERS.get(name)
    if factory is None:
        raise UnknownProviderError(
            f"Unknown provider {name!r}: use one of {list(provider_names())}, an http(s):// "
            "STAC API URL, or the path of a local catalog."
        )
    return factory()


def _register() -> None:
    register_access("planetary-computer", PlanetaryComputerAccess)
    register_access("eodms", EodmsAccess)
    for name in ("cdse", "cdse-odata", "cdse-opensearch"):
        register_access(name, CdseAccess)


def forget_tokens() -> None:
    """Drop every cached token and access object (new credentials are read on next use).

    Returns
    -------
    None

    Examples
    --------
    >>> forget_tokens()
    """
    _eodms.forget_tokens()
    _odata.forget_tokens()
    _register()


_register()
