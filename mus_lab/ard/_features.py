"""Spectral features: IOTA²'s NDVI, NDWI (SWIR-NIR sign) and brightness, plus spyndex indices.

IOTA² conventions (METHODS.md section 3): NDVI = (NIR - Red)/(NIR + Red) with B8, B4;
NDWI = (SWIR - NIR)/(SWIR + NIR) with B11, B8 (the opposite sign of Gao's);
brightness = sqrt(sum of the squared band values of the date). A date with any band at
nodata gives nodata features. Other indices come from the Awesome Spectral Indices
catalogue through ``spyndex`` rather than hand-written formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from mus_lab.ard._s2 import S2_BANDS
from mus_lab.errors import ARDError

__all__ = ["SPYNDEX_BANDS", "iota2_features", "spectral_indices"]

#: Canonical band name -> spyndex/ASI band symbol.
SPYNDEX_BANDS: Mapping[str, str] = {
    "blue": "B",
    "green": "G",
    "red": "R",
    "rededge1": "RE1",
    "rededge2": "RE2",
    "rededge3": "RE3",
    "nir": "N",
    "nir08": "N2",
    "swir16": "S1",
    "swir22": "S2",
}


def _valid(ds: xr.Dataset, bands: Sequence[str], nodata: float | None) -> xr.DataArray:
    ok = xr.DataArray(True)
    for b in bands:
        v = ds[b]
        ok = ok & v.notnull()
        if nodata is not None and not np.isnan(nodata):
            ok = ok & (v != nodata)
    return ok


def iota2_features(
    ds: xr.Dataset,
    *,
    red: str = "red",
    nir: str = "nir",
    swir: str = "swir16",
    bands: Sequence[str] | None = None,
    nodata: float | None = None,
) -> xr.Dataset:
    """IOTA²'s three features per date: ``ndvi``, ``ndwi`` (SWIR-NIR) and ``brightness``.

    Parameters
    ----------
    ds : xarray.Dataset
        Reflectances (any scale; ratios do not depend on it).
    red, nir, swir : str, optional
        Band names to use (B4, B8, B11 by default).
    bands : sequence of str, optional
        Bands entering the brightness (default: every S2 band present).
    nodata : float, optional
        Value marking missing observations (NaN if ``None``); features of a date with
        any band at nodata are set to it.

    Returns
    -------
    xarray.Dataset
        float32 ``ndvi``, ``ndwi`` and ``brightness``, lazy when ``ds`` is.

    Raises
    ------
    ARDError
        A band is missing from ``ds``.

    Examples
    --------
    >>> ds = xr.Dataset({"red": ("x", [0.1]), "nir": ("x", [0.3]), "swir16": ("x", [0.2])})
    >>> round(float(iota2_features(ds).ndvi[0]), 4)
    0.5
    """
    names = list(bands or [b for b in S2_BANDS if b in ds])
    for b in {red, nir, swir, *names}:
        if b not in ds:
            raise ARDError(
                f"iota2_features needs band {b!r}; the cube has {sorted(map(str, ds.data_vars))}."
            )
    fill = np.nan if nodata is None else nodata
    ok = _valid(ds, sorted({red, nir, swir, *names}), nodata)
    r, n, s = ds[red].astype("float32"), ds[nir].astype("float32"), ds[swir].astype("float32")
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (n - r) / (n + r)
        ndwi = (s - n) / (s + n)
    bright = np.sqrt(sum(ds[b].astype("float32") ** 2 for b in names))
    out = xr.Dataset(
        {
            "ndvi": ndvi.where(ok, fill),
            "ndwi": ndwi.where(ok, fill),
            "brightness": xr.DataArray(bright).where(ok, fill),
        }
    )
    return out.astype("float32")


def spectral_indices(
    ds: xr.Dataset,
    names: Sequence[str] = ("NDVI", "NDWI", "MNDWI"),
    *,
    constants: Mapping[str, float] | None = None,
) -> xr.Dataset:
    """Compute indices of the Awesome Spectral Indices catalogue with ``spyndex``, lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        Surface reflectance (0-1) with canonical band names.
    names : sequence of str, optional
        Index names as in the catalogue (``"NDVI"``, ``"NDWI"`` (McFeeters), ``"MNDWI"``...).
    constants : mapping, optional
        Values of index constants (e.g. ``{"L": 0.5}`` for SAVI); catalogue defaults otherwise.

    Returns
    -------
    xarray.Dataset
        One float32 variable per index, named in lower case; lazy when ``ds`` is.

    Raises
    ------
    ARDError
        An unknown index, or a band it needs is missing.

    Examples
    --------
    >>> ds = xr.Dataset({"red": ("x", [0.1]), "nir": ("x", [0.3])})
    >>> round(float(spectral_indices(ds, ["NDVI"]).ndvi[0]), 3)
    0.5
    """
    import spyndex

    params: dict[str, object] = {sym: ds[b] for b, sym in SPYNDEX_BANDS.items() if b in ds}
    out = {}
    for name in names:
        if name not in spyndex.indices:
            raise ARDError(
                f"Unknown spectral index {name!r}: see spyndex.indices for the catalogue."
            )
        idx = spyndex.indices[name]
        missing = [b for b in idx.bands if b not in params and b not in (constants or {})]
        need_const = [b for b in missing if b in spyndex.constants]
        local = dict(params)
        for c in need_const:
            local[c] = (constants or {}).get(c, spyndex.constants[c].default)
        still = [b for b in missing if b not in need_const]
        if still:
            inverse = {v: k for k, v in SPYNDEX_BANDS.items()}
            raise ARDError(
                f"{name} needs bands {[inverse.get(b, b) for b in still]} that the cube lacks: load them too."
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            value = spyndex.computeIndex(index=name, params={k: local[k] for k in idx.bands})
        out[name.lower()] = xr.DataArray(value).astype("float32")
    return xr.Dataset(out)
