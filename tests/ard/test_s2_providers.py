"""Sentinel-2 L2A from every provider through prepare_s2: Earth Search COGs, Planetary Computer
items (offset from s2:processing_baseline), CDSE SAFE zips (JPEG2000 in /vsizip/) and THEIA MAJA
folders, on real items and real product metadata with small rasters."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from mus_lab import ard
from mus_lab.catalog import get_profile, normalise_item
from mus_lab.contracts import OPTICAL_QUALITY_BITS as BITS
from mus_lab.errors import ARDError, MusLabError
from tests.ard._s2_products import MAJA_ID, N0214, N0400, make_maja, make_safe

COGS = "s2_l2a_cogs_decimated_stac/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
PC_ITEM = "stac_real_responses/odc_stac_tests_data/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"
# The decimated tile (EPSG:32629, 200 m): the grid the real-COG tests load onto.
TILE_200M = GeoBox((549, 549), Affine(200, 0, 199980, 0, -200, 2800020), "EPSG:32629")


def _local(asset: pystac.Asset, path: Path) -> None:
    """Point a real item's asset at a local decimated file (and its grid)."""
    with rasterio.open(path) as src:
        asset.href = str(path)
        asset.extra_fields.pop("proj:bbox", None)
        asset.extra_fields.update(
            {
                "proj:code": f"EPSG:{src.crs.to_epsg()}",
                "proj:transform": list(src.transform)[:6],
                "proj:shape": [src.height, src.width],
            }
        )


def _dn(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, out_shape=(549, 549), resampling=rasterio.enums.Resampling.nearest)


@pytest.mark.realdata
def test_earth_search_cogs_keep_their_raster_bands_scaling(real_data):
    item = pystac.Item.from_file(str(real_data / COGS / "S2A_29RKH_20200219_0_L2A.json"))
    files = {"red": "B04.tif", "nir": "B08.tif", "scl": "SCL.tif"}
    for key, name in files.items():
        _local(item.assets[key], real_data / COGS / name)
    ds = ard.prepare_s2([item], geobox=TILE_200M, bands=("red", "nir"), resampling="nearest")
    red = ds.red.values[0]
    np.testing.assert_allclose(red, _dn(real_data / COGS / "B04.tif") * 1e-4, atol=1e-7)
    # PROVENANCE: thin cirrus and clouds (SCL 8, 9, 10) cover 4.06 % of the tile, NDVI ~ 0.066.
    assert abs(1 - float(ds.valid.mean()) - 0.0406) < 0.003
    ndvi = (ds.nir - ds.red) / (ds.nir + ds.red)
    assert abs(float(np.nanmedian(ndvi.where(ds.valid).values)) - 0.066) < 0.02


@pytest.mark.realdata
def test_planetary_computer_offset_comes_from_the_processing_baseline(real_data):
    raw = pystac.Item.from_file(str(real_data / PC_ITEM))
    assert not any("raster:bands" in a.extra_fields for a in raw.assets.values())
    raw.clear_links()  # offline: no root to resolve
    local = {"B04": "B04.tif", "B08": "B08.tif", "SCL": "SCL.tif"}
    for key in list(raw.assets):  # only the assets whose pixels are here, on their own grid
        if key in local:
            _local(raw.assets[key], real_data / COGS / local[key])
        else:
            del raw.assets[key]
    raw.properties["proj:code"] = (
        "EPSG:32629"  # the pixels are the decimated tile's: so is the footprint
    )
    raw.geometry, raw.bbox = (
        TILE_200M.extent.to_crs(4326).json,
        list(TILE_200M.extent.to_crs(4326).boundingbox),
    )
    item = normalise_item(raw, get_profile("planetary-computer", "sentinel-2-l2a"))
    dn = _dn(real_data / COGS / "B04.tif").astype("float64")

    def red(it: pystac.Item) -> np.ndarray:
        ds = ard.prepare_s2([it], geobox=TILE_200M, bands=("red", "nir"), resampling="nearest")
        return ds.red.values[0]

    assert item.properties["s2:processing_baseline"] == "02.12"
    np.testing.assert_allclose(red(item), dn / 1e4, atol=1e-7)  # before 04.00: no offset
    later = item.clone()
    later.properties["s2:processing_baseline"] = "04.00"
    np.testing.assert_allclose(red(later), (dn - 1000) / 1e4, atol=1e-7)
    unknown = item.clone()
    del unknown.properties["s2:processing_baseline"]
    with pytest.raises(ARDError, match=r"raster:bands.*s2:processing_baseline"):
        red(unknown)


