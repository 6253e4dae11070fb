"""How a tile service draws each product: colour maps, value ranges and tile URL templates.

One place says how a product asset becomes a coloured picture, for the tile service
(:mod:`mus_lab.services.tiles`, titiler-pgstac) and for the dashboards that ask it for
tiles (:mod:`mus_lab.ui`), which may not import each other:

- class maps (an asset with ``classification:classes``): each class in the colour of its
  ``color_hint`` (the legend colours of :mod:`mus_lab.publish._legend`), no data
  transparent;
- flood-risk classes: :data:`~mus_lab.contracts.RISK_COLOURS`;
- confidence, margin, entropy and the flood likelihood (0-100 scores): a colour ramp over
  0-100; the fusion's belief, plausibility, conflict, ignorance (0-1): one over 0-1;
- reflectance (ARD, Sentinel-2): grey over 0-0.3 (ARD) or DN 0-3000 (L2A), and the
  true-colour composite of the ``red``, ``green`` and ``blue`` assets.

The URLs follow titiler-pgstac: ``{base}/collections/{c}/items/{i}/tiles/WebMercatorQuad/
{z}/{x}/{y}.png?assets=...`` for an item, ``{base}/collections/{c}/tiles/...`` for a mosaic
of a collection (filtered by ``bbox``/``datetime``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import pystac

from mus_lab.contracts import RISK_COLOURS, SAMPLE_LEGEND_COLOURS

__all__ = [
    "CLASS_COLORMAPS",
    "SCORE_COLORMAPS",
    "asset_render",
    "class_colormap",
    "collection_tile_url",
    "item_tile_url",
    "true_colour_render",
]

#: Named colour maps of the tile service (code -> ``#RRGGBB``): the sample land-cover legend,
#: the flood-risk classes (1 very low ... 5 very high) and the flood extent (1 flooded,
#: 2 permanent water).
CLASS_COLORMAPS: Mapping[str, Mapping[int, str]] = {
    "mus-landcover": dict(SAMPLE_LEGEND_COLOURS),
    "mus-risk": {i: c for i, c in enumerate(RISK_COLOURS, start=1)},
    "mus-extent": {1: "#d7301f", 2: "#2166ac"},
}
#: Colour ramp and range of the continuous layers, by asset key.
SCORE_COLORMAPS: Mapping[str, tuple[str, tuple[float, float]]] = {
    "confidence": ("viridis", (0, 100)),
    "margin": ("viridis", (0, 100)),
    "entropy": ("viridis", (0, 100)),
    "likelihood": ("blues", (0, 100)),
    "belief": ("greens", (0, 1)),
    "plausibility": ("purples", (0, 1)),
    "conflict": ("reds", (0, 1)),
    "ignorance": ("greys", (0, 1)),
    "hazard": ("ylorrd", (0, 1)),
    "exposure": ("ylorrd", (0, 1)),
}
_NAMED_ASSETS = {"risk_class": "mus-risk", "flood": "mus-extent"}
_TEMPLATE = "tiles/WebMercatorQuad/{z}/{x}/{y}.png"


def class_colormap(classes: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """``classification:classes`` entries -> class code: ``#RRGGBB`` (no-data entries left out).

    Parameters
    ----------
    classes
        The entries (``value``, ``color_hint``, ``nodata``), as
        :func:`mus_lab.publish._legend.stac_classes` writes them.

    Returns
    -------
    dict
        Code -> colour of every entry with a ``color_hint``.

    Examples
    --------
    >>> class_colormap([{"value": 0, "nodata": True}, {"value": 1, "color_hint": "E6C229"}])
    {1: '#E6C229'}
    """
    return {
        int(c["value"]): "#" + str(c["color_hint"]).lstrip("#")
        for c in classes
        if c.get("color_hint") and not c.get("nodata")
    }


def asset_render(item: pystac.Item | Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    """The tile query parameters that draw asset ``key`` of ``item`` (colours, range).

    Parameters
    ----------
    item
        A STAC item (pystac or its dict).
    key
        Asset key (``"classification"``, ``"confidence"``, ``"risk_class"``, ``"red"``...).

    Returns
    -------
    list of (str, str)
        ``assets`` and ``colormap`` (JSON of the class colours), ``colormap_name`` or
        ``rescale``: parameters of titiler's tile routes, in order.

    Examples
    --------
    >>> asset_render({"assets": {"confidence": {}}}, "confidence")
    [('assets', 'confidence'), ('colormap_name', 'viridis'), ('rescale', '0,100')]
    >>> asset_render({"assets": {"risk_class": {}}}, "risk_class")
    [('assets', 'risk_class'), ('colormap_name', 'mus-risk')]
    >>> asset_render({"assets": {"c": {"classification:classes": [
    ...     {"value": 2, "color_hint": "1F78B4"}]}}}, "c")
    [('assets', 'c'), ('colormap', '{"2": "#1F78B4"}')]
    """
    data = item.to_dict(transform_hrefs=False) if isinstance(item, pystac.Item) else item
    asset = dict(data.get("assets", {}).get(key) or {})
    params = [("assets", key)]
    classes = asset.get("classification:classes")
    if classes:
        colours = class_colormap(classes)
        params.append(("colormap", json.dumps({str(k): v for k, v in colours.items()})))
    elif key in _NAMED_ASSETS:
        params.append(("colormap_name", _NAMED_ASSETS[key]))
    elif key in SCORE_COLORMAPS:
        name, (low, high) = SCORE_COLORMAPS[key]
        params += [("colormap_name", name), ("rescale", f"{low:g},{high:g}")]
    else:  # reflectance and other measures: grey over the usual range
        bands = asset.get("raster:bands") or [{}]
        integer = str(bands[0].get("data_type", "")).startswith(("uint", "int"))
        params.append(("rescale", "0,3000" if integer else "0,0.3"))
    return params


def true_colour_render(*, scale: float = 3000) -> list[tuple[str, str]]:
    """Tile parameters of a true-colour composite of the ``red``, ``green``, ``blue`` assets.

    Parameters
    ----------
    scale
        The value drawn white (default 3000: Sentinel-2 L2A digital numbers, 0.3 reflectance).

    Returns
    -------
    list of (str, str)

    Examples
    --------
    >>> true_colour_render()[-1]
    ('rescale', '0,3000')
    """
    return [
        ("assets", "red"),
        ("assets", "green"),
        ("assets", "blue"),
        ("asset_as_band", "true"),
        ("rescale", f"0,{scale:g}"),
    ]


def _rfc3339_interval(value: str) -> str:
    """``2021-11-01/2021-12-31`` -> whole days in RFC 3339 (what titiler-pgstac accepts)."""
    parts = value.split("/")
    out = []
    for i, part in enumerate(parts):
        if len(part) == 10 and part[4] == "-" and part[7] == "-":  # a bare date
            end = i == len(parts) - 1 and len(parts) > 1
            part += "T23:59:59Z" if end else "T00:00:00Z"
        out.append(part)
    return "/".join(out)


def _url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    query = urlencode(list(params), quote_via=quote, safe=",")
    return f"{base.rstrip('/')}/{path}/{_TEMPLATE}" + (f"?{query}" if query else "")


def item_tile_url(base: str, item: pystac.Item, key: str) -> str:
    """The XYZ URL template (``{z}/{x}/{y}``) of asset ``key`` of ``item`` on a tile service.

    Parameters
    ----------
    base
        The tile service's root URL (``http://127.0.0.1:PORT``).
    item
        A product item (its ``collection`` must be set).
    key
        The asset drawn (:func:`asset_render` gives its colours).

    Returns
    -------
    str

    Examples
    --------
    >>> import datetime as dt
    >>> item = pystac.Item("i1", None, None, dt.datetime(2024, 1, 1), {}, collection="c")
    >>> item_tile_url("http://127.0.0.1:9", item, "confidence")
    'http://127.0.0.1:9/collections/c/items/i1/tiles/WebMercatorQuad/{z}/{x}/{y}.png?assets=confidence&colormap_name=viridis&rescale=0,100'
    """
    path = f"collections/{quote(str(item.collection_id), safe='')}/items/{quote(item.id, safe='')}"
    return _url(base, path, asset_render(item, key))


def collection_tile_url(
    base: str,
    collection: str,
    params: Sequence[tuple[str, str]],
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    max_cloud: float | None = None,
) -> str:
    """The XYZ URL template of a mosaic of ``collection`` (e.g. true colour of an area, a period).

    Parameters
    ----------
    base
        The tile service's root URL.
    collection
        Collection id (``"sentinel-2-l2a"``).
    params
        How to draw it (:func:`true_colour_render`, :func:`asset_render`).
    bbox
        Only items over this area (lon/lat: west, south, east, north).
    datetime
        Only items of this time: RFC 3339 or an interval (``"2024-01-01/2024-03-31"``;
        bare dates stand for whole days).
    max_cloud
        Only items with ``eo:cloud_cover`` below this, least cloudy on top.

    Returns
    -------
    str

    Examples
    --------
    >>> url = collection_tile_url("http://h", "sentinel-2-l2a", true_colour_render(),
    ...                           datetime="2021-11-01/2021-12-31", max_cloud=20)
    >>> url.split("?")[0]
    'http://h/collections/sentinel-2-l2a/tiles/WebMercatorQuad/{z}/{x}/{y}.png'
    >>> "datetime=2021-11-01T00%3A00%3A00Z%2F2021-12-31T23%3A59%3A59Z" in url
    True
    >>> "sortby=eo%3Acloud_cover" in url
    True
    """
    extra = list(params)
    if bbox is not None:
        extra.append(("bbox", ",".join(f"{v:.6f}" for v in bbox)))
    if datetime:
        extra.append(("datetime", _rfc3339_interval(datetime)))
    if max_cloud is not None:
        extra.append(("query", json.dumps({"eo:cloud_cover": {"lt": max_cloud}})))
        extra.append(("sortby", "eo:cloud_cover"))
    return _url(base, f"collections/{quote(collection, safe='')}", extra)
