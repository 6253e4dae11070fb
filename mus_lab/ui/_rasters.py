"""Reading product rasters for display: decimated whole images and single pixels.

A dashboard never needs more pixels than the screen has: :func:`read_for_display` reads a
COG at the overview level closest to ``max_size`` pixels, so memory does not grow with the
area. :func:`sample_pixel` reads one pixel of a raster at a map coordinate, in whatever CRS
the raster has (Sentinel-1 and RCM items are not on the Sentinel-2 grid).
"""

from __future__ import annotations

import math
import os

import numpy as np
import xarray as xr

__all__ = ["read_for_display", "sample_pixel"]


def read_for_display(
    href: str | os.PathLike[str], *, max_size: int = 800, resampling: str = "nearest"
) -> xr.DataArray:
    """Read a raster decimated to at most ``max_size`` pixels a side (overviews used).

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` for one band, ``(band, y, x)`` for several; pixel-centre coordinates in
        the raster's CRS; attributes ``crs`` (WKT or EPSG string) and ``nodata``.
    """
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    with rasterio.open(href) as src:
        factor = max(1, math.ceil(max(src.height, src.width) / max_size))
        height, width = math.ceil(src.height / factor), math.ceil(src.width / factor)
        data = src.read(out_shape=(src.count, height, width), resampling=Resampling[resampling])
        t = src.transform @ Affine.scale(src.width / width, src.height / height)
        crs = src.crs.to_string() if src.crs is not None else ""
        nodata = src.nodata
    x = t.c + (np.arange(width) + 0.5) * t.a
    y = t.f + (np.arange(height) + 0.5) * t.e
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"x": x, "y": y})
    da.attrs.update(crs=crs, nodata=nodata)
    return da.squeeze("band", drop=True) if data.shape[0] == 1 else da


def sample_pixel(
    href: str | os.PathLike[str], x: float, y: float, *, crs: str
) -> np.ndarray | None:
    """The values (one per band) of the pixel at ``(x, y)`` given in ``crs``.

    Returns ``None`` when the point falls outside the raster; nodata values become NaN.
    """
    import rasterio
    from pyproj import Transformer
    from rasterio.windows import Window

    with rasterio.open(href) as src:
        px, py = x, y
        if src.crs is not None and crs and src.crs.to_string() != crs:
            px, py = Transformer.from_crs(crs, src.crs, always_xy=True).transform(x, y)
        row, col = src.index(px, py)
        if not (0 <= row < src.height and 0 <= col < src.width):
            return None
        values = src.read(window=Window(col, row, 1, 1)).reshape(src.count).astype("float64")
        if src.nodata is not None and not np.isnan(src.nodata):
            values[values == src.nodata] = np.nan
    return values
