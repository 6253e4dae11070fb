"""Refusals that protect users from feeding the wrong kind of SAR data to a step.

Each check looks only at what is free to see (dtype, dims, attributes; values of numpy
arrays, never a dask compute) and raises an error whose message names the function to
call first.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr

from mus_lab.errors import BackscatterInputError, RadarGeometryError

__all__ = ["check_backscatter"]

_DB_UNITS = {"db", "decibel", "decibels"}
_LINEAR_UNITS = {"linear power", "linear", "1", "intensity", "m2/m2", "m^2/m^2"}
_DN_UNITS = {"dn", "digital number", "digital numbers", "amplitude dn"}


def _units(x: Any) -> str:
    attrs = getattr(x, "attrs", None) or {}
    return str(attrs.get("units", attrs.get("unit", ""))).strip().lower()


def check_backscatter(
    data: Any,
    *,
    expected: Literal["linear", "db"] = "linear",
    where: str = "this function",
    geocoded: bool = False,
) -> None:
    """Refuse digital numbers, the wrong scale (linear vs dB) or radar geometry.

    Parameters
    ----------
    data : numpy.ndarray, dask.array.Array, xarray.DataArray or xarray.Dataset
        What was given where backscatter is expected.
    expected : {"linear", "db"}, optional
        The scale the caller works in.
    where : str, optional
        The caller's name, quoted in the message.
    geocoded : bool, optional
        Also refuse data in radar geometry (dims ``line`` / ``pixel``).

    Returns
    -------
    None
        Nothing: the data may be used.

    Raises
    ------
    BackscatterInputError
        Integer digital numbers (``uint16`` GRD DN, ``units="DN"``), dB given where linear is
        expected or linear where dB is expected (told by ``units``; for numpy data, also by
        the values: negative medians are dB).
    RadarGeometryError
        ``geocoded=True`` and the data has ``line`` / ``pixel`` dims.

    Examples
    --------
    >>> check_backscatter(np.array([[120, 340]], dtype=np.uint16), where="speckle_filter")
    Traceback (most recent call last):
    ...
    mus_lab.errors.BackscatterInputError: speckle_filter expects calibrated backscatter but got uint16 digital numbers: calibrate first (open_safe(path).calibrated('vv'), or prepare_s1(open_safe(path)) for geocoded ARD).
    >>> check_backscatter(xr.DataArray([-12.0], attrs={"units": "dB"}), where="speckle_filter")
    Traceback (most recent call last):
    ...
    mus_lab.errors.BackscatterInputError: speckle_filter expects linear power but got dB (units='dB'): call from_db first.
    """
    if isinstance(data, xr.Dataset):
        for name, var in data.data_vars.items():
            if name in ("valid", "quality", "mask", "terrain"):
                continue
            check_backscatter(var, expected=expected, where=where, geocoded=geocoded)
        return
    dims = tuple(getattr(data, "dims", ()))
    if geocoded and ("line" in dims or "pixel" in dims):
        raise RadarGeometryError(
            f"{where} expects geocoded data on a grid (y, x) but got radar geometry {dims}: "
            "geocode it first with geocode_s1(safe) or prepare_s1(safe) (mus_lab.ard)."
        )
    dtype = np.dtype(data.dtype) if hasattr(data, "dtype") else np.asarray(data).dtype
    units = _units(data)
    calibration = str((getattr(data, "attrs", None) or {}).get("calibration", "")).lower()
    if dtype.kind in "ui" or units in _DN_UNITS or calibration == "dn":
        raise BackscatterInputError(
            f"{where} expects calibrated backscatter but got {dtype} digital numbers: calibrate "
            "first (open_safe(path).calibrated('vv'), or prepare_s1(open_safe(path)) for "
            "geocoded ARD)."
        )
    if expected == "linear" and units in _DB_UNITS:
        raise BackscatterInputError(
            f"{where} expects linear power but got dB (units={_shown(data)!r}): call from_db first."
        )
    if expected == "db" and units in _LINEAR_UNITS:
        raise BackscatterInputError(
            f"{where} expects dB but got linear power (units={_shown(data)!r}): call to_db first."
        )
    if units or not isinstance(data, np.ndarray) or data.size == 0:
        return
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return
    median = float(np.median(finite))
    if expected == "linear" and median < 0:
        raise BackscatterInputError(
            f"{where} expects linear power but the values look like dB (median {median:.1f} < 0): "
            "call from_db first."
        )
    if expected == "db" and median > 0 and float(finite.min()) >= 0 and float(finite.max()) < 2:
        raise BackscatterInputError(
            f"{where} expects dB but the values look like linear power (all in [0, 2), median "
            f"{median:.3f}): call to_db first."
        )


def _shown(data: Any) -> str:
    attrs = getattr(data, "attrs", None) or {}
    return str(attrs.get("units", attrs.get("unit", "")))
