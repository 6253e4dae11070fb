"""Exact IOTA² gap-filling vectors (METHODS.md section 2) and laziness/chunking properties."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from mus_lab.ard import gapfill, gapfill_array
from mus_lab.errors import ARDError

R7 = [0, 1, 2, 3, 4, 5, 6]
VECTORS = [
    ([0, 0, 0, 0, 0, 0, 0], [1, 1, 2, 3, 4, 1, 1], R7, R7, [1, 1, 2, 3, 4, 1, 1]),
    ([1, 1, 1, 1, 1, 1, 1], [1, 1, 2, 3, 4, 1, 1], R7, R7, [0, 0, 0, 0, 0, 0, 0]),
    ([0, 0, 0, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1], R7, R7, [1, 1, 1, 1, 1, 1, 1]),
    ([1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1], R7, R7, [1, 1, 1, 1, 1, 1, 1]),
    ([1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1], R7, R7, [1, 1, 1, 1, 1, 1, 1]),
    ([0, 0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 20, 0], R7, R7, [1, 1, 1, 1, 1, 1, 1]),
    ([0, 0, 0, 1, 0, 0, 0], [1, 1, 2, 3, 4, 1, 1], R7, R7, [1, 1, 2, 3, 4, 1, 1]),
    (
        [0, 0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 4, 1, 1],
        [0, 1, 2, 2.5, 4, 5, 6],
        None,
        [1, 1, 1, 1.75, 4, 1, 1],
    ),
    (
        [0, 0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 4, 1, 1],
        [0, 1, 2, 3, 4, 5, 6],
        None,
        [1, 1, 1, 2.5, 4, 1, 1],
    ),
    (
        [0, 0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 4, 1, 1],
        [0, 1, 2, 3.7, 4, 5, 6],
        None,
        [1, 1, 1, 3.55, 4, 1, 1],
    ),
    (
        [0, 0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 4, 1, 1],
        [0, 1, 2.5, 3.7, 4, 5, 6],
        None,
        [1, 1, 1, 3.4, 4, 1, 1],
    ),
    ([0, 0, 0, 1, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6], R7, R7, [0, 1, 2, 3, 4, 5, 6]),
    (
        [0, 0, 0, 1, 0, 0, 0],
        [1, 1, 1, 0, 4, 1, 1],
        [0, 1, 2, 2.5, 4, 5, 6],
        [0, 1, 2, 4, 5, 6],
        [1, 1, 1, 4, 1, 1],
    ),
    ([0, 0, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 5, 6], R7, [0, 1, 2, 4, 5, 6], [0, 1, 2, 4, 5, 6]),
    ([0, 0, 0, 0, 0, 0], [0, 1, 2, 4, 5, 6], [0, 1, 2, 4, 5, 6], R7, [0, 1, 2, 3, 4, 5, 6]),
]


@pytest.mark.parametrize(("mask", "values", "in_dates", "out_dates", "expected"), VECTORS)
def test_iota2_vectors_exactly(mask, values, in_dates, out_dates, expected):
    out_dates = in_dates if out_dates is None else out_dates
    got = gapfill_array(np.array(values, float), np.array(mask, bool), in_dates, out_dates)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_vectors_vectorised_over_pixels_at_once():
    """All same-date vectors as pixels of one array give the same answers."""
    same = [v for v in VECTORS if v[2] == R7 and v[3] == R7]
    values = np.array([v[1] for v in same], float).T[:, :, None]  # (T, pixels, 1)
    mask = np.array([v[0] for v in same], bool).T[:, :, None]
    got = gapfill_array(values, mask, R7, R7)[:, :, 0].T
    np.testing.assert_allclose(got, [v[4] for v in same], atol=1e-6)


def _cube(t=12, y=20, x=24, chunks=None, seed=0):
    rng = np.random.default_rng(seed)
    vals = rng.random((t, y, x)).astype("float32")
    inv = rng.random((t, y, x)) < 0.4
    times = np.datetime64("2022-01-01") + np.sort(rng.choice(120, t, replace=False)).astype(
        "timedelta64[D]"
    )
    v = xr.DataArray(vals, dims=("time", "y", "x"), coords={"time": times})
    m = xr.DataArray(inv, dims=("time", "y", "x"), coords={"time": times})
    if chunks:
        v, m = v.chunk(chunks), m.chunk(chunks)
    return v, m


def test_xarray_gapfill_is_lazy_regular_and_matches_numpy():
    v, m = _cube(chunks={"time": 3, "y": 7, "x": 11})
    with dask.config.set(scheduler="sync"):
        with dask.config.set(
            scheduler=lambda *a, **k: (_ for _ in ()).throw(AssertionError("computed"))
        ):
            out = gapfill(v, m, every_days=10)
        assert isinstance(out.data, da.Array)
        got = out.values
    times = out.time.values
    assert np.all(np.diff(times) == np.timedelta64(10, "D"))
    assert times[0] == v.time.values.min()
    expected = gapfill_array(v.values, m.values, v.time.values, times)
    np.testing.assert_allclose(got, expected)


@settings(max_examples=15, deadline=None)
@given(cy=st.integers(1, 20), cx=st.integers(1, 24))
def test_chunking_never_changes_values(cy, cx):
    v, m = _cube()
    ref = gapfill(v, m).values
    got = gapfill(v.chunk({"y": cy, "x": cx}), m.chunk({"y": cy, "x": cx})).values
    np.testing.assert_array_equal(got, ref)


def test_no_valid_date_gives_nodata_and_bad_input_errors():
    v, m = _cube()
    out = gapfill(v, xr.ones_like(m, dtype=bool), nodata=-1).values
    assert np.all(out == -1)
    with pytest.raises(ARDError, match="one date per observation"):
        gapfill_array(np.zeros((3, 2)), np.zeros((3, 2), bool), [0, 1], [0, 1])
    with pytest.raises(ARDError, match="increasing"):
        gapfill_array(np.zeros((3, 2)), np.zeros((3, 2), bool), [0, 2, 1], [0, 1])
    with pytest.raises(ARDError, match="time"):
        gapfill(v.isel(time=0), m.isel(time=0))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t=st.integers(1, 15),
    p_invalid=st.floats(0, 1),
    t_out=st.integers(1, 25),
)
def test_kernel_matches_the_numpy_reference(seed, t, p_invalid, t_out):
    from mus_lab.ard._gapfill import _gapfill_numpy

    rng = np.random.default_rng(seed)
    v = rng.random((t, 50)).astype("float32")
    ok = rng.random((t, 50)) >= p_invalid
    t_in = np.sort(rng.choice(100, t, replace=False)).astype(float)
    out_dates = np.sort(rng.uniform(-10, 110, t_out))
    got = gapfill_array(v, ~ok, t_in, out_dates, nodata=-5)
    ref = _gapfill_numpy(v, ok, t_in, out_dates, -5.0)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
