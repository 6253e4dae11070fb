"""Keep the CRS on results: some xarray operations (``xr.where``) drop coordinate attributes,
and with them the ``spatial_ref`` CRS that odc-geo reads."""

from __future__ import annotations

from typing import TypeVar

import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import xarray as xr

__all__ = ["keep_grid", "nanmean"]

T = TypeVar("T", xr.Dataset, xr.DataArray)


def nanmean(arr: xr.DataArray, dim: str) -> xr.DataArray:
    """Mean over ``dim`` ignoring NaN; NaN (and no "empty slice" warning) where all are NaN."""
    count = arr.count(dim)
    out: xr.DataArray = arr.sum(dim, skipna=True) / count.where(count > 0)
    return out


def keep_grid(obj: T, like: xr.Dataset | xr.DataArray) -> T:
    """``obj`` with the CRS of ``like`` (unchanged when ``like`` has none)."""
    crs = like.odc.crs if hasattr(like, "odc") else None
    if crs is None or not {"y", "x"} <= set(obj.dims):
        return obj
    out: T = obj.odc.assign_crs(crs)
    return out
