"""Reading rasters for the flood stage and staging intermediate layers on disk.

Staging: a lazy result that later steps read many times (the water maps feed the
extent, the summary and the risk; a per-orbit reference feeds every date of the orbit)
is written once, date by date, as multi-band float32 GeoTIFFs, and reopened lazily.
Each write computes one date, so memory holds chunks, never the series.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab._io import write_cog
from mus_lab.errors import FloodInputError
from mus_lab.flood._grid import keep_grid

__all__ = ["open_raster", "stage"]


def open_raster(
    path: str | os.PathLike[str], *, chunks: int = 2048, what: str = "raster"
) -> xr.DataArray:
    """A GeoTIFF (or any GDAL raster) as a lazy ``(band, y, x)`` DataArray with a CRS.

    Band descriptions are kept in the ``band_names`` attribute; the nodata value in
    ``nodata``.

    Raises
    ------
    FloodInputError
        The file cannot be opened or has no CRS.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            names = [d or "" for d in src.descriptions]
            nodata = src.nodata
            has_crs = src.crs is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            # One band per read task: a polarisation's pass never holds the other band.
            arr = rioxarray.open_rasterio(
                p, chunks={"band": 1, "x": chunks, "y": chunks}, masked=False
            )
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise FloodInputError(
            f"Cannot open the {what} {p} ({exc}): give a readable GeoTIFF."
        ) from exc
    if not has_crs:
        raise FloodInputError(f"The {what} {p} has no CRS: give a georeferenced GeoTIFF.")
    assert isinstance(arr, xr.DataArray)
    arr.attrs = {"band_names": names, "nodata": nodata}
    return arr


def _bands(ds: xr.Dataset) -> tuple[list[xr.DataArray], list[tuple[str, Any]]]:
    layers: list[xr.DataArray] = []
    keys: list[tuple[str, Any]] = []
    for name, var in ds.data_vars.items():
        extra = [d for d in var.dims if d not in ("time", "y", "x")]
        if not extra:
            layers.append(var.astype(np.float32))
            keys.append((str(name), None))
            continue
        (dim,) = extra
        for v in var[dim].values:
            layers.append(var.sel({dim: v}, drop=True).astype(np.float32))
            keys.append((str(name), (dim, v)))
    return layers, keys


def stage(ds: xr.Dataset, folder: str | os.PathLike[str], *, chunks: int = 2048) -> xr.Dataset:
    """Write each date of ``ds`` (``time``, ``y``, ``x`` variables, one extra dimension
    allowed) as one float32 GeoTIFF and return the same Dataset read back lazily.

    Integer variables come back with their dtype (their values are exact in float32).
    Variables without ``time`` are kept as they are.
    """
    import rioxarray

    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    timed = ds[[v for v in ds.data_vars if "time" in ds[v].dims and {"y", "x"} <= set(ds[v].dims)]]
    layers, keys = _bands(timed)
    dtypes = {str(v): timed[v].dtype for v in timed.data_vars}
    per_date: list[xr.DataArray] = []
    for i, t in enumerate(timed["time"].values):
        path = out_dir / f"{i:04d}_{pd.Timestamp(t):%Y%m%dT%H%M%S}.tif"
        stack = xr.concat([layer.isel(time=i, drop=True) for layer in layers], "band")
        write_cog(stack, path, nodata=float("nan"))
        opened = rioxarray.open_rasterio(path, chunks={"x": chunks, "y": chunks})
        assert isinstance(opened, xr.DataArray)
        per_date.append(opened)
    series = xr.concat(per_date, pd.Index(timed["time"].values, name="time"))
    # The same pixel grid: take the coordinates back exactly (no float round trip).
    series = series.drop_vars("spatial_ref", errors="ignore").assign_coords(
        y=timed["y"].values, x=timed["x"].values
    )
    rebuilt: dict[str, Any] = {}
    for name in dtypes:
        idx = [k for k, (n, _) in enumerate(keys) if n == name]
        extra = keys[idx[0]][1]
        if extra is None:
            arr = series.isel(band=idx[0], drop=True)
        else:
            dim = extra[0]
            arr = (
                series.isel(band=idx)
                .rename(band=dim)
                .assign_coords({dim: [keys[k][1][1] for k in idx]})
            )
            arr = arr.transpose(dim, "time", "y", "x")
        if np.issubdtype(dtypes[name], np.integer) or np.issubdtype(dtypes[name], np.bool_):
            arr = arr.fillna(0).astype(dtypes[name])
        rebuilt[name] = arr.assign_attrs(timed[name].attrs)
    out = xr.Dataset(rebuilt)
    out = out.assign_coords(
        {c: timed[c] for c in timed.coords if c not in out.coords and "time" in timed[c].dims}
    )
    for v in ds.data_vars:
        if v not in out:
            out[v] = ds[v]
    return keep_grid(out, ds)
