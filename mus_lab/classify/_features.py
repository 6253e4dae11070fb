"""Feature cubes for classification: optical, radar and both stacked, in one documented order.

A *feature cube* is a lazy ``DataArray`` with dims ``("feature", "y", "x")`` whose ``feature``
coordinate names every layer ``f"{variable}_{YYYYMMDD}"``. The order is **variable-major**:
all dates of the first variable, then all dates of the second, ... in the order the variables
are given, dates ascending. A model records these names and refuses a cube whose names differ
(:class:`~mus_lab.errors.FeatureMismatchError`); TempCNN reshapes the same vector into
``(time, variable)``, which is why every variable must share the date grid.

Radar (choice, documented in docs/design/0004-landcover.md): per output date, the mean in
**linear power** of the valid observations (``valid``) whose date is nearest to it (periods
are bounded half-way between output dates), then dB; periods without any observation are
gap-filled linearly (IOTA² semantics, :func:`mus_lab.ard.gapfill`). Variables: ``{prefix}_vv``,
``{prefix}_vh`` (dB) and ``{prefix}_vh_vv`` (dB difference, i.e. the VH/VV ratio). Both orbit
directions are averaged together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab import ard, cube
from mus_lab.contracts import RECIPE_ATTR
from mus_lab.errors import FeatureMismatchError

__all__ = [
    "IOTA2_OPTICAL",
    "feature_cube",
    "feature_names",
    "optical_features",
    "parse_feature_names",
    "radar_features",
    "stack_features",
]

#: IOTA²'s optical features per date: the ten S2 bands, NDVI, NDWI (SWIR-NIR) and brightness.
IOTA2_OPTICAL: tuple[str, ...] = (*ard.S2_BANDS, "ndvi", "ndwi_iota2", "brightness")


def _time_vars(ds: xr.Dataset) -> list[str]:
    return [str(n) for n, v in ds.data_vars.items() if "time" in v.dims]


def optical_features(ts: xr.Dataset, variables: Sequence[str] | None = None) -> xr.Dataset:
    """The optical variables of a gap-filled S2 series (:func:`mus_lab.ard.s2_time_series`).

    Parameters
    ----------
    ts
        Gap-filled series with ``time``.
    variables
        Variables to keep, in this order; default IOTA²'s (:data:`IOTA2_OPTICAL`) that ``ts`` has.

    Returns
    -------
    xarray.Dataset
        Float32 ``(time, y, x)`` variables, lazy.

    Raises
    ------
    FeatureMismatchError
        A requested variable is missing or has no ``time`` dimension.
    """
    names = list(variables) if variables is not None else [v for v in IOTA2_OPTICAL if v in ts]
    have = _time_vars(ts)
    missing = [v for v in names if v not in have]
    if missing or not names:
        raise FeatureMismatchError(
            f"Optical variables {missing or names} are not time series of this cube (it has "
            f"{have}): build it with ard.s2_time_series or choose among those."
        )
    out = ts[names].astype("float32")
    out.attrs[RECIPE_ATTR] = {
        **dict(ts.attrs.get(RECIPE_ATTR) or {}),
        "sensors": "optical",
        "optical_variables": list(names),
    }
    return out


def _period_weights(obs: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(n_out, n_obs) 0/1 matrix: each observation goes to its nearest output date."""
    o = obs.astype("datetime64[s]").astype("float64")
    t = out.astype("datetime64[s]").astype("float64")
    edges = (t[1:] + t[:-1]) / 2.0
    idx = np.searchsorted(edges, o, side="right")
    w = np.zeros((t.size, o.size), dtype="float32")
    w[idx, np.arange(o.size)] = 1.0
    return w


