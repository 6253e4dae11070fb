"""SAR ARD on the reference grid: Sentinel-1 geocoded sigma0 and RCM product folders."""

from __future__ import annotations

import shutil

import numpy as np
import pystac
import pytest
import rasterio
from scipy import ndimage

from mus_lab import catalog, cube, set_options
from mus_lab.ard import (
    S2Options,
    SarOptions,
    SarProduct,
    SpeckleFilterError,
    open_rcm,
    prepare_rcm,
    prepare_s1,
    prepare_s2,
)
from mus_lab.errors import ARDError
from mus_lab.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def found(scenario):  # type: ignore[no-untyped-def]
    return {
        key: catalog.search(scenario.catalog_path, collections=cid)
        for key, cid in (("s2", "sentinel-2-l2a"), ("s1", "sentinel-1-grd"), ("rcm", "rcm-grd"))
    }


@pytest.fixture(scope="module")
def cubes(found):  # type: ignore[no-untyped-def]
    with raise_if_dask_computes():
        s2 = prepare_s2(found["s2"], bands=("red", "nir"))
        gbox = cube.geobox_of(s2)
        s1 = prepare_s1(found["s1"], geobox=gbox, db=True)
        rcm = prepare_rcm(found["rcm"], geobox=gbox, db=True)
    return {"s2": s2, "s1": s1, "rcm": rcm}


def test_lazy_and_on_one_grid(cubes) -> None:  # type: ignore[no-untyped-def]
    gbox = cube.check_same_grid(*cubes.values(), names=list(cubes))
    assert gbox.crs.epsg == 32618 and gbox.shape == (128, 128)
    for name in ("s1", "rcm"):
        ds = cubes[name]
        assert {"vv", "vh", "valid", "quality"} <= set(ds.data_vars)
        assert ds.vv.dtype == np.float32 and ds.quality.dtype == np.uint8
        assert ds.vv.chunks is not None and ds.attrs["db"] == 1
        assert {"orbit_state", "relative_orbit"} <= set(ds.coords)
        assert set(np.unique(ds.orbit_state.values)) <= {"ascending", "descending"}


def test_speckle_options_stay_lazy(found, cubes) -> None:  # type: ignore[no-untyped-def]
    gbox = cube.geobox_of(cubes["s2"])
    with raise_if_dask_computes():
        s1 = prepare_s1(found["s1"], geobox=gbox, speckle="lee", window=5)
        rcm = prepare_rcm(
            found["rcm"][:1], geobox=gbox, speckle="refined_lee", calibration="gamma0"
        )
    assert rcm.attrs["calibration"] == "gamma0" and s1.attrs["speckle"] == "lee"
    raw = prepare_s1(found["s1"], geobox=gbox).vv.isel(time=0).values
    filt = s1.vv.isel(time=0).values
    ok = np.isfinite(raw) & np.isfinite(filt)
    assert np.nanstd(filt[ok]) < np.nanstd(raw[ok])  # speckle reduced
    assert np.isfinite(rcm.vv.values).mean() > 0.9


def _water_land(scenario) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    with rasterio.open(scenario.landcover) as ds:
        lc = ds.read(1)
    # interiors only: mixed pixels at 16/20 m -> 10 m blur the shores
    return ndimage.binary_erosion(lc == 4, iterations=2), ndimage.binary_erosion(
        lc != 4, iterations=2
    )


def test_s1_and_rcm_agree_and_see_water(cubes, scenario) -> None:  # type: ignore[no-untyped-def]
    s1 = cubes["s1"].vv.median("time").values
    rcm = cubes["rcm"].vv.median("time").values
    valid = cubes["s1"].valid.all("time").values & cubes["rcm"].valid.all("time").values
    ok = valid & np.isfinite(s1) & np.isfinite(rcm)
    assert ok.mean() > 0.9
    assert np.corrcoef(s1[ok], rcm[ok])[0, 1] > 0.6
    water, land = _water_land(scenario)
    assert water.sum() > 50
    for db in (s1, rcm):
        assert np.nanmedian(db[water]) < np.nanmedian(db[land]) - 8


def test_validity_follows_the_contract(cubes) -> None:  # type: ignore[no-untyped-def]
    from mus_lab.contracts import SAR_QUALITY_BITS, invalid_bits

    for name in ("s1", "rcm"):
        ds = cubes[name].isel(time=0).compute()
        bits = set(np.unique(ds.quality.values))
        allowed = {0, 1 << SAR_QUALITY_BITS["nodata"], 1 << SAR_QUALITY_BITS["unusable"]}
        assert bits <= allowed and 0 in bits
        assert ds.valid.dtype == bool and ds.valid.values.any()
        np.testing.assert_array_equal(
            ds.valid.values, (ds.quality.values & invalid_bits("sar")) == 0
        )
        assert np.isfinite(ds.vv.values[ds.valid.values]).all()


def test_rcm_errors_say_what_to_do(found, tmp_path) -> None:  # type: ignore[no-untyped-def]
    item = found["rcm"].items[0].clone()
    del item.assets["product"]
    with pytest.raises(ARDError, match="'product' asset"):
        prepare_rcm([item])
    src = pystac.Item.from_dict(found["rcm"].items[0].to_dict())
    folder = tmp_path / src.id
    product = found["rcm"].items[0].assets["product"].get_absolute_href()
    shutil.copytree(str(product).rsplit("/metadata/", 1)[0], folder)
    (folder / "metadata" / "calibration" / "lutSigma_VV.xml").unlink()
    src.assets["product"].href = str(folder / "metadata" / "product.xml")
    with pytest.raises(ARDError, match=r"LUT.*missing"):
        prepare_rcm([src])


def test_options_object_and_keywords_are_one_call(found, cubes) -> None:  # type: ignore[no-untyped-def]
    gbox = cube.geobox_of(cubes["s2"])
    opts = SarOptions(db=True, speckle="lee", window=5)
    with raise_if_dask_computes():
        a = prepare_s1(found["s1"], geobox=gbox, options=opts)
        b = prepare_s1(found["s1"], geobox=gbox, db=True, speckle="lee", window=5)
        c = prepare_s1(found["s1"], geobox=gbox, options=opts, window=3)
    assert a.vv.data.name == b.vv.data.name != c.vv.data.name  # same graph, override wins
    assert a.attrs == b.attrs


def test_options_are_checked_early(found) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ARDError, match="unknown option"):
        prepare_s1(found["s1"], speckel="lee")
    with pytest.raises(ARDError, match="calibration='sigma0'"):
        prepare_s1(found["s1"], calibration="gamma0")
    with pytest.raises(SpeckleFilterError, match="window=4"):
        SarOptions(speckle="lee", window=4)
    with pytest.raises(ARDError, match="takes a SarOptions"):
        prepare_rcm(found["rcm"], options=S2Options())


def test_rcm_native_chunks_come_from_the_settings(found, cubes) -> None:  # type: ignore[no-untyped-def]
    prod = open_rcm(found["rcm"].items[0].assets["product"].get_absolute_href())
    assert isinstance(prod, SarProduct)
    with set_options(chunk_size=32):
        assert prod.open_dn("VV").data.chunksize == (32, 32)
    assert prod.open_dn("VV", chunks=16).data.chunksize == (16, 16)
