"""Staging intermediate layers of the flood stage on disk (GeoTIFFs are opened with
:func:`mus_lab.publish.open_raster`, the project's one opener).

Staging: a lazy result that later steps read many times (the water maps feed the
extent, the summary and the risk; a per-orbit reference feeds every date of the orbit)
is written once, date by date, as multi-band float32 GeoTIFFs, and reopened lazily.
Each write computes one date, so memory holds chunks, never the series.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab._io import write_cog
from mus_lab._settings import resolve_chunks
from mus_lab.flood._grid import keep_grid

__all__ = ["stage"]


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


def stage(
    ds: xr.Dataset, folder: str | os.PathLike[str], *, chunks: int | None = None
) -> xr.Dataset:
    """Write each date of ``ds`` (``time``, ``y``, ``x`` variables, one extra dimension
    allowed) as one float32 GeoTIFF and return the same Dataset read back lazily.

    Integer variables come back with their dtype (their values are exact in float32).
    Variables without ``time`` are kept as they are.

    Parameters
    ----------
    ds
        Lazy layers to stage; each write computes one date.
    folder
        Where the GeoTIFFs go (created); the returned Dataset reads them, so keep it.
    chunks
        Spatial chunk size of the re-opened layers (default: the setting ``chunk_size``).

    Returns
    -------
    xarray.Dataset
        The same variables, dtypes, coordinates and grid, read lazily from ``folder``.
    """
    import rioxarray

    size = resolve_chunks(chunks)
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
        opened = rioxarray.open_rasterio(path, chunks={"x": size, "y": size})
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
