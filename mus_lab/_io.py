"""Atomic, chunk-streaming Cloud-Optimised GeoTIFF writing shared by every stage.

A product is first written in full under a temporary name in the target folder,
then renamed: a crash never leaves a half-written product under the final name.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import numpy as np

if TYPE_CHECKING:  # xarray only for annotations: json helpers stay light for notebook records
    import xarray as xr

__all__ = ["CogSpec", "atomic_folder", "atomic_path", "write_cog", "write_cogs", "write_json"]

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


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it becomes ``path`` only on success.

    An existing ``path`` is swapped out and removed after the rename; on failure the temporary
    folder is removed and ``path`` is left as it was. Never a half-written folder.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write JSON atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return Path(path)


@dataclass(frozen=True)
class CogSpec:
    """One COG to write: the array (``(y, x)`` or ``(band, y, x)``) and how to store it."""

    data: xr.DataArray
    path: Path
    nodata: float | int | None = None
    overview_resampling: str = "nearest"
    tags: Mapping[str, Any] | None = None
    band_names: Sequence[str] | None = None


def _prepared(spec: CogSpec) -> tuple[xr.DataArray, float | int | None]:
    arr = spec.data
    if arr.ndim not in (2, 3):
        raise ValueError(f"write_cog needs (y, x) or (band, y, x), got dims {arr.dims}")
    if arr.ndim == 3:
        lead = next(d for d in arr.dims if d not in ("y", "x"))
        arr = arr.transpose(lead, "y", "x")
        if arr.chunks:
            arr = arr.chunk({lead: -1})
    else:
        arr = arr.transpose("y", "x")
    if arr.dtype == bool:
        arr = arr.astype("uint8")
    nodata = spec.nodata
    if nodata is None:
        nodata = arr.attrs.get("nodata", arr.attrs.get("_FillValue"))
    return arr, nodata


def _windows(arr: xr.DataArray, size: int = 2048) -> list[tuple[slice, slice]]:
    """Spatial windows following the array's dask chunks (or ``size`` tiles for numpy)."""
    ny, nx = arr.sizes["y"], arr.sizes["x"]
    if arr.chunks:
        ys = arr.chunksizes["y"]
        xs = arr.chunksizes["x"]
    else:
        ys = tuple(min(size, ny - i) for i in range(0, ny, size))
        xs = tuple(min(size, nx - i) for i in range(0, nx, size))
    yo = np.cumsum((0, *ys))
    xo = np.cumsum((0, *xs))
    return [
        (slice(int(yo[i]), int(yo[i + 1])), slice(int(xo[j]), int(xo[j + 1])))
        for i in range(len(ys))
        for j in range(len(xs))
    ]


def _workers() -> int:
    if dask.config.get("scheduler", None) in ("synchronous", "sync", "single-threaded"):
        # a production step on a worker: get_client() there would make the worker's
        # client, which sets the global scheduler to distributed under the step's feet
        return 1
    try:  # the default client only: get_client() would make one on a worker
        from distributed import default_client

        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return max(1, int(dask.config.get("num_workers", None) or os.cpu_count() or 1))


