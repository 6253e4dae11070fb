"""S2 ARD on the generated scenario: reflectance, masks, time series, writing into the catalog."""

from __future__ import annotations

import dask
import numpy as np
import pystac
import pytest
import rasterio

from mus_lab import ard, catalog, cube
from mus_lab.errors import ARDError


class _NoCompute:
    def __call__(self, *args, **kwargs):
        raise AssertionError("computed at preparation time")


@pytest.fixture(scope="module")
def s2(scenario):
    return catalog.search(scenario.catalog_path, collections="sentinel-2-l2a")


@pytest.fixture(scope="module")
def prepared(s2):
    with dask.config.set(scheduler=_NoCompute()):
        return ard.prepare_s2(s2, chunks=64)


def test_prepare_s2_is_lazy_and_on_the_s2_grid(prepared, s2):
    assert set(ard.S2_BANDS) <= set(prepared.data_vars)
    assert prepared.red.chunks is not None and prepared.quality.dtype == np.uint8
    assert prepared.odc.geobox == cube.reference_geobox(s2)


def test_reflectance_is_right_on_both_sides_of_the_baseline(prepared, scenario):
    """Offsets come from each item: water stays dark in NIR before and after 2022-01-25."""
    with rasterio.open(scenario.landcover) as src:
        lc = src.read(1)
    water = lc == 4
    base = prepared.processing_baseline.values.astype(str)
    nir = prepared.nir.where(prepared.valid).values
    for new in (True, False):
        dates = np.array([(b >= "04.00") == new for b in base])
        vals = nir[dates][:, water]
        assert np.isfinite(vals).any()
        assert np.nanmedian(vals) < 0.08
    veg = np.isin(lc, (1, 2, 3))
    assert np.nanmedian(nir[:, veg]) > 0.15
    assert np.nanmin(prepared.red.values) > -0.05


def test_quality_bits_match_scl_and_valid_excludes_clouds(prepared, s2):
    raw = cube.load(s2, "scl")
    scl = raw.scl.values
    q = prepared.quality.values
    cloud = np.isin(scl, (8, 9))
    assert cloud.any()
    assert np.all(q[cloud] & (1 << ard.QUALITY_BITS["cloud"]))
    assert not prepared.valid.values[cloud].any()
    shadow = scl == 3
    assert np.all(q[shadow] & (1 << ard.QUALITY_BITS["shadow"]))


def test_cubic_20m_kernel_and_nearest_mask(s2):
    near = (
        ard.prepare_s2(s2, bands=("swir16", "red"), resampling="nearest")
        .swir16.isel(time=-1)
        .values
    )
    cub = ard.prepare_s2(s2, bands=("swir16", "red")).swir16.isel(time=-1).values

    # nearest repeats 20 m pixels in 2x2 blocks; the cubic kernel does not.
    def same_in_blocks(a):
        a00, a11 = a[0::2, 0::2], a[1::2, 1::2]
        ok = np.isfinite(a00) & np.isfinite(a11)
        return float((a00[ok] == a11[ok]).mean())

    assert same_in_blocks(near) > 0.99
    assert same_in_blocks(cub) < 0.5


def test_missing_offset_metadata_is_refused(s2, real_data):
    items = [it.clone() for it in s2]
    for it in items:
        for a in it.assets.values():
            a.extra_fields.pop("raster:bands", None)
    # Without raster:bands the processing baseline decides (Planetary Computer items).
    by_baseline = ard.prepare_s2(items[:2], bands=("red",), chunks=64)
    assert by_baseline.red.dtype == np.float32
    for it in items:
        del it.properties["s2:processing_baseline"]
    with pytest.raises(ARDError, match="read_l2a_metadata"):
        ard.prepare_s2(items, bands=("red",))
    mtd = ard.read_l2a_metadata(
        real_data / "s2_l2a_product_metadata/ESA/SENTINEL-2/L2A/data/"
        "S2A_MSIL2A_20220214T070051_N0400_R120_T38KQA_20220214T085403.SAFE"
    )
    ok = ard.prepare_s2(items, bands=("red",), metadata=mtd)
    assert ok.red.dtype == np.float32


