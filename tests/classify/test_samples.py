"""Samples from polygons: exact pixels, chunk independence, split by polygon, balancing, errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from mus_lab.classify import balance, extract_samples, feature_cube, split_by_polygon
from mus_lab.errors import MusLabError, SamplesError
from mus_lab.testing import raise_if_dask_computes

from .conftest import px_box


def test_samples_are_the_pixels_inside_each_polygon(problem, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, truth, polys = problem
    path = tmp_path / "ref.gpkg"
    polys.to_file(path, layer="reference")
    fc = feature_cube(ds)
    smp = extract_samples(fc, path, layer="reference", region_field="region")
    # 12 polygons of 6 rows x 12 columns (strip of 16 minus 2 on each side)
    assert len(smp) == 12 * 6 * 12
    assert smp.classes == (1, 2, 3)
    assert dict(smp.class_names) == {1: "crops", 2: "forest", 3: "water"}
    np.testing.assert_array_equal(smp.y, truth[smp.row, smp.col])
    np.testing.assert_array_equal(smp.X, fc.values[:, smp.row, smp.col].T)
    assert smp.features == tuple(fc.feature.values)
    counts = smp.counts()
    assert counts.loc[2, "polygons"] == 4 and counts.loc[2, "pixels"] == 288
    assert set(np.unique(smp.region)) == {1, 2}
    assert smp.crs == "EPSG:32633" and smp.resolution == (10.0, 10.0)


def test_extraction_reads_chunks_lazily_and_gives_the_same_samples(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    whole = extract_samples(feature_cube(ds), polys)
    with raise_if_dask_computes():
        lazy = feature_cube(ds.chunk({"y": 10, "x": 7}))  # building the cube computes nothing
    chunked = extract_samples(lazy, polys)
    order_w = np.lexsort((whole.col, whole.row))
    order_c = np.lexsort((chunked.col, chunked.row))
    np.testing.assert_array_equal(whole.X[order_w], chunked.X[order_c])
    np.testing.assert_array_equal(whole.polygon[order_w], chunked.polygon[order_c])


def test_polygons_in_another_crs_are_reprojected(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    a = extract_samples(feature_cube(ds), polys)
    b = extract_samples(feature_cube(ds), polys.to_crs("EPSG:4326"))
    assert abs(len(a) - len(b)) <= 12  # pixel-centre ties on reprojected edges only


def test_split_is_by_polygon_seeded_and_per_class(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    smp = extract_samples(feature_cube(ds), polys)
    train, val = split_by_polygon(smp, train_ratio=0.5, seed=1)
    assert not set(train.polygon) & set(val.polygon)
    assert len(train) + len(val) == len(smp)
    for c in (1, 2, 3):  # 4 polygons per class -> 2 train, 2 validate
        assert np.unique(train.polygon[train.y == c]).size == 2
        assert np.unique(val.polygon[val.y == c]).size == 2
    again, _ = split_by_polygon(smp, train_ratio=0.5, seed=1)
    np.testing.assert_array_equal(again.polygon, train.polygon)
    other = {tuple(np.unique(split_by_polygon(smp, seed=s)[0].polygon)) for s in range(6)}
    assert len(other) > 1
    three, one = split_by_polygon(smp, train_ratio=0.75, seed=0)
    assert np.unique(three.polygon).size == 9 and np.unique(one.polygon).size == 3
    with pytest.raises(SamplesError, match="train_ratio"):
        split_by_polygon(smp, train_ratio=1.0)


def test_split_per_region_keeps_regions_on_both_sides(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    smp = extract_samples(feature_cube(ds), polys, region_field="region")
    train, val = split_by_polygon(smp, seed=0)
    for reg in (1, 2):
        for c in (1, 2, 3):
            assert np.any((train.region == reg) & (train.y == c))
            assert np.any((val.region == reg) & (val.y == c))


def test_balance_caps_pixels_per_class(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    smp = extract_samples(feature_cube(ds), polys)
    small = balance(smp, max_per_class=50, seed=0)
    assert small.counts()["pixels"].tolist() == [50, 50, 50]
    np.testing.assert_array_equal(
        small.y, smp.y[np.isin(smp.row * 1000 + smp.col, small.row * 1000 + small.col)]
    )


def test_polygons_outside_the_cube(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    far = polys.translate(xoff=1e5)
    with pytest.raises(SamplesError, match="overlaps the cube") as err:
        extract_samples(
            feature_cube(ds), gpd.GeoDataFrame(polys.drop(columns="geometry"), geometry=far)
        )
    assert isinstance(err.value, MusLabError)


def test_missing_label_field_names_the_fields(problem, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    with pytest.raises(SamplesError, match=r"no label field 'LULC_ID'.*'code'"):
        extract_samples(feature_cube(ds), polys, label="LULC_ID")
    with pytest.raises(SamplesError, match="Cannot read"):
        extract_samples(feature_cube(ds), tmp_path / "nothing.gpkg")
    with pytest.raises(SamplesError, match="region field"):
        extract_samples(feature_cube(ds), polys, region_field="ecoregion")


def test_class_without_valid_pixel_after_masking(problem) -> None:  # type: ignore[no-untyped-def]
    ds, _truth, polys = problem
    masked = ds.where(ds.ndvi > -0.1)  # water (NDVI -0.3) becomes no data everywhere
    fc = feature_cube(masked)
    with pytest.raises(
        SamplesError, match=r"class 3 \(water: 4 polygons, 288 pixels, all masked\)"
    ):
        extract_samples(fc, polys)
    ok = extract_samples(fc, polys, classes=[1, 2])
    assert ok.classes == (1, 2) and set(np.unique(ok.y)) == {1, 2}
    tiny = polys.copy()
    tiny.loc[tiny.code == 3, "geometry"] = px_box(5, 40, 5.2, 40.2)  # smaller than a pixel
    with pytest.raises(SamplesError, match="no pixel centre inside"):
        extract_samples(feature_cube(ds), tiny)
    with pytest.raises(SamplesError, match="outside 1-254"):
        extract_samples(feature_cube(ds), polys.assign(code=polys.code * 100))
