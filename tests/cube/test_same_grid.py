"""One tolerant grid comparison for every stage (issue 16): grids within 1e-6 of a pixel are one
grid, CRSs compare semantically, a true mismatch is one line without WKT or a lazy reprojection
with a warning, grids are found whoever opened the data, sizes are in metres on degrees."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rioxarray  # noqa: F401  (registers .rio, as a rioxarray user has it)
import xarray as xr
from affine import Affine
from odc.geo import CRS
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros

from mus_lab import cube
from mus_lab.errors import GridMismatchError, GridReprojectedWarning
from tests._geographic import RES, WKT_NO_AUTHORITY

GEO = GeoBox((64, 96), Affine(RES, 0, -65.123456789012, 0, -RES, -13.987654321098), "EPSG:4326")
UTM = GeoBox.from_bbox((600_000, 5_000_000, 600_640, 5_000_320), "EPSG:32618", resolution=10)


def _on(gbox: GeoBox, **kw) -> xr.DataArray:
    return cube.as_yx(xr_zeros(gbox, dtype="float32", **kw))


def _nudged(gbox: GeoBox, rel: float, crs=None) -> GeoBox:
    a = gbox.affine
    return GeoBox(gbox.shape, Affine(a.a * (1 + rel), 0, a.c * (1 + rel), 0, a.e, a.f),
                  crs or gbox.crs)  # fmt: skip


@pytest.mark.parametrize("gbox", [GEO, UTM], ids=["EPSG:4326", "UTM"])
def test_grids_within_a_millionth_of_a_pixel_are_one_grid(gbox):
    assert gbox != _nudged(gbox, 1e-13)  # odc-geo's equality is exact
    assert cube.same_grid(gbox, _nudged(gbox, 1e-13))
    assert not cube.same_grid(gbox, GeoBox(gbox.shape, gbox.affine @ Affine.translation(1e-3, 0),
                                           gbox.crs))  # fmt: skip
    assert not cube.same_grid(gbox, gbox[1:, :])


def test_crs_compares_semantically():
    wkt1 = pyproj.CRS(4326).to_wkt("WKT1_GDAL")
    assert cube.same_crs(CRS("EPSG:4326"), CRS(wkt1))
    assert cube.same_crs(CRS("EPSG:4326"), CRS(WKT_NO_AUTHORITY))
    assert not cube.same_crs(CRS("EPSG:4326"), CRS("EPSG:32618"))
    assert cube.same_grid(GEO, GeoBox(GEO.shape, GEO.affine, WKT_NO_AUTHORITY))


def test_check_same_grid_accepts_the_13th_digit_and_refuses_in_one_line_without_wkt():
    a = _on(GEO)
    b = a.assign_coords(x=a.x.values * (1 + 1e-13))
    assert cube.check_same_grid(a, b, names=["SAR", "optical"]) == GEO
    with pytest.raises(GridMismatchError) as err:
        cube.check_same_grid(a, _on(GEO[:, 1:]), names=["SAR", "optical"])
    msg = str(err.value)
    assert "\n" not in msg and "GEOGCRS" not in msg and "GEOGCS" not in msg
    assert "SAR and optical are on different grids" in msg
    assert "EPSG:4326, 64 x 96 px of 8.98315e-05°" in msg and "64 x 95 px" in msg
    assert "(-65.1234568, -13.9876543)" in msg


def test_describe_grid_is_short():
    assert cube.describe_grid(UTM) == "EPSG:32618, 32 x 64 px of 10 m, origin (600000, 5000320)"
    assert len(cube.describe_grid(GeoBox(GEO.shape, GEO.affine, WKT_NO_AUTHORITY))) < 80


def test_match_grid_snaps_refuses_or_reprojects_with_a_warning():
    a = _on(GEO)
    b = (a + 1).assign_coords(x=a.x.values + 1e-15, y=a.y.values - 1e-15)
    snapped = cube.match_grid(b, a)
    assert np.array_equal(snapped.x, a.x) and np.array_equal(snapped.y, a.y)
    assert float((snapped + a).sum()) == a.size  # aligned, not an empty inner join
    shifted = _on(GeoBox(GEO.shape, GEO.affine @ Affine.translation(2, 1), GEO.crs)) + 1
    shifted = shifted.chunk(32)
    with pytest.raises(GridMismatchError, match="different grids"):
        cube.match_grid(shifted, a, names=("land cover", "the SAR"))
    with pytest.warns(GridReprojectedWarning, match="land cover was reprojected") as rec:
        out = cube.match_grid(shifted, a, names=("land cover", "the SAR"), resampling="nearest")
    assert "\n" not in str(rec[0].message)
    assert out.chunks is not None  # lazy
    assert cube.same_grid(cube.geobox_of(out), GEO) and out.dims == ("y", "x")
    assert np.isnan(out.values[0, 0]) and out.values[-1, -1] == 1  # shifted by (2, 1) px


def test_grids_of_other_openers_without_the_accessor_imported_by_the_user():
    # odc-stac on a geographic CRS: latitude/longitude dims.
    lat_lon = xr_zeros(GEO, dtype="float32")
    assert lat_lon.dims == ("latitude", "longitude")
    assert cube.geobox_of(lat_lon) == GEO
    # rioxarray: a spatial_ref coordinate with crs_wkt / spatial_ref attributes.
    rio = _on(GEO).rio.write_crs("EPSG:4326")
    assert cube.same_grid(cube.geobox_of(rio), GEO)
    # stackstac: top-left corner coordinates, CRS in attributes, an epsg coordinate.
    a = GEO.affine
    corners = xr.DataArray(
        np.zeros(GEO.shape, "float32"),
        dims=("y", "x"),
        coords={"y": a.f + a.e * np.arange(GEO.shape.y), "x": a.c + a.a * np.arange(GEO.shape.x),
                "epsg": 4326},
        attrs={"crs": "epsg:4326", "transform": a, "resolution": RES},
    )  # fmt: skip
    assert cube.same_grid(cube.geobox_of(corners), GEO)
    lost = (corners + 1).drop_attrs() if hasattr(corners, "drop_attrs") else corners + 1
    lost.attrs = {"transform": a}  # arithmetic lost the crs attribute; the epsg coord stays
    assert cube.same_grid(cube.geobox_of(lost), GEO)
    std = cube.standard_grid(corners)
    assert "spatial_ref" in std.coords and "transform" not in std.attrs
    assert cube.same_grid(cube.geobox_of(std), GEO)
    with pytest.raises(GridMismatchError, match=r"no pixel grid.*assign a CRS"):
        cube.geobox_of(xr.DataArray(np.zeros((2, 2)), dims=("a", "b")))


def test_pixel_sizes_and_areas_in_metres_on_a_geographic_grid():
    x, y = cube.pixel_size_m(GEO)
    assert 9.6 < x < 9.8 and 9.9 < y < 10.0  # 10 m at the equator, cos(14 deg) in x
    assert cube.pixel_area_m2(GEO) == pytest.approx(x * y)
    assert cube.pixel_size_m(UTM) == (10.0, 10.0)
    feet = GeoBox.from_bbox((0, 0, 100, 100), "EPSG:2263", resolution=10)
    assert cube.pixel_size_m(feet)[0] == pytest.approx(3.048, rel=1e-5)
