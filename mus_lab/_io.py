"""Atomic, chunk-streaming Cloud-Optimised GeoTIFF writing shared by every stage.

A product is first written in full under a temporary name in the target folder,
then renamed: a crash never leaves a half-written product under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # xarray only for annotations: json helpers stay light for notebook records
    import xarray as xr

__all__ = ["atomic_path", "write_cog", "write_json"]

_WRITE_LOCK = threading.Lock()
#: GDAL block cache (MB) while writing: bounded, so memory does not grow with the area.
GDAL_CACHE_MB = 256


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix or ".tmp", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return Path(path)


def _lock() -> Any:
    try:
        from distributed import Lock, get_client

        get_client()
        return Lock("mus_lab-write-cog")
    except (ImportError, ValueError):
        return _WRITE_LOCK


def write_cog(
    data: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    nodata: float | int | None = None,
    compress: str = "DEFLATE",
    overview_resampling: str = "nearest",
    blocksize: int = 512,
    tags: Mapping[str, Any] | None = None,
    band_names: list[str] | None = None,
) -> Path:
    """Write a 2-D (y, x) or 3-D (band, y, x) DataArray as a COG, streaming dask chunks.

    The array is written chunk by chunk into a tiled GeoTIFF, then GDAL's COG driver
    copies it (adding overviews), both under temporary names; the COG is renamed into
    place at the end.

    Parameters
    ----------
    data
        Array with a CRS (odc-geo or rioxarray) and ``y``/``x`` dims.
    path
        Destination ``.tif``.
    nodata
        Nodata value to record (default: ``data.attrs["nodata"]`` or ``_FillValue``).
    overview_resampling
        ``"nearest"`` for classes and masks, ``"average"`` for continuous values.
    tags
        GDAL metadata tags (e.g. provenance).
    band_names
        Descriptions of the bands (e.g. ``["VV", "VH"]``).
    """
    import rasterio
    import rasterio.shutil
    import rioxarray  # noqa: F401  (registers .rio)

    if data.ndim not in (2, 3):
        raise ValueError(f"write_cog needs (y, x) or (band, y, x), got dims {data.dims}")
    arr = data
    if arr.ndim == 3:
        lead = next(d for d in arr.dims if d not in ("y", "x"))
        arr = arr.transpose(lead, "y", "x")
    else:
        arr = arr.transpose("y", "x")
    crs = None
    odc = getattr(arr, "odc", None)
    if odc is not None and odc.crs is not None:
        crs = odc.crs.to_wkt()
    if crs is not None:
        arr = arr.rio.write_crs(crs)
    if nodata is None:
        nodata = arr.attrs.get("nodata", arr.attrs.get("_FillValue"))
    if nodata is not None:
        arr = arr.rio.write_nodata(nodata, encoded=False)
    arr = arr.drop_vars([c for c in arr.coords if c not in arr.dims and c != "spatial_ref"])
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{final.name}.", dir=final.parent) as tmpdir:
        staged, cog = Path(tmpdir) / "staged.tif", Path(tmpdir) / "cog.tif"
        # GDAL's block cache defaults to 5 % of RAM and fills with dirty blocks while a large
        # GeoTIFF is written: bound it so that memory does not grow with the area.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            arr.rio.to_raster(
                staged,
                tiled=True,
                blockxsize=blocksize,
                blockysize=blocksize,
                compress="DEFLATE",
                lock=_lock() if arr.chunks else None,
                compute=True,
            )
        with rasterio.open(staged, "r+") as dst:
            if tags:
                dst.update_tags(
                    **{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in tags.items()}
                )
            for i, name in enumerate(band_names or [], start=1):
                dst.set_band_description(i, name)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            rasterio.shutil.copy(
                staged,
                cog,
                driver="COG",
                COMPRESS=compress,
                BLOCKSIZE=blocksize,
                OVERVIEW_RESAMPLING=overview_resampling.upper(),
                PREDICTOR="YES" if np.dtype(arr.dtype).kind == "f" else "NO",
            )
        os.replace(cog, final)
    return final
