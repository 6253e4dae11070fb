"""The reference pixel grid: one odc-geo ``GeoBox`` per cube, Sentinel-2's 10 m UTM by default."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pystac
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box, unary_union

from mus_lab.catalog import parse_bbox
from mus_lab.errors import InvalidBBoxError

__all__ = ["reference_geobox", "utm_epsg"]

S2_RESOLUTION = 10.0


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone holding ``(lon, lat)``.

    Parameters
    ----------
    lon, lat
        A point in degrees (EPSG:4326).

    Returns
    -------
    int
        ``326zz`` north of the equator, ``327zz`` south of it.

    Examples
    --------
    >>> utm_epsg(-73.6, 45.5)
    32618
    >>> utm_epsg(151.2, -33.9)
    32756
    """
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def _item_epsg(item: pystac.Item) -> int | None:
    props = item.properties
    code = props.get("proj:epsg")
    if code is None and isinstance(props.get("proj:code"), str):
        auth, _, num = props["proj:code"].partition(":")
        code = int(num) if auth.upper() == "EPSG" and num.isdigit() else None
    if code is None:
        for asset in item.assets.values():
            code = asset.extra_fields.get("proj:epsg")
            pcode = asset.extra_fields.get("proj:code")
            if code is None and isinstance(pcode, str) and pcode.upper().startswith("EPSG:"):
                code = int(pcode.split(":")[1])
            if code is not None:
                break
    return int(code) if code is not None else None


def _is_s2(item: pystac.Item) -> bool:
    return str(item.properties.get("constellation", "")).lower() == "sentinel-2" or str(
        item.properties.get("platform", "")
    ).lower().startswith("sentinel-2")


def reference_geobox(
    items: Iterable[pystac.Item] | None = None,
    *,
    bbox: Sequence[float] | None = None,
    resolution: float = S2_RESOLUTION,
    crs: str | int | None = None,
) -> GeoBox:
    """The Sentinel-2 10 m UTM grid covering an area.

    The CRS is, in order: ``crs``; the most common EPSG code of the Sentinel-2 items;
    the UTM zone of the area's centre. Pixel edges sit on multiples of the resolution,
    as on the Sentinel-2 tiling grid, so cubes loaded for overlapping areas line up.

    Parameters
    ----------
    items
        STAC items whose footprint defines the area (when ``bbox`` is not given) and
        whose Sentinel-2 members define the CRS.
    bbox
        Area as ``(min_lon, min_lat, max_lon, max_lat)`` in degrees, or a ``"w,s,e,n"`` string
        (see :func:`mus_lab.catalog.parse_bbox`).
    resolution
        Pixel size in metres (10 for Sentinel-2's finest bands).
    crs
        Force a CRS (``"EPSG:32618"`` or ``32618``).

    Returns
    -------
    odc.geo.geobox.GeoBox

    Raises
    ------
    InvalidBBoxError
        A malformed bbox, items without geometry, or neither items nor bbox given.

    Examples
    --------
    >>> grid = reference_geobox(bbox=(-73.60, 45.50, -73.59, 45.51))
    >>> grid.crs.epsg, grid.resolution.x
    (32618, 10.0)
    """
    item_list = list(items or ())
    area: Geometry
    if bbox is not None:
        area = box(*parse_bbox(bbox), "EPSG:4326")
    elif item_list:
        s2 = [it for it in item_list if _is_s2(it)] or item_list
        union = unary_union(Geometry(it.geometry, "EPSG:4326") for it in s2 if it.geometry)
        if union is None:
            raise InvalidBBoxError(
                "These items have no geometry: pass bbox=(min_lon, min_lat, max_lon, max_lat)."
            )
        area = union
    else:
        raise InvalidBBoxError(
            "reference_geobox needs items or a bbox: pass items=... or "
            "bbox=(min_lon, min_lat, max_lon, max_lat)."
        )
    if crs is None:
        codes = [c for c in (_item_epsg(it) for it in item_list if _is_s2(it)) if c]
        if codes:
            crs = max(set(codes), key=codes.count)
        else:
            centre = area.centroid.coords[0]
            crs = utm_epsg(centre[0], centre[1])
    crs_str = f"EPSG:{crs}" if isinstance(crs, int) else str(crs)
    projected = area.to_crs(crs_str)
    return GeoBox.from_bbox(projected.boundingbox, crs_str, resolution=resolution, anchor="edge")