@pytest.mark.realdata
@pytest.mark.parametrize(("product", "offset"), [(N0400, -1000), (N0214, 0)])
def test_cdse_safe_zip_read_in_place_reflectance_and_scl(real_data, tmp_path, product, offset):
    archive, dns, scl = make_safe(real_data, tmp_path, product)
    assert zipfile.is_zipfile(archive)
    item = ard.s2_product_item(archive)
    assert item.assets["red"].href.startswith("/vsizip/")
    assert item.properties["s2:processing_baseline"] == {N0400: "04.00", N0214: "02.14"}[product]
    ds = ard.prepare_s2(archive, bands=("red", "nir", "swir16"))
    assert ds.red.dtype == np.float32 and ds.red.chunks is not None  # lazy
    for band, physical in (("red", "B04"), ("nir", "B08")):
        want = (dns[physical].astype("float64") + offset) / 10000
        got = ds[band].values[0]
        assert np.isnan(got[0, :3]).all()  # DN 0 is no data
        np.testing.assert_allclose(got[1:], want[1:], atol=1e-7)  # float32 of (DN + off) / Q
    # SCL from R20m, nearest onto 10 m: classes 0..11 map to the contract's bits.
    q = ds.quality.values[0][::2, ::2][1:]  # rows past the DN-0 pixels
    s = scl[1:]
    for cls, bit in ((1, "saturated"), (2, "dark"), (3, "shadow"), (6, "water"), (8, "cloud"),
                     (9, "cloud"), (10, "cirrus"), (11, "snow")):  # fmt: skip
        assert (q[s == cls] & (1 << BITS[bit])).all()
    assert ((q[s == 4] == 0) & (q[s == 5] == 0)).all()
    assert not ds.valid.values[0][::2, ::2][1:][np.isin(s, (0, 1, 3, 8, 9, 10))].any()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]  # read in place, nothing unpacked


@pytest.mark.realdata
def test_safe_folder_matches_zip_and_incomplete_products_are_refused(real_data, tmp_path):
    folder, dns, _ = make_safe(real_data, tmp_path / "f", zipped=False)
    ds = ard.prepare_s2(folder, bands=("red",))
    np.testing.assert_allclose(ds.red.values[0][1:], (dns["B04"][1:] - 1000.0) / 1e4, atol=1e-7)
    # A band file missing: refused, naming the band and where it should be.
    partial, _, _ = make_safe(real_data, tmp_path / "p", drop="_B04_10m")
    with pytest.raises(ARDError, match=r"lacks the B04 band at 10 m"):
        ard.prepare_s2(partial, bands=("red",))
    # Baseline 04.00 metadata without BOA_ADD_OFFSET: never guessed.
    mtd = folder / "MTD_MSIL2A.xml"
    text = mtd.read_text()
    start, end = (
        text.index("<BOA_ADD_OFFSET_VALUES_LIST>"),
        text.index("</BOA_ADD_OFFSET_VALUES_LIST>"),
    )
    mtd.write_text(text[:start] + text[end + len("</BOA_ADD_OFFSET_VALUES_LIST>") :])
    with pytest.raises(ARDError, match="BOA_ADD_OFFSET"):
        ard.s2_product_item(folder)
    mtd.unlink()
    (folder / "MTD_MSIL1C.xml").write_text("<L1C/>")
    with pytest.raises(ARDError, match="run Sen2Cor"):
        ard.s2_product_item(folder)


