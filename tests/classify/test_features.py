"""Feature cubes: documented order and names, radar period means, stacking rules, laziness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mus_lab import ard
from mus_lab.classify import (
    feature_cube,
    feature_names,
    optical_features,
    parse_feature_names,
    radar_features,
    stack_features,
)
from mus_lab.errors import FeatureMismatchError, GridMismatchError, MusLabError
from mus_lab.testing import raise_if_dask_computes

from .conftest import dataset_on_grid


def test_feature_cube_is_variable_major_with_dated_names(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, _ = problem
    ds = ds.chunk({"time": 2, "y": 16, "x": 16})
    with raise_if_dask_computes():
        fc = feature_cube(ds, ["vv", "ndvi"])
    names = list(fc.feature.values)
    assert names[:2] == ["vv_20220301", "vv_20220401"]
    assert names[6] == "ndvi_20220301" and len(names) == 12
    assert fc.dims == ("feature", "y", "x") and fc.dtype == np.float32
    assert fc.chunks[0] == (12,)  # whole feature axis in one chunk
    np.testing.assert_array_equal(fc.sel(feature="ndvi_20220501").values, ds.ndvi[2].values)
    np.testing.assert_array_equal(fc.sel(feature="vv_20220801").values, ds.vv[5].values)
    assert parse_feature_names(names) == (["vv", "ndvi"], [n[-8:] for n in names[:6]])


def test_names_that_are_not_a_grid_are_refused() -> None:
    assert feature_names(["a"], pd.to_datetime(["2022-01-02"]).values) == ["a_20220102"]
    with pytest.raises(FeatureMismatchError, match="variable-major"):
        parse_feature_names(["a_20220101", "b_20220101", "a_20220102", "b_20220102"])
    with pytest.raises(FeatureMismatchError, match="YYYYMMDD"):
        parse_feature_names(["ndvi"])


def test_missing_optical_variable_is_a_clear_error(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, _ = problem
    with pytest.raises(FeatureMismatchError, match="swir16"):
        optical_features(ds, ["ndvi", "swir16"])
    assert list(optical_features(ds, ["ndvi"]).data_vars) == ["ndvi"]


def test_radar_period_means_in_linear_power_then_db() -> None:
    # Observations on days 0, 3, 11, 12 and 30; output dates every 10 days from day 0 to 30.
    days = np.array([0, 3, 11, 12, 30])
    dates = (np.datetime64("2022-01-01") + days.astype("timedelta64[D]")).astype("datetime64[ns]")
    lin_vv = np.array([0.1, 0.3, 0.02, 0.04, 0.05], "float32")
    vv = np.broadcast_to(10 * np.log10(lin_vv)[:, None, None], (5, 2, 2)).copy()
    vh = vv - 6.0
    mask = np.ones((5, 2, 2), "uint8")
    mask[1, 0, 0] = 2  # invalid: day 3 of pixel (0, 0) is left out
    sar = dataset_on_grid({"vv": vv, "vh": vh}, [str(d)[:10] for d in dates])
    sar["valid"], sar["quality"] = ard.sar_validity(xr.DataArray(mask, dims=("time", "y", "x")))
    sar.attrs["db"] = 1
    sar = sar.chunk({"time": 1, "y": 1, "x": 2})
    with raise_if_dask_computes():
        out = radar_features(sar, every_days=10, prefix="s1")
    assert list(out.data_vars) == ["s1_vv", "s1_vh", "s1_vh_vv"]
    got = out.s1_vv.values
    # day 0 period: days 0 and 3 -> mean of 0.1 and 0.3 in linear power; day 10: 0.02, 0.04;
    # day 20: empty -> linear between day 10 (0.03) and day 30 (0.05) in linear, then dB.
    np.testing.assert_allclose(got[:, 0, 1], 10 * np.log10([0.2, 0.03, 0.04, 0.05]), atol=1e-5)
    np.testing.assert_allclose(got[0, 0, 0], 10 * np.log10(0.1), atol=1e-5)  # invalid date skipped
    np.testing.assert_allclose(out.s1_vh_vv.values, -6.0, atol=1e-4)


def test_stacking_needs_the_same_dates_and_grid(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, _ = problem
    opt = ds[["ndvi"]]
    rad = ds[["vv"]].rename(vv="s1_vv")
    stacked = stack_features(opt, rad, names=["optical", "radar"])
    assert list(stacked.data_vars) == ["ndvi", "s1_vv"]
    with pytest.raises(FeatureMismatchError, match="dates=optical"):
        stack_features(opt, rad.isel(time=slice(0, 4)))
    with pytest.raises(FeatureMismatchError, match="distinct prefix"):
        stack_features(opt, opt)
    with pytest.raises(GridMismatchError):
        stack_features(opt, rad.isel(x=slice(0, 10)))
    assert issubclass(FeatureMismatchError, MusLabError)
