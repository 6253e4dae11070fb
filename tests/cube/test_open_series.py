"""A user's own series of GeoTIFFs in one call (issue 16, point 5): per-date files and
per-variable files, dates from names, bands or given, NaN no data, one tolerant grid, every
error named, lazy, and on to feature_cube + extract_samples on EPSG:4326 and on UTM."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.transform import from_origin
from shapely.geometry import box

from mus_lab import ard, classify, cube
from mus_lab.errors import (
    BandMismatchError,
    GridMismatchError,
    GridReprojectedWarning,
    NoSeriesFilesError,
    SeriesDateError,
    SeriesError,
    SeriesGridError,
    UnreadableRasterError,
)
from mus_lab.testing import raise_if_dask_computes
from tests._geographic import (
    ORIGIN,
    RES,
    series_truth,
    write_s1_chip,
    write_s2_chip,
    write_series,
)

N = 32
UTM = from_origin(500_000, 4_000_320, 10, 10)
DATES = ["2023-04-01", "2023-05-01", "2023-06-01"]


def _write(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine = UTM,
    nodata: float | None = 0,
    descriptions: tuple[str, ...] = (),
    tags: tuple[dict[str, str], ...] = (),
) -> Path:
    data = np.asarray(data)
    data = data[None] if data.ndim == 2 else data
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
               "count": data.shape[0], "dtype": data.dtype.name, "transform": transform,
               "crs": crs, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
        for i, t in enumerate(tags, start=1):
            dst.update_tags(i, **t)
    return path


def _bands(value: int, count: int = 2, n: int = 8) -> np.ndarray:
    return np.stack([np.full((n, n), value + 100 * b) for b in range(count)]).astype("int16")


def test_per_date_files_on_epsg4326_sorted_lazy_with_nan_nodata(tmp_path):
    paths = write_series(tmp_path, N, 3)
    with rasterio.open(paths[1], "r+") as dst:  # a gap: no data in a corner of the 2nd date
        dst.write(np.zeros((2, 4, 4), "int16"), window=rasterio.windows.Window(0, 0, 4, 4))
    with raise_if_dask_computes():
        ds = cube.open_series(paths[::-1], chunks=16)
    assert list(ds.data_vars) == ["red", "nir"]
    assert [str(t)[:10] for t in ds.time.values] == DATES
    assert ds.red.dtype == np.float32 and ds.red.chunks == ((1, 1, 1), (16, 16), (16, 16))
    assert "spatial_ref" in ds.coords and ds.odc.geobox.crs.epsg == 4326
    with rasterio.open(paths[0]) as src:
        assert cube.same_grid(cube.geobox_of(ds), GeoBox(src.shape, src.transform, "EPSG:4326"))
        first = src.read(2).astype("float32")
    np.testing.assert_array_equal(ds.nir.isel(time=0).values, first)
    gap = ds.red.isel(time=1).values
    assert np.isnan(gap[:4, :4]).all() and np.isfinite(gap[4:, 4:]).all()
    assert ds.attrs["source_files"] == [str(p) for p in paths]


def test_projected_files_names_bands_dates_and_variables_chosen(tmp_path):
    for day, value in (("20230501", 2000), ("20230401", 1000)):  # S2 product names, no band names
        _write(tmp_path / f"S2B_MSIL2A_{day}T101559_N0509_R065_T33TUM.tif", _bands(value),
               descriptions=())  # fmt: skip
    ds = cube.open_series(tmp_path / "S2B_*.tif")
    assert list(ds.data_vars) == ["band_1", "band_2"]
    assert float(ds.band_2.isel(time=0, y=0, x=0)) == 1100.0  # 2023-04-01 first
    assert cube.describe_grid(ds) == "EPSG:32633, 8 x 8 px of 10 m, origin (500000, 4000320)"
    named = cube.open_series(
        sorted(tmp_path.glob("*.tif")),
        band_names=["red", "nir"],
        variables=["nir"],
        dates=["2023-04-11", "2023-04-01"],  # given: one per file, in the order given
    )
    assert list(named.data_vars) == ["nir"]
    assert [str(t)[:10] for t in named.time.values] == ["2023-04-01", "2023-04-11"]
    assert float(named.nir.isel(time=0, y=0, x=0)) == 2100.0


def test_one_file_per_variable_with_dates_in_descriptions_or_tags(tmp_path):
    order = ["2023-06-01", "2023-04-01", "2023-05-01"]  # bands not in date order
    ndvi = _write(tmp_path / "ndvi.tif", np.stack([np.full((8, 8), v, "float32") for v in
                  (0.6, 0.2, 0.4)]), nodata=np.nan, descriptions=tuple(order))  # fmt: skip
    vv = _write(tmp_path / "vv.tif", np.stack([np.full((8, 8), v, "float32") for v in
                (-8, -12, -10)]), nodata=None,
                tags=tuple({"DATE": d.replace("-", "")} for d in order))  # fmt: skip
    with raise_if_dask_computes():
        ds = cube.open_series({"ndvi": ndvi, "vv": vv})
    assert [str(t)[:10] for t in ds.time.values] == DATES
    np.testing.assert_allclose(ds.ndvi.isel(y=0, x=0).values, [0.2, 0.4, 0.6])
    np.testing.assert_allclose(ds.vv.isel(y=0, x=0).values, [-12, -10, -8])
    given = cube.open_series({"vv": vv}, dates=["2023-01-03", "2023-01-01", "2023-01-02"])
    np.testing.assert_allclose(given.vv.isel(y=0, x=0).values, [-12, -10, -8])


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("s2_2023-04-01.tif", "2023-04-01"),
        ("S1A_IW_GRDH_1SDV_20230402T054512_20230402T054537_047.tif", "2023-04-02"),
        ("LC08_L2SP_193027_20230403_20230410_02_T1.tif", "2023-04-03"),
        ("ndvi_2023_04_04.tiff", "2023-04-04"),
        ("tile_123456789_20231399_20230405.tif", "2023-04-05"),  # not a day, then a day
    ],
)
def test_date_from_name(name, day):
    assert str(cube.date_from_name(Path("some/2020-01-01") / name))[:10] == day


def test_no_files_are_named(tmp_path):
    with pytest.raises(NoSeriesFilesError, match="list of GeoTIFFs"):
        cube.open_series([])
    with pytest.raises(NoSeriesFilesError, match="folder"):
        cube.open_series(tmp_path)
    with pytest.raises(NoSeriesFilesError, match="pattern"):
        cube.open_series(str(tmp_path / "*.tif"))
    with pytest.raises(NoSeriesFilesError, match="empty"):
        cube.open_series({})


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(UnreadableRasterError, match=r"No file .*missing_20230401\.tif"):
        cube.open_series([tmp_path / "missing_20230401.tif"])
    text = tmp_path / "notes_20230401.tif"
    text.write_text("not a raster")
    with pytest.raises(UnreadableRasterError, match=r"notes_20230401\.tif cannot be read"):
        cube.open_series([text])


def test_date_errors_say_the_pattern_and_the_fix(tmp_path):
    a = _write(tmp_path / "a_20230401.tif", _bands(1))
    with pytest.raises(SeriesDateError, match=r"YYYYMMDD, YYYY-MM-DD .* 'plain.tif'.*dates="):
        cube.open_series([a, _write(tmp_path / "plain.tif", _bands(2))])
    same_day = _write(tmp_path / "b_2023-04-01.tif", _bands(2))
    with pytest.raises(SeriesDateError, match="same day"):
        cube.open_series([a, same_day])
    with pytest.raises(SeriesDateError, match="1 dates given for 2 files"):
        cube.open_series([a, same_day], dates=["2023-04-01"])
    undated = _write(tmp_path / "ndvi.tif", _bands(1, 3), descriptions=("2023-04-01", "", "x"))
    with pytest.raises(SeriesDateError, match=r"Band 2 of ndvi\.tif carries no date"):
        cube.open_series({"ndvi": undated})
    dated = _write(tmp_path / "v1.tif", _bands(1, 2), descriptions=("20230401", "20230501"))
    other = _write(tmp_path / "v2.tif", _bands(1, 2), descriptions=("20230401", "20230502"))
    with pytest.raises(SeriesDateError, match="differ"):
        cube.open_series({"v1": dated, "v2": other})


def test_band_errors_are_named(tmp_path):
    two = _write(tmp_path / "x_20230401.tif", _bands(1), descriptions=("red", "nir"))
    three = _write(tmp_path / "x_20230501.tif", _bands(1, 3))
    with pytest.raises(BandMismatchError, match=r"has 3 bands but x_20230401\.tif has 2"):
        cube.open_series([two, three])
    swapped = _write(tmp_path / "x_20230601.tif", _bands(1), descriptions=("nir", "red"))
    with pytest.raises(BandMismatchError, match="band_names"):
        cube.open_series([two, swapped])
    with pytest.raises(BandMismatchError, match="one name per band"):
        cube.open_series([two], band_names=["red"])
    with pytest.raises(BandMismatchError, match=r"No band \['swir'\].*'red', 'nir'"):
        cube.open_series([two], variables=["swir"])
    with pytest.raises(BandMismatchError, match="same dates"):
        cube.open_series({"a": two, "b": three}, dates=["2023-04-01", "2023-05-01"])
    with pytest.raises(SeriesError, match="keys name the variables"):
        cube.open_series({"a": two}, band_names=["red", "nir"])


def test_other_grids_are_refused_in_one_line_or_reprojected_with_a_warning(tmp_path):
    a = _write(tmp_path / "a_20230401.tif", _bands(1000))
    utm34 = _write(tmp_path / "b_20230501.tif", _bands(2000), crs="EPSG:32634")
    with pytest.raises(SeriesGridError, match="resampling=") as err:
        cube.open_series([a, utm34])
    msg = str(err.value)
    assert isinstance(err.value, GridMismatchError) and "\n" not in msg
    assert "EPSG:32634" in msg and "EPSG:32633" in msg and "PROJCS" not in msg
    shifted = _write(tmp_path / "c_20230601.tif", _bands(3000),
                     transform=UTM @ Affine.translation(0.5, 0))  # fmt: skip
    with pytest.warns(GridReprojectedWarning, match=r"1 file\(s\).*c_20230601.tif"):
        ds = cube.open_series([a, shifted], resampling="bilinear")
    assert cube.describe_grid(ds) == cube.describe_grid(GeoBox((8, 8), UTM, "EPSG:32633"))
    assert float(ds.band_1.isel(time=1, y=3, x=3)) == pytest.approx(3000.0)
    no_crs = _write(tmp_path / "d_20230701.tif", _bands(1), crs=None)
    with pytest.raises(SeriesGridError, match="no CRS"):
        cube.open_series([a, no_crs])


def test_grids_within_a_millionth_of_a_pixel_and_like(tmp_path):
    a = _write(tmp_path / "a_20230401.tif", _bands(1000))
    nudged = _write(tmp_path / "b_20230501.tif", _bands(2000),
                    transform=UTM @ Affine.translation(1e-9, 0))  # fmt: skip
    ds = cube.open_series([a, nudged])  # no warning: package warnings are errors in tests
    like = ds.assign_coords(x=ds.x + 1e-7)  # the same grid, coordinates off in the last digits
    on_like = cube.open_series([nudged], like=like)
    assert (on_like.x.values == like.x.values).all()
    other = GeoBox((4, 4), from_origin(500_000, 4_000_320, 20, 20), "EPSG:32633")
    with pytest.raises(SeriesGridError, match="the grid given"):
        cube.open_series([a], like=other)
    with pytest.warns(GridReprojectedWarning):
        coarse = cube.open_series([a], like=other, resampling="average")
    assert coarse.band_1.shape == (1, 4, 4) and float(coarse.band_1.mean()) == 1000.0


def test_memory_stays_flat_no_pixels_in_the_graph(tmp_path):
    paths = write_series(tmp_path, N, 3)
    ds = cube.open_series(paths, chunks=8)
    graph = dict(ds.red.data.__dask_graph__())
    assert len(ds.red.data.__dask_keys__()) == 3  # one list per date
    assert ds.red.data.npartitions == 3 * 4 * 4
    held = [v for v in graph.values() if isinstance(v, np.ndarray) and v.nbytes > 1024]
    assert not held


def _polygons(x0: float, y0: float, rx: float, ry: float, crs: str) -> gpd.GeoDataFrame:
    def cell(c0: int, r0: int, c1: int, r1: int):  # type: ignore[no-untyped-def]
        return box(x0 + c0 * rx, y0 - r1 * ry, x0 + c1 * rx, y0 - r0 * ry)

    return gpd.GeoDataFrame(
        {"code": [1, 2], "poly_id": [1, 2]},
        geometry=[cell(2, 2, N // 2 - 2, N - 2), cell(N // 2 + 2, 2, N - 2, N - 2)],
        crs=crs,
    )


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633"])
def test_user_files_to_gapfilled_features_and_samples(tmp_path, crs):
    paths = write_series(tmp_path, N, 3)
    grid = (ORIGIN[0], ORIGIN[1], RES, RES) if crs == "EPSG:4326" else (500_000, 4_000_320, 10, 10)
    for p in paths:
        with rasterio.open(p, "r+") as dst:
            dst.crs, dst.transform = crs, Affine(grid[2], 0, grid[0], 0, -grid[3], grid[1])
    with rasterio.open(paths[1], "r+") as dst:  # a cloud masked on the 2nd date
        dst.write(np.zeros((2, 8, 8), "int16"), window=rasterio.windows.Window(4, 4, 8, 8))
    with raise_if_dask_computes():
        ds = cube.open_series(paths, chunks=16)
        gaps = ds.to_dataarray().isnull().any("variable")
        filled = ard.gapfill(ds, gaps, dates=ds.time.values, nodata=np.nan)
        features = classify.feature_cube(filled)
    assert list(features.feature.values[:3]) == ["red_20230401", "red_20230501", "red_20230601"]
    smp = classify.extract_samples(features, _polygons(*grid, crs), name_field=None)
    assert [int((smp.y == c).sum()) for c in (1, 2)] == [12 * 28, 12 * 28]
    assert np.isfinite(smp.X).all()  # the cloud was filled from its neighbours in time
    assert (series_truth(N)[2:30, 2:14] == 1).all()
    assert 550 < smp.X[smp.y == 1, 1].mean() < 750  # red of class 1 (600 + 50 per date)


def test_public_dataset_layouts_sen1floods11_s1_and_s2_chips(tmp_path):
    """Float32 dB VV/VH with NaN no data and named bands; 13 int16 L1C bands, nodata 0, no names."""
    s1 = [
        write_s1_chip(tmp_path / f"S1_{d}.tif", 32, seed=i)
        for i, d in enumerate(("20230402", "20230414"))
    ]
    s2 = [
        write_s2_chip(tmp_path / f"S2_{d}.tif", 32, seed=i)
        for i, d in enumerate(("20230403", "20230413"))
    ]
    sar = cube.open_series(s1)
    assert list(sar.data_vars) == ["VV", "VH"] and sar.odc.geobox.crs.epsg == 4326
    assert np.isnan(sar.VV.isel(time=0).values[:2, :2]).all()  # the chip's NaN corner
    l1c = (
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B10",
        "B11",
        "B12",
    )
    opt = cube.open_series(s2, band_names=l1c, variables=["B03", "B11"])
    assert list(opt.data_vars) == ["B03", "B11"]
    assert np.isnan(opt.B11.isel(time=1).values[-2:]).all()  # nodata 0 in the last rows
    assert cube.same_grid(cube.geobox_of(opt), cube.geobox_of(sar))  # one grid, read twice
