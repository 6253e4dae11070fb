"""Water and flood mapping on a synthetic SAR series: methods, consensus, exclusion, laziness,
chunk invariance and bad input."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mus_lab import ard, flood
from mus_lab.errors import (
    FloodInputError,
    GridMismatchError,
    GridReprojectedWarning,
    LinearBackscatterWarning,
    NoBimodalTileError,
)
from mus_lab.testing import raise_if_dask_computes
from tests.flood.conftest import synthetic_sar


def _csi(found: np.ndarray, truth: np.ndarray) -> float:
    tp = np.sum(found & truth)
    return float(tp / np.sum(found | truth))


def test_map_water_finds_permanent_and_flood_water(synthetic) -> None:
    sar, permanent, plain = synthetic
    water = flood.map_water(sar).compute()
    assert water.water.dtype == np.uint8 and water.likelihood.dtype == np.uint8
    assert set(np.unique(water.water.values)) <= {0, 1}
    assert list(water.evidence.source.values) == ["threshold", "change", "region"]
    thr = water.threshold.sel(pol="vh").values
    assert np.all((thr > -28) & (thr < -18))  # between water and land
    wet = water.water.values == 1
    assert _csi(wet[0], permanent) > 0.9
    assert _csi(wet[3], permanent | plain) > 0.9
    lk = water.likelihood.values
    assert lk[3][plain].mean() > 80 and lk[3][~(permanent | plain)].mean() < 20
    # change detection sees the new water only against the per-orbit reference
    change = water.evidence.sel(source="change").values
    assert np.nanmean(change[3][plain]) > 0.8 and np.nanmean(change[1][plain]) < 0.2


def test_flood_products_of_the_series(synthetic) -> None:
    sar, permanent, plain = synthetic
    maps = flood.map_flood(flood.map_water(sar))
    extent, summary = dask.compute(maps.extent, maps.summary)
    ref = summary.reference_water.values == 1
    assert _csi(ref, permanent) > 0.9  # water on >= 10/12 of the dates
    fl = extent.flood.values == 1
    assert _csi(fl[3], plain) > 0.85 and fl[[0, 1, 2, 4]].sum() < 0.01 * plain.sum()
    assert summary.n_valid.dtype == np.uint16 and int(summary.n_valid.max()) == 5
    freq = summary.frequency.values
    assert np.all(np.isnan(freq[ref]))  # reference water has no flood frequency
    assert freq[plain & ~ref].mean() == pytest.approx(0.2, abs=0.03)
    assert summary.max_extent.values[plain].mean() > 0.9
    assert np.nanmax(summary.hazard.values) <= freq[~ref].max() + 1e-6  # likelihood-weighted
    low, high = summary.max_extent_low.values == 1, summary.max_extent_high.values == 1
    mx = summary.max_extent.values == 1
    assert (low & ~mx).sum() == 0 and (mx & ~high).sum() == 0  # low <= extent <= high


def test_stage_functions_stay_lazy(synthetic) -> None:
    sar, *_ = synthetic
    lazy = sar.copy()
    for v in lazy.data_vars:  # data lazy, per-date coordinates known (as ard.prepare_s1 gives)
        lazy[v] = lazy[v].chunk({"time": 1})
    with raise_if_dask_computes():
        water = flood.map_water(lazy)
        maps = flood.map_flood(water)
        flood.risk(maps.summary, xr.full_like(lazy.vv.isel(time=0, drop=True), 1, dtype=np.uint8))
    assert water.water.chunks is not None


def test_chunking_does_not_change_the_maps() -> None:
    whole, *_ = synthetic_sar(n=96, seed=4)
    tiled = whole.chunk({"time": 1, "y": 48, "x": 48})
    a = flood.map_water(whole).compute()
    b = flood.map_water(tiled).compute()
    np.testing.assert_array_equal(a.water.values, b.water.values)
    np.testing.assert_array_equal(a.likelihood.values, b.likelihood.values)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), holes=st.integers(1, 6))
def test_flood_is_a_subset_of_valid_pixels(seed: int, holes: int) -> None:
    sar, *_ = synthetic_sar(n=64, dates=4, flood_date=2, seed=seed)
    rng = np.random.default_rng(seed)
    mask = sar["valid"].values.astype(np.uint8)
    for _ in range(holes):
        t, y, x = rng.integers(0, 4), rng.integers(0, 50), rng.integers(0, 50)
        mask[t, y : y + 14, x : x + 14] = rng.choice([0, 2])
    sar["valid"], sar["quality"] = ard.sar_validity(xr.DataArray(mask, dims=sar["valid"].dims))
    extent = flood.map_flood(flood.map_water(sar)).extent.compute()
    valid = mask == 1
    assert np.all(extent.flood.values[~valid] == 255)
    assert np.all(extent.likelihood.values[~valid] == 255)


def test_no_bimodal_tile_is_a_clear_error() -> None:
    sar, *_ = synthetic_sar(n=64, dates=1, flood_date=None, seed=2)
    dry = sar.copy()
    dry["vv"] = dry["vv"].where(False, -11.0) + np.random.default_rng(0).normal(
        0, 0.5, dry.vv.shape
    )
    dry["vh"] = dry["vh"].where(False, -18.0) + np.random.default_rng(1).normal(
        0, 0.5, dry.vh.shape
    )
    water = flood.map_water(dry)  # lazy: nothing raised yet
    with pytest.raises(NoBimodalTileError, match="bimodal"):
        water.water.compute()
    fixed = flood.MappingOptions(thresholds={"vv": -17.0, "vh": -24.0})
    assert int(flood.map_water(dry, options=fixed).water.sum()) == 0


def test_linear_input_is_converted_with_a_warning(synthetic) -> None:
    sar, *_ = synthetic
    linear = sar.copy()
    for p in ("vv", "vh"):
        linear[p] = (10 ** (sar[p] / 10)).assign_attrs(units="linear power")
    with pytest.warns(LinearBackscatterWarning, match="converted to dB"):
        got = flood.map_water(linear).water.values
    np.testing.assert_array_equal(got, flood.map_water(sar).water.values)


def test_missing_polarisations_and_grids(synthetic) -> None:
    sar, *_ = synthetic
    with pytest.raises(FloodInputError, match="no VV or VH"):
        flood.map_water(sar[["valid"]].assign(hh=sar.vv))
    single = flood.map_water(sar[["vv", "valid", "quality"]].rename(vv="VV"))
    assert list(single.threshold.pol.values) == ["vv"]
    shifted = sar.assign_coords(x=sar.x + 10).odc.assign_crs("EPSG:32618")
    # Another grid: reprojected onto the SAR grid, with one warning naming both grids.
    with pytest.warns(GridReprojectedWarning, match="reference was reprojected") as rec:
        moved = flood.map_water(sar, reference=shifted.isel(time=[0]))
    assert "\n" not in str(rec[0].message) and "GEOGCRS" not in str(rec[0].message)
    assert int(moved.water.isel(time=-1).max()) == 1
    with pytest.raises(GridMismatchError, match="no pixel grid"):
        flood.map_water(sar, reference=shifted.isel(time=[0]).drop_vars(["x", "y", "spatial_ref"]))
    with pytest.raises(FloodInputError, match="methods"):
        flood.MappingOptions(methods=("magic",))  # type: ignore[arg-type]


def test_consensus_rules_and_a_plugged_in_rule() -> None:
    ev = xr.DataArray(
        np.array(
            [
                [0.9, 0.55, np.nan, 0.2, 0.6],
                [0.2, 0.55, np.nan, 0.4, 0.3],
                [0.8, 0.0, np.nan, np.nan, np.nan],
            ]
        ),
        dims=("source", "x"),
    )
    out = flood.consensus(ev)
    # 2 of 3 say water; 2 of 3 say water (mean only 0.37); nothing; 0 of 2; a tie -> mean 0.45
    assert out.water.values.tolist() == [1, 1, 255, 0, 0]
    assert out.likelihood.values.tolist() == [63, 37, 255, 30, 45]
    mean = flood.consensus(ev, rule=flood.mean_rule)
    assert mean.water.values.tolist() == [1, 0, 255, 0, 0]

    def any_source(e: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        lk = e.max("source")
        return (lk >= 0.5).astype("float32").where(lk.notnull()), lk

    assert flood.consensus(ev, rule=any_source).water.values.tolist() == [1, 1, 255, 0, 1]
    with pytest.raises(FloodInputError, match="source"):
        flood.consensus(ev.isel(source=0))


def test_exclusion_hand_slope_and_lookalikes(synthetic) -> None:
    sar, permanent, plain = synthetic
    dark = sar.copy()
    patch = (slice(None), slice(5, 15), slice(70, 85))  # always dark, not water: tarmac
    for p, db in (("vv", -24.0), ("vh", -30.0)):
        arr = dark[p].values.copy()
        arr[patch] = db
        dark[p] = (dark[p].dims, arr)
    water = flood.map_water(dark)
    like = sar.vv.isel(time=0, drop=True)
    east = np.arange(like.sizes["x"])[None, :] >= 70
    hand = xr.full_like(like, 2.0).copy(data=np.where(plain & east, 20.0, 2.0))
    slope = xr.full_like(like, 1.0)
    maps = flood.map_flood(
        water,
        hand=hand,
        slope=slope,
        independent_water=xr.DataArray(permanent, dims=("y", "x"), coords=like.coords),
    )
    extent, summary = dask.compute(maps.extent, maps.summary)
    excl = summary.exclusion.values
    assert np.all(excl[5:15, 70:85] & flood.EXCLUSION_FLAGS["lookalike"])
    assert np.all(extent.flood.values[:, 5:15, 70:85] == 255)
    high = hand.values > 15
    assert np.all(excl[high] & flood.EXCLUSION_FLAGS["hand"])
    assert np.all(extent.flood.values[3][high] == 0)  # above HAND 15 m: never flood
    assert summary.reference_water.values[5:15, 70:85].sum() == 0


def test_optical_evidence_uses_clear_dates_only(synthetic) -> None:
    sar, permanent, _ = synthetic
    like = sar.vv.isel(time=[1, 3])
    green = xr.full_like(like, 0.08).where(~permanent, 0.06)
    swir = xr.full_like(like, 0.20).where(~permanent, 0.01)
    quality = xr.zeros_like(like, dtype=np.uint8)
    quality[1, :10, :] = 1 << 4  # snow: MNDWI says water, must be ignored
    s2 = xr.Dataset(
        {
            "green": green,
            "swir16": swir,
            "valid": xr.ones_like(like, dtype=bool),
            "quality": quality,
        }
    ).assign_coords(time=sar.time.values[[1, 3]] + np.timedelta64(1, "D"))
    ev = flood.optical_evidence(s2, sar.time.values)
    assert ev.dims == ("time", "y", "x")
    assert np.isnan(ev.values[[0, 2, 4]]).all()  # no clear date within 3 days
    assert ev.values[1][permanent].mean() > 0.9 and ev.values[1][~permanent].mean() < 0.1
    assert np.isnan(ev.values[3][:10]).all()
    with pytest.raises(FloodInputError, match="cloud-free"):
        flood.optical_evidence(s2.drop_vars("valid"), sar.time.values)
    water = flood.map_water(sar, optical=s2)
    assert "optical" in water.evidence.source.values


def test_optical_joins_the_sar_consensus_by_dempster_shafer() -> None:
    nan = float("nan")
    ev = xr.DataArray(
        [[0.9, 0.6, 0.7, nan], [0.9, 0.6, 0.7, nan], [0.05, 0.05, nan, 0.9]],
        dims=("source", "x"),
        coords={"source": ["threshold", "change", "optical"]},
    )
    water, lk = flood.with_optical(sar_reliability=0.9, optical_reliability=0.8)(ev)
    # Closed form of Dempster's rule on {water, land} for the first pixel.
    s, o = (0.81, 0.09, 0.1), (0.04, 0.76, 0.2)
    k = s[0] * o[1] + s[1] * o[0]
    w = (s[0] * o[0] + s[0] * o[2] + s[2] * o[0]) / (1 - k)
    omega = s[2] * o[2] / (1 - k)
    assert lk.values[0] == pytest.approx(w + omega / 2, abs=1e-6)
    assert water.values.tolist()[:3] == [1.0, 0.0, 1.0]  # hesitant SAR water overturned
    assert lk.values[2] == pytest.approx(0.7)  # no optical date: the SAR consensus stands
    # Optical alone (no SAR method sees the pixel, e.g. off the swath): no data.
    assert np.isnan(water.values[3]) and np.isnan(lk.values[3])
    # Without an optical source the rule is the SAR rule.
    sar_only = ev.sel(source=["threshold", "change"])
    assert flood.with_optical()(sar_only)[1].equals(flood.majority_rule(sar_only)[1])
    with pytest.raises(FloodInputError, match="reliability"):
        flood.with_optical(optical_reliability=1.5)