def radar_features(
    sar: xr.Dataset,
    *,
    dates: Sequence[Any] | np.ndarray | None = None,
    every_days: int = 12,
    prefix: str = "s1",
    polarisations: Sequence[str] = ("vv", "vh"),
    ratio: bool = True,
) -> xr.Dataset:
    """Radar features on a regular date grid: period means of VV and VH (dB) and VH/VV.

    Parameters
    ----------
    sar
        Output of :func:`mus_lab.ard.prepare_s1` or :func:`~mus_lab.ard.prepare_rcm` (linear or
        ``db=True``; the ``db`` attribute says which) with its ``valid`` layer.
    dates
        Output dates (e.g. the optical series' ``time`` to stack both); default every
        ``every_days`` days from the first to the last observation.
    prefix
        Name prefix of the variables (``"s1"``, ``"rcm"``).
    polarisations
        Polarisation variables to use.
    ratio
        Add ``{prefix}_vh_vv`` (VH minus VV in dB) when both are present.

    Returns
    -------
    xarray.Dataset
        Float32 ``(time, y, x)`` variables in dB, lazy; NaN where a pixel has no valid date.

    Raises
    ------
    FeatureMismatchError
        A polarisation is missing, or there is no ``time`` dimension.
    """
    pols = [p.lower() for p in polarisations]
    missing = [p for p in pols if p not in sar]
    if missing or "time" not in sar.dims:
        raise FeatureMismatchError(
            f"radar_features needs time series of {pols} (missing {missing}); give the output "
            "of ard.prepare_s1 or ard.prepare_rcm."
        )
    times = sar["time"].values
    out_dates = (
        np.asarray(dates, dtype="datetime64[ns]")
        if dates is not None
        else ard.regular_dates(times.min(), times.max(), every_days)
    )
    w = xr.DataArray(_period_weights(times, out_dates), dims=("time_out", "time"))
    valid = sar["valid"].astype(bool) if "valid" in sar else xr.ones_like(sar[pols[0]], dtype=bool)
    in_db = bool(sar.attrs.get("db", 0))
    out: dict[str, xr.DataArray] = {}
    for p in pols:
        arr = sar[p].astype("float32")
        lin = 10.0 ** (arr / 10.0) if in_db else arr
        ok = valid & np.isfinite(lin)
        if lin.chunks:
            lin, ok = lin.chunk({"time": -1}), ok.chunk({"time": -1})
        total = xr.dot(w, lin.where(ok, 0.0), dim="time")
        count = xr.dot(w, ok.astype("float32"), dim="time")
        mean = (total / count.where(count > 0)).rename(time_out="time")
        mean = mean.assign_coords(time=out_dates).transpose("time", "y", "x")
        empty = (count == 0).rename(time_out="time").assign_coords(time=out_dates)
        filled = ard.gapfill(
            mean, empty.transpose("time", "y", "x"), dates=out_dates, nodata=np.nan
        )
        db = cast(xr.DataArray, 10.0 * np.log10(filled)).astype("float32")
        out[f"{prefix}_{p}"] = db.assign_attrs(units="dB", polarisation=p.upper())
    if ratio and {"vv", "vh"} <= set(pols):
        out[f"{prefix}_vh_vv"] = (out[f"{prefix}_vh"] - out[f"{prefix}_vv"]).assign_attrs(
            units="dB", description="VH/VV ratio (dB difference)"
        )
    ds = xr.Dataset(out)
    ds.attrs = {"product": f"{prefix}_radar_features", "period_mean": "linear power"}
    ds.attrs[RECIPE_ATTR] = {**dict(sar.attrs.get(RECIPE_ATTR) or {}), "sensors": "radar"}
    if dates is None:
        ds.attrs[RECIPE_ATTR]["every_days"] = every_days
    return ds


def _merged_recipe(datasets: Sequence[xr.Dataset]) -> dict[str, Any]:
    recipe: dict[str, Any] = {}
    radar: list[str] = []
    for ds in datasets:
        part = dict(ds.attrs.get(RECIPE_ATTR) or {})
        radar += [r for r in part.pop("radar_sources", []) if r not in radar]
        recipe = {**part, **recipe}
    return {**recipe, "radar_sources": radar, "sensors": "stacked"} if recipe else {}


def stack_features(*datasets: xr.Dataset, names: Sequence[str] | None = None) -> xr.Dataset:
    """Stack feature datasets (e.g. optical and radar) on one grid and one date grid.

    Parameters
    ----------
    *datasets
        Feature datasets with ``time`` (:func:`optical_features`, :func:`radar_features`),
        on the same pixel grid and the same dates.
    names
        A label per dataset for error messages (default ``"features 0"``, ...).

    Returns
    -------
    xarray.Dataset
        Their time-series variables merged, lazy, recording a ``"stacked"`` recipe.

    Raises
    ------
    GridMismatchError
        The datasets are on different pixel grids.
    FeatureMismatchError
        Their dates differ (build radar features with ``dates=optical.time``), or a variable
        name occurs twice.
    """
    if not datasets:
        raise FeatureMismatchError("stack_features needs at least one dataset.")
    labels = list(names) if names else [f"features {i}" for i in range(len(datasets))]
    # Grids within 1e-6 px are one grid: the others get the first's coordinates, bit for bit
    # (the exact join below would refuse them); a true mismatch is refused, not resampled.
    datasets = tuple(
        cube.match_grid(ds, datasets[0], names=(label, labels[0]))
        for label, ds in zip(labels, datasets, strict=True)
    )
    first = datasets[0]["time"].values
    seen: set[str] = set()
    for label, ds in zip(labels, datasets, strict=True):
        if not np.array_equal(ds["time"].values, first):
            raise FeatureMismatchError(
                f"{labels[0]} and {label} have different dates; build the radar features on the "
                "optical dates: radar_features(sar, dates=optical.time.values)."
            )
        dup = seen & set(_time_vars(ds))
        if dup:
            raise FeatureMismatchError(
                f"Variables {sorted(dup)} occur in two datasets: give radar a distinct prefix."
            )
        seen |= set(_time_vars(ds))
    merged = xr.merge([ds[_time_vars(ds)] for ds in datasets], compat="override", join="exact")
    merged.attrs = {"product": "stacked_features", RECIPE_ATTR: _merged_recipe(datasets)}
    return merged


