"""IOTA²-style temporal gap-filling onto a regular date grid.

Semantics (METHODS.md section 2, IOTA²'s ``temporalGapFilling``):

* inside a gap, linear interpolation between the nearest valid dates before and after;
* before the first valid date, the first valid value; after the last, the last one
  (no extrapolation);
* a pixel with no valid date gets ``nodata`` (0 by default);
* an output date equal to a valid input date returns that value.

The core works on arrays with time first: a numba kernel walks each pixel's valid dates
and the output dates together (two pointers, O(T_in + T_out) per pixel), in parallel over
pixels. :func:`_gapfill_numpy` is the vectorised numpy formulation of the same rule, kept
as the reference the kernel is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
import xarray as xr

from mus_lab.errors import ARDError

__all__ = ["gapfill", "gapfill_array", "regular_dates"]


def _as_days(dates: Any) -> np.ndarray:
    arr = np.asarray(dates)
    if np.issubdtype(arr.dtype, np.datetime64):
        return (arr.astype("datetime64[s]").astype("int64") / 86400.0).astype("float64")
    return arr.astype("float64")


@numba.njit(parallel=True, cache=True, nogil=True)
def _gapfill_kernel(
    v: np.ndarray,
    ok: np.ndarray,
    t_in: np.ndarray,
    t_out: np.ndarray,
    nodata: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    n, npix = v.shape
    n_out = t_out.size
    for p in numba.prange(npix):
        first = -1
        last = -1
        for i in range(n):
            if ok[i, p]:
                if first < 0:
                    first = i
                last = i
        if first < 0:
            for j in range(n_out):
                out[j, p] = nodata
            continue
        prev = first  # last valid input with t_in <= t (once t >= t_in[first])
        nxt = first  # first valid input with t_in >= t
        for j in range(n_out):
            t = t_out[j]
            if t <= t_in[first]:
                out[j, p] = v[first, p]
                continue
            if t >= t_in[last]:
                out[j, p] = v[last, p]
                continue
            # advance prev to the last valid index whose date <= t
            k = prev + 1
            while k <= last and t_in[k] <= t:
                if ok[k, p]:
                    prev = k
                k += 1
            if nxt < prev:
                nxt = prev
            while t_in[nxt] < t or not ok[nxt, p]:
                nxt += 1
            tp = t_in[prev]
            tq = t_in[nxt]
            if tq > tp:
                out[j, p] = v[prev, p] + (t - tp) / (tq - tp) * (v[nxt, p] - v[prev, p])
            else:
                out[j, p] = v[prev, p]


def gapfill_array(
    values: np.ndarray,
    invalid: np.ndarray,
    in_dates: Sequence[float] | np.ndarray,
    out_dates: Sequence[float] | np.ndarray,
    *,
    nodata: float = 0.0,
) -> np.ndarray:
    """Gap-fill ``values`` (time first) whose ``invalid`` entries are gaps.

    Parameters
    ----------
    values
        Array ``(T, ...)``.
    invalid
        Boolean array broadcastable to ``values``: True where the observation is a gap
        (IOTA²'s mask != 0).
    in_dates, out_dates
        Increasing dates (numbers of days, or datetime64) of the inputs and of the output grid.
    nodata
        Value for pixels without any valid date.

    Returns
    -------
    numpy.ndarray
        ``(len(out_dates), ...)``, float32 unless ``values`` is float64.

    Raises
    ------
    ARDError
        Not one input date per observation, or dates not increasing.

    Examples
    --------
    >>> values = np.array([1.0, 0.0, 3.0], dtype="float32")
    >>> gapfill_array(values, np.array([0, 1, 0], bool), [0, 1, 2], [0, 1, 2])
    array([1., 2., 3.], dtype=float32)
    """
    t_in, t_out = _as_days(in_dates), _as_days(out_dates)
    vals = np.asarray(values)
    if vals.shape[0] != t_in.size:
        raise ARDError(
            f"gapfill: {vals.shape[0]} observations but {t_in.size} input dates: "
            "give one date per observation."
        )
    if t_in.size > 1 and np.any(np.diff(t_in) < 0):
        raise ARDError("gapfill: input dates must be increasing; sort the cube by time first.")
    out_dtype = np.float64 if vals.dtype == np.float64 else np.float32
    valid = ~np.broadcast_to(np.asarray(invalid, dtype=bool), vals.shape)
    if t_out.size > 1 and np.any(np.diff(t_out) < 0):
        raise ARDError("gapfill: output dates must be increasing.")
    n = t_in.size
    v = np.ascontiguousarray(vals.reshape(n, -1), dtype=out_dtype)
    ok = np.ascontiguousarray(valid.reshape(n, -1))
    out = np.empty((t_out.size, v.shape[1]), dtype=out_dtype)
    _gapfill_kernel(v, ok, t_in, t_out, float(nodata), out)
    return out.reshape((t_out.size, *vals.shape[1:]))


def _gapfill_numpy(
    vals: np.ndarray, valid: np.ndarray, t_in: np.ndarray, t_out: np.ndarray, nodata: float
) -> np.ndarray:
    """Vectorised numpy formulation of the same rule (the kernel's reference in tests)."""
    out_dtype = np.float64 if vals.dtype == np.float64 else np.float32
    n = t_in.size
    flat_shape = vals.shape[1:]
    v = vals.reshape(n, -1).astype(out_dtype, copy=False)
    ok = valid.reshape(n, -1)
    idx = np.arange(n)[:, None]
    # last valid index at or before i (-1: none); first valid index at or after i (n: none)
    prev_idx = np.maximum.accumulate(np.where(ok, idx, -1), axis=0)
    next_idx = np.minimum.accumulate(np.where(ok, idx, n)[::-1], axis=0)[::-1]
    first_valid = next_idx[0]
    last_valid = prev_idx[-1]
    any_valid = first_valid < n
    out = np.empty((t_out.size, v.shape[1]), dtype=out_dtype)
    cols = np.arange(v.shape[1])
    safe_first = np.minimum(first_valid, n - 1)
    safe_last = np.maximum(last_valid, 0)
    first_val = v[safe_first, cols]
    last_val = v[safe_last, cols]
    for j, t in enumerate(t_out):
        k_before = int(np.searchsorted(t_in, t, side="right")) - 1  # last input date <= t
        k_after = int(np.searchsorted(t_in, t, side="left"))  # first input date >= t
        p = prev_idx[k_before] if k_before >= 0 else np.full(v.shape[1], -1)
        q = next_idx[k_after] if k_after < n else np.full(v.shape[1], n)
        has_p, has_q = p >= 0, q < n
        ps, qs = np.clip(p, 0, n - 1), np.clip(q, 0, n - 1)
        vp, vq = v[ps, cols], v[qs, cols]
        tp, tq = t_in[ps], t_in[qs]
        span = np.where(tq > tp, tq - tp, 1.0)
        w = np.where(tq > tp, (t - tp) / span, 0.0)
        inside = vp + w * (vq - vp)
        res = np.where(has_p & has_q, inside, np.where(has_p, last_val, first_val))
        out[j] = np.where(any_valid, res, nodata)
    return out.reshape((t_out.size, *flat_shape))


def regular_dates(start: Any, end: Any, every_days: int = 10) -> np.ndarray:
    """The regular output grid: every ``every_days`` days from ``start`` up to ``end``.

    Parameters
    ----------
    start, end : str, datetime or numpy.datetime64
        First date (its day, at midnight) and last possible date (inclusive).
    every_days : int, optional
        Spacing in days (IOTA² default 10).

    Returns
    -------
    numpy.ndarray
        ``datetime64[ns]`` dates.

    Raises
    ------
    ARDError
        ``every_days`` is not positive.

    Examples
    --------
    >>> regular_dates("2022-01-01", "2022-01-25", every_days=10).astype("datetime64[D]")
    array(['2022-01-01', '2022-01-11', '2022-01-21'], dtype='datetime64[D]')
    """
    if every_days <= 0:
        raise ARDError(f"every_days must be positive, got {every_days}.")
    s, e = pd.Timestamp(start).normalize(), pd.Timestamp(end)
    return pd.date_range(s, e, freq=f"{every_days}D").values.astype("datetime64[ns]")


def gapfill(
    data: xr.DataArray | xr.Dataset,
    invalid: xr.DataArray,
    *,
    dates: Sequence[Any] | np.ndarray | None = None,
    every_days: int = 10,
    nodata: float = 0.0,
) -> xr.DataArray | xr.Dataset:
    """Gap-fill a cube along ``time`` onto a regular grid (default every 10 days), lazily.

    Parameters
    ----------
    data : xarray.DataArray or xarray.Dataset
        A cube with a ``time`` dimension (dask-backed or not).
    invalid : xarray.DataArray
        Boolean, True where an observation is a gap (cloud, shadow, no data).
    dates : sequence of dates, optional
        Output dates; default every ``every_days`` days from the first to the last date.
    every_days : int, optional
        Spacing of the default output dates.
    nodata : float, optional
        Output for pixels without any valid date.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Same type as ``data``, with ``time`` replaced by the output dates and the
        attribute ``gapfill_every_days``; lazy when ``data`` is.

    Raises
    ------
    ARDError
        ``data`` has no ``time`` dimension, or a bad ``every_days``.

    Examples
    --------
    >>> time = np.array(["2022-01-01", "2022-01-05", "2022-01-21"], dtype="datetime64[ns]")
    >>> da = xr.DataArray([1.0, np.nan, 3.0], coords={"time": time})
    >>> gapfill(da, da.isnull(), every_days=10).values
    array([1., 2., 3.])
    """
    if "time" not in data.dims:
        raise ARDError("gapfill needs a 'time' dimension: load a time series with cube.load.")
    times = data["time"].values
    out_dates = (
        np.asarray(dates, dtype="datetime64[ns]")
        if dates is not None
        else regular_dates(times.min(), times.max(), every_days)
    )
    in_days, out_days = _as_days(times), _as_days(out_dates)

    def _one(arr: xr.DataArray) -> xr.DataArray:
        arr_t = arr.chunk({"time": -1}) if arr.chunks else arr
        inv_t = invalid.chunk({"time": -1}) if invalid.chunks else invalid

        def _core(v: np.ndarray, m: np.ndarray) -> np.ndarray:
            # apply_ufunc moves the core dim last: put time first for the kernel and back.
            res = gapfill_array(
                np.moveaxis(v, -1, 0), np.moveaxis(m, -1, 0), in_days, out_days, nodata=nodata
            )
            return np.moveaxis(res, 0, -1)

        res = xr.apply_ufunc(
            _core,
            arr_t,
            inv_t,
            input_core_dims=[["time"], ["time"]],
            output_core_dims=[["time_out"]],
            dask="parallelized",
            output_dtypes=[np.float64 if arr.dtype == np.float64 else np.float32],
            dask_gufunc_kwargs={"output_sizes": {"time_out": out_days.size}},
        )
        res = res.rename(time_out="time").assign_coords(time=out_dates).transpose("time", ...)
        res.attrs = dict(arr.attrs, gapfill_every_days=every_days, nodata=nodata)
        return res

    if isinstance(data, xr.Dataset):
        keep = {name: v for name, v in data.data_vars.items() if "time" in v.dims}
        out = xr.Dataset({name: _one(v) for name, v in keep.items()}, attrs=data.attrs)
        out.attrs["gapfill_every_days"] = every_days
        return out
    return _one(data)