def _trim_memory() -> None:
    """Collect cyclic garbage and give freed heap back to the OS.

    glibc keeps freed heap otherwise, and RSS ratchets up batch after batch (dask.distributed
    trims its workers the same way). A no-op outside glibc. (``ctypes.util.find_library`` is
    avoided: it forks ``ldconfig``, which briefly doubles the RSS that monitors see.)
    """
    import ctypes
    import sys

    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _overview_levels(width: int, height: int, blocksize: int) -> list[int]:
    """Overview factors GDAL's COG driver makes: halving until both sides fit in a block."""
    levels, factor = [], 1
    while max(width // factor, height // factor) > blocksize:
        factor *= 2
        levels.append(factor)
    return levels


def write_cogs(
    specs: Sequence[CogSpec],
    *,
    compress: str = "DEFLATE",
    blocksize: int = 512,
    batch_bytes: int = 256 * 2**20,
) -> list[Path]:
    """Write several COGs on one grid in one streaming pass over the dask chunks.

    Each batch of spatial windows is computed once for all outputs (``dask.compute`` on
    the slices, so the upstream work they share is done once, on the local threads or the
    cluster of the current ``distributed`` client) and written into tiled GeoTIFFs in this
    process; at most ``batch_bytes`` of results are held at a time, so memory does not grow
    with the area. GDAL's COG driver then adds overviews, and each file is renamed into
    place only when all are complete. The staged GeoTIFFs are uncompressed (as
    :mod:`mus_lab.sample` stages its COGs): compressing them cost more than the COG's own
    compression, which is done once, on the local threads (``NUM_THREADS``). Nearest
    overviews are built on the staged file, at the levels the COG driver would make (the
    same pixels, without its compressed temporary file).
    """
    import rasterio
    import rasterio.shutil
    from odc.geo.geobox import GeoBox
    from rasterio.windows import Window

    from mus_lab.cube import same_grid

    if not specs:
        return []
    prepared = [_prepared(s) for s in specs]
    gboxes: list[GeoBox] = []
    for arr, _ in prepared:
        odc = getattr(arr, "odc", None)
        gbox = odc.geobox if odc is not None else None
        if not isinstance(gbox, GeoBox):
            raise ValueError("write_cogs needs arrays with a georeferenced (y, x) grid")
        gboxes.append(gbox)
    first = gboxes[0]
    if not all(same_grid(g, first) for g in gboxes[1:]):
        raise ValueError("write_cogs: all outputs of one pass must share one grid")
    staging: list[tuple[Path, Path, Path]] = []
    try:
        for spec in specs:
            final = Path(spec.path)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmpdir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
            staging.append((final, tmpdir / "staged.tif", tmpdir / "cog.tif"))
        with contextlib.ExitStack() as stack:
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
            dsts = []
            for (arr, nodata), gbox, (_, staged, _) in zip(prepared, gboxes, staging, strict=True):
                dsts.append(
                    stack.enter_context(
                        rasterio.open(
                            staged,
                            "w",
                            driver="GTiff",
                            width=gbox.shape.x,
                            height=gbox.shape.y,
                            count=arr.shape[0] if arr.ndim == 3 else 1,
                            dtype=str(arr.dtype),
                            crs=gbox.crs.to_wkt() if gbox.crs is not None else None,
                            transform=gbox.affine,
                            nodata=nodata,
                            tiled=True,
                            blockxsize=blocksize,
                            blockysize=blocksize,
                            BIGTIFF="IF_SAFER",
                        )
                    )
                )
            windows = _windows(prepared[0][0])
            per_window = sum(
                arr.dtype.itemsize * (arr.shape[0] if arr.ndim == 3 else 1) for arr, _ in prepared
            )
            biggest = max((ys.stop - ys.start) * (xs.stop - xs.start) for ys, xs in windows)
            batch = max(1, min(2 * _workers(), batch_bytes // max(1, per_window * biggest)))
            # Objects alive now (modules, the graph) are frozen out of the collections that
            # _trim_memory runs after every batch: a full collection then only visits what
            # the batch made (it took 0.1-0.2 s per batch, mostly walking long-lived objects).
            gc.freeze()
            stack.callback(gc.unfreeze)
            for b0 in range(0, len(windows), batch):
                chunk = windows[b0 : b0 + batch]
                parts = [arr.data[..., ys, xs] for ys, xs in chunk for arr, _ in prepared]
                values = dask.compute(*parts) if any(arr.chunks for arr, _ in prepared) else parts
                it = iter(values)
                for ys, xs in chunk:
                    win = Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
                    for dst, (arr, _) in zip(dsts, prepared, strict=True):
                        block = np.asarray(next(it))
                        if arr.ndim == 2:
                            dst.write(block, 1, window=win)
                        else:
                            dst.write(block, window=win)
                del values, parts, it, block
                _trim_memory()
            for dst, spec in zip(dsts, specs, strict=True):
                if spec.tags:
                    dst.update_tags(
                        **{
                            k: (v if isinstance(v, str) else json.dumps(v))
                            for k, v in spec.tags.items()
                        }
                    )
                names = spec.band_names or (
                    [str(spec.data.name)] if spec.data.ndim == 2 and spec.data.name else []
                )
                for i, name in enumerate(names, start=1):
                    dst.set_band_description(i, name)
                if spec.overview_resampling.lower() == "nearest":
                    # The COG driver's own levels, built here on the uncompressed file: the
                    # driver otherwise writes them to a compressed temporary file first.
                    from rasterio.enums import Resampling

                    levels = _overview_levels(dst.width, dst.height, blocksize)
                    if levels:
                        dst.build_overviews(levels, Resampling.nearest)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            for (arr, _), spec, (_, staged, cog) in zip(prepared, specs, staging, strict=True):
                rasterio.shutil.copy(
                    staged,
                    cog,
                    driver="COG",
                    COMPRESS=compress,
                    BLOCKSIZE=blocksize,
                    OVERVIEW_RESAMPLING=spec.overview_resampling.upper(),
                    PREDICTOR="YES" if np.dtype(arr.dtype).kind == "f" else "NO",
                    NUM_THREADS=min(_workers(), os.cpu_count() or 1),
                )
                staged.unlink()
        for final, _, cog in staging:
            os.replace(cog, final)
    finally:
        for _, staged, _ in staging:
            shutil.rmtree(staged.parent, ignore_errors=True)
    return [final for final, _, _ in staging]


def write_cog(
    data: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    nodata: float | int | None = None,
    compress: str = "DEFLATE",
    overview_resampling: str = "nearest",
    blocksize: int = 512,
    tags: Mapping[str, Any] | None = None,
    band_names: Sequence[str] | None = None,
) -> Path:
    """Write a 2-D (y, x) or 3-D (band, y, x) DataArray as a COG, streaming dask chunks.

    The array is computed window by window (following its dask chunks) into a tiled
    GeoTIFF, then GDAL's COG driver copies it (adding overviews), both under temporary
    names; the COG is renamed into place at the end. Works with the threaded scheduler
    and with a ``distributed`` client (local cluster or Dask Gateway). To write several
    outputs that share upstream work, use :func:`write_cogs` (one pass).

    Parameters
    ----------
    data
        Array with a CRS (odc-geo) and ``y``/``x`` dims.
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
    spec = CogSpec(data, Path(path), nodata, overview_resampling, tags, band_names)
    return write_cogs([spec], compress=compress, blocksize=blocksize)[0]
