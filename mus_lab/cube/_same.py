"""Pixel grids of the inputs users hold, compared with a tolerance, in one place.

Every stage finds the grid of its inputs with :func:`geobox_of` and compares grids with
:func:`same_grid` (through :func:`check_same_grid` or :func:`match_grid`), so that:

* **any opener works**: objects from ``rioxarray.open_rasterio`` (a ``spatial_ref``
  coordinate), ``odc.stac.load`` (the same, with ``latitude`` / ``longitude`` dims on a
  geographic CRS, renamed by :func:`as_yx`), ``stackstac.stack`` (a ``crs`` attribute or an
  ``epsg`` coordinate, pixel *corners* as coordinates) and the project's own cubes. This
  module imports ``odc.geo.xr`` itself: the ``.odc`` accessor is registered whether or not
  the user imported it.
* **two grids that agree within 1e-6 of a pixel are the same grid** (:data:`GRID_TOLERANCE`):
  odc-geo's ``GeoBox ==`` is exact, and the same file read twice, or two files written by two
  tools, differ in the 13th digit of the transform. The four corners are compared in units of
  the pixel size; CRSs are compared semantically (``EPSG:4326`` equals its WKT, with or
  without the authority code).
* **a true mismatch is named in one line** (:func:`describe_grid`: CRS code, shape,
  resolution, origin), never with a WKT dump; stages that can resample lazily reproject onto
  the first input's grid with a :class:`~mus_lab.errors.GridReprojectedWarning` instead
  (:func:`match_grid` with ``resampling=``; each stage says which in its docstring).
* **geographic grids have sizes in metres** (:func:`pixel_size_m`, :func:`pixel_area_m2`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor for every caller)
import xarray as xr
from affine import Affine
from odc.geo import CRS
from odc.geo.geobox import GeoBox

from mus_lab.errors import GridMismatchError, GridReprojectedWarning

__all__ = [
    "GRID_TOLERANCE",
    "as_yx",
    "check_same_grid",
    "describe_grid",
    "geobox_of",
    "match_grid",
    "pixel_area_m2",
    "pixel_size_m",
    "same_crs",
    "same_grid",
    "standard_grid",
]

#: Two grids whose corners agree within this fraction of a pixel are the same grid.
GRID_TOLERANCE = 1e-6

T = TypeVar("T", bound=xr.Dataset | xr.DataArray)

_OTHER_DIMS = (("latitude", "longitude"), ("lat", "lon"))


def as_yx(obj: T) -> T:
    """``obj`` with ``y`` / ``x`` dims: ``latitude`` / ``longitude`` (odc-stac on a geographic
    CRS) or ``lat`` / ``lon`` are renamed; anything else is returned as it is.

    Parameters
    ----------
    obj
        A Dataset or DataArray.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        The same object, renamed where needed (the CRS coordinate is kept).

    Examples
    --------
    >>> as_yx(xr.DataArray(np.zeros((2, 3)), dims=("latitude", "longitude"))).dims
    ('y', 'x')
    """
    if "y" in obj.dims or "x" in obj.dims:
        return obj
    for ydim, xdim in _OTHER_DIMS:
        if ydim in obj.dims and xdim in obj.dims:
            renamed: T = obj.rename({ydim: "y", xdim: "x"})  # type: ignore[assignment]
            return renamed
    return obj


def _epsg_coord(obj: xr.Dataset | xr.DataArray) -> CRS | None:
    """stackstac's ``epsg`` coordinate (scalar or one value over time), when attributes are lost."""
    if "epsg" not in obj.coords:
        return None
    codes = np.unique(np.asarray(obj.coords["epsg"].values).ravel())
    if codes.size != 1:
        return None
    try:
        return CRS(f"EPSG:{int(codes[0])}")
    except (TypeError, ValueError):
        return None


def _stackstac_transform(obj: xr.Dataset | xr.DataArray) -> Any:
    """stackstac's ``transform`` attribute, on the array or (a Dataset) on its variables."""
    if "transform" in obj.attrs:
        return obj.attrs["transform"]
    if isinstance(obj, xr.Dataset):
        for var in obj.data_vars.values():
            if "transform" in var.attrs:
                return var.attrs["transform"]
    return None


