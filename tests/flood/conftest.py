"""Flood fixtures: a synthetic SAR series on a real grid, and one run of the whole product on
the session's sample scenario (reused by the accuracy, product, STAC and zone tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from shapely.geometry import box

ENL = 4.4


def synthetic_sar(
    n: int = 96,
    *,
    dates: int = 5,
    flood_date: int | None = 3,
    seed: int = 0,
    chunks: int | None = None,
) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """dB VV/VH on a 10 m UTM grid: a river and a lake always, a floodplain on one date.

    Returns the dataset, the permanent-water mask and the flood mask (2-D bools).
    """
    rng = np.random.default_rng(seed)
    gbox = GeoBox.from_bbox(
        (600_000, 4_999_040, 600_000 + 10 * n, 4_999_040 + 10 * n), "EPSG:32618", resolution=10
    )
    yy, xx = np.mgrid[0:n, 0:n]
    river = np.abs(yy - n // 2 - 4 * np.sin(xx / 9)) < 3
    lake = (yy - n // 5) ** 2 + (xx - n // 4) ** 2 < (n // 10) ** 2
    permanent = river | lake
    plain = (np.abs(yy - n // 2) < n // 5) & (xx > n // 3) & ~permanent
    times = pd.date_range("2022-03-01", periods=dates, freq="12D")
    vv = np.empty((dates, n, n), np.float32)
    vh = np.empty((dates, n, n), np.float32)
    for t in range(dates):
        water = permanent | (plain if t == flood_date else False)
        for arr, land_db, water_db in ((vv, -11.0, -22.0), (vh, -18.0, -28.0)):
            db = np.where(water, water_db, land_db + 1.5 * np.sin(xx / 7) * np.cos(yy / 11))
            lin = 10 ** (db / 10) * rng.gamma(
                ENL * 4, 1 / (ENL * 4), db.shape
            )  # 4 looks (filtered)
            arr[t] = 10 * np.log10(lin)
    coords = {**{str(k): v for k, v in xr_coords(gbox).items()}, "time": times}
    ds = xr.Dataset(
        {
            "vv": (("time", "y", "x"), vv, {"units": "dB"}),
            "vh": (("time", "y", "x"), vh, {"units": "dB"}),
            "valid": (("time", "y", "x"), np.ones((dates, n, n), bool)),
            "quality": (("time", "y", "x"), np.zeros((dates, n, n), np.uint8)),
        },
        coords=coords,
    ).assign_coords(relative_orbit=("time", np.full(dates, 33)))
    ds = ds.odc.assign_crs("EPSG:32618")
    if chunks:
        ds = ds.chunk({"time": 1, "y": chunks, "x": chunks})
    return ds, permanent, plain


@pytest.fixture(scope="session")
def synthetic() -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    return synthetic_sar()


def quadrant_zones(path: Path, scenario) -> Path:
    """Four quadrant polygons (zone NW, NE, SW, SE) over the scenario, in a GeoPackage."""
    t = scenario.transform
    x0, y0, step = t[2], t[5], t[0]
    half = scenario.shape[1] * step / 2
    cells = {
        "NW": box(x0, y0 - half, x0 + half, y0),
        "NE": box(x0 + half, y0 - half, x0 + 2 * half, y0),
        "SW": box(x0, y0 - 2 * half, x0 + half, y0 - half),
        "SE": box(x0 + half, y0 - 2 * half, x0 + 2 * half, y0 - half),
    }
    gdf = gpd.GeoDataFrame({"zone": list(cells)}, geometry=list(cells.values()), crs=scenario.crs)
    gdf.to_file(path, layer="zones", driver="GPKG")
    return path


@pytest.fixture(scope="session")
def flood_catalog(scenario, tmp_path_factory) -> Path:
    """A copy of the scenario's catalog for the flood products."""
    root = tmp_path_factory.mktemp("flood") / "catalog"
    shutil.copytree(scenario.catalog_path.parent, root)
    return root / "catalog.json"


@pytest.fixture(scope="session")
def flood_run(scenario, flood_catalog, tmp_path_factory):
    """``recipes.run_risk`` on the sample scenario: S1 + RCM + optical, with quadrant zones."""
    from mus_lab import recipes

    zones = quadrant_zones(tmp_path_factory.mktemp("zones") / "zones.gpkg", scenario)
    run = recipes.run_risk(
        flood_catalog,
        landcover="landcover-truth",
        zones=zones,
        workdir=tmp_path_factory.mktemp("work"),
    )
    yield run
    run.cleanup()