def feature_names(variables: Sequence[str], dates: Sequence[Any] | np.ndarray) -> list[str]:
    """Feature names in the documented order: ``f"{var}_{YYYYMMDD}"``, variable-major.

    Parameters
    ----------
    variables
        Variable names, in the order wanted.
    dates
        Dates (``datetime64`` values or timestamps, e.g. ``ds.time.values``), in the order
        of the cube.

    Returns
    -------
    list of str
        ``len(variables) * len(dates)`` names: all dates of the first variable first.

    Examples
    --------
    >>> feature_names(["ndvi", "b04"], np.array(["2022-03-01", "2022-03-11"], "datetime64[D]"))
    ['ndvi_20220301', 'ndvi_20220311', 'b04_20220301', 'b04_20220311']
    """
    days = [pd.Timestamp(d).strftime("%Y%m%d") for d in np.asarray(dates)]
    return [f"{v}_{d}" for v in variables for d in days]


def parse_feature_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Variables and dates (``YYYYMMDD``) of a variable-major feature list.

    Parameters
    ----------
    names
        Feature names as :func:`feature_names` makes them.

    Returns
    -------
    (list of str, list of str)
        The variables and the dates, each in order of first appearance.

    Raises
    ------
    FeatureMismatchError
        The names are not a full variable x date grid in the documented order.

    Examples
    --------
    >>> parse_feature_names(["ndvi_20220301", "ndvi_20220311", "vv_20220301", "vv_20220311"])
    (['ndvi', 'vv'], ['20220301', '20220311'])
    """
    variables: list[str] = []
    dates: list[str] = []
    for n in names:
        var, _, day = n.rpartition("_")
        if not var or len(day) != 8 or not day.isdigit():
            raise FeatureMismatchError(
                f"Feature {n!r} is not named '<variable>_<YYYYMMDD>': build the cube with feature_cube."
            )
        if var not in variables:
            variables.append(var)
        if day not in dates:
            dates.append(day)
    if list(names) != [f"{v}_{d}" for v in variables for d in dates]:
        raise FeatureMismatchError(
            "Features are not a full variable x date grid in variable-major order "
            "(every variable on the same dates): build them with feature_cube."
        )
    return variables, dates


def feature_cube(ds: xr.Dataset, variables: Sequence[str] | None = None) -> xr.DataArray:
    """Stack the time-series variables of ``ds`` into one lazy ``(feature, y, x)`` array.

    Parameters
    ----------
    ds
        Optical, radar or stacked features with ``time`` (see :func:`optical_features`,
        :func:`radar_features`, :func:`stack_features`).
    variables
        Variables in the order wanted; default every time-series variable in dataset order.

    Returns
    -------
    xarray.DataArray
        Float32 ``(feature, y, x)`` with the ``feature`` coordinate (``f"{var}_{YYYYMMDD}"``,
        variable-major), the grid of ``ds`` and the whole feature axis in one chunk.

    Raises
    ------
    FeatureMismatchError
        A variable is missing or has no ``time`` dimension.
    """
    ds = cube.standard_grid(ds)
    have = _time_vars(ds)
    names = list(variables) if variables is not None else have
    missing = [v for v in names if v not in have]
    if missing or not names:
        raise FeatureMismatchError(
            f"Variables {missing or names} are not time series of this cube (it has {have})."
        )
    arr = ds[names].to_dataarray("variable").transpose("variable", "time", "y", "x")
    arr = arr.astype("float32")
    nv, nt = arr.sizes["variable"], arr.sizes["time"]
    if arr.chunks:
        arr = arr.chunk({"variable": -1, "time": -1})
    data = arr.data.reshape((nv * nt, arr.sizes["y"], arr.sizes["x"]))
    coords: dict[str, Any] = {"y": ds["y"], "x": ds["x"]}
    if "spatial_ref" in ds.coords:
        coords["spatial_ref"] = ds["spatial_ref"]
    out = xr.DataArray(data, dims=("feature", "y", "x"), coords=coords, name="features")
    out = out.assign_coords(feature=feature_names(names, ds["time"].values))
    out.attrs = {"variables": list(names), "dates": [n[-8:] for n in out.feature.values[:nt]]}
    if RECIPE_ATTR in ds.attrs:
        out.attrs[RECIPE_ATTR] = dict(ds.attrs[RECIPE_ATTR])
    return out
