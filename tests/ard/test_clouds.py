"""s2cloudless cloud probability: the real packaged model on typical L1C TOA spectra."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mus_lab import ard
from mus_lab.errors import ARDError

pytest.importorskip("s2cloudless")

# Typical Level-1C TOA reflectance (B01 B02 B04 B05 B08 B8A B09 B10 B11 B12).
VEGETATION = (0.12, 0.09, 0.05, 0.09, 0.32, 0.33, 0.10, 0.004, 0.17, 0.08)
WATER = (0.11, 0.08, 0.04, 0.03, 0.02, 0.02, 0.01, 0.002, 0.01, 0.005)
THICK_CLOUD = (0.55, 0.55, 0.56, 0.58, 0.62, 0.62, 0.30, 0.06, 0.42, 0.30)


def _toa(spectra, size=32, chunks=16):
    """Left half the first spectrum, right half the second, two dates (dask-backed)."""
    left, right = spectra
    data = {}
    for i, band in enumerate(ard.S2CLOUDLESS_BANDS):
        a = np.empty((2, size, size), dtype="float32")
        a[:, :, : size // 2] = left[i]
        a[:, :, size // 2 :] = right[i]
        data[band] = (("time", "y", "x"), a)
    ds = xr.Dataset(
        data,
        coords={
            "time": pd.to_datetime(["2022-06-01", "2022-06-11"]),
            "y": np.arange(size)[::-1] * 10.0,
            "x": np.arange(size) * 10.0,
        },
    )
    return ds.chunk({"time": 1, "y": chunks, "x": chunks})


def test_clouds_are_probable_and_vegetation_is_not():
    out = ard.cloud_probability(_toa((VEGETATION, THICK_CLOUD)))
    assert out.cloud_probability.chunks is not None  # lazy
    p = out.cloud_probability.compute()
    assert float(p[:, :, :8].max()) < 0.2
    assert float(p[:, :, -8:].min()) > 0.8
    mask = out.cloud_mask.values
    assert not mask[:, :, :8].any() and mask[:, :, -8:].all()
    # Dilation widens the mask by dilation_size pixels next to the cloud edge.
    assert mask[:, :, 15].all()


def test_water_is_not_cloud_and_missing_values_stay_missing():
    toa = _toa((WATER, VEGETATION)).load()
    toa["nir"][0, 0, 0] = np.nan
    p = ard.cloud_probability(toa.chunk({"y": 16, "x": 16})).cloud_probability.values
    assert np.isnan(p[0, 0, 0])
    assert np.nanmax(p) < 0.3


def test_l2a_bands_alone_are_refused_with_the_fix():
    toa = _toa((VEGETATION, THICK_CLOUD)).drop_vars(["cirrus", "coastal"])
    with pytest.raises(ARDError, match="L1C"):
        ard.cloud_probability(toa)


def test_dn_instead_of_reflectance_is_a_clear_error():
    toa = _toa((VEGETATION, THICK_CLOUD)) * 10000
    with pytest.raises(ARDError, match="DN"):
        ard.cloud_probability(toa).cloud_probability.compute()
