"""``map_geotiff``'s one-pass windows (``mus_lab.flood._fused``) give the general path's map
pixel for pixel: chunks smaller than the halos, one polarisation, a reprojected reference,
slope from a DEM, no reference, linear power with a finite no-data value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from mus_lab.flood import MappingOptions, _file

H, W = 200, 230  # edge chunks of 8 and 38 px at chunks=64: the halos are capped


def _scene(path, *, post: bool, pols=("VV", "VH"), shift=0.0, linear=False, seed=0):
    rng = np.random.default_rng(seed + post)
    y, x = np.mgrid[0:H, 0:W]
    water = (np.hypot(y - 90, x - 100) < 40) | (np.abs(y - 0.4 * x - 60) < 6)
    if post:
        water |= np.abs(x - 170) < 25  # the flood
    levels = {"VV": (-10.0, -22.0), "VH": (-17.0, -28.0)}  # land, water (dB)
    data = [np.where(water, levels[p][1], levels[p][0]) + rng.normal(0, 1.5, (H, W)) for p in pols]
    arr = np.stack(data).astype("float32")
    nodata = float("nan")
    if linear:
        arr = (10 ** (arr / 10)).astype("float32")
        arr[:, :12, :20] = 0.0
        nodata = 0.0
    else:
        arr[:, :12, :20] = np.nan
        arr[-1, 100:103, 50] = -np.inf  # log10(0) from some writers: valid, no threshold
    profile = {
        "driver": "GTiff",
        "width": W,
        "height": H,
        "count": len(pols),
        "dtype": "float32",
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 500_000 + 10 * shift, 0, -10, 5_000_000),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, name in enumerate(pols, start=1):
            dst.set_band_description(i, name)
    return path


def _dem(path):
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    from mus_lab._io import write_cog

    grid = GeoBox((H + 10, W + 10), Affine(10, 0, 499_950, 0, -10, 5_000_050), "EPSG:32633")
    y, x = np.mgrid[0 : H + 10, 0 : W + 10]

    z = (x * 0.3 + 20 * np.sin(y / 15.0)).astype("float32")  # slopes from 0 to ~60 degrees
    write_cog(xr.DataArray(z, dims=("y", "x"), coords=xr_coords(grid)), path, nodata=-9999.0)
    return path


def _both(tmp_path, monkeypatch, *, chunks=64, **kw):
    calls = []
    real = _file.water_layers
    monkeypatch.setattr(_file, "water_layers", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = {}
    for fused in (True, False):
        path = tmp_path / f"out_{fused}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reprojection / linear-power warnings, both paths
            _file._map_geotiff(
                kw["sar"], path, kw.get("reference"), kw.get("dem"), None, kw.get("options"),
                chunks, fused=fused,
            )  # fmt: skip
        with rasterio.open(path) as src:
            out[fused] = src.read()
    assert calls == [1]  # the fused path ran once, the general one did not use it
    return out[True], out[False]


def test_fused_windows_match_the_general_path(tmp_path, monkeypatch):
    sar = _scene(tmp_path / "post.tif", post=True)
    ref = _scene(tmp_path / "pre.tif", post=False)
    fused, general = _both(tmp_path, monkeypatch, sar=sar, reference=ref)
    np.testing.assert_array_equal(fused, general)
    assert (fused[0] == 1).sum() > 5000 and (fused[0] == 255).sum() == 12 * 20


FIXED = MappingOptions(thresholds={"vv": -16.0, "vh": -22.5})  # no tile pass: faster


@pytest.mark.parametrize("case", ["vh-linear-shifted-dem", "no-reference"])
def test_fused_windows_match_the_general_path_on_other_inputs(tmp_path, monkeypatch, case):
    """VH alone in linear power with no data 0, a reference a 0.4 px shift away (reprojected),
    slope from a DEM; or no reference at all, on chunks deeper than the change halo only."""
    other = case != "no-reference"
    pols = ("VH",) if other else ("VV", "VH")
    sar = _scene(tmp_path / "post.tif", post=True, pols=pols, linear=other)
    ref = _scene(tmp_path / "pre.tif", post=False, pols=pols, shift=0.4, linear=True)
    fused, general = _both(
        tmp_path,
        monkeypatch,
        sar=sar,
        reference=ref if other else None,
        dem=_dem(tmp_path / "dem.tif") if other else None,
        options=FIXED,
        chunks=64 if other else 128,
    )
    np.testing.assert_array_equal(fused, general)
    # With the DEM, slopes above 15 deg (it has up to 60) exclude part of the water.
    assert (fused[0] == 1).sum() > (2000 if other else 5000)
