"""ard.write: a non-time extra dimension (e.g. ``class``) becomes the bands of one COG."""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

from mus_lab import ard
from mus_lab import catalog as cat
from mus_lab.errors import ARDError


def _catalog(tmp_path):  # type: ignore[no-untyped-def]
    root = pystac.Catalog("test", "empty local catalog")
    root.normalize_hrefs(str(tmp_path / "cat"))
    root.save(pystac.CatalogType.SELF_CONTAINED)
    return tmp_path / "cat" / "catalog.json"


def _dataset() -> xr.Dataset:
    gb = GeoBox.from_bbox((600_000, 4_999_700, 600_400, 5_000_000), "EPSG:32618", resolution=10)
    coords = xr_coords(gb, crs_coord_name="spatial_ref")
    rng = np.random.default_rng(0)
    proba = rng.random((3, *gb.shape)).astype("float32")
    ds = xr.Dataset(
        {
            "probability": (("class", "y", "x"), proba),
            "classification": (("y", "x"), (np.argmax(proba, 0) + 1).astype("uint8")),
        },
        coords=coords,
    )
    ds["classification"].attrs["nodata"] = 0
    return ds.assign_coords({"class": [11, 12, 31], "class_name": ("class", ["a", "b", "c"])})


def test_extra_dimension_becomes_described_bands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = _catalog(tmp_path)
    ds = _dataset()
    coll = ard.write(ds, root, "probs", level="L3-test")
    item = next(iter(coll.get_items()))
    assert item.id == "probs-summary"
    href = item.assets["probability"].get_absolute_href()
    with rasterio.open(href) as src:
        assert src.count == 3 and src.descriptions == ("11", "12", "31")
        np.testing.assert_array_equal(src.read(), ds.probability.values)
    bands = item.assets["probability"].extra_fields["raster:bands"]
    assert [b["description"] for b in bands] == ["11", "12", "31"]
    assert all(b["data_type"] == "float32" for b in bands)
    # a plain 2-D variable is unchanged: one band named after the variable, its nodata
    with rasterio.open(item.assets["classification"].get_absolute_href()) as src:
        assert src.count == 1 and src.descriptions == ("classification",) and src.nodata == 0
    assert item.assets["classification"].extra_fields["raster:bands"] == [
        {"data_type": "uint8", "nodata": 0}
    ]
    found = cat.search(root, collections="probs")
    assert len(found) == 1
    assert json.loads((root.parent / "probs" / "collection.json").read_text())["id"] == "probs"


def test_two_extra_dimensions_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = _catalog(tmp_path)
    ds = _dataset()
    bad = ds[["probability"]].expand_dims(run=[1, 2])
    with pytest.raises(ARDError, match="one extra dimension"):
        ard.write(bad, root, "bad")
    assert not (root.parent / "bad").exists()
