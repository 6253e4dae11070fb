"""Small synthetic land-cover problems on a real grid, and the scenario's features (module-shared)."""

from __future__ import annotations

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from shapely.geometry import box

CRS = "EPSG:32633"
RES = 10.0
X0, Y0 = 500_000.0, 5_000_000.0  # upper-left corner


def grid(h: int, w: int) -> GeoBox:
    return GeoBox.from_bbox((X0, Y0 - h * RES, X0 + w * RES, Y0), CRS, resolution=RES)


def cube_from(values: np.ndarray, names: list[str], chunks: int | None = None) -> xr.DataArray:
    """(feature, y, x) DataArray on the test grid."""
    gb = grid(values.shape[1], values.shape[2])
    coords = xr_coords(gb, crs_coord_name="spatial_ref")
    da = xr.DataArray(values.astype("float32"), dims=("feature", "y", "x"), coords=coords)
    da = da.assign_coords(feature=names)
    if chunks:
        da = da.chunk({"feature": -1, "y": chunks, "x": chunks})
    return da


def dataset_on_grid(data: dict[str, np.ndarray], dates: list[str]) -> xr.Dataset:
    """(time, y, x) Dataset on the test grid."""
    first = next(iter(data.values()))
    gb = grid(first.shape[1], first.shape[2])
    coords = dict(xr_coords(gb, crs_coord_name="spatial_ref"))
    coords["time"] = pd.to_datetime(dates).values
    return xr.Dataset({k: (("time", "y", "x"), v) for k, v in data.items()}, coords=coords)


def px_box(r0: int, c0: int, r1: int, c1: int) -> object:
    """Polygon covering pixel rows r0..r1-1 and columns c0..c1-1 exactly."""
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


PROFILES = {  # per class, two variables over six dates: a crop peak, a steady forest, water
    1: (np.array([0.2, 0.4, 0.8, 0.8, 0.4, 0.2]), np.array([0.1, 0.1, 0.2, 0.3, 0.3, 0.1])),
    2: (np.array([0.7, 0.7, 0.75, 0.75, 0.7, 0.7]), np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.2])),
    3: (np.array([-0.3, -0.3, -0.3, -0.3, -0.3, -0.3]), np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])),
}
DATES = ["2022-03-01", "2022-04-01", "2022-05-01", "2022-06-01", "2022-07-01", "2022-08-01"]


def synthetic_problem(h: int = 48, w: int = 48, noise: float = 0.05, seed: int = 0):  # type: ignore[no-untyped-def]
    """Three classes in vertical strips; 4 square polygons per class (2 per region)."""
    rng = np.random.default_rng(seed)
    truth = np.ones((h, w), np.uint8)
    truth[:, w // 3 : 2 * w // 3] = 2
    truth[:, 2 * w // 3 :] = 3
    a = np.empty((6, h, w), "float32")
    b = np.empty((6, h, w), "float32")
    for c, (pa, pb) in PROFILES.items():
        m = truth == c
        a[:, m] = pa[:, None]
        b[:, m] = pb[:, None]
    a += rng.normal(0, noise, a.shape).astype("float32")
    b += rng.normal(0, noise, b.shape).astype("float32")
    ds = dataset_on_grid({"ndvi": a, "vv": b}, DATES)
    strip = w // 3
    rows = []
    pid = 1
    for c in (1, 2, 3):
        c0 = (c - 1) * strip
        for k, r0 in enumerate((2, 14, 26, 38)):
            rows.append(
                {
                    "poly_id": pid,
                    "code": c,
                    "class_name": {1: "crops", 2: "forest", 3: "water"}[c],
                    "region": 1 if k < 2 else 2,
                    "geometry": px_box(r0, c0 + 2, r0 + 6, c0 + strip - 2),
                }
            )
            pid += 1
    polys = gpd.GeoDataFrame(rows, crs=CRS)
    return ds, truth, polys


@pytest.fixture
def problem():  # type: ignore[no-untyped-def]
    return synthetic_problem()


@pytest.fixture(scope="session")
def scenario_features(scenario):  # type: ignore[no-untyped-def]
    """The scenario's optical, radar and stacked feature cubes, computed once per session."""
    from mus_lab import recipes

    out = {}
    for sensors in ("optical", "radar", "stacked"):
        feats, recipe, items = recipes.features_from_catalog(scenario.catalog_path, sensors=sensors)
        out[sensors] = (dask.persist(feats)[0], recipe, items)
    return out
