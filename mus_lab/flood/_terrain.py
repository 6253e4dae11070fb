"""Terrain layers of the exclusion mask: HAND (pyflwdir) and slope, from a DEM.

HAND (height above nearest drainage) needs the flow directions of the whole DEM, so it
is computed in memory on the DEM's own grid (DEMs are coarse: a 100 x 100 km area at
30 m is 11 million cells, well under a gigabyte), then brought onto the mapping grid
with an explicit bilinear reprojection (:func:`terrain_on_grid`).

Streams are the cells draining at least ``stream_area_km2`` (default 1 km²); on a DEM
whose largest catchment is smaller than that, the cells draining at least half of the
largest catchment. Basin outlets (pits and edge outlets) count as drains too, so a small
basin cut by the DEM edge gets its HAND relative to its outlet rather than none.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab.cube import describe_grid, geobox_of
from mus_lab.errors import FloodInputError

__all__ = ["hand_from_dem", "slope_from_dem", "terrain_from_dem", "terrain_on_grid"]


def _dem_array(dem: xr.DataArray) -> tuple[np.ndarray, GeoBox, float]:
    if not isinstance(dem, xr.DataArray) or dem.ndim != 2:
        raise FloodInputError(
            "dem must be a 2-D (y, x) DataArray with a CRS, e.g. "
            "cube.load(dem_items, ('dem',)).dem.isel(time=0) or rioxarray.open_rasterio(...)"
            ".squeeze('band')."
        )
    gbox = geobox_of(dem)
    nodata = dem.attrs.get("nodata", dem.attrs.get("_FillValue"))
    values = np.asarray(dem.values, dtype=np.float32)
    missing = ~np.isfinite(values)
    if nodata is not None and np.isfinite(nodata):
        missing |= values == np.float32(nodata)
    if missing.all():
        raise FloodInputError("The DEM holds no valid elevation: check its nodata value.")
    values = np.where(missing, np.float32(-9999.0), values)
    return values, gbox, -9999.0


def _is_geographic(gbox: GeoBox) -> bool:
    return bool(gbox.crs is not None and gbox.crs.geographic)


def _wrap(values: np.ndarray, like: xr.DataArray, name: str, units: str) -> xr.DataArray:
    out = xr.DataArray(values.astype(np.float32), coords=like.coords, dims=like.dims, name=name)
    out.attrs = {"units": units, "nodata": float("nan")}
    return out


def hand_from_dem(
    dem: xr.DataArray,
    *,
    stream_area_km2: float = 1.0,
) -> xr.DataArray:
    """Height above nearest drainage (m) of a DEM, on the DEM's grid.

    Flow directions come from ``pyflwdir.from_dem`` (depressions filled, outlets on the
    edge); streams are the cells with an upstream area of at least ``stream_area_km2``.

    Parameters
    ----------
    dem
        Elevation (m), 2-D with a CRS (projected or geographic). No-data cells are those
        at the ``nodata`` attribute or NaN.
    stream_area_km2
        Upstream area that makes a stream (see the module notes for small DEMs).

    Returns
    -------
    xarray.DataArray
        float32 HAND (m, NaN where the DEM has no data) on the DEM's grid, computed now.

    Raises
    ------
    FloodInputError
        The DEM is not a 2-D grid with a CRS or holds no valid cell.

    Examples
    --------
    A valley sloping to its centre line, the stream: HAND is 0 on the stream and rises with
    the distance to it.

    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_coords
    >>> grid = GeoBox.from_bbox((0, 0, 900, 900), "EPSG:32633", resolution=30)
    >>> x = np.arange(30)
    >>> z = np.abs(x - 15)[None, :] * 2.0 + np.arange(30)[:, None] * 0.5
    >>> dem = xr.DataArray(z.astype("float32"), coords=xr_coords(grid), dims=("y", "x"))
    >>> hand = hand_from_dem(dem, stream_area_km2=0.1)
    >>> str(hand.dtype), float(hand[10, 15]), bool(hand[10, 25] > hand[10, 20])
    ('float32', 0.0, True)
    """
    import pyflwdir

    values, gbox, nodata = _dem_array(dem)
    flw = pyflwdir.from_dem(
        values, nodata=nodata, transform=gbox.affine, latlon=_is_geographic(gbox)
    )
    upa = flw.upstream_area("km2")
    largest = float(np.nanmax(np.where(upa > 0, upa, np.nan)))
    drain = upa >= min(stream_area_km2, 0.5 * largest)
    # Small basins that reach the DEM edge without a stream drain to their outlet.
    drain.flat[np.asarray(flw.idxs_pit)] = True
    hand = np.asarray(flw.hand(drain=drain, elevtn=values), dtype=np.float32)
    # Cells in filled depressions lie below their drain: HAND 0 (they hold water first).
    hand = np.maximum(hand, 0.0)
    hand[values == nodata] = np.nan
    return _wrap(hand, dem, "hand", "m")


def slope_from_dem(dem: xr.DataArray) -> xr.DataArray:
    """Terrain slope (degrees) of a DEM, on the DEM's grid (central differences).

    Parameters
    ----------
    dem
        Elevation (m), 2-D with a CRS; geographic grids are converted to metres with
        the cosine of each row's latitude.

    Returns
    -------
    xarray.DataArray
        float32 slope in degrees (NaN where the DEM has no data), computed now.

    Raises
    ------
    FloodInputError
        The DEM is not a 2-D grid with a CRS or holds no valid cell.
    """
    values, gbox, nodata = _dem_array(dem)
    z = np.where(values == nodata, np.nan, values).astype(np.float64)
    res_x, res_y = abs(gbox.affine.a), abs(gbox.affine.e)
    if _is_geographic(gbox):
        lat = np.deg2rad(np.asarray(dem[dem.dims[0]].values, dtype=np.float64))
        metres = 111_320.0
        dx = res_x * metres * np.cos(lat)[:, None] * np.ones_like(z)
        dy = np.full_like(z, res_y * metres)
    else:
        dx, dy = np.full_like(z, res_x), np.full_like(z, res_y)
    gy, gx = np.gradient(z)
    slope = np.degrees(np.arctan(np.hypot(gx / dx, gy / dy)))
    return _wrap(slope, dem, "slope", "degree")


def terrain_on_grid(layer: xr.DataArray, geobox: GeoBox, **kwargs: Any) -> xr.DataArray:
    """Reproject a terrain layer (HAND, slope) onto the mapping grid, bilinearly.

    This is the one place where the flood stage reprojects, on purpose: DEMs come at
    30-90 m and the SAR ARD at 10-20 m.

    Parameters
    ----------
    layer
        HAND (m) or slope (degrees) on its DEM's grid, with a CRS.
    geobox
        The mapping grid.
    **kwargs
        Passed to odc-geo's ``reproject`` (e.g. ``dst_nodata``).

    Returns
    -------
    xarray.DataArray
        float32 on ``geobox``, NaN where the DEM does not reach; name and attributes kept.

    Raises
    ------
    FloodInputError
        The layer does not overlap the grid at all.
    """
    src = geobox_of(layer)
    if (
        src.crs is None
        or geobox.crs is None
        or not src.extent.to_crs(geobox.crs).intersects(geobox.extent)
    ):
        raise FloodInputError(
            f"The {layer.name or 'terrain'} layer ({describe_grid(src)}) does not overlap the "
            f"mapping grid ({describe_grid(geobox)}): give a DEM that covers the SAR area."
        )
    out = layer.odc.reproject(geobox, resampling="bilinear", dst_nodata=np.nan, **kwargs)
    return out.astype(np.float32).rename(layer.name).assign_attrs(layer.attrs)


def terrain_from_dem(
    dem: xr.DataArray | str | os.PathLike[str], grid: GeoBox
) -> tuple[xr.DataArray, xr.DataArray]:
    """HAND and slope of a DEM, on a grid (the DEM is read whole: it is small next to SAR).

    Parameters
    ----------
    dem
        Elevation (m) as a DataArray on its own grid, or a GeoTIFF path.
    grid
        The target grid (e.g. the Sentinel-2 grid of the SAR series).

    Returns
    -------
    (hand, slope)
        Height above nearest drainage (m) and slope (degrees) on ``grid``.

    Raises
    ------
    FloodInputError
        The DEM cannot be read, is not 2-D, holds no valid cell or does not cover ``grid``.

    Examples
    --------
    >>> import glob
    >>> from mus_lab.publish import open_raster
    >>> dem = sorted(glob.glob(str(tiny.root / "catalog" / "dem" / "*" / "*.tif")))[0]
    >>> grid = open_raster(tiny.landcover).odc.geobox
    >>> hand, slope = terrain_from_dem(dem, grid)
    >>> hand.shape == grid.shape, str(slope.dtype), slope.attrs["units"]
    (True, 'float32', 'degree')
    """
    from mus_lab.errors import PublishError
    from mus_lab.publish import open_raster

    if isinstance(dem, xr.DataArray):
        arr = dem
    else:
        try:
            arr = open_raster(dem, what="DEM")
        except PublishError as exc:
            raise FloodInputError(str(exc)) from exc
        arr = arr.isel(band=0, drop=True) if "band" in arr.dims else arr
    arr = arr.compute()
    return terrain_on_grid(hand_from_dem(arr), grid), terrain_on_grid(slope_from_dem(arr), grid)
