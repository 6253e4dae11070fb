"""The water + likelihood layers of :func:`~mus_lab.flood.map_geotiff` in one pass, window by window.

The general path (:func:`~mus_lab.flood.map_water` then :func:`~mus_lab.flood.consensus`)
builds many dask layers: each polarisation read per band, masked, thresholded, two
``map_overlap`` steps whose halos come from neighbouring chunks, then the consensus,
element by element. Written a few windows at a time (the COG writer's batches), the
neighbours of every batch were read and computed again: the inputs were read about three
times, and most of the time went to dask's bookkeeping of small elementwise tasks.

Here every output window is one task: it reads its window of the SAR file and of the
pre-event reference with the halo the neighbourhood methods need (both polarisations in one
read), runs the same numpy kernels (threshold likelihood, change detection, region growing),
the majority vote and the consensus's rounding, and returns the two uint8 bands. The halo is
the one ``dask.array.map_overlap`` gives the general path (``boundary="none"``, the region's
depth capped by the smallest chunk, the change detection's own smaller depth), on the same
windows (the SAR's chunks), so the result is the same pixel for pixel
(``tests/flood/test_fused.py``). Inputs not on the SAR file's grid (a reprojected reference,
slope from a DEM) are lazy arrays whose window is computed in the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from numpy.typing import NDArray

from mus_lab.ard import to_db
from mus_lab.flood._evidence import _change_kernel, _np_nanmean, _region_kernel
from mus_lab.flood._options import MappingOptions

__all__ = ["FileBands", "lazy_read", "water_layers"]


@dataclass(frozen=True)
class FileBands:
    """Polarisations of one GeoTIFF as :func:`~mus_lab.flood.read_sar_geotiff` reads them.

    ``bands`` are 1-based band indexes, ``linear`` says which were converted to dB.
    """

    path: str
    bands: tuple[int, ...]
    nodata: float | None
    linear: tuple[bool, ...]

    def read(self, ys: slice, xs: slice) -> NDArray[np.float32]:
        """The window's bands ``(band, y, x)``, float32 dB with NaN at no data (one read)."""
        import rasterio
        from rasterio.windows import Window

        window = Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
        with rasterio.open(self.path) as src:
            raw = src.read(list(self.bands), window=window, out_dtype=np.float32)
        masked = self.nodata is not None and np.isfinite(self.nodata)
        for k, lin in enumerate(self.linear):
            if masked:  # as read_sar_geotiff: float32 first, then the no-data value
                raw[k][raw[k] == np.float32(self.nodata)] = np.nan
            if lin:
                raw[k] = to_db(raw[k]).astype(np.float32)
        return raw


