"""Keep the CRS on results: some xarray operations (``xr.where``) drop coordinate attributes,
and with them the ``spatial_ref`` CRS that odc-geo reads."""

from __future__ import annotations

from typing import TypeVar

import xarray as xr

__all__ = ["keep_grid"]

T = TypeVar("T", xr.Dataset, xr.DataArray)


def keep_grid(obj: T, like: xr.Dataset | xr.DataArray) -> T:
    """``obj`` with the CRS of ``like`` (unchanged when ``like`` has none)."""
    crs = like.odc.crs if hasattr(like, "odc") else None
    if crs is None or not {"y", "x"} <= set(obj.dims):
        return obj
    out: T = obj.odc.assign_crs(crs)
    return out
