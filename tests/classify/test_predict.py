"""Lazy prediction over a cube (contract outputs, chunk invariance) and chunk-safe sieving."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from mus_lab.classify import (
    extract_samples,
    feature_cube,
    normalised_entropy,
    predict,
    region_map,
    sieve,
    train,
)
from mus_lab.cube import geobox_of
from mus_lab.errors import FeatureMismatchError, ModelError
from mus_lab.testing import raise_if_dask_computes


@pytest.fixture
def fitted(problem):  # type: ignore[no-untyped-def]
    ds, truth, polys = problem
    fc = feature_cube(ds)
    smp = extract_samples(fc, polys, region_field="region")
    return fc, truth, polys, smp, train(smp, "rf", params={"n_estimators": 9, "max_features": 1})


def test_outputs_follow_the_contract_and_stay_lazy(fitted) -> None:  # type: ignore[no-untyped-def]
    fc, truth, _, _, model = fitted
    fc = fc.copy(data=fc.values.copy())
    fc[:, 0, 0] = np.nan  # a pixel without data
    fc[3, 1, 1] = np.inf  # one bad feature is enough
    lazy = fc.chunk({"y": 16, "x": 16})
    with raise_if_dask_computes():
        res = predict(lazy, model)
    assert geobox_of(res.classification) == geobox_of(fc)
    assert res.classification.dtype == np.uint8 and res.confidence.dtype == np.uint8
    assert res.margin.dtype == np.uint8 and res.probability.dtype == np.float32
    assert res.probability.dims == ("class", "y", "x")
    assert res["class"].values.tolist() == [1, 2, 3]
    assert res.class_name.values.tolist() == ["crops", "forest", "water"]
    out = res.compute()
    cls, conf, marg, proba = (
        out[v].values for v in ("classification", "confidence", "margin", "probability")
    )
    assert cls[0, 0] == 0 and conf[0, 0] == 255 and marg[0, 0] == 255 and cls[1, 1] == 0
    assert np.isnan(proba[:, 0, 0]).all()
    ok = cls > 0
    assert (cls[ok] == truth[ok]).mean() > 0.97
    # confidence = share of the 9 trees voting for the winner; margin = top-1 minus top-2
    share = np.sort(proba[:, ok], axis=0)
    np.testing.assert_array_equal(conf[ok], np.rint(100 * share[-1]))
    np.testing.assert_array_equal(marg[ok], np.rint(100 * (share[-1] - share[-2])))
    ent = out.entropy.values  # normalised Shannon entropy of the probabilities
    assert ent[0, 0] == 255 and res.entropy.dtype == np.uint8
    np.testing.assert_array_equal(ent[ok], np.rint(100 * normalised_entropy(proba[:, ok])))
    assert set(np.unique(np.round(share[-1] * 9, 4) % 1)) == {0.0}
    np.testing.assert_array_equal(cls[ok], np.array([1, 2, 3])[np.argmax(proba[:, ok], axis=0)])


def test_chunking_never_changes_the_map(fitted) -> None:  # type: ignore[no-untyped-def]
    fc, _, _, _, model = fitted
    whole = predict(fc, model).compute()
    for chunks in (7, 20):
        parts = predict(fc.chunk({"y": chunks, "x": chunks}), model).compute()
        for v in ("classification", "confidence", "margin"):
            np.testing.assert_array_equal(parts[v].values, whole[v].values)
        np.testing.assert_allclose(parts.probability.values, whole.probability.values)


def test_mismatching_cube_is_refused(fitted) -> None:  # type: ignore[no-untyped-def]
    fc, _, _, _, model = fitted
    with pytest.raises(FeatureMismatchError, match="do not match"):
        predict(fc.isel(feature=slice(1, None)), model)
    coarse = fc.coarsen(y=2, x=2).mean()
    with pytest.raises(FeatureMismatchError, match="trained at"):
        predict(coarse, model)


def test_regional_model_needs_and_uses_a_region_map(fitted) -> None:  # type: ignore[no-untyped-def]
    fc, truth, polys, smp, _ = fitted
    model = train(smp, "rf", params={"n_estimators": 5}, by_region=True)
    with pytest.raises(ModelError, match="regions="):
        predict(fc, model)
    regions = region_map(polys, fc, field="region")
    # polygons of region 1 are the upper rows: the nearest-polygon partition splits at row 24
    assert regions.values[0, 0] == 1 and regions.values[-1, -1] == 2
    # Lazy, block by block: the same partition whatever the chunks.
    chunked = region_map(polys, fc.chunk({"y": 7, "x": 11}), field="region")
    assert chunked.data.numblocks[0] > 1 and chunked.data.numblocks[1] > 1
    np.testing.assert_array_equal(chunked.values, regions.values)
    res = predict(fc.chunk({"y": 16, "x": 16}), model, regions=regions).compute()
    assert (res.classification.values == truth).mean() > 0.97


def _components(a: np.ndarray, connectivity: int) -> list[int]:
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    sizes = []
    for v in np.unique(a):
        if v == 0:
            continue
        lab, _n = ndimage.label(a == v, structure=structure)
        sizes += np.bincount(lab.ravel())[1:].tolist()
    return sizes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sieve_reaches_the_mmu_and_is_chunk_safe(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = ndimage.zoom(rng.integers(1, 5, (12, 12)), 6, order=0)
    noisy = np.where(rng.random(base.shape) < 0.08, rng.integers(1, 5, base.shape), base)
    noisy[30:36, 30:36] = 0  # no data stays no data
    arr = xr.DataArray(noisy.astype("uint8"), dims=("y", "x"))
    whole = sieve(arr, 6).values
    assert min(_components(np.where(whole == 0, 0, whole), 4)) >= 6
    assert (whole[30:36, 30:36] == 0).all() and (whole != 0).sum() == (noisy != 0).sum()
    assert (whole != noisy).sum() > 20  # speckle was removed
    for chunks in (9, 25):
        lazy = arr.chunk({"y": chunks, "x": chunks})
        np.testing.assert_array_equal(sieve(lazy, 6).values, whole)


def test_sieve_streams_by_chunks_and_stays_close_to_gdal() -> None:
    from rasterio.features import sieve as gdal_sieve

    from mus_lab.classify._sieve import halo

    rng = np.random.default_rng(7)
    base = ndimage.zoom(rng.integers(1, 8, (40, 40)), 10, order=0)  # 400 x 400
    noisy = np.where(rng.random(base.shape) < 0.1, rng.integers(1, 8, base.shape), base)
    noisy = noisy.astype("uint8")
    whole = sieve(xr.DataArray(noisy, dims=("y", "x")), 4).values
    assert halo(4) < 100  # the blocks below are really sieved apart, each with its halo
    lazy = sieve(xr.DataArray(noisy, dims=("y", "x")).chunk({"y": 100, "x": 100}), 4)
    assert lazy.data.numblocks == (4, 4)
    np.testing.assert_array_equal(lazy.values, whole)
    gdal = noisy.copy()
    for connectivity in (8, 4):
        gdal = gdal_sieve(gdal, size=4, connectivity=connectivity)
    assert min(_components(gdal, 4)) >= 4 and min(_components(whole, 4)) >= 4
    # Same speckle removed; only the choice among large neighbours differs from GDAL's.
    assert (gdal == whole).mean() > 0.97
    assert ((whole != noisy) == (gdal != noisy)).mean() > 0.97


def test_predict_with_mmu_sieves_only_the_class_map(fitted) -> None:  # type: ignore[no-untyped-def]
    fc, _, _, _, model = fitted
    noisy = fc + xr.DataArray(
        np.random.default_rng(0).normal(0, 0.25, fc.shape).astype("float32"), dims=fc.dims
    )
    raw = predict(noisy, model).compute()
    sieved = predict(noisy.chunk({"y": 16, "x": 16}), model, min_pixels=5).compute()
    assert (sieved.classification != raw.classification).sum() > 0
    assert min(_components(sieved.classification.values, 4)) >= 5
    np.testing.assert_array_equal(sieved.confidence.values, raw.confidence.values)
    with pytest.raises(ModelError, match="min_pixels"):
        sieve(raw.classification, 0)
