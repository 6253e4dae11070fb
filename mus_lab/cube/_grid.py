"""The reference pixel grid: one odc-geo ``GeoBox`` per cube, Sentinel-2's 10 m UTM by default."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal, overload

import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box, unary_union

from mus_lab.catalog import parse_bbox
from mus_lab.errors import GridMismatchError, InvalidBBoxError

__all__ = ["check_same_grid", "geobox_of", "reference_geobox", "utm_epsg"]

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


def geobox_of(obj: xr.Dataset | xr.DataArray) -> GeoBox:
    """The ``GeoBox`` of a cube, or a clear error if it has none.

    Parameters
    ----------
    obj
        A cube with ``x``/``y`` coordinates and a CRS (as :func:`mus_lab.cube.load` returns).

    Returns
    -------
    odc.geo.geobox.GeoBox
        Its pixel grid.

    Raises
    ------
    GridMismatchError
        The object has no pixel grid.

    Examples
    --------
    >>> from mus_lab.cube import load
    >>> from mus_lab.catalog import search
    >>> cube = load(search(tiny.catalog_path, collections="sentinel-2-l2a", max_items=1), ("red",))
    >>> geobox_of(cube).shape
    Shape2d(x=64, y=64)
    """
    gbox = getattr(obj, "odc", None) and obj.odc.geobox
    if not isinstance(gbox, GeoBox):
        raise GridMismatchError(
            "This object has no pixel grid (x/y coordinates with a CRS): "
            "load it with mus_lab.cube.load or assign one with .odc.assign_crs()."
        )
    return gbox


def _pixels(obj: xr.Dataset | xr.DataArray, label: str) -> tuple[int, int]:
    if "y" not in obj.dims or "x" not in obj.dims:
        raise GridMismatchError(
            f"{label} has dims {tuple(obj.dims)}: a map on a grid needs 'y' and 'x' dims."
        )
    return int(obj.sizes["y"]), int(obj.sizes["x"])


def _describe(gbox: GeoBox | tuple[int, int]) -> str:
    if isinstance(gbox, GeoBox):
        return f"{gbox.crs} {gbox.shape} {tuple(gbox.affine)[:6]}"
    return f"{gbox[0]} x {gbox[1]} pixels without a CRS"


@overload
def check_same_grid(
    *cubes: xr.Dataset | xr.DataArray,
    names: Sequence[str] | None = None,
    require_crs: Literal[True] = True,
) -> GeoBox: ...


@overload
def check_same_grid(
    *cubes: xr.Dataset | xr.DataArray, names: Sequence[str] | None = None, require_crs: bool
) -> GeoBox | None: ...


def check_same_grid(
    *cubes: xr.Dataset | xr.DataArray,
    names: Sequence[str] | None = None,
    require_crs: bool = True,
) -> GeoBox | None:
    """Raise :class:`GridMismatchError` unless every cube sits on the same pixel grid.

    Nothing is reprojected silently: reproject first with ``cube.load(..., geobox=)``
    or ``.odc.reproject(geobox)``.

    Parameters
    ----------
    *cubes
        Datasets or DataArrays with ``y`` and ``x`` dims.
    names
        One name per cube for the message (default ``cube 0``, ``cube 1``...).
    require_crs
        ``True`` (default): every cube needs a grid with a CRS (x/y coordinates and a CRS).
        ``False``: cubes without a CRS are accepted too and compared by their ``y`` / ``x``
        sizes (in-memory arrays, doctests); a cube with a CRS never matches one without.

    Returns
    -------
    GeoBox or None
        The shared grid (``None`` when ``require_crs=False`` and the cubes have no CRS).

    Raises
    ------
    GridMismatchError
        The cubes are on different grids, or one has no grid (no CRS, no y / x dims).

    Example
    -------
    >>> a = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"))
    >>> check_same_grid(a, a.copy(), require_crs=False) is None
    True
    """
    if not cubes:
        raise ValueError("check_same_grid needs at least one cube.")
    labels = list(names) if names else [f"cube {i}" for i in range(len(cubes))]
    grids: list[GeoBox | tuple[int, int]] = []
    for label, obj in zip(labels, cubes, strict=True):
        if require_crs:
            grids.append(geobox_of(obj))
            continue
        shape = _pixels(obj, label)
        gbox = getattr(obj, "odc", None) and obj.odc.geobox
        grids.append(gbox if isinstance(gbox, GeoBox) else shape)
    first = grids[0]
    for label, other in zip(labels[1:], grids[1:], strict=True):
        if other != first:
            raise GridMismatchError(
                f"{labels[0]} and {label} are on different grids: {_describe(first)} vs "
                f"{_describe(other)}. Nothing is reprojected silently: load both with the same "
                "geobox (mus_lab.cube.load(..., geobox=...) or .odc.reproject(geobox))."
            )
    return first if isinstance(first, GeoBox) else None