def _corner_coords(obj: xr.Dataset | xr.DataArray, gbox: GeoBox) -> GeoBox:
    """Undo the half-pixel shift of stackstac's default ``xy_coords="topleft"``.

    odc-geo reads coordinates as pixel centres; stackstac labels pixels by their top-left
    corner and keeps its ``transform`` attribute: when the first ``x`` sits on a whole number
    of pixels from that transform, the coordinates are corners.
    """
    tr = _stackstac_transform(obj)
    if tr is None or "x" not in obj.coords or obj.sizes.get("x", 0) == 0:
        return gbox
    try:
        full = Affine(*tuple(tr)[:6])
        frac = ((float(obj["x"].values[0]) - full.c) / full.a) % 1.0
    except (TypeError, ValueError, ZeroDivisionError):
        return gbox
    if min(frac, 1.0 - frac) > 1e-3:
        return gbox
    return GeoBox(gbox.shape, gbox.affine @ Affine.translation(0.5, 0.5), gbox.crs)


def geobox_of(obj: xr.Dataset | xr.DataArray) -> GeoBox:
    """The ``GeoBox`` of a cube, whoever opened it, or a clear error if it has none.

    Reads the grid as odc-geo does (``x`` / ``y`` coordinates and a ``spatial_ref`` coordinate
    or a ``crs`` attribute: rioxarray, odc-stac, the project), then stackstac's ``epsg``
    coordinate when no CRS was found, and corrects stackstac's top-left pixel coordinates.

    Parameters
    ----------
    obj
        A cube with ``x``/``y`` (or ``longitude``/``latitude``) coordinates and a CRS.

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
    obj = as_yx(obj)
    gbox = obj.odc.geobox if {"y", "x"} <= set(obj.dims) else None
    if not isinstance(gbox, GeoBox):
        raise GridMismatchError(
            "This object has no pixel grid (y/x coordinates with a CRS): open it with "
            "rioxarray, odc-stac, stackstac or mus_lab.cube.load, or assign a CRS with "
            "obj.odc.assign_crs('EPSG:...')."
        )
    if gbox.crs is None:
        crs = _epsg_coord(obj)
        if crs is not None:
            gbox = GeoBox(gbox.shape, gbox.affine, crs)
    return _corner_coords(obj, gbox)


def _has_crs_coord(obj: xr.Dataset | xr.DataArray) -> bool:
    return any(
        c.ndim == 0 and ("spatial_ref" in c.attrs or "crs_wkt" in c.attrs)
        for c in obj.coords.values()
    )


def standard_grid(obj: T) -> T:
    """``obj`` as every stage reads it: ``y`` / ``x`` dims, pixel-centre coordinates and a
    ``spatial_ref`` CRS coordinate, whichever library opened it.

    rioxarray, odc-stac and the project's objects already are (odc-stac's ``latitude`` /
    ``longitude`` dims are renamed); stackstac's (pixel-corner coordinates, CRS in an
    attribute or an ``epsg`` coordinate) get centre coordinates and a CRS coordinate, so that
    they survive arithmetic, which drops attributes. Objects without a grid are only renamed.

    Parameters
    ----------
    obj
        A Dataset or DataArray.

    Returns
    -------
    xarray.Dataset or xarray.DataArray

    Examples
    --------
    >>> g = GeoBox.from_bbox((0, 0, 40, 20), "EPSG:32633", resolution=10)
    >>> corners = xr.DataArray(np.zeros((2, 4)), dims=("y", "x"),
    ...     coords={"y": [20.0, 10.0], "x": [0.0, 10.0, 20.0, 30.0]},
    ...     attrs={"crs": "epsg:32633", "transform": g.affine})  # as stackstac labels pixels
    >>> out = standard_grid(corners)
    >>> out.x.values.tolist(), geobox_of(out) == g
    ([5.0, 15.0, 25.0, 35.0], True)
    """
    obj = as_yx(obj)
    if _has_crs_coord(obj) and _stackstac_transform(obj) is None:
        return obj
    try:
        gbox = geobox_of(obj)
    except GridMismatchError:
        return obj
    if gbox.crs is None:
        return obj
    out = _snap(obj, gbox, None)
    # stackstac's transform described the corner coordinates now replaced: drop it.
    out.attrs.pop("transform", None)
    if isinstance(out, xr.Dataset):
        for var in out.data_vars.values():
            var.attrs.pop("transform", None)
    return out


def same_crs(a: CRS | None, b: CRS | None) -> bool:
    """True when two CRSs are the same: equal, or resolving to the same EPSG code.

    Parameters
    ----------
    a, b
        odc-geo CRSs or ``None`` (no CRS: equal only to no CRS).

    Returns
    -------
    bool

    Examples
    --------
    >>> import pyproj
    >>> same_crs(CRS("EPSG:4326"), CRS(pyproj.CRS(4326).to_wkt("WKT1_GDAL")))
    True
    """
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    return a.epsg is not None and a.epsg == b.epsg


def _pixel(gbox: GeoBox) -> float:
    aff = gbox.affine
    return max(math.hypot(aff.a, aff.d), math.hypot(aff.b, aff.e))


def same_grid(a: GeoBox, b: GeoBox, *, tolerance: float = GRID_TOLERANCE) -> bool:
    """True when two grids agree within ``tolerance`` of a pixel.

    Same shape, the same CRS (:func:`same_crs`) and all four corners within ``tolerance``
    times the pixel size: the origin, and the resolution to ``tolerance`` over the whole grid.

    Parameters
    ----------
    a, b
        Grids.
    tolerance
        Fraction of a pixel (default :data:`GRID_TOLERANCE`, 1e-6).

    Returns
    -------
    bool

    Examples
    --------
    >>> g = GeoBox.from_bbox((10.0, 45.0, 10.1, 45.1), "EPSG:4326", resolution=1e-4)
    >>> nudged = GeoBox(g.shape, g.affine @ Affine.translation(1e-9, 0), "EPSG:4326")
    >>> g == nudged, same_grid(g, nudged)
    (False, True)
    """
    if tuple(a.shape) != tuple(b.shape) or not same_crs(a.crs, b.crs):
        return False
    ny, nx = a.shape.y, a.shape.x
    corners = ((0, 0), (nx, 0), (0, ny), (nx, ny))
    pa = np.array([a.affine @ c for c in corners])
    pb = np.array([b.affine @ c for c in corners])
    return bool(np.max(np.abs(pa - pb)) <= tolerance * _pixel(a))


def _crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "no CRS"
    if crs.epsg is not None:
        return f"EPSG:{crs.epsg}"
    return str(crs.proj.name)


def describe_grid(grid: GeoBox | xr.Dataset | xr.DataArray) -> str:
    """A grid in a few words: CRS code, shape (rows x columns), resolution and origin.

    Parameters
    ----------
    grid
        A ``GeoBox`` or a cube on one.

    Returns
    -------
    str
        One line, never a WKT.

    Raises
    ------
    GridMismatchError
        ``grid`` is a cube without a pixel grid.

    Examples
    --------
    >>> describe_grid(GeoBox.from_bbox((0, 0, 640, 320), "EPSG:32633", resolution=10))
    'EPSG:32633, 32 x 64 px of 10 m, origin (0, 320)'
    """
    gbox = grid if isinstance(grid, GeoBox) else geobox_of(grid)
    aff = gbox.affine
    deg = gbox.crs is not None and gbox.crs.geographic
    unit = "°" if deg else (" m" if gbox.crs is not None else " units")
    rx, ry = abs(aff.a), abs(aff.e)
    res = f"{rx:.6g}{unit}" if math.isclose(rx, ry, rel_tol=1e-9) else f"{rx:.6g} x {ry:.6g}{unit}"
    digits = 7 if deg else 2
    origin = f"({aff.c:.{digits}f}, {aff.f:.{digits}f})"
    if not deg:
        origin = f"({aff.c:.{digits}f}".rstrip("0").rstrip(".") + ", "
        origin += f"{aff.f:.{digits}f}".rstrip("0").rstrip(".") + ")"
    rot = "" if aff.b == 0 and aff.d == 0 else ", rotated"
    return (
        f"{_crs_name(gbox.crs)}, {gbox.shape.y} x {gbox.shape.x} px of {res}, origin {origin}{rot}"
    )


def _mismatch(first: str, other: str, a: GeoBox | None, b: GeoBox | None) -> str:
    def brief(g: GeoBox | None) -> str:
        return describe_grid(g) if g is not None else "no grid"

    return (
        f"{first} and {other} are on different grids: {brief(a)} vs {brief(b)}. Load both on "
        "one grid (mus_lab.cube.load(..., geobox=...)) or reproject one with "
        ".odc.reproject(first.odc.geobox)."
    )


def _pixels(obj: xr.Dataset | xr.DataArray, label: str) -> tuple[int, int]:
    if "y" not in obj.dims or "x" not in obj.dims:
        raise GridMismatchError(
            f"{label} has dims {tuple(obj.dims)}: a map on a grid needs 'y' and 'x' dims."
        )
    return int(obj.sizes["y"]), int(obj.sizes["x"])


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

    Grids that agree within :data:`GRID_TOLERANCE` of a pixel are the same grid
    (:func:`same_grid`); their coordinates may still differ in the last digits, so combine
    them with :func:`match_grid`, which also gives them identical coordinates. Nothing is
    reprojected here.

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
        The first cube's grid (``None`` when ``require_crs=False`` and it has no CRS).

    Raises
    ------
    GridMismatchError
        The cubes are on different grids (one line naming both), or one has no grid.

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
        obj = as_yx(obj)
        if require_crs:
            grids.append(geobox_of(obj))
            continue
        shape = _pixels(obj, label)
        try:
            gbox: GeoBox | None = geobox_of(obj)
        except GridMismatchError:
            gbox = None
        grids.append(gbox if gbox is not None and gbox.crs is not None else shape)
    first = grids[0]
    for label, other in zip(labels[1:], grids[1:], strict=True):
        if isinstance(first, GeoBox) and isinstance(other, GeoBox):
            if same_grid(first, other):
                continue
            raise GridMismatchError(_mismatch(labels[0], label, first, other))
        if isinstance(first, GeoBox) or isinstance(other, GeoBox):
            raise GridMismatchError(
                f"{labels[0]} and {label} are on different grids: one has a CRS, the other "
                "not. Assign the CRS with .odc.assign_crs('EPSG:...')."
            )
        if first != other:
            raise GridMismatchError(
                f"{labels[0]} and {label} have different sizes ({first[0]} x {first[1]} vs "
                f"{other[0]} x {other[1]} px, no CRS): give maps of one size."
            )
    return first if isinstance(first, GeoBox) else None


def _axes(gbox: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    aff = gbox.affine
    ys = aff.f + aff.e * (np.arange(gbox.shape.y) + 0.5)
    xs = aff.c + aff.a * (np.arange(gbox.shape.x) + 0.5)
    return ys, xs


def _snap(obj: T, gbox: GeoBox, like: xr.Dataset | xr.DataArray | None) -> T:
    """``obj`` with the exact ``y`` / ``x`` coordinates and CRS coordinate of the target."""
    if like is not None and {"y", "x"} <= set(like.coords):
        ys, xs = like["y"].values, like["x"].values
    else:
        ys, xs = _axes(gbox)
    stale = [
        name
        for name, coord in obj.coords.items()
        if coord.ndim == 0 and ("spatial_ref" in coord.attrs or "crs_wkt" in coord.attrs)
    ]
    out: T = obj.drop_vars(stale).assign_coords(y=ys, x=xs)  # type: ignore[assignment]
    if stale:  # grid_mapping (attribute or encoding) named the dropped coordinate
        parts: list[xr.Dataset | xr.DataArray] = [out]
        if isinstance(out, xr.Dataset):
            parts += list(out.data_vars.values())
        for part in parts:
            part.attrs.pop("grid_mapping", None)
            part.encoding.pop("grid_mapping", None)
    if gbox.crs is None:
        return out
    snapped: T = out.odc.assign_crs(gbox.crs)
    return snapped


def match_grid(
    obj: T,
    like: GeoBox | xr.Dataset | xr.DataArray,
    *,
    names: Sequence[str] = ("the input", "the first input"),
    resampling: str | None = None,
) -> T:
    """``obj`` on the grid of ``like``: the same grid with identical coordinates, or refused,
    or lazily reprojected with a warning.

    Parameters
    ----------
    obj
        A cube with a pixel grid (any opener, see :func:`geobox_of`).
    like
        The target grid, or a cube on it (its coordinates are copied, bit for bit).
    names
        How to call ``obj`` and ``like`` in messages.
    resampling
        ``None`` (default): a different grid raises :class:`GridMismatchError`. A resampling
        name (``"nearest"`` for classes and masks, ``"bilinear"`` for continuous values):
        a different grid is reprojected onto ``like``, lazily (odc-geo), with a
        :class:`~mus_lab.errors.GridReprojectedWarning` naming both grids.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        ``obj`` with ``y`` / ``x`` dims and exactly ``like``'s coordinates and CRS.

    Raises
    ------
    GridMismatchError
        ``obj`` or ``like`` has no grid, or the grids differ and ``resampling`` is ``None``.

    Examples
    --------
    >>> g = GeoBox.from_bbox((10.0, 45.0, 10.01, 45.01), "EPSG:4326", resolution=1e-4)
    >>> a = as_yx(odc.geo.xr.xr_zeros(g, dtype="float32"))  # latitude/longitude -> y/x
    >>> b = a.assign_coords(x=a.x + 1e-13)  # the same file read twice, the 13th digit off
    >>> bool((match_grid(b, a).x == a.x).all())
    True
    """
    target = like if isinstance(like, GeoBox) else geobox_of(like)
    ref = None if isinstance(like, GeoBox) else as_yx(like)
    obj = as_yx(obj)
    src = geobox_of(obj)
    if same_grid(src, target):
        return _snap(obj, target, ref)
    if resampling is None:
        raise GridMismatchError(_mismatch(names[1], names[0], target, src))
    warnings.warn(
        f"{names[0]} was reprojected onto the grid of {names[1]} ({resampling} resampling): "
        f"{describe_grid(src)} -> {describe_grid(target)}. Give inputs on one grid to avoid it.",
        GridReprojectedWarning,
        stacklevel=3,
    )
    kwargs: dict[str, Any] = {"resampling": resampling}
    floating = all(
        np.issubdtype(v.dtype, np.floating)
        for v in (obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj])
    )
    if floating:
        kwargs["dst_nodata"] = np.nan
    out = as_yx(obj.odc.reproject(target, **kwargs))
    return _snap(out, target, ref)


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """Length (m) of one degree of longitude and of latitude at ``lat`` on the WGS84 ellipsoid."""
    phi = math.radians(lat)
    a, e2 = 6_378_137.0, 0.00669437999014
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    lon = math.pi * a * math.cos(phi) / (180.0 * w)
    lat_m = math.pi * a * (1.0 - e2) / (180.0 * w**3)
    return lon, lat_m


def pixel_size_m(grid: GeoBox | xr.Dataset | xr.DataArray) -> tuple[float, float]:
    """Pixel width and height in metres; on a geographic CRS, at the grid's centre latitude.

    Parameters
    ----------
    grid
        A ``GeoBox`` or a cube on one.

    Returns
    -------
    (float, float)
        ``(x, y)`` sizes in metres (projected units converted, e.g. US feet).

    Raises
    ------
    GridMismatchError
        ``grid`` is a cube without a pixel grid.

    Examples
    --------
    >>> g = GeoBox.from_bbox((10.0, 59.9, 10.1, 60.1), "EPSG:4326", resolution=1e-4)
    >>> [round(v, 1) for v in pixel_size_m(g)]
    [5.6, 11.1]
    """
    gbox = grid if isinstance(grid, GeoBox) else geobox_of(grid)
    aff = gbox.affine
    rx, ry = math.hypot(aff.a, aff.d), math.hypot(aff.b, aff.e)
    if gbox.crs is None:
        return rx, ry
    if gbox.crs.geographic:
        lat = float(gbox.extent.centroid.coords[0][1])
        m_lon, m_lat = _metres_per_degree(lat)
        return rx * m_lon, ry * m_lat
    factor = float(gbox.crs.proj.axis_info[0].unit_conversion_factor or 1.0)
    return rx * factor, ry * factor


def pixel_area_m2(grid: GeoBox | xr.Dataset | xr.DataArray) -> float:
    """Area of one pixel in m² (at the centre latitude on a geographic CRS).

    Parameters
    ----------
    grid
        A ``GeoBox`` or a cube on one.

    Returns
    -------
    float

    Raises
    ------
    GridMismatchError
        ``grid`` is a cube without a pixel grid.

    Examples
    --------
    >>> pixel_area_m2(GeoBox.from_bbox((0, 0, 100, 100), "EPSG:32633", resolution=10))
    100.0
    """
    x, y = pixel_size_m(grid)
    return x * y