def _expected_maja_bits(m: dict[str, np.ndarray]) -> np.ndarray:
    clm, mg2, sat, edg = m["CLM"], m["MG2"], m["SAT"], m["EDG"]
    q = np.zeros(clm.shape, "uint8")
    for raised, name in (
        (edg != 0, "nodata"), (sat != 0, "saturated"), ((clm & 0b1110) != 0, "cloud"),
        ((clm & 0b1100000) != 0, "shadow"), ((clm & 0b10010000) != 0, "cirrus"),
        ((mg2 & 1) != 0, "water"), ((mg2 & 4) != 0, "snow"), ((mg2 & 8) != 0, "shadow"),
        ((mg2 & 16) != 0, "dark"),
    ):  # fmt: skip
        q |= np.where(raised, 1 << BITS[name], 0).astype("uint8")
    return q


def test_maja_folder_reflectance_and_masks_into_quality_bits(tmp_path):
    root, arrays = make_maja(tmp_path)
    item = ard.s2_product_item(root)
    assert item.id == MAJA_ID and {"clm", "mg2", "sat", "edg"} <= set(item.assets)
    ds = ard.prepare_s2(root, bands=("blue", "green", "red", "nir"))
    red = ds.red.values[0]
    assert np.isnan(red[0, :3]).all()  # -10000 is no data
    np.testing.assert_allclose(red[1:], arrays["B4"][1:] / 1e4, atol=1e-7)
    want = _expected_maja_bits(arrays)
    want[0, :3] |= 1 << BITS["nodata"]
    np.testing.assert_array_equal(ds.quality.values[0], want)
    valid = (arrays["CLM"] == 0) & (arrays["SAT"] == 0) & (arrays["EDG"] == 0)
    valid[0, :3] = False
    np.testing.assert_array_equal(ds.valid.values[0], valid)
    assert ds.attrs["invalid_scl_classes"] == "maja:CLM|SAT|EDG"


def test_maja_without_metadata_or_mask_is_refused(tmp_path):
    root, _ = make_maja(tmp_path / "a", complete=False)
    with pytest.raises(MusLabError, match="REFLECTANCE_QUANTIFICATION_VALUE"):
        ard.prepare_s2(root)
    root, _ = make_maja(tmp_path / "b")
    (root / "MASKS" / f"{MAJA_ID}_CLM_R1.tif").unlink()
    with pytest.raises(ARDError, match="CLM mask"):
        ard.s2_product_item(root)
    (root / f"{MAJA_ID}_MTD_ALL.xml").unlink()
    with pytest.raises(ARDError, match=r"MTD_ALL\.xml"):
        ard.s2_product_item(root)


def test_pc_sentinel1_rtc_nodata_becomes_nan(tmp_path):
    path = tmp_path / "vv.tif"
    data = np.full((8, 8), 0.05, "float32")
    data[:2] = -32768
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32",
                       crs="EPSG:32631", transform=Affine(10, 0, 300000, 0, -10, 4900080),
                       nodata=-32768) as dst:  # fmt: skip
        dst.write(data, 1)
    item = pystac.Item("rtc", None, None, pystac.utils.str_to_datetime("2023-01-05T00:00:00Z"), {})
    gbox = GeoBox((8, 8), Affine(10, 0, 300000, 0, -10, 4900080), "EPSG:32631")
    item.geometry, item.bbox = (
        gbox.extent.to_crs(4326).json,
        list(gbox.extent.to_crs(4326).boundingbox),
    )
    item.add_asset("vv", pystac.Asset(str(path), media_type="image/tiff", roles=["data"], extra_fields={
        "proj:epsg": 32631, "proj:transform": list(gbox.transform)[:6], "proj:shape": [8, 8],
        "raster:bands": [{"nodata": -32768, "data_type": "float32"}]}))  # fmt: skip
    item.collection_id = "sentinel-1-rtc"
    from mus_lab import cube

    vv = cube.load([item], ("vv",), geobox=gbox).vv.values[0]
    assert np.isnan(vv[:2]).all() and np.allclose(vv[2:], 0.05)


def test_product_items_need_a_product(tmp_path):
    with pytest.raises(ARDError, match="neither a product folder nor a zip"):
        ard.s2_product_items([tmp_path / "nothing.zip"])
