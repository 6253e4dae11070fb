"""Issue 16: bimodality tests with known answers, tile selection when water is a small share
of the scene, VV and VH jointly, and the self-trained voter of the consensus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from mus_lab import flood
from mus_lab.errors import FloodInputError
from mus_lab.flood._selftrain import fit_models
from mus_lab.flood._tiles import TileSelection, _select
from mus_lab.testing import raise_if_dask_computes


def _hist(values: np.ndarray, sel: TileSelection) -> np.ndarray:
    idx = np.clip(np.floor((values - (-45.0)) / sel.bin_db), 0, sel.n_bins - 1).astype(int)
    return np.bincount(idx, minlength=sel.n_bins).astype(np.float64)


def test_bimodality_tests_on_known_samples() -> None:
    rng = np.random.default_rng(0)
    bins = np.linspace(-40, 0, 161)
    normal = np.histogram(rng.normal(-15, 2, 20000), bins)[0]
    uniform = np.histogram(rng.uniform(-30, -10, 20000), bins)[0]
    two = np.histogram(np.r_[rng.normal(-25, 1.5, 6000), rng.normal(-12, 2, 14000)], bins)[0]
    # Sarle's coefficient: 1/3 for a normal sample, 5/9 for a uniform one (the limit).
    assert flood.bimodality_coefficient(normal) == pytest.approx(1 / 3, abs=0.02)
    assert flood.bimodality_coefficient(uniform) == pytest.approx(5 / 9, abs=0.02)
    assert flood.bimodality_coefficient(two) > 5 / 9
    # Ashman's D of the fitted mixture: D > 2 only for the two separated modes.
    assert flood.ashman_d(normal)[0] < 2 < flood.ashman_d(two)[0]
    assert np.isnan(flood.bimodality_coefficient([3, 0, 0]))


def test_tiles_bimodal_in_both_polarisations_come_first() -> None:
    rng = np.random.default_rng(1)
    sel = TileSelection(tile=64, n_tiles=1, water_max_db=-18.0)
    n = 64 * 64
    # Tile 0: VV bimodal (water at -26 dB), VH unimodal; tile 1: both bimodal, water at -22 dB.
    vv0 = np.r_[rng.normal(-26, 1, n // 3), rng.normal(-10, 1.5, n - n // 3)]
    vv1 = np.r_[rng.normal(-22, 1, n // 3), rng.normal(-10, 1.5, n - n // 3)]
    vh0 = rng.normal(-17, 1.5, n)
    vh1 = np.r_[rng.normal(-29, 1, n // 3), rng.normal(-17, 1.5, n - n // 3)]

    def stats(*tiles: np.ndarray) -> np.ndarray:
        rows = [np.r_[_hist(t, sel), n, 0, 0, 0, 0] for t in tiles]
        return np.stack(rows).reshape(1, len(tiles), -1)

    alone = _select(stats(vv0, vv1), None, sel)
    joint = _select(stats(vv0, vv1), None, sel, (stats(vh0, vh1),))
    assert joint[2] == 1 and alone[2] == 1
    assert -20 < joint[0] < -14  # between -22 and -10: tile 1 was taken
    assert joint[0] > alone[0] + 1.0  # alone, the more separated tile 0 (D) wins


def _scene(
    n: int,
    water: np.ndarray,
    *,
    enl: float,
    seed: int = 0,
    dark_field: np.ndarray | None = None,
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    grid = GeoBox.from_bbox((600_000, 5_000_000, 600_000 + 10 * n, 5_000_000 + 10 * n),
                            "EPSG:32618", resolution=10)  # fmt: skip
    yy, xx = np.mgrid[0:n, 0:n]
    texture = 1.5 * np.sin(xx / 13.0) * np.cos(yy / 17.0)
    out = {}
    for name, land, wet in (("vv", -9.0, -22.0), ("vh", -16.0, -28.0)):
        db = np.where(water, wet, land + texture)
        if dark_field is not None:
            db = np.where(dark_field & ~water, land - 5.0, db)
        lin = 10 ** (db / 10) * rng.gamma(enl, 1 / enl, db.shape)
        out[name] = (("time", "y", "x"), (10 * np.log10(lin))[None].astype("float32"))
    coords = {**{str(k): v for k, v in xr_coords(grid).items()},
              "time": pd.DatetimeIndex(["2022-03-01"])}  # fmt: skip
    return xr.Dataset(out, coords=coords).odc.assign_crs("EPSG:32618")


def _iou(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found & truth).sum() / (found | truth).sum())


def test_tile_selection_finds_water_that_is_3_percent_of_the_scene() -> None:
    n = 512
    yy, xx = np.mgrid[0:n, 0:n]
    lake = (yy - 300) ** 2 + (xx - 200) ** 2 < 50**2  # 3.0 % of the scene
    fields = (np.abs(yy - 100) < 60) & (np.abs(xx - 380) < 100)  # dark land, not water
    assert 0.029 < lake.mean() < 0.031
    sar = _scene(n, lake, enl=17.6, dark_field=fields).chunk({"y": 256, "x": 256})
    opts = flood.MappingOptions(methods=("threshold",))
    water = flood.map_water(sar, options=opts).compute()
    thr = water.threshold.sel(pol="vv").item()
    assert -20 < thr <= -15.5  # between the lake (-22 dB) and the dark fields (-14 dB)
    assert _iou(water.water.values[0] == 1, lake) > 0.9


def test_self_trained_voter_raises_the_consensus_where_thresholds_disagree() -> None:
    n = 160
    yy, xx = np.mgrid[0:n, 0:n]
    river = np.abs(yy - n // 2 - 8 * np.sin(xx / 12)) < 12
    lake = (yy - 35) ** 2 + (xx - 40) ** 2 < 22**2
    truth = river | lake
    sar = _scene(n, truth, enl=1.0, seed=3).chunk({"y": 80, "x": 80})  # single look: noisy
    base = flood.MappingOptions(
        methods=("threshold", "region"), thresholds={"vv": -15.5, "vh": -22.5}
    )
    with_st = base.with_(methods=("threshold", "region", "self_trained"))
    plain = flood.map_water(sar, options=base).compute()
    voted = flood.map_water(sar, options=with_st).compute()
    assert list(voted.evidence.source.values) == ["threshold", "region", "self_trained"]
    st = voted.evidence.sel(source="self_trained").values[0] >= 0.5
    before = _iou(plain.water.values[0] == 1, truth)
    after = _iou(voted.water.values[0] == 1, truth)
    assert _iou(st, truth) > before  # the voter alone is better than the thresholds
    assert after > before + 0.03, (before, after)
    # fitted once outside the graph (as map_geotiff does): the same votes
    models = flood.self_trained_models(sar, options=with_st).compute()
    again = flood.map_water(sar, options=with_st, self_trained=models).compute()
    np.testing.assert_array_equal(again.water.values, voted.water.values)


def test_weighted_vote_and_the_chosen_weight_on_a_held_out_seed() -> None:
    # The rule: weight 1 is the plain majority; a weight above the others' sum decides.
    rng = np.random.default_rng(5)
    ev = rng.uniform(0, 1, (4, 500)).astype(np.float32)
    ev[rng.uniform(0, 1, ev.shape) < 0.2] = np.nan
    ev = xr.DataArray(ev, dims=("source", "x"))
    ev = ev.assign_coords(source=["threshold", "change", "region", "self_trained"])
    for got, want in zip(
        flood.weighted_majority_rule({"self_trained": 1.0})(ev),
        flood.majority_rule(ev),
        strict=True,
    ):
        np.testing.assert_allclose(got.values, want.values, rtol=1e-6)
    water, _ = flood.weighted_majority_rule({"self_trained": 3.5})(ev)
    st = ev.sel(source="self_trained").values
    np.testing.assert_array_equal(water.values[~np.isnan(st)], st[~np.isnan(st)] >= 0.5)
    with pytest.raises(FloodInputError, match="positive"):
        flood.MappingOptions(self_trained_weight=0.0)
    # The default weight was chosen on scenario seeds 1-2 (benchmarks/
    # select_selftrain_weight.py); here a seed no choice saw, on the single-look scene of
    # the test above: the default consensus with the voter is at least as good as the
    # unweighted one and as the consensus without the voter.
    n = 128
    yy, xx = np.mgrid[0:n, 0:n]
    truth = (np.abs(yy - 70 - 6 * np.sin(xx / 10)) < 10) | ((yy - 25) ** 2 + (xx - 90) ** 2 < 18**2)
    sar = _scene(n, truth, enl=1.0, seed=11).chunk({"y": 64, "x": 64})
    base = flood.MappingOptions(
        methods=("threshold", "region"), thresholds={"vv": -15.5, "vh": -22.5}
    )
    with_st = base.with_(methods=("threshold", "region", "self_trained"))
    ious = {
        name: _iou(flood.map_water(sar, options=o).water.values[0] == 1, truth)
        for name, o in (("without", base), ("default", with_st),
                        ("unweighted", with_st.with_(self_trained_weight=1.0)))
    }  # fmt: skip
    assert ious["default"] >= max(ious["unweighted"], ious["without"]), ious


def test_self_trained_voter_stays_lazy_and_abstains_without_samples() -> None:
    n = 64
    yy, _ = np.mgrid[0:n, 0:n]
    sar = _scene(n, np.abs(yy - 32) < 8, enl=4.0).chunk({"y": 32, "x": 32})
    opts = flood.MappingOptions(
        methods=("threshold", "region", "self_trained"), thresholds={"vv": -15.5, "vh": -22.5}
    )
    with raise_if_dask_computes():
        water = flood.map_water(sar, options=opts)
        flood.self_trained_models(sar, options=opts)
    assert water.evidence.chunks is not None
    few = (np.zeros((10, 3), np.float32), np.r_[np.ones(5), np.zeros(5)].astype(np.int8),
           np.zeros(10, np.int32))  # fmt: skip
    assert fit_models([few], 1, max_samples=100, min_samples=20, seed=0) == [None]
    with pytest.raises(FloodInputError, match="learns from the other"):
        flood.MappingOptions(methods=("self_trained",))
    with pytest.raises(FloodInputError, match="classifiers for"):
        flood.map_water(sar, options=opts, self_trained=[None, None])


def test_cli_flood_map_with_the_self_trained_voter(tmp_path) -> None:
    import rasterio
    from typer.testing import CliRunner

    from mus_lab.cli import app
    from tests._geographic import water_mask, write_s1_chip

    sar = write_s1_chip(tmp_path / "S1Hand.tif", 128)
    out = tmp_path / "water.tif"
    res = CliRunner().invoke(
        app, ["flood", "map", "--sar", str(sar), "--self-trained", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as src:
        water = src.read(1)
        params = src.tags()["mus_lab_parameters"]
    assert "self_trained" in params
    valid = water != 255
    assert _iou((water == 1) & valid, water_mask(128) & valid) > 0.8


@pytest.mark.realdata
def test_exclusion_on_a_real_geographic_compound_crs_dem(real_data) -> None:
    from odc.geo.geobox import GeoBox as Box

    from mus_lab.publish import open_raster

    path = real_data / "dem_hydro_small" / "sarsen_Rome-30m-DEM.tif"
    dem = open_raster(path, what="DEM").compute()
    assert dem.odc.geobox.crs.geographic  # EPSG:9707, WGS 84 + EGM96 height: degrees
    utm = Box.from_bbox(dem.odc.geobox.extent.to_crs("EPSG:32633").boundingbox, "EPSG:32633",
                        resolution=30)  # fmt: skip
    # Independent reference: the DEM reprojected to metres, numpy's gradient there.
    metric = dem.astype("float32").odc.reproject(utm, resampling="bilinear").values
    gy, gx = np.gradient(metric.astype("float64"), 30.0)
    reference = np.nanmedian(np.degrees(np.arctan(np.hypot(gx, gy))))
    slope = flood.slope_from_dem(dem).values
    assert np.nanmedian(slope) == pytest.approx(reference, rel=0.1)
    hand, slope_on = flood.terrain_from_dem(path, utm.zoom_out(20 / 30))
    flags = flood.exclusion_mask(
        xr.zeros_like(hand, dtype=np.uint8).expand_dims(time=1), hand=hand, slope=slope_on
    ).values
    assert 0.2 < np.mean((flags & 1) > 0) < 0.8  # Rome's hills stand > 15 m above the Tiber
    assert 0.0 < np.mean((flags & 2) > 0) < 0.1
