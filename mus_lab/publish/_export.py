"""Plain-file exports: one variable as a GeoTIFF (COG) for users of GIS tools."""

from __future__ import annotations

import math
import os
from pathlib import Path

import xarray as xr

from mus_lab._io import write_cog
from mus_lab.contracts import CONTRACTS
from mus_lab.errors import PublishError

__all__ = ["to_geotiff"]


def _contract_nodata(name: str) -> float | int | None:
    for contract in CONTRACTS.values():
        if name in contract.names:
            return contract.variable(name).nodata
    return None


def to_geotiff(
    data: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    nodata: float | int | None = None,
    overwrite: bool = True,
) -> Path:
    """Write one variable of a product as a Cloud-Optimised GeoTIFF, atomically.

    Parameters
    ----------
    data
        ``(y, x)`` or ``(band, y, x)`` array on a grid with a CRS (lazy arrays stream by chunk).
    path
        Destination ``.tif``.
    nodata
        No-data value (default: the contract's for a product variable of that name, else
        ``attrs["nodata"]``, else NaN for floats).
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    PublishError
        The array has no grid, too many dimensions, or the file exists and ``overwrite`` is
        False.

    Examples
    --------
    >>> import tempfile
    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_zeros
    >>> gbox = GeoBox.from_bbox((0, 0, 80, 80), "EPSG:32631", resolution=10)
    >>> out = to_geotiff(xr_zeros(gbox, dtype="uint8").rename("flood"),
    ...                  Path(tempfile.mkdtemp()) / "flood.tif")
    >>> out.name
    'flood.tif'
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise PublishError(f"{target} exists: pass overwrite=True or choose another path.")
    if getattr(getattr(data, "odc", None), "geobox", None) is None:
        raise PublishError(
            "This array has no pixel grid (x/y coordinates with a CRS): assign one with "
            ".odc.assign_crs(...) or load it with mus_lab.cube.load."
        )
    if data.ndim not in (2, 3):
        raise PublishError(
            f"A GeoTIFF holds (y, x) or (band, y, x); got dims {data.dims}: select one date first."
        )
    value = nodata if nodata is not None else _contract_nodata(str(data.name))
    if value is None and data.dtype.kind == "f":
        value = math.nan
    try:
        return write_cog(
            data,
            target,
            nodata=value,
            overview_resampling="average" if data.dtype.kind == "f" else "nearest",
        )
    except OSError as exc:
        raise PublishError(
            f"Cannot write {target} ({exc}): check the folder and the disk."
        ) from exc
