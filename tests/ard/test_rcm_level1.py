"""RCM level-1 GRD (folder and zip): calibration equal to GDAL's RCM driver, tie-point geocoding
equal to a GCP-based GDAL warp, and the refusals.

The product is GDAL's own fake RCM product (../shared/data/gdal_rcm_fake_VV_VH_GRD) completed
by tests/ard/_rcm_level1.py (imagery, LUTs, a tie-point grid). GDAL's RCM driver needs GDAL
>= 3.11 and the rasterio wheels here bundle 3.10: the comparison runs live where rasterio has
the driver, and otherwise against tests/ard/data/gdal_rcm_calib_reference.json, GDAL 3.12.2's
``RCM_CALIB`` values of the same product (written by tools/gdal_rcm_reference.py).
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp
from odc.geo.geobox import GeoBox
from rasterio.control import GroundControlPoint

from mus_lab.ard import RcmGeolocationError, open_rcm, prepare_rcm
from mus_lab.errors import MetadataError, ProductFileError
from mus_lab.testing import raise_if_dask_computes
from tests.ard import _rcm_level1 as l1

REFERENCE = Path(__file__).parent / "data" / "gdal_rcm_calib_reference.json"
TARGET = {"SIGMA0": "sigma0", "GAMMA": "gamma0", "BETA0": "beta0"}

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def product(real_data: Path, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return l1.build(real_data / "gdal_rcm_fake_VV_VH_GRD", tmp_path_factory.mktemp("rcm-l1"))


def _gdal_has_rcm() -> bool:
    with rasterio.Env() as env:
        return "RCM" in env.drivers()


def _db(x: np.ndarray) -> np.ndarray:
    return 10 * np.log10(x)


@pytest.mark.parametrize("as_zip", [False, True])
def test_calibration_equals_gdal_rcm_calib(product: Path, as_zip: bool) -> None:
    prod = open_rcm(l1.zipped(product) if as_zip else product)
    assert prod.polarisations == ("VH", "VV") and (prod.lines, prod.samples) == (48, 64)
    recorded = json.loads(REFERENCE.read_text())["values"]
    for key, values in recorded.items():
        cal, pol = key.split(":")
        ours = prod.calibrated(pol, to=TARGET[cal], remove_noise=False).values
        if _gdal_has_rcm():  # pragma: no cover - GDAL >= 3.11
            with rasterio.open(f"RCM_CALIB:{cal}:{product}/metadata/product.xml") as src:
                band = [src.tags(b).get("POLARIMETRIC_INTERP") for b in src.indexes].index(pol)
                gdal = src.read(band + 1)
        else:
            gdal, ours = np.asarray(values, np.float64), ours[2::4, 2::4]
        measured = gdal > 0
        np.testing.assert_array_equal(np.isfinite(ours), measured)  # DN 0 is no data
        assert np.abs(_db(ours[measured]) - _db(gdal[measured])).max() < 0.05, key


def test_geocoding_from_tie_points_matches_a_gdal_gcp_warp(product: Path) -> None:
    zipped = l1.zipped(product)
    prod = open_rcm(zipped)
    footprint = prod.gcp_geobox().geographic_extent.to_crs("EPSG:32618")
    grid = GeoBox.from_bbox(footprint.boundingbox, "EPSG:32618", resolution=20)
    item = pystac.Item("rcm-l1", None, None, dt.datetime(2025, 5, 30, tzinfo=dt.UTC), {})
    item.add_asset("product", pystac.Asset(str(zipped), roles=["metadata"]))
    with raise_if_dask_computes():
        ds = prepare_rcm([item], geobox=grid, noise=False, chunks=16)
    assert ds.vv.data.numblocks == (1, 4, 5)  # lazy, per output chunk
    ours = ds.vv.values[0]
    # GDAL's own GCP warp of the same calibrated product (gdalwarp with GCPs, bilinear)
    sigma0 = prod.calibrated("VV", remove_noise=False).values
    gcps = [
        GroundControlPoint(g.line + 0.5, g.pixel + 0.5, g.lon, g.lat, g.height) for g in prod.gcps
    ]
    gdal = np.full(grid.shape, np.nan, np.float32)
    rasterio.warp.reproject(
        sigma0,
        gdal,
        gcps=gcps,
        src_crs="EPSG:4326",
        dst_transform=grid.transform,
        dst_crs=grid.crs.to_wkt(),
        resampling=rasterio.warp.Resampling.bilinear,
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    both = np.isfinite(ours) & np.isfinite(gdal)
    assert both.sum() > 0.95 * max(np.isfinite(ours).sum(), np.isfinite(gdal).sum())
    close = np.abs(ours[both] - gdal[both]) <= 0.01 * gdal[both]
    assert close.mean() > 0.95

    def bright_centre(a: np.ndarray) -> np.ndarray:
        rows, cols = np.nonzero(np.nan_to_num(a) > 0.6 * np.nanmax(a))
        return np.array([rows.mean(), cols.mean()])

    assert np.abs(bright_centre(ours) - bright_centre(gdal)).max() < 1.0  # within one pixel
    assert (ds.valid.values[0] == np.isfinite(ours)).all()


def test_level1_refusals(real_data: Path, product: Path, tmp_path: Path) -> None:
    fake = open_rcm(real_data / "gdal_rcm_fake_VV_VH_GRD")  # one tie point, as GDAL's test
    with pytest.raises(RcmGeolocationError, match=r"1 tie point.*at least 3"):
        fake.gcp_geobox()
    zipped = l1.zipped(product)
    stripped = tmp_path / "no-lut.zip"
    with zipfile.ZipFile(zipped) as src, zipfile.ZipFile(stripped, "w") as dst:
        for name in src.namelist():
            if not name.endswith("lutSigma_VV.xml") and not name.endswith("VV.tif"):
                dst.writestr(name, src.read(name))
    prod = open_rcm(stripped)
    with pytest.raises(ProductFileError, match=r"lutSigma_VV.xml is missing.*zip again"):
        prod.read_lut("VV")
    with pytest.raises(ProductFileError, match=r"metadata-only download"):
        prod.imagery_href("VV")
    safe = tmp_path / "not-rcm.zip"
    with zipfile.ZipFile(safe, "w") as z:
        z.writestr("S1A.SAFE/manifest.safe", "<xfdu/>")
    with pytest.raises(ProductFileError, match=r"no metadata/product.xml"):
        open_rcm(safe)
    rs2 = tmp_path / "rs2" / "product.xml"
    rs2.parent.mkdir()
    rs2.write_text(
        '<product xmlns="http://www.rsi.ca/rs2/prod/xml/schemas"><imageAttributes/></product>'
    )
    with pytest.raises(MetadataError, match=r"RADARSAT-2.*RS2 driver"):
        open_rcm(rs2)
