"""HAND (pyflwdir) and slope: a synthetic valley with known answers, and the real DEMs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from mus_lab import flood
from mus_lab.errors import FloodInputError
from mus_lab.publish import open_raster


def _grid_array(values: np.ndarray, res: float = 30.0) -> xr.DataArray:
    gbox = GeoBox(values.shape, Affine(res, 0, 600_000, 0, -res, 5_000_000), "EPSG:32618")
    coords = {str(k): v for k, v in xr_coords(gbox).items()}
    return xr.DataArray(values.astype("float32"), dims=("y", "x"), coords=coords).odc.assign_crs(
        "EPSG:32618"
    )


def test_hand_of_a_v_valley_is_the_height_above_its_river() -> None:
    rows, cols = np.mgrid[0:60, 0:80]
    river = 100.0 - 0.02 * cols  # the river falls gently to the east (outlet on the edge)
    dem = river + 0.5 * np.abs(rows - 30)  # banks rise 0.5 m per 30 m cell
    # banks drain at most 30 cells (0.027 km2), the river collects 61 per column it flows
    hand = flood.hand_from_dem(_grid_array(dem), stream_area_km2=0.05).values
    assert np.nanmax(np.abs(hand[30, 10:])) < 0.05  # the river, once it drains 0.05 km2
    inner = hand[10:50, 20:60]
    np.testing.assert_allclose(inner, 0.5 * np.abs(rows[10:50, 20:60] - 30), atol=0.6)
    slope = flood.slope_from_dem(_grid_array(0.1 * 30 * cols)).values  # 0.1 m/m eastwards
    assert np.nanmedian(slope) == pytest.approx(np.degrees(np.arctan(0.1)), abs=0.01)


def test_terrain_goes_onto_the_mapping_grid_explicitly() -> None:
    dem = _grid_array(np.add.outer(np.abs(np.arange(20) - 10.0), np.zeros(20)))
    target = GeoBox((30, 30), Affine(10, 0, 600_000, 0, -10, 5_000_000), "EPSG:32618")
    on = flood.terrain_on_grid(flood.slope_from_dem(dem), target)
    assert on.odc.geobox == target and on.dtype == np.float32
    far = GeoBox((30, 30), Affine(10, 0, 700_000, 0, -10, 5_100_000), "EPSG:32618")
    with pytest.raises(FloodInputError, match="does not overlap"):
        flood.terrain_on_grid(dem, far)
    with pytest.raises(FloodInputError, match="2-D"):
        flood.hand_from_dem(dem.expand_dims(band=[1]))
    with pytest.raises(FloodInputError, match="no valid elevation"):
        flood.hand_from_dem(dem.where(dem < -1))


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name", ["pysheds_dem_3arcsec_dallas.tif", "sarsen_Rome-30m-DEM.tif", "rhine_elv0.tif"]
)
def test_hand_of_real_dems(real_data: Path, name: str) -> None:
    dem = open_raster(real_data / "dem_hydro_small" / name, what="DEM")
    dem = dem.compute()
    nodata = dem.attrs["nodata"]
    elevation = dem.values.astype("float64")
    valid = np.isfinite(elevation) & (elevation != nodata)
    area = 100.0 if name.startswith("rhine") else 1.0  # 1 km cells: rivers of 100 km2 and more
    hand = flood.hand_from_dem(dem, stream_area_km2=area).values
    good = np.isfinite(hand)
    assert good.sum() > 0.95 * valid.sum()
    assert np.all(hand[good] >= 0)
    assert np.mean(hand[good] < 0.5) > 0.005  # streams and their flat banks
    relief = elevation[valid].max() - elevation[valid].min()
    assert np.all(hand[good] <= relief + 1e-3)  # never above the highest drop
    slope = flood.slope_from_dem(dem).values
    assert np.nanmax(slope) < 90 and np.nanmedian(slope) > 0
    if name.startswith("rhine"):  # Alpine cells stand far higher above their drains
        assert np.nanmedian(hand[valid & (elevation > 1500)]) > 5 * np.nanmedian(
            hand[valid & (elevation < 300)]
        )
