"""Classifier outputs from GeoTIFFs: label maps and probability cubes, opened lazily
(:func:`mus_lab.publish.open_raster`, checked for what fusion takes)."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from mus_lab.errors import FusionError, PublishError
from mus_lab.publish import open_raster

__all__ = ["open_map"]


def open_map(path: str | os.PathLike[str], *, chunks: int | None = 1024) -> xr.DataArray:
    """Open a classifier output GeoTIFF lazily: a label map or a probability cube.

    One integer band = a label map (``y``, ``x``; 0 = no data). Several bands = a probability
    cube (``class``, ``y``, ``x``) whose band descriptions are the class codes (as the land-cover
    stage writes them); the file's nodata value becomes NaN.

    Parameters
    ----------
    path
        The GeoTIFF.
    chunks
        Spatial chunk size (pixels; None: the setting ``chunk_size``).

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
    try:
        out = open_raster(path, chunks=chunks, bands="class", what="classifier output")
    except PublishError as exc:
        raise FusionError(str(exc)) from exc
    out.attrs = {}
    if "class" in out.dims:
        return out.astype("float32")
    if not np.issubdtype(out.dtype, np.integer):
        raise FusionError(
            f"{path} has one {out.dtype} band: a label map must hold integer class codes "
            "(a probability cube needs one band per class)."
        )
    return out
