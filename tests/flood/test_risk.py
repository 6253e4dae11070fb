"""Risk: the configuration, hazard x exposure x vulnerability, classes, zone tables
(exactextract)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from shapely.geometry import box

from mus_lab import flood
from mus_lab.errors import FloodInputError, GridMismatchError, RiskConfigError

GBOX = GeoBox((20, 20), Affine(10, 0, 600_000, 0, -10, 5_000_000), "EPSG:32618")


def _layer(values: np.ndarray, name: str) -> xr.DataArray:
    coords = {str(k): v for k, v in xr_coords(GBOX).items()}
    return xr.DataArray(values, dims=("y", "x"), coords=coords, name=name).odc.assign_crs(GBOX.crs)


@pytest.fixture()
def layers() -> tuple[xr.Dataset, xr.DataArray]:
    hazard = np.zeros((20, 20), np.float32)
    hazard[:, 10:] = 0.5  # the east half floods half of the time
    hazard[0, 0] = np.nan  # reference water
    lc = np.full((20, 20), 1, np.uint8)  # crops
    lc[10:, :] = 6  # urban in the south
    lc[19, 19] = 9  # a code the configuration does not know
    flooded = np.where(hazard > 0, 1, 0).astype(np.uint8)
    summary = xr.Dataset(
        {
            "hazard": _layer(hazard, "hazard"),
            "max_extent": _layer(flooded, "max_extent"),
            "max_extent_low": _layer(
                np.where(np.arange(20)[None, :] >= 15, flooded, 0).astype(np.uint8), "low"
            ),
            "max_extent_high": _layer(
                np.broadcast_to(np.arange(20) >= 5, (20, 20)).astype(np.uint8), "high"
            ),
        }
    )
    return summary, _layer(lc, "landcover")


def test_default_config_and_overrides(tmp_path: Path) -> None:
    cfg = flood.RiskConfig.default()
    assert cfg.classes[6].name == "urban" and cfg.classes[6].vulnerability == 1.0
    assert cfg.breaks == (0.2, 0.4, 0.6, 0.8) and len(cfg.class_names) == 5
    assert cfg.water_classes == (4,) and cfg.likelihood_bounds == (75, 25)
    user = tmp_path / "risk.yaml"
    user.write_text("classes:\n  1: {vulnerability: 0.2}\nnormalise: none\n")
    mine = flood.RiskConfig.load(user)
    assert mine.classes[1].vulnerability == 0.2 and mine.classes[1].exposure == 0.5  # merged
    assert mine.normalise == "none" and mine.source == str(user)
    bad = {
        "breaks": [0.5, 0.2, 0.6, 0.8],
        "classes": {1: {"name": "crops", "exposure": 1.5, "vulnerability": 0.1}},
        "normalise": "softmax",
        "class_names": ["a", "b"],
    }
    for key, value in bad.items():
        with pytest.raises(RiskConfigError):
            flood.RiskConfig.load({key: value})
    with pytest.raises(RiskConfigError, match="Cannot read"):
        flood.RiskConfig.load(tmp_path / "missing.yaml")


def test_risk_is_hazard_times_exposure_times_vulnerability(layers) -> None:
    summary, lc = layers
    out = flood.risk(summary, lc).compute()
    cfg = flood.RiskConfig.default()
    crops = cfg.classes[1].exposure * cfg.classes[1].vulnerability * 0.5  # 0.175
    urban = cfg.classes[6].exposure * cfg.classes[6].vulnerability * 0.5  # 0.5, the maximum
    assert out.risk.values[5, 15] == pytest.approx(crops / urban)
    assert out.risk.values[15, 15] == pytest.approx(1.0)
    assert out.risk_class.values[15, 15] == 5 and out.risk_class.values[5, 15] == 2  # 0.35
    assert out.risk_class.values[5, 5] == 1  # never flooded: very low
    assert out.risk_class.values[0, 0] == 0 and out.risk_class.values[19, 19] == 0  # no data
    absolute = flood.risk(
        summary, lc, config=flood.RiskConfig.load({"normalise": "none"})
    ).compute()
    assert (
        absolute.risk.values[15, 15] == pytest.approx(0.5)
        and absolute.risk_class.values[15, 15] == 3
    )
    people = _layer(
        np.full((20, 20), 1.0, np.float32), "population"
    )  # 1 person / 0.01 ha = 100 / ha
    crowded = flood.risk(summary, lc, population=people).compute()
    assert crowded.exposure.values[5, 15] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    with pytest.raises(GridMismatchError):
        flood.risk(summary, lc.assign_coords(x=lc.x + 10).odc.assign_crs(GBOX.crs))


def test_zone_table_gives_exact_areas(layers, tmp_path: Path) -> None:
    summary, lc = layers
    rk = flood.risk(summary, lc)
    x0, y1 = 600_000, 5_000_000
    zones = gpd.GeoDataFrame(
        {"name": ["west", "east", "east", "sliver"]},
        geometry=[
            box(x0, y1 - 200, x0 + 100, y1),
            box(x0 + 100, y1 - 100, x0 + 200, y1),
            box(x0 + 100, y1 - 200, x0 + 200, y1 - 100),  # the same zone in two features
            box(x0 + 195, y1 - 50, x0 + 200, y1),  # half a pixel wide
        ],
        crs="EPSG:32618",
    )
    path = tmp_path / "zones.geojson"
    zones.to_file(path)
    table = flood.zone_table(summary, rk, lc, path, zone_field="name")
    assert list(table.columns) == list(flood.ZONE_COLUMNS)
    east = table[table.zone == "east"].set_index("class_name")
    # east half: 10 x 10 crops and 10 x 10 urban (less one unknown-class pixel), all flooded
    assert east.loc["crops", "flooded_ha"] == pytest.approx(1.0)
    assert east.loc["urban", "flooded_ha"] == pytest.approx(0.99)
    assert east.loc["crops", "flooded_ha_low"] == pytest.approx(0.5)
    assert (
        east.loc["urban", "at_risk_ha"] == pytest.approx(0.99)
        and east.loc["crops", "at_risk_ha"] == 0
    )
    west = table[table.zone == "west"].set_index("class_name")
    assert west.loc["crops", "flooded_ha"] == 0 and west.loc[
        "crops", "flooded_ha_high"
    ] == pytest.approx(0.5)
    sliver = table[table.zone == "sliver"]
    assert sliver.flooded_ha.sum() == pytest.approx(5 * 0.5 * 0.01)  # 5 half pixels
    assert set(table.zone) == {"west", "east", "sliver"}
    far = zones.set_geometry(zones.translate(xoff=10_000))
    with pytest.raises(FloodInputError, match="overlaps"):
        flood.zone_table(summary, rk, lc, far, zone_field="name")
    with pytest.raises(FloodInputError, match="no field"):
        flood.zone_table(summary, rk, lc, zones, zone_field="district")


def test_grid_zones_tile_the_grid() -> None:
    z = flood.grid_zones(GBOX, rows=2, cols=3)
    assert list(z.zone) == ["r1c1", "r1c2", "r1c3", "r2c1", "r2c2", "r2c3"]
    assert z.area.sum() == pytest.approx(200 * 200)
    with pytest.raises(FloodInputError):
        flood.grid_zones(GBOX, rows=0)
