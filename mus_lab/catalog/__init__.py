"""Catalog stage: search STAC APIs and local static catalogs, normalise asset names.

>>> from mus_lab.catalog import search
>>> result = search("https://earth-search.aws.element84.com/v1",
...                 collections="sentinel-2-l2a", bbox=(5.0, 52.0, 5.2, 52.1),
...                 datetime="2024-06", max_cloud=20)  # doctest: +SKIP

The same call on a local catalog (here the tiny sample scenario's) needs no network:

>>> local = search(tiny.catalog_path, collections="sentinel-2-l2a", max_cloud=20)
>>> type(local).__name__, local.collections
('SearchResult', ('sentinel-2-l2a',))

Both return a :class:`SearchResult`; asset keys are renamed to the canonical names of
``docs/design/0001-data-contracts.md`` through packaged collection profiles.
"""

from __future__ import annotations

from mus_lab.catalog._access import (
    HARVEST_PROPERTY,
    PROVIDER_PROPERTY,
    AssetAccess,
    Pending,
    PlainAccess,
    Ready,
    access_for,
    register_access,
)
from mus_lab.catalog._geometry import parse_bbox
from mus_lab.catalog._harvest import HarvestFailure, HarvestReport, RetryPolicy, harvest
from mus_lab.catalog._holdings import Holdings, StaticHoldings, open_holdings
from mus_lab.catalog._local import LocalCatalog, open_local
from mus_lab.catalog._profiles import CollectionProfile, get_profile, normalise_item
from mus_lab.catalog._result import SearchResult
from mus_lab.catalog._search import search

__all__ = [
    "HARVEST_PROPERTY",
    "PROVIDER_PROPERTY",
    "AssetAccess",
    "CollectionProfile",
    "HarvestFailure",
    "HarvestReport",
    "Holdings",
    "LocalCatalog",
    "Pending",
    "PlainAccess",
    "Ready",
    "RetryPolicy",
    "SearchResult",
    "StaticHoldings",
    "access_for",
    "get_profile",
    "harvest",
    "normalise_item",
    "open_holdings",
    "open_local",
    "parse_bbox",
    "register_access",
    "search",
]
