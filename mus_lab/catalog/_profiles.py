"""Collection profiles: provider asset keys -> canonical band names (docs/design/0001).

Profiles are packaged YAML files (``mus_lab/catalog/profiles/*.yaml``), one per
provider, read once on first use. A profile is chosen by provider (a name such as
``"planetary-computer"``, a URL or host of a STAC API, or ``"local"``) and collection id.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

import pystac
import yaml

from mus_lab.errors import CatalogError

__all__ = [
    "CANONICAL_NAMES",
    "PROVIDER_KEY",
    "CollectionProfile",
    "get_profile",
    "normalise_item",
    "provider_for",
]

#: Canonical asset keys of the data contract (0001), all sensors.
CANONICAL_NAMES = frozenset(
    {
        "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
        "swir16", "swir22", "scl", "vv", "vh", "hh", "hv", "rh", "rv", "dem",
    }
)  # fmt: skip
#: ``extra_fields`` key keeping the provider's own asset key after normalisation.
PROVIDER_KEY = "mus_lab:provider_key"


@dataclass(frozen=True)
class CollectionProfile:
    """How one provider names and encodes the assets of one collection.

    Attributes
    ----------
    provider
        Provider name (``"earth-search"``, ``"planetary-computer"``, ``"local"``, ...),
        ``"unknown"`` for the fallback profile.
    collection
        Collection id at that provider.
    assets
        Provider asset key -> canonical name. Keys not listed are mapped by
        ``eo:bands[].common_name`` when that is canonical, else kept.
    nodata
        Nodata value of the data assets, if known.
    resolution
        Native resolution in metres per canonical name.
    scale
        Scale factor from DN to physical value when the items do not carry it.
    offset_from
        Where the offset comes from: ``"raster:bands"`` (read it from the asset) or
        ``"processing_baseline"`` (-0.1 from ``s2:processing_baseline`` >= 04.00).
    mask_asset, mask_table
        Canonical name of the classification mask asset and the name of its table.
    """

    provider: str
    collection: str
    assets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    nodata: float | None = None
    resolution: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    scale: float | None = None
    offset_from: str | None = None
    mask_asset: str | None = None
    mask_table: str | None = None

    @property
    def is_fallback(self) -> bool:
        """Whether no packaged profile matched (asset keys are mapped by common name only)."""
        return self.provider == "unknown"


@dataclass(frozen=True)
class _Provider:
    name: str
    hosts: tuple[str, ...]
    path_prefix: str
    root_ids: tuple[str, ...]
    collections: Mapping[str, CollectionProfile]


def _profile(provider: str, collection: str, raw: Mapping[str, Any]) -> CollectionProfile:
    nodata = raw.get("nodata")
    return CollectionProfile(
        provider=provider,
        collection=collection,
        assets=MappingProxyType({str(k): str(v) for k, v in (raw.get("assets") or {}).items()}),
        nodata=None if nodata is None else float(nodata),
        resolution=MappingProxyType(
            {str(k): float(v) for k, v in (raw.get("resolution") or {}).items()}
        ),
        scale=raw.get("scale"),
        offset_from=raw.get("offset_from"),
        mask_asset=raw.get("mask_asset"),
        mask_table=raw.get("mask_table"),
    )


@functools.cache
def _providers() -> tuple[_Provider, ...]:
    out = []
    folder = resources.files("mus_lab.catalog") / "profiles"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
        name = raw["provider"]
        out.append(
            _Provider(
                name=name,
                hosts=tuple(raw.get("hosts") or ()),
                path_prefix=raw.get("path_prefix") or "",
                root_ids=tuple(raw.get("root_ids") or ()),
                collections=MappingProxyType(
                    {cid: _profile(name, cid, spec) for cid, spec in raw["collections"].items()}
                ),
            )
        )
    return tuple(out)


def provider_for(source: str, *, root_id: str | None = None) -> str:
    """Return the provider name for a catalog URL, a provider name or ``"local"``.

    A STAC API is recognised by its host (and path, to tell Earth Search v0 from v1)
    or, when served from elsewhere (a mirror, a test server), by the id of its
    landing page (``root_id``).

    Parameters
    ----------
    source
        A STAC API URL, a provider name, or a local path.
    root_id
        The id of the API's landing page, when known.

    Returns
    -------
    str
        A provider name of the packaged profiles, or ``"local"``.

    Examples
    --------
    >>> provider_for("https://planetarycomputer.microsoft.com/api/stac/v1")
    'planetary-computer'
    >>> provider_for("http://127.0.0.1:8000/v1", root_id="earth-search-aws")
    'earth-search'
    """
    providers = _providers()
    if source in {p.name for p in providers}:
        return source
    parsed = urlparse(source if "//" in source else f"//{source}")
    host, path = (parsed.hostname or "").lower(), parsed.path
    by_host = [p for p in providers if host in p.hosts]
    for p in sorted(by_host, key=lambda p: -len(p.path_prefix)):
        if path.startswith(p.path_prefix):
            return p.name
    if root_id is not None:
        for p in providers:
            if root_id in p.root_ids:
                return p.name
    if by_host:
        return by_host[0].name
    return "unknown"


def get_profile(provider: str, collection: str) -> CollectionProfile:
    """Return the packaged profile of ``collection`` at ``provider``.

    Parameters
    ----------
    provider
        A provider name (``"earth-search"``, ``"earth-search-v0"``,
        ``"planetary-computer"``, ``"local"``) or the URL of a STAC API.
    collection
        The collection id at that provider.

    Returns
    -------
    CollectionProfile
        The packaged profile, or a fallback profile (``is_fallback``) with no asset
        table, which maps asset keys by ``eo:bands[].common_name`` only.

    Examples
    --------
    >>> p = get_profile("planetary-computer", "sentinel-2-l2a")
    >>> p.assets["B04"], p.resolution["red"], p.mask_table
    ('red', 10.0, 'sentinel-2-scl')
    >>> get_profile("https://example.com/stac", "naip").is_fallback
    True
    """
    name = provider_for(provider)
    for p in _providers():
        if p.name == name and collection in p.collections:
            return p.collections[collection]
    return CollectionProfile(provider="unknown", collection=collection)


def _common_name(asset: pystac.Asset) -> str | None:
    bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands")
    if isinstance(bands, list) and len(bands) == 1 and isinstance(bands[0], Mapping):
        name = bands[0].get("common_name") or bands[0].get("eo:common_name")
        return str(name) if name else None
    return None


def normalise_item(item: pystac.Item, profile: CollectionProfile | None = None) -> pystac.Item:
    """Return a copy of ``item`` whose asset keys are the canonical band names.

    Keys listed in the profile are renamed; other keys are renamed to their single
    ``eo:bands[].common_name`` when that is a canonical name not already taken, and
    kept otherwise. Every asset keeps its provider key in
    ``asset.extra_fields["mus_lab:provider_key"]``. The input item is not changed.

    Parameters
    ----------
    item
        A STAC item.
    profile
        Its collection profile; ``None`` uses the common-name fallback only.

    Returns
    -------
    pystac.Item
        The renamed copy.

    Raises
    ------
    CatalogError
        The profile maps two assets of the item onto the same canonical name.

    Examples
    --------
    >>> import datetime, pystac
    >>> item = pystac.Item("x", None, None, datetime.datetime(2020, 1, 1), {})
    >>> item.add_asset("B04", pystac.Asset("B04.tif"))
    >>> out = normalise_item(item, get_profile("planetary-computer", "sentinel-2-l2a"))
    >>> list(out.assets), out.assets["red"].extra_fields["mus_lab:provider_key"]
    (['red'], 'B04')
    """
    table = dict(profile.assets) if profile is not None else {}
    out = item.clone()
    old = dict(out.assets)
    names: dict[str, str] = {}
    for key in old:  # explicit table and already-canonical keys first
        if key in table:
            names[key] = table[key]
        elif key in CANONICAL_NAMES:
            names[key] = key
    taken = set(names.values())
    if len(taken) != len(names):
        raise CatalogError(
            f"Profile {profile.provider}/{profile.collection} maps several assets of item "
            f"{item.id!r} to one name: {names}. Fix the profile YAML so targets are unique."
            if profile is not None
            else f"Item {item.id!r} has duplicate canonical asset keys."
        )
    for key, asset in old.items():
        if key in names:
            continue
        common = _common_name(asset)
        if common in CANONICAL_NAMES and common not in taken and common not in old:
            names[key] = common
            taken.add(common)
        else:
            names[key] = key
    out.assets.clear()
    for key, asset in old.items():
        asset.extra_fields[PROVIDER_KEY] = key
        out.add_asset(names[key], asset)
    return out