def lazy_read(bands: FileBands, chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> da.Array:
    """float32 ``(band, y, x)`` dask array of ``bands``: one read per chunk for all bands.

    Parameters
    ----------
    bands
        The file's bands to read.
    chunks
        Chunks along ``y`` and ``x``.

    Returns
    -------
    dask.array.Array
    """

    def block(block_info: dict[Any, Any] | None = None) -> NDArray[np.float32]:
        assert block_info is not None
        _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return bands.read(slice(y0, y1), slice(x0, x1))

    out: da.Array = da.map_blocks(
        block,
        chunks=((len(bands.bands),), *chunks),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
        name=f"read-{tokenize(bands, chunks)}",
    )
    return out


Source = FileBands | Sequence[xr.DataArray]


def _fetch(source: Source, ys: slice, xs: slice) -> list[NDArray[np.float32]]:
    if isinstance(source, FileBands):
        return list(source.read(ys, xs))
    out = []
    for arr in source:
        data = arr.data[..., ys, xs]
        block = data.compute(scheduler="sync") if isinstance(data, da.Array) else data
        out.append(np.asarray(block))
    return out


def _sub(outer: tuple[slice, slice], inner: tuple[slice, slice]) -> tuple[slice, slice]:
    """``inner`` (global pixels) relative to ``outer``."""
    return tuple(  # type: ignore[return-value]
        slice(i.start - o.start, i.stop - o.start) for o, i in zip(outer, inner, strict=True)
    )


def _grow(core: tuple[slice, slice], depth: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """``core`` with ``depth`` pixels more on each side, within the array (``boundary="none"``)."""
    return tuple(  # type: ignore[return-value]
        slice(max(0, c.start - depth), min(n, c.stop + depth))
        for c, n in zip(core, shape, strict=True)
    )


def _logistic64(x: NDArray[np.float64]) -> NDArray[np.float32]:
    """:func:`mus_lab.flood._evidence._logistic` on numpy (float64 in, float32 out), in
    place on ``x`` (a temporary)."""
    np.clip(x, -50, 50, out=x)
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    np.divide(1.0, x, out=x)
    return x.astype(np.float32)


def _pol_mean(parts: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    """``_grid.nanmean`` over polarisations: float32 sum / float64 count, as float32."""
    if len(parts) == 1:
        return parts[0]
    # float32 / float64 count, then float32: for one or two parts the same as float32
    # throughout (dividing by 1 or 2 is exact), which is _np_nanmean's fast path.
    return _np_nanmean(parts) if len(parts) == 2 else _pol_mean_any(parts)


def _pol_mean_any(parts: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    stack = np.stack(parts)
    count = np.sum(~np.isnan(stack), axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / np.where(count > 0, count, np.nan)
    return out.astype(np.float32)


def _vote(evidence: NDArray[np.float32]) -> NDArray[np.uint8]:
    """:func:`~mus_lab.flood.majority_rule` then :func:`~mus_lab.flood.consensus` (uint8)."""
    seen = ~np.isnan(evidence)
    n = np.sum(seen, axis=0, dtype=np.int8)
    balance = 2 * np.sum(evidence >= 0.5, axis=0, dtype=np.int8) - n  # NaN votes no
    total = np.where(seen, evidence, np.float32(0)).sum(axis=0)  # float32, as nansum
    with np.errstate(invalid="ignore", divide="ignore"):
        likelihood = total / n.astype(np.float64)  # NaN where no source (0 / 0)
    water = np.where(balance == 0, likelihood >= 0.5, balance > 0)
    out = np.empty((2, *evidence.shape[1:]), np.uint8)
    np.multiply(likelihood, 100.0, out=likelihood)
    np.clip(likelihood, 0, 100, out=likelihood)  # = 100 * clip(likelihood, 0, 1): exact
    np.round(likelihood, out=likelihood)
    out[0] = water
    with np.errstate(invalid="ignore"):
        out[1] = likelihood.astype(np.uint8)  # NaN: overwritten below
    out[:, n == 0] = 255
    return out


def _window(
    core: tuple[slice, slice],
    *,
    shape: tuple[int, int],
    sar: FileBands,
    reference: Source | None,
    slope: xr.DataArray | None,
    thresholds: NDArray[np.float64],
    opts: MappingOptions,
    depth_region: int,
    depth_change: int,
    side: int,
) -> NDArray[np.uint8]:
    methods = [m for m in opts.methods if m in ("threshold", "change", "region")]
    if "change" not in methods or reference is None:
        methods = [m for m in methods if m != "change"]
    depth = max(depth_region if "region" in methods else 0, depth_change)
    outer = _grow(core, depth, shape)
    raw = [b[None] for b in sar.read(*outer)]
    valid = np.logical_and.reduce([~np.isnan(b) for b in raw])
    nan = np.float32(np.nan)
    db = [np.where(valid, b, nan) for b in raw]
    thr = [np.asarray(thresholds[k : k + 1], np.float64)[:, None, None] for k in range(len(db))]
    # As _evidence._per_pixel (db * 0 + value): NaN where db is NaN or infinite.
    thr_px = [
        np.where(np.isfinite(d), t.astype(np.float32), nan) for d, t in zip(db, thr, strict=True)
    ]
    evidence = []
    local = _sub(outer, core)
    for m in methods:
        if m == "threshold":
            core_db = [d[(slice(None), *local)] for d in db]
            with np.errstate(invalid="ignore"):
                parts = [
                    np.where(np.isnan(d), nan, _logistic64((t - d) / opts.softness_db))
                    for d, t in zip(core_db, thr, strict=True)
                ]
            evidence.append(_pol_mean(parts))
        elif m == "change":
            assert reference is not None
            box = _grow(core, depth_change, shape)
            inner = (slice(None), *_sub(outer, box))
            refs = [r[None] for r in _fetch(reference, *box)]
            extra = []
            if slope is not None:
                s = _fetch([slope], *box)[0].astype(np.float32)
                extra = [np.where(np.isfinite(db[0][inner]), s[None], nan)]
            p = _change_kernel(
                *[d[inner] for d in db],
                *refs,
                *[t[inner] for t in thr_px],
                *extra,
                n_pols=len(db),
                side=side,
                ratio=opts.change_ratio,
                ratio_softness=opts.change_softness,
                softness_db=opts.softness_db,
                min_px=opts.min_group_px,
                slope_max=opts.change_slope_max_deg,
            )
            evidence.append(p[(slice(None), *_sub(box, core))])
        else:
            p = _region_kernel(
                *db,
                *thr_px,
                n_pols=len(db),
                softness_db=opts.softness_db,
                tolerance_db=opts.grow_tolerance_db,
                seed_likelihood=opts.seed_likelihood,
            )
            evidence.append(p[(slice(None), *local)])
    stack = np.stack(evidence)[:, 0]
    stack[:, ~valid[(0, *local)]] = np.nan
    return _vote(stack)


def water_layers(
    sar: FileBands,
    *,
    chunks: tuple[tuple[int, ...], tuple[int, ...]],
    thresholds: NDArray[np.float64],
    reference: Source | None,
    slope: xr.DataArray | None,
    options: MappingOptions,
    resolution_m: float,
) -> da.Array:
    """uint8 ``(2, y, x)`` water (1/0/255) and likelihood (0-100/255), one task per chunk.

    Parameters
    ----------
    sar
        The SAR file's polarisations (in ``POLARISATIONS`` order).
    chunks
        The SAR's chunks along ``y`` and ``x``: the windows (as the general path's blocks).
    thresholds
        float64 thresholds (dB), one per polarisation of ``sar``.
    reference
        The pre-event reference: the same polarisations on the SAR grid, from a file or
        lazy arrays ``(y, x)``; None leaves change detection out.
    slope
        Slope (degrees) ``(y, x)`` on the SAR grid, or None.
    options
        :class:`MappingOptions` (``methods`` among threshold, change, region).
    resolution_m
        Pixel size in metres (the change detection's focal window).

    Returns
    -------
    dask.array.Array
    """
    shape = (sum(chunks[0]), sum(chunks[1]))
    smallest = min(min(chunks[0]), min(chunks[1]))
    radius_px = options.smoothing_radius_m / resolution_m
    side = max(1, round(float(np.sqrt(np.pi)) * radius_px))
    side += 1 - side % 2
    depth_change = int(max(1, min(side // 2 + options.min_group_px + 1, smallest)))
    depth_region = int(max(1, min(options.grow_depth, smallest)))

    def block(block_info: dict[Any, Any] | None = None) -> NDArray[np.uint8]:
        assert block_info is not None
        (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return _window(
            (slice(y0, y1), slice(x0, x1)),
            shape=shape,
            sar=sar,
            reference=reference,
            slope=slope,
            thresholds=thresholds,
            opts=options,
            depth_region=depth_region,
            depth_change=depth_change,
            side=side,
        )

    out: da.Array = da.map_blocks(
        block,
        chunks=((2,), *chunks),
        dtype=np.uint8,
        meta=np.empty((0, 0, 0), np.uint8),
    )
    return out
