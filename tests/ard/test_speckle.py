"""Speckle filters: statistics on synthetic speckle, edges, the real VV crop, chunk invariance."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, ndimage, stats

from mus_lab._settings import get_settings
from mus_lab.ard.sar import SpeckleFilterError, from_db, lee_sigma_range, speckle_filter, to_db
from mus_lab.testing import raise_if_dask_computes

METHODS = ("lee", "refined_lee", "lee_sigma")
ENL = 4.4


def _real_data() -> Path:
    path = get_settings().real_data
    return path if path.is_absolute() else Path(__file__).parents[2] / path


VV_DB = (
    _real_data()
    / "s1_safe_metadata_and_small_rasters"
    / "pyrosar_tests_data"
    / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
)


@pytest.fixture(scope="module")
def speckle() -> np.ndarray:
    """Homogeneous unit-mean Gamma speckle with ENL 4.4, 256 x 256."""
    rng = np.random.default_rng(42)
    return (rng.gamma(ENL, 1 / ENL, size=(256, 256)) * 0.05).astype(np.float32)


def _cv(a: np.ndarray) -> float:
    return float(np.nanstd(a) / np.nanmean(a))


@pytest.mark.parametrize(
    ("method", "min_factor", "max_factor"),
    # CV reduction: no better than averaging the pixels used (49 for Lee, 28 for the
    # refined Lee half windows), clearly better than nothing.
    [("lee", 4.0, 7.5), ("refined_lee", 3.0, 5.6), ("lee_sigma", 3.0, 7.5)],
)
def test_homogeneous_field(
    speckle: np.ndarray, method: str, min_factor: float, max_factor: float
) -> None:
    out = speckle_filter(speckle, method)  # type: ignore[arg-type]
    assert out.shape == speckle.shape and out.dtype == np.float32
    assert _cv(speckle) == pytest.approx(1 / np.sqrt(ENL), rel=0.03)
    factor = _cv(speckle) / _cv(out)
    assert min_factor < factor < max_factor, factor
    assert np.nanmean(out) == pytest.approx(np.mean(speckle), rel=0.02)


def test_step_edge_refined_lee_beats_boxcar() -> None:
    rng = np.random.default_rng(1)
    truth = np.ones((96, 96))
    truth[:, 48:] = 10.0
    img = truth * rng.gamma(ENL, 1 / ENL, size=truth.shape)
    near = slice(45, 51)  # 3 columns each side of the edge
    rows = slice(8, 88)

    def edge_error(a: np.ndarray) -> float:
        return float(np.mean(np.abs(a[rows, near] - truth[rows, near]) / truth[rows, near]))

    boxcar = ndimage.uniform_filter(img, 7)
    refined = speckle_filter(img, "refined_lee")
    assert edge_error(refined) < 0.5 * edge_error(boxcar)
    # and the edge stays a sharp step: the column means jump by ~10x within 1-2 pixels
    col = refined[rows].mean(axis=0)
    assert col[46] < 1.6 and col[49] > 7.5
    for method in ("lee", "lee_sigma"):
        assert edge_error(speckle_filter(img, method)) < edge_error(boxcar)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", METHODS)
def test_nan_stays_local(speckle: np.ndarray, method: str) -> None:
    img = speckle[:64, :64].copy()
    ref = speckle_filter(img, method)  # type: ignore[arg-type]
    img[30, 30] = np.nan
    out = speckle_filter(img, method)  # type: ignore[arg-type]
    assert np.isnan(out[30, 30]) and np.isnan(out).sum() == 1
    far = np.ones_like(img, dtype=bool)
    far[27:34, 27:34] = False  # window 7 -> radius 3
    np.testing.assert_array_equal(out[far], ref[far])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunks", [(17, 23), (64, 5), (100, 100), (8, 8)])
def test_chunking_never_changes_values(speckle: np.ndarray, method: str, chunks: tuple) -> None:
    img = speckle[:70, :90].copy()
    img[10:14, 40:43] = np.nan
    ref = speckle_filter(img, method)  # type: ignore[arg-type]
    lazy = speckle_filter(da.from_array(img, chunks=chunks), method)  # type: ignore[arg-type]
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), ref)


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(3, 40),
    cols=st.integers(3, 40),
    window=st.sampled_from([3, 5, 7]),
)
def test_chunking_property_lee(rows: int, cols: int, window: int) -> None:
    rng = np.random.default_rng(rows * 100 + cols)
    img = rng.gamma(ENL, 1 / ENL, size=(45, 52)).astype(np.float32)
    ref = speckle_filter(img, "lee", window=window)
    got = speckle_filter(da.from_array(img, chunks=(rows, cols)), "lee", window=window)
    np.testing.assert_array_equal(got.compute(), ref)


def test_xarray_lazy_3d_keeps_coords(speckle: np.ndarray) -> None:
    cube = np.stack([speckle[:40, :50], speckle[40:80, :50]])
    x = xr.DataArray(
        da.from_array(cube, chunks=(1, 20, 25)),
        dims=("time", "y", "x"),
        coords={"time": [1, 2], "y": np.arange(40) * 20.0, "x": np.arange(50) * 20.0},
        attrs={"units": "linear"},
    )
    with raise_if_dask_computes():
        out = speckle_filter(x, "lee_sigma")
    assert isinstance(out.data, da.Array) and out.dims == x.dims
    xr.testing.assert_equal(out.coords.to_dataset(), x.coords.to_dataset())
    assert out.attrs["speckle_filter"] == "lee_sigma" and out.attrs["units"] == "linear"
    np.testing.assert_array_equal(out.values[1], speckle_filter(cube[1], "lee_sigma"))


def test_bad_settings() -> None:
    img = np.ones((8, 8), dtype=np.float32)
    with pytest.raises(SpeckleFilterError, match="choose"):
        speckle_filter(img, "frost")  # type: ignore[arg-type]
    with pytest.raises(SpeckleFilterError, match="odd"):
        speckle_filter(img, "lee", window=6)
    with pytest.raises(SpeckleFilterError, match="odd"):
        speckle_filter(img, "refined_lee", window=3)
    with pytest.raises(SpeckleFilterError, match="target_window"):
        speckle_filter(img, "lee_sigma", target_window=9)
    with pytest.raises(SpeckleFilterError, match="enl"):
        speckle_filter(img, "lee", enl=0)


@pytest.mark.parametrize(("enl", "sigma"), [(1.0, 0.9), (4.4, 0.9), (2.0, 0.7)])
def test_lee_sigma_range_properties(enl: float, sigma: float) -> None:
    a1, a2, eta2, q98 = lee_sigma_range(enl, sigma)
    g = stats.gamma(enl, scale=1 / enl)
    assert g.cdf(a2) - g.cdf(a1) == pytest.approx(sigma, abs=1e-9)
    mean = integrate.quad(lambda v: v * g.pdf(v), a1, a2)[0] / sigma
    assert mean == pytest.approx(1.0, abs=1e-7)  # bias-free sigma range
    second = integrate.quad(lambda v: v * v * g.pdf(v), a1, a2)[0] / sigma
    assert eta2 == pytest.approx(second - 1.0, rel=1e-6)
    assert 0 < eta2 < 1 / enl and q98 == pytest.approx(g.ppf(0.98))


@pytest.mark.realdata
@pytest.mark.skipif(not VV_DB.is_file(), reason=f"real VV dB crop absent at {VV_DB}")
@pytest.mark.parametrize("method", METHODS)
def test_real_vv_crop(method: str) -> None:
    import rasterio

    with rasterio.open(VV_DB) as src:
        db = src.read(1, masked=True).filled(np.nan).astype(np.float32)
    lin = from_db(db)
    out = speckle_filter(lin, method)  # type: ignore[arg-type]
    back = to_db(out)
    assert back.shape == db.shape and np.isfinite(back).all()
    assert np.nanmean(out) == pytest.approx(float(np.nanmean(lin)), rel=0.03)
    # the most homogeneous 15 x 15 window of the input (lowest CV of the linear values)
    m = ndimage.uniform_filter(lin.astype(np.float64), 15)
    v = ndimage.uniform_filter(lin.astype(np.float64) ** 2, 15) - m**2
    cv = np.sqrt(np.maximum(v, 0)) / m
    cv[:8], cv[-8:], cv[:, :8], cv[:, -8:] = np.inf, np.inf, np.inf, np.inf
    i, j = np.unravel_index(np.argmin(cv), cv.shape)
    win = (slice(i - 7, i + 8), slice(j - 7, j + 8))

    def enl(a: np.ndarray) -> float:
        return float(np.mean(a[win]) ** 2 / np.var(a[win]))

    assert enl(out) > 1.5 * enl(lin), (enl(lin), enl(out))