def test_missing_band_and_mask_are_clear_errors(s2):
    with pytest.raises(ARDError, match="lacks band"):
        ard.prepare_s2(s2, bands=("red", "coastal"))
    items = [it.clone() for it in s2]
    for it in items:
        del it.assets["scl"]
    with pytest.raises(ARDError, match="no mask asset"):
        ard.prepare_s2(items)


def test_time_series_regular_gapfilled_with_features(prepared):
    ts = ard.s2_time_series(prepared.isel(x=slice(0, 48), y=slice(0, 48)), every_days=10)
    assert np.all(np.diff(ts.time.values) == np.timedelta64(10, "D"))
    assert {"ndvi", "ndwi", "ndwi_iota2", "brightness", "mndwi", "n_valid"} <= set(ts.data_vars)
    vals = ts.ndvi.values
    n_valid = ts.n_valid.values
    assert np.isfinite(vals[:, n_valid > 0]).all()
    assert n_valid.max() <= prepared.sizes["time"]


def test_write_ard_into_the_catalog_and_find_it_again(prepared, s2, scenario, tmp_path):
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(scenario.catalog_path.parent, root)
    sub = prepared.isel(time=slice(0, 3), x=slice(0, 64), y=slice(0, 64))[
        ["red", "nir", "quality", "valid"]
    ]
    coll = ard.write(
        sub, root, "s2-l2a-ard", sources=list(s2)[:3], parameters={"invalid": "0,1,3,8,9,10"}
    )
    assert len(list(coll.get_items())) == 3
    found = catalog.search(root / "catalog.json", collections="s2-l2a-ard")
    assert len(found) == 3
    item = found[0]
    assert item.properties["processing:software"]["mus_lab"]
    assert any(lk.rel == "derived_from" for lk in item.links)
    back = cube.load(found, ("red", "quality"))
    np.testing.assert_allclose(back.red.values, sub.red.values, equal_nan=True)
    np.testing.assert_array_equal(back.quality.values, sub.quality.values)
    with pytest.raises(ARDError, match="overwrite=True"):
        ard.write(sub, root, "s2-l2a-ard")


def test_no_valid_pixel_writes_nothing(prepared, scenario, tmp_path):
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(scenario.catalog_path.parent, root)
    before = sorted(p.name for p in root.iterdir() if p.name != ".locks")
    empty = prepared.isel(time=slice(0, 2), x=slice(0, 16), y=slice(0, 16))[
        ["red", "valid", "quality"]
    ]
    empty["valid"] = empty.valid & False
    with pytest.raises(ARDError, match="No valid pixel"):
        ard.write(empty, root, "empty-ard")
    assert sorted(p.name for p in root.iterdir() if p.name != ".locks") == before
    assert "empty-ard" not in (root / "catalog.json").read_text()
    assert pystac.Catalog.from_file(str(root / "catalog.json"))


def test_truncated_cog_is_a_clear_error_and_nothing_is_written(tmp_path):
    from mus_lab import sample

    sc = sample.generate(
        tmp_path / "sc", size=64, start="2022-04-01", end="2022-05-15", sensors=("s2",)
    )
    items = catalog.search(sc.catalog_path, collections="sentinel-2-l2a")
    href = items[1].assets["red"].get_absolute_href()
    data = open(href, "rb").read()
    with open(href, "wb") as f:
        f.write(data[: len(data) // 2])
    before = sorted(p.name for p in sc.catalog_path.parent.iterdir() if p.name != ".locks")
    ds = ard.prepare_s2(items, bands=("red",))
    with pytest.raises(ARDError, match="corrupt or truncated"):
        ard.write(ds, sc.catalog_path, "bad-ard")
    assert sorted(p.name for p in sc.catalog_path.parent.iterdir() if p.name != ".locks") == before
