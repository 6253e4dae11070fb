"""Sentinel-1 GRD SAFE to ARD on real annotation: geometry, radiometry, geocoding, refusals.

Equality references:

* geometry: the annotation's own geolocation grid (ESA's processor) and GDAL's GCP warp
  (``gdalwarp -tps``, through rasterio) of the same calibrated product. GDAL's default
  polynomial GCP transformer misplaces this 250 km scene by up to 1.4 km at the GCPs
  themselves, so the thin-plate spline (exact at the GCPs) is the reference; GDAL puts the
  annotation's line/pixel at pixel corners where ESA means pixel centres, so the reference
  GCPs are shifted by half a pixel.
* radiometry: GDAL's SENTINEL1 (SAFE) driver reads the DN; GDAL 3.10 does not offer the
  calibrated subdatasets of GRD products ("Measurement bands not found"), so the LUTs are
  applied by an independent implementation (scipy's RegularGridInterpolator), and the DN
  are written from a known sigma0 through the product's own LUTs and noise.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import xarray as xr

from mus_lab import cube
from mus_lab.ard import (
    S1Geocoding,
    check_backscatter,
    from_db,
    geocode_s1,
    open_safe,
    open_tiff_lazy,
    prepare_s1,
    read_geometry,
    speckle_filter,
    to_db,
)
from mus_lab.ard._s1_geocode import _border_noise_mask
from mus_lab.contracts import SAR_QUALITY_BITS
from mus_lab.errors import (
    ARDError,
    BackscatterInputError,
    MetadataError,
    MissingCalibrationError,
    RadarGeometryError,
)
from mus_lab.testing import raise_if_dask_computes
from tests.ard._s1_safe_data import SAFE_NAME, sigma0_scene, write_safe

pytestmark = pytest.mark.realdata

#: A flat area around Rome (heights 5-115 m) and the image window that covers it.
ROME_BBOX = (12.47, 41.975, 12.53, 42.025)
WINDOW = (7700, 8500, 21700, 22600)


@pytest.fixture(scope="module")
def safe_src(real_data: Path) -> Path:
    path = real_data / "s1_safe_metadata_and_small_rasters" / "sarsen_tests_data" / SAFE_NAME
    if not path.is_dir():
        pytest.skip(f"{path} absent")
    return path


@pytest.fixture(scope="module")
def rome_zip(safe_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SAFE with speckled realistic DN around Rome, zipped (read via /vsizip/)."""
    return write_safe(safe_src, tmp_path_factory.mktemp("s1zip"), window=WINDOW, as_zip=True)


@pytest.fixture(scope="module")
def rome_grid():  # type: ignore[no-untyped-def]
    return cube.reference_geobox(bbox=ROME_BBOX)


