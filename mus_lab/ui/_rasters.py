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

    Parameters
    ----------
    href : str or path-like
        A GeoTIFF (a product's COG) that GDAL opens: local path or URL.
    max_size : int, optional
        Largest side of the result in pixels (default 800); the raster is decimated by the
        smallest whole factor that fits, and read whole when it already fits.
    resampling : str, optional
        A :class:`rasterio.enums.Resampling` name (default ``"nearest"``: class codes stay
        codes).

    Returns
    -------
    xarray.DataArray
        ``(y, x)`` for one band, ``(band, y, x)`` for several, in the file's dtype (no-data
        values kept); pixel-centre coordinates in the raster's CRS; attributes ``crs``
        (WKT or EPSG string) and ``nodata``.

    Examples
    --------
    >>> import glob
    >>> dem = sorted(glob.glob(str(tiny.root / "catalog" / "dem" / "*" / "*.tif")))[0]
    >>> full, small = read_for_display(dem), read_for_display(dem, max_size=8)
    >>> full.shape, small.shape, small.dims, small.attrs["crs"]
    ((22, 22), (8, 8), ('y', 'x'), 'EPSG:32618')
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

    Parameters
    ----------
    href : str or path-like
        A GeoTIFF that GDAL opens.
    x, y : float
        The point, in ``crs`` (a map click: the displayed product's coordinates).
    crs : str
        CRS of ``(x, y)`` (``"EPSG:32618"``); the point is transformed to the raster's CRS
        when they differ. ``""`` takes it in the raster's own CRS.

    Returns
    -------
    numpy.ndarray or None
        float64 values, one per band, no-data values as NaN; None when the point falls
        outside the raster.

    Examples
    --------
    >>> import glob
    >>> dem = sorted(glob.glob(str(tiny.root / "catalog" / "dem" / "*" / "*.tif")))[0]
    >>> grid = read_for_display(dem)
    >>> x, y = float(grid.x[3]), float(grid.y[5])
    >>> bool(sample_pixel(dem, x, y, crs="EPSG:32618")[0] == grid.values[5, 3])
    True
    >>> sample_pixel(dem, x - 1e6, y, crs="EPSG:32618") is None
    True
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
