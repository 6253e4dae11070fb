"""``mus-lab flood map`` and ``mus-lab flood risk`` through typer's CliRunner, bad input included:
clear errors (exit 2) and nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from mus_lab._io import write_cog
from mus_lab.cli import app
from tests.flood.conftest import quadrant_zones, synthetic_sar

runner = CliRunner()


def _tif(path: Path, ds: xr.Dataset, t: int, names: tuple[str, ...] = ("VV", "VH")) -> Path:
    stack = xr.concat([ds.vv.isel(time=t, drop=True), ds.vh.isel(time=t, drop=True)], "band")
    write_cog(stack, path, nodata=float("nan"), band_names=list(names))
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    sar, permanent, plain = synthetic_sar(n=96, dates=4, flood_date=3, seed=7)
    post = _tif(folder / "post.tif", sar, 3)
    pre = _tif(folder / "pre.tif", sar, 0)
    return folder, sar, post, pre, permanent | plain


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_map_writes_water_and_likelihood(scene) -> None:
    folder, _, post, pre, truth = scene
    out = folder / "out" / "water.tif"
    res = runner.invoke(
        app, ["flood", "map", "--sar", str(post), "--reference", str(pre), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as src:
        assert src.count == 2 and src.dtypes == ("uint8", "uint8") and src.nodata == 255
        assert src.descriptions == ("water", "likelihood")
        water, lk = src.read(1), src.read(2)
    assert set(np.unique(water)) <= {0, 1, 255}
    assert np.all((lk <= 100) | (lk == 255))
    wet = water == 1
    assert np.sum(wet & truth) / np.sum(wet | truth) > 0.9


def test_map_with_a_dem_on_another_grid(scene, tmp_path) -> None:
    post = scene[2]
    dem = xr.DataArray(
        np.add.outer(np.abs(np.arange(32) - 16.0), np.zeros(32)).astype("float32") * 2,
        dims=("y", "x"),
        coords={
            "y": 4_999_040 + 960 - 15 - 30 * np.arange(32),
            "x": 600_000 + 15 + 30 * np.arange(32),
        },
    ).odc.assign_crs("EPSG:32618")
    write_cog(dem, tmp_path / "dem.tif", nodata=-9999.0)
    out = tmp_path / "w.tif"
    res = runner.invoke(
        app,
        ["flood", "map", "--sar", str(post), "--dem", str(tmp_path / "dem.tif"), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    # Terrain exclusion: no water above 15 m of HAND (the lake, 20 m up the valley side);
    # elsewhere the map without the DEM (the valley is gentle: no slope flag).
    from mus_lab import flood
    from mus_lab.publish import open_raster

    hand, slope = flood.terrain_from_dem(tmp_path / "dem.tif", open_raster(post).odc.geobox)
    high = hand.values > 15.0
    assert 0.1 < high.mean() < 0.9 and not (slope.values > 15.0).any()
    plain = tmp_path / "plain.tif"
    assert (
        runner.invoke(app, ["flood", "map", "--sar", str(post), "--out", str(plain)]).exit_code == 0
    )
    with rasterio.open(out) as a, rasterio.open(plain) as b:
        water, lk, before = a.read(1), a.read(2), b.read(1)
    assert (before[high] == 1).sum() > 100  # the lake was mapped without the DEM
    assert not (water[high] == 1).any() and not lk[high & (water != 255)].any()
    np.testing.assert_array_equal(water[~high], before[~high])


def test_map_refuses_a_file_without_vv_or_vh(scene, tmp_path) -> None:
    _, sar, *_ = scene
    bad = _tif(tmp_path / "hh.tif", sar, 3, names=("HH", "HV"))
    out = tmp_path / "out.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert "no band described VV or VH" in res.output and "HH" not in res.output.split("(")[0]
    assert not out.exists() and _files(tmp_path) == {"hh.tif"}


def test_map_converts_linear_values_with_a_warning(scene, tmp_path) -> None:
    _, sar, post, *_ = scene
    linear = sar.copy()
    for p in ("vv", "vh"):
        linear[p] = 10 ** (sar[p] / 10)
    lin = _tif(tmp_path / "linear.tif", linear, 3)
    out, ref = tmp_path / "from_linear.tif", tmp_path / "from_db.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(lin), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "looks like linear power" in res.output and "converted" in res.output
    assert (
        runner.invoke(app, ["flood", "map", "--sar", str(post), "--out", str(ref)]).exit_code == 0
    )
    with rasterio.open(out) as a, rasterio.open(ref) as b:
        assert np.mean(a.read(1) == b.read(1)) > 0.999


def test_map_without_a_bimodal_tile_fails_and_writes_nothing(scene, tmp_path) -> None:
    _, sar, *_ = scene
    rng = np.random.default_rng(3)
    dry = sar.isel(time=[0]).copy()
    dry["vv"] = xr.full_like(dry.vv, -11.0) + rng.normal(0, 0.5, dry.vv.shape)
    dry["vh"] = xr.full_like(dry.vh, -18.0) + rng.normal(0, 0.5, dry.vh.shape)
    src = _tif(tmp_path / "dry.tif", dry, 0)
    out = tmp_path / "out" / "dry_water.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(src), "--out", str(out)])
    assert res.exit_code == 2
    assert "bimodal" in res.output and "--vh-threshold" in res.output
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary left behind
    fixed = runner.invoke(
        app,
        [
            "flood",
            "map",
            "--sar",
            str(src),
            "--out",
            str(out),
            "--vh-threshold",
            "-24",
            "--vv-threshold",
            "-17",
        ],
    )
    assert fixed.exit_code == 0, fixed.output


def test_map_reprojects_a_reference_on_another_grid_with_one_warning(scene, tmp_path) -> None:
    _, sar, post, *_ = scene
    shifted = sar.assign_coords(x=sar.x + 20).odc.assign_crs("EPSG:32618")
    ref = _tif(tmp_path / "ref.tif", shifted, 0)
    out = tmp_path / "out.tif"
    res = runner.invoke(
        app, ["flood", "map", "--sar", str(post), "--reference", str(ref), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("Warning")]
    assert len(warning) == 1 and "ref.tif was reprojected onto the grid of the SAR" in warning[0]
    assert warning[0].count("EPSG:32618, 96 x 96 px of 10 m") == 2
    assert out.exists()


def test_risk_bad_input_is_refused_before_any_work(scenario, tmp_path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(scenario.catalog_path.parent, root)
    (root / "flood-extent").mkdir()
    res = runner.invoke(app, ["flood", "risk", str(root)])
    assert res.exit_code == 2 and "already exists" in res.output
    res = runner.invoke(app, ["flood", "risk", str(root), "--sensors", "sentinel-3"])
    assert res.exit_code == 2 and "choose among" in res.output
    res = runner.invoke(app, ["flood", "risk", str(root), "--bbox", "1,2,x"])
    assert res.exit_code == 2 and "four numbers" in res.output
    res = runner.invoke(
        app, ["flood", "risk", str(root), "--landcover", "no-such-thing", "--overwrite"]
    )
    assert res.exit_code == 2 and "no land-cover map found" in res.output
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("flood-")) == [
        "flood-extent",
        "flood-truth",
    ]


def test_risk_writes_the_product(scenario, tmp_path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(scenario.catalog_path.parent, root)
    zones = quadrant_zones(tmp_path / "zones.gpkg", scenario)
    args = ["flood", "risk", str(root), "--sensors", "rcm", "--no-optical", "--zones", str(zones)]
    res = runner.invoke(app, args)  # no land-cover product in the catalog: says what to do
    assert res.exit_code == 2 and "no land-cover map found" in res.output
    assert not (root / "flood-risk").exists()
    res = runner.invoke(app, [*args, "--landcover", "landcover-truth"])
    assert res.exit_code == 0, res.output
    assert "Wrote 'flood-extent' (10 dates) and 'flood-risk'" in res.output
    assert "flooded_ha" in res.output
    assert (root / "flood-risk" / "flood-risk-summary" / "zones.csv").exists()
