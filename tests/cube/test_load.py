from __future__ import annotations

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from scipy.stats import spearmanr

from mus_lab import catalog, cube
from mus_lab.errors import AssetError, GridMismatchError, InvalidBBoxError, MissingProjectionError
from mus_lab.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def found(scenario):
    return {
        "s2": catalog.search(scenario.catalog_path, collections="sentinel-2-l2a"),
        "s1": catalog.search(scenario.catalog_path, collections="sentinel-1-grd"),
        "rcm": catalog.search(scenario.catalog_path, collections="rcm-grd"),
    }


def test_reference_geobox_is_the_s2_10m_grid(found, scenario):
    gbox = cube.reference_geobox(found["s2"])
    assert gbox.crs.epsg == 32618
    assert abs(gbox.resolution.x) == 10.0 and gbox.resolution.y == -10.0
    assert gbox.shape == (128, 128)
    # The generated S2 10 m asset sits exactly on it.
    with rasterio.open(found["s2"][0].assets["red"].get_absolute_href()) as src:
        assert tuple(src.transform)[:6] == tuple(gbox.affine)[:6]


def test_load_is_lazy_and_chunked(found):
    with raise_if_dask_computes():
        ds = cube.load(found["s2"], ("red", "nir", "scl"), chunks=64)
    assert set(ds.data_vars) == {"red", "nir", "scl"}
    assert ds.red.chunks is not None
    assert ds.red.data.chunksize == (1, 64, 64)
    assert ds.sizes["time"] == len(found["s2"])


def test_deterministic_dask_names(found):
    a = cube.load(found["s2"], "red", chunks=64)
    b = cube.load(found["s2"], "red", chunks=64)
    assert a.red.data.name == b.red.data.name


def test_three_sensors_on_one_grid(found):
    with raise_if_dask_computes():
        cubes = cube.load_sensors(found, bands={"s2": ("red",), "s1": ("vv",), "rcm": ("vv",)})
    gbox = cube.check_same_grid(*cubes.values(), names=list(cubes))
    assert gbox.crs.epsg == 32618 and gbox.shape == (128, 128)
    for ds in cubes.values():
        assert ds.odc.geobox == gbox
    # RCM (EPSG:3978, 16 m, uint16 DN with nodata 0) resampled onto the grid carries
    # values, not just nodata.
    rcm = cubes["rcm"].vv.isel(time=0).values
    assert rcm.dtype == np.uint16
    assert (rcm > 0).mean() > 0.95


def test_s1_and_rcm_agree_after_reprojection(found):
    """Both radars see the same landscape: their maps rank-correlate on the common grid.

    RCM assets are magnitude DN (calibration needs the product's LUTs, an ARD step, see
    tests/ard/test_prepare_sar.py); DN is monotonic in sigma0 up to a smooth per-column
    gain, so ranks of the temporal mean DN must follow the ranks of S1 sigma0.
    """
    cubes = cube.load_sensors(
        {"s1": found["s1"], "rcm": found["rcm"]}, bands={"s1": ("vv",), "rcm": ("vv",)}
    )
    s1 = cubes["s1"].vv.mean("time").values
    rcm_dn = cubes["rcm"].vv
    rcm = (rcm_dn.astype("float64") ** 2).where(rcm_dn > 0).mean("time").values
    ok = np.isfinite(s1) & np.isfinite(rcm)
    assert spearmanr(s1[ok], rcm[ok]).statistic > 0.6


def test_scaling_follows_the_processing_baseline(found):
    ds = cube.load(found["s2"], ("red", "scl"))
    scale, offset = cube.scaling(ds, "red")
    baseline = ds.processing_baseline.values.astype(str)
    new = np.array([b >= "04.00" for b in baseline])
    assert new.any() and (~new).any(), "scenario must straddle 2022-01-25"
    np.testing.assert_allclose(offset.values[new], -0.1)
    np.testing.assert_allclose(offset.values[~new], 0.0)
    np.testing.assert_allclose(scale.values, 1e-4)
    assert "scl_offset" not in ds.coords  # scl has no scaling


def test_odc_and_stackstac_loaders_agree(found):
    a = cube.load(found["s2"], "red", loader="odc").red.values
    b = cube.load(found["s2"], "red", loader="stackstac").red.values
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_bbox_subset_and_wrong_order(found, scenario):
    x0, y0, x1, y1 = scenario.bbox
    mid = ((x0 + x1) / 2, (y0 + y1) / 2)
    ds = cube.load(found["s2"], "red", bbox=(x0, y0, mid[0], mid[1]))
    assert 50 <= ds.sizes["x"] <= 80 and 50 <= ds.sizes["y"] <= 80
    with pytest.raises(InvalidBBoxError, match=r"corners swapped.*use \("):
        cube.load(found["s2"], "red", bbox=(x1, y0, x0, y1))


def test_missing_asset_is_a_clear_error(found):
    with pytest.raises(AssetError, match=r"has no asset.*Choose bands among"):
        cube.load(found["s2"], ("red", "B04"))


def test_missing_projection_is_a_clear_error(found):
    item = found["s2"][0].clone()
    for key in [k for k in item.properties if k.startswith("proj:")]:
        del item.properties[key]
    for asset in item.assets.values():
        for key in [k for k in asset.extra_fields if k.startswith("proj:")]:
            del asset.extra_fields[key]
    with pytest.raises(MissingProjectionError, match="projection extension"):
        cube.load([item], "red")


def test_grid_mismatch_is_refused(found):
    a = cube.load(found["s2"], "red")
    b = cube.load(found["s2"], "red", resolution=20)
    with pytest.raises(GridMismatchError, match="different grids"):
        cube.check_same_grid(a, b)
    with pytest.raises(GridMismatchError, match="no pixel grid"):
        cube.check_same_grid(a, xr.Dataset({"v": ("t", [1])}))


def test_items_without_results_is_a_clear_error():
    from mus_lab.errors import CubeError

    with pytest.raises(CubeError, match="No items to load"):
        cube.load([], "red")
    with pytest.raises(CubeError, match=r"pystac\.Item"):
        cube.load([{"id": "x"}], "red")


def test_chunking_never_changes_values(found):
    a = cube.load(found["s1"], "vv", chunks=32).vv.values
    b = cube.load(found["s1"], "vv", chunks=128).vv.values
    np.testing.assert_array_equal(a, b)


def test_pystac_item_collection_accepted(found):
    ic = pystac.ItemCollection(list(found["s1"]))
    ds = cube.load(ic, "vh")
    assert ds.sizes["time"] == len(found["s1"])
    assert set(np.unique(ds.orbit_state.values)) == {"ascending", "descending"}