def _db(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10 * np.log10(x)


def test_geometry_reproduces_the_geolocation_grid(real_data: Path, safe_src: Path) -> None:
    import zipfile

    sources = [next((safe_src / "annotation").glob("s1b-*.xml")).read_bytes()]
    zpath = next(
        (real_data / "s1_safe_metadata_and_small_rasters" / "pyrosar_tests_data").glob("*.zip")
    )
    with zipfile.ZipFile(zpath) as z:
        sources += [z.read(n) for n in z.namelist() if "/annotation/s1a-" in n]
    for src in sources:
        g = read_geometry(src)
        line, pixel = g.radar_coordinates(g.gcps[:, 2], g.gcps[:, 3], g.gcps[:, 4])
        assert np.abs(line - g.gcps[:, 0]).max() < 0.3
        assert np.abs(pixel - g.gcps[:, 1]).max() < 0.6
        assert abs(float(np.mean(pixel - g.gcps[:, 1]))) < 0.1


def test_radiometry_equals_an_independent_calibration(safe_src: Path, tmp_path: Path) -> None:
    import rasterio
    from scipy.interpolate import RegularGridInterpolator

    win = (8192, 8704, 22016, 22528)
    path = write_safe(safe_src, tmp_path, window=win, speckle=False)
    safe = open_safe(path)
    r0, r1, c0, c1 = win
    ours = safe.calibrated("vv", chunks=512).isel(line=slice(r0, r1), pixel=slice(c0, c1)).values
    # DN through GDAL's SENTINEL1 driver (manifest.safe), LUT and noise by scipy.
    sub = f"SENTINEL1_CALIB:UNCALIB:{path}/manifest.safe:IW_VV:AMPLITUDE"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(sub) as ds:
            dn = ds.read(1, window=((r0, r1), (c0, c1))).astype(np.float64)
    cal, noise = safe.read_calibration("vv"), safe.read_noise("vv")
    rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    lut = RegularGridInterpolator(
        (cal.sigma0.lines.astype(float), cal.sigma0.pixels[0]), np.stack(cal.sigma0.values)
    )((rows, cols))
    rng = noise.range
    n_r = RegularGridInterpolator(
        (rng.lines.astype(float), rng.pixels[0]),
        np.stack(rng.values),
        bounds_error=False,
        fill_value=None,
    )((rows, cols))
    factor = np.ones_like(n_r)
    for b in noise.azimuth:
        sel = (
            (rows >= b.first_line)
            & (rows <= b.last_line)
            & (cols >= b.first_sample)
            & (cols <= b.last_sample)
        )
        factor[sel] = np.interp(rows[sel], b.lines, b.values)
    ref = (dn**2 - n_r * factor) / lut**2
    ok = np.isfinite(ours) & (ref > 0)
    assert ok.mean() > 0.99
    assert np.abs(_db(ours[ok]) - _db(ref[ok])).max() < 0.05
    # ... and calibration + noise removal give back the sigma0 the DN were written from.
    truth = sigma0_scene(np.arange(r0, r1), np.arange(c0, c1))
    bright = ok & (truth > 0.05)
    assert np.abs(_db(ours[bright]) - _db(truth[bright])).max() < 0.05
    assert abs(float(np.median(_db(ours[ok]) - _db(truth[ok])))) < 0.02


def test_geocoding_lands_on_gdal_gcp_warp(rome_zip: Path, rome_grid) -> None:  # type: ignore[no-untyped-def]
    from rasterio.control import GroundControlPoint
    from rasterio.warp import Resampling, reproject

    safe = open_safe(rome_zip)
    assert safe.is_zip and safe.imagery_href("vv").startswith("/vsizip/")
    with raise_if_dask_computes():
        ds = geocode_s1(safe, rome_grid, polarisations=("vv",), chunks=256)
    ours = ds.vv.values
    g = read_geometry(safe.read_bytes(safe.files["VV"].annotation))
    r0, r1, c0, c1 = 7680, 8704, 21504, 22528
    cal = safe.calibrated("vv", chunks=512).isel(line=slice(r0, r1), pixel=slice(c0, c1)).values
    gcps = [
        GroundControlPoint(row=q[0] - r0 + 0.5, col=q[1] - c0 + 0.5, x=q[2], y=q[3], z=q[4])
        for q in g.gcps
    ]
    ref = np.full(tuple(rome_grid.shape), np.nan, np.float32)
    reproject(
        cal,
        ref,
        gcps=gcps,
        src_crs="EPSG:4326",
        dst_transform=rome_grid.transform,
        dst_crs=rome_grid.crs.wkt,
        resampling=Resampling.bilinear,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        SRC_METHOD="GCP_TPS",
    )
    both = np.isfinite(ours) & np.isfinite(ref)
    assert both.mean() > 0.95
    assert abs(float(np.median(_db(ours[both]) - _db(ref[both])))) < 0.1
    # Cross-correlation offset of the two dB images (speckle, water strips and bright point
    # targets): within one pixel at the integer peak, and within a quarter pixel sub-pixel.
    a = np.where(both, _db(ours), 0.0)
    b = np.where(both, _db(ref), 0.0)
    a[both] -= a[both].mean()
    b[both] -= b[both].mean()
    cc = np.fft.fftshift(np.real(np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b)))))
    iy, ix = np.unravel_index(np.argmax(cc), cc.shape)

    def vertex(m: float, c: float, p: float) -> float:
        return 0.5 * (m - p) / (m - 2 * c + p)

    dy = iy - cc.shape[0] // 2 + vertex(cc[iy - 1, ix], cc[iy, ix], cc[iy + 1, ix])
    dx = ix - cc.shape[1] // 2 + vertex(cc[iy, ix - 1], cc[iy, ix], cc[iy, ix + 1])
    assert abs(iy - cc.shape[0] // 2) <= 1 and abs(ix - cc.shape[1] // 2) <= 1
    assert abs(dy) < 0.25 and abs(dx) < 0.25


def test_prepare_s1_takes_safes_with_a_dem(safe_src: Path, rome_zip: Path, rome_grid) -> None:  # type: ignore[no-untyped-def]
    dem = safe_src.parent / "Rome-30m-DEM.tif"
    with raise_if_dask_computes():
        plain = prepare_s1(rome_zip, geobox=rome_grid, polarisations=("vv",), db=True)
        rtc = prepare_s1(
            [open_safe(rome_zip)],
            geobox=rome_grid,
            polarisations=("vv",),
            calibration="gamma0",
            geocoding=S1Geocoding(dem=dem, geoid_undulation=47.0, terrain_flattening=True),
        )
    assert sorted(map(str, plain.data_vars)) == ["quality", "valid", "vv"]
    assert plain.attrs["product"] == "s1_sigma0_ard" and plain.vv.attrs["units"] == "dB"
    assert plain.orbit_state.values.tolist() == ["descending"]
    assert plain.relative_orbit.values.tolist() == [22]
    p, r = plain.compute(), rtc.compute()
    assert p.vv.dtype == np.float32 and p.valid.dtype == bool and p.quality.dtype == np.uint8
    assert float(p.valid.mean()) > 0.99
    assert abs(float(p.vv.where(p.valid).median()) + 8.0) < 0.5  # land at -8 dB
    assert (np.isnan(p.vv) == ~p.valid).all()
    # Flat city: local incidence within a few degrees of the ellipsoid's (about 44 deg here),
    # gamma0_T = sigma0 / cos(theta) about +1.4 dB, and no layover or shadow.
    lia = r.local_incidence_angle.where(r.valid)
    assert 40 < float(lia.median()) < 48
    gain = float((10 * np.log10(r.vv.where(r.valid)) - p.vv.where(r.valid)).median())
    assert 0.9 < gain < 1.9
    bits = (1 << SAR_QUALITY_BITS["layover"]) | (1 << SAR_QUALITY_BITS["shadow"])
    assert int((r.quality & bits).sum()) < 0.01 * r.quality.size


def test_steep_terrain_raises_layover_and_shadow_bits(rome_zip: Path, rome_grid) -> None:  # type: ignore[no-untyped-def]
    from odc.geo.xr import xr_coords

    small = rome_grid[200:300, 200:300]
    x = np.arange(small.shape[1], dtype=float) * 10.0
    ridge = 500.0 - np.abs(x - 500.0) * np.tan(np.radians(70))  # 70 deg slopes east and west
    dem = xr.DataArray(
        np.broadcast_to(np.maximum(ridge, 0.0), tuple(small.shape)).astype(np.float32),
        dims=("y", "x"),
        coords=xr_coords(small),
    )
    ds = (
        prepare_s1(
            rome_zip,
            geobox=small,
            polarisations=("vv",),
            calibration="gamma0",
            geocoding=S1Geocoding(dem=dem, terrain_flattening=True),
        )
        .isel(time=0)
        .compute()
    )
    layover = (ds.quality & (1 << SAR_QUALITY_BITS["layover"])) > 0
    shadow = (ds.quality & (1 << SAR_QUALITY_BITS["shadow"])) > 0
    # Descending, right-looking: the radar is to the east; the east face lays over, the
    # west face is in shadow.
    # west face: columns 32-49, east face: 51-68 (the ridge is 36 px wide at its foot).
    # (The DEM ends with the grid: its first and last rows and columns have no slope.)
    assert bool(layover[1:-1, 53:67].all()) and not bool(layover[:, :50].any())
    assert bool(shadow[1:-1, 34:48].all()) and not bool(shadow[:, 51:].any())
    lia = ds.local_incidence_angle[1:-1]
    assert float(lia[:, 34:48].min()) > 90 and float(lia[:, 53:67].max()) < 44
    assert not bool(ds.valid.where(layover | shadow, False).any())


def test_border_noise_run_is_masked_from_each_edge() -> None:
    dn = np.array([[0, 0, 3, 2, 50, 60, 2, 70, 4, 0]], dtype=np.uint16)
    noise = np.full(dn.shape, 100.0)  # threshold 0.5 * 100: DN**2 < 50 is noise
    mask = _border_noise_mask(dn, noise, limit=4, threshold=0.5)
    assert mask.tolist() == [[False, False, True, True, False, False, False, False, True, False]]


def test_refusals_name_the_function_to_call_first(
    real_data: Path, safe_src: Path, tmp_path: Path
) -> None:
    grd = real_data / "s1_grd_decimated_real" / "sentinel-s1-l1c" / "GRD" / "2018" / "7" / "16"
    tif = next(grd.rglob("iw-vv.tiff"))
    dn = open_tiff_lazy(tif)  # real uint16 DN in radar geometry (GCPs, no CRS)
    with pytest.raises(BackscatterInputError, match="open_safe"):
        check_backscatter(dn, where="flood mapping")
    with pytest.raises(RadarGeometryError, match="geocode_s1"):
        prepare_s1(dn.astype(np.float32))
    with pytest.raises(BackscatterInputError, match="digital numbers"):
        speckle_filter(dn.isel(line=slice(0, 64), pixel=slice(0, 64)))
    item = pystac.Item(
        "S1A_IW_GRDH_real",
        None,
        None,
        pystac.utils.str_to_datetime("2018-07-16T00:40:42Z"),
        {"sar:product_type": "GRD"},
    )
    item.add_asset("vv", pystac.Asset(str(tif), media_type=pystac.MediaType.GEOTIFF))
    with pytest.raises(RadarGeometryError, match="open_safe"):
        prepare_s1([item], polarisations=("vv",))
    lin = xr.DataArray(np.full((4, 4), 0.1, np.float32), attrs={"units": "linear power"})
    with pytest.raises(BackscatterInputError, match="to_db"):
        check_backscatter(lin, expected="db")
    with pytest.raises(BackscatterInputError, match="from_db"):
        speckle_filter(to_db(lin).assign_attrs(units="dB"))
    with pytest.raises(BackscatterInputError, match="twice"):
        to_db(lin.assign_attrs(units="dB"))
    with pytest.raises(BackscatterInputError, match="twice"):
        from_db(lin)
    with pytest.raises(BackscatterInputError, match="from_db"):
        check_backscatter(np.array([-12.0, -15.0]))
    # A SAFE without its calibration annotation.
    broken = tmp_path / SAFE_NAME
    shutil.copytree(safe_src, broken, ignore=shutil.ignore_patterns("*.tiff", "calibration-*"))
    with pytest.raises(MissingCalibrationError, match=r"harvest.*open_safe"):
        open_safe(broken)
    assert issubclass(MissingCalibrationError, MetadataError)
    assert issubclass(RadarGeometryError, ARDError) and issubclass(BackscatterInputError, ARDError)


def test_float_nodata_of_rtc_items_is_no_data(tmp_path: Path) -> None:
    """Planetary Computer ``sentinel-1-rtc`` assets: float32 gamma0 with nodata -32768."""
    import rasterio
    from rasterio.transform import from_origin

    values = np.full((64, 64), 0.05, np.float32)
    values[:, :8] = -32768.0
    path = tmp_path / "vv.tif"
    transform = from_origin(290000.0, 4650000.0, 10.0, 10.0)
    with rasterio.open(
        path, "w", driver="GTiff", height=64, width=64, count=1, dtype="float32",
        crs="EPSG:32633", transform=transform, nodata=-32768.0,
    ) as ds:  # fmt: skip
        ds.write(values, 1)
    item = pystac.Item(
        "S1A_IW_GRDH_rtc",
        {"type": "Point", "coordinates": [12.469, 41.971]},
        [12.4654, 41.9684, 12.4734, 41.9741],
        pystac.utils.str_to_datetime("2021-12-23T05:11:22Z"),
        {"sar:product_type": "GRD", "proj:epsg": 32633},
    )
    item.add_asset(
        "vv",
        pystac.Asset(
            str(path),
            media_type=pystac.MediaType.COG,
            extra_fields={
                "proj:epsg": 32633,
                "proj:shape": [64, 64],
                "proj:transform": list(transform)[:6],
                "raster:bands": [{"data_type": "float32", "nodata": -32768}],
            },
        ),
    )
    from odc.geo.geobox import GeoBox

    grid = GeoBox((64, 64), transform, "EPSG:32633")
    ds = prepare_s1([item], geobox=grid, polarisations=("vv",)).isel(time=0).compute()
    assert float(ds.vv.min()) == pytest.approx(0.05)  # no -32768 left
    assert not bool(ds.valid[:, :8].any()) and bool(ds.valid[:, 9:].all())
    assert bool(np.isnan(ds.vv[:, :8]).all())
