"""Classifier outputs from GeoTIFFs: label maps and probability cubes, opened lazily."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from mus_lab.errors import FusionError

__all__ = ["open_map"]


def open_map(path: str | os.PathLike[str], *, chunks: int = 1024) -> xr.DataArray:
    """Open a classifier output GeoTIFF lazily: a label map or a probability cube.

    One integer band = a label map (``y``, ``x``; 0 = no data). Several bands = a probability
    cube (``class``, ``y``, ``x``) whose band descriptions are the class codes (as the land-cover
    stage writes them); the file's nodata value becomes NaN.

    Parameters
    ----------
    path
        The GeoTIFF.
    chunks
        Spatial chunk size (pixels).

    Returns
    -------
    xarray.DataArray
        Lazy, with the file's CRS; named after the file.

    Raises
    ------
    FusionError
        The file cannot be read, a one-band file holds floats, or a multi-band file lacks
        integer band descriptions.

    Example
    -------
    >>> from mus_lab.fusion import open_map
    >>> open_map(tiny.landcover).dims
    ('y', 'x')
    """
    import rasterio
    import rioxarray

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            count, dtype, descriptions, nodata = (
                src.count,
                src.dtypes[0],
                src.descriptions,
                src.nodata,
            )
        da = rioxarray.open_rasterio(p, chunks={"band": -1, "y": chunks, "x": chunks})
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise FusionError(f"Cannot read {p} as a GeoTIFF ({exc}): check the path.") from exc
    assert isinstance(da, xr.DataArray)
    crs = da.rio.crs
    da = da.drop_vars([c for c in da.coords if c not in ("band", "y", "x")])
    da.attrs = {}
    da.encoding = {}
    if count == 1:
        if not np.issubdtype(np.dtype(dtype), np.integer):
            raise FusionError(
                f"{p} has one {dtype} band: a label map must hold integer class codes "
                "(a probability cube needs one band per class)."
            )
        out = da.squeeze("band", drop=True)
    else:
        try:
            codes = [int(str(d)) for d in descriptions]
        except (TypeError, ValueError) as exc:
            raise FusionError(
                f"{p} has {count} bands but their descriptions {list(descriptions)} are not class "
                "codes: a probability cube needs one band per class, described by its code."
            ) from exc
        out = da.rename(band="class").assign_coords({"class": codes}).astype("float32")
        if nodata is not None and not np.isnan(nodata):
            out = out.where(out != nodata)
    out.name = p.stem
    return out.odc.assign_crs(crs) if crs is not None else out
