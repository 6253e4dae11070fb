"""Small products on a small grid, and an empty local catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pystac
import pytest
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

GBOX = GeoBox.from_bbox((600_000, 4_999_600, 600_400, 5_000_000), "EPSG:32618", resolution=10)


def empty_catalog(folder: Path) -> Path:
    """A new empty self-contained catalog; returns its ``catalog.json``."""
    pystac.Catalog("test", "empty local catalog").normalize_and_save(
        str(folder), pystac.CatalogType.SELF_CONTAINED
    )
    return folder / "catalog.json"


def prediction(seed: int = 0) -> xr.Dataset:
    """What classify.predict returns, on GBOX (3 classes 11, 12, 31)."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=GBOX.shape).transpose(2, 0, 1).astype("float32")
    best = np.sort(proba, 0)
    coords = xr_coords(GBOX, crs_coord_name="spatial_ref")
    return xr.Dataset(
        {
            "classification": (("y", "x"), np.array([11, 12, 31], "uint8")[proba.argmax(0)]),
            "confidence": (("y", "x"), (100 * best[-1]).astype("uint8")),
            "margin": (("y", "x"), (100 * (best[-1] - best[-2])).astype("uint8")),
            "probability": (("class", "y", "x"), proba),
        },
        coords=coords,
    ).assign_coords({"class": [11, 12, 31]})


@pytest.fixture
def catalog_json(tmp_path: Path) -> Path:
    return empty_catalog(tmp_path / "cat")
