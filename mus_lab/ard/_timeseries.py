"""A regular, gap-filled time series with features, ready for classification (IOTA²'s chain)."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from mus_lab.ard._features import iota2_features, spectral_indices
from mus_lab.ard._gapfill import gapfill
from mus_lab.contracts import RECIPE_ATTR
from mus_lab.errors import ARDError

__all__ = ["s2_time_series"]


def s2_time_series(
    ard: xr.Dataset,
    *,
    every_days: int = 10,
    indices: Sequence[str] = ("NDVI", "NDWI", "MNDWI"),
    iota2: bool = True,
) -> xr.Dataset:
    """Gap-fill S2 ARD onto a regular date grid and add features, lazily.

    Parameters
    ----------
    ard
        Output of :func:`prepare_s2` (reflectance bands, ``valid``).
    every_days
        Spacing of the output dates (IOTA² default 10).
    indices
        Indices from the spectral-index catalogue (spyndex), computed on gap-filled bands.
    iota2
        Add IOTA²'s ``ndwi_iota2`` (SWIR-NIR, B11/B8), ``brightness`` and ``ndvi``.

    Returns
    -------
    xarray.Dataset
        Gap-filled bands and features on the regular dates, and ``n_valid`` (uint16,
        number of valid observations per pixel, no time dimension).

    Raises
    ------
    ARDError
        ``ard`` has no ``valid`` layer, or a bad ``every_days``.

    Examples
    --------
    >>> from mus_lab import catalog
    >>> from mus_lab.ard import prepare_s2, s2_time_series
    >>> s2 = catalog.search(tiny.catalog_path, collections="sentinel-2-l2a")
    >>> ts = s2_time_series(prepare_s2(s2, bands=("green", "red", "nir", "swir16")))
    >>> sorted(ts.data_vars)
    ['brightness', 'green', 'mndwi', 'n_valid', 'ndvi', 'ndwi', 'ndwi_iota2', 'nir', 'red', 'swir16']
    """
    if "valid" not in ard:
        raise ARDError("s2_time_series needs the 'valid' layer of prepare_s2's output.")
    bands = [
        str(n)
        for n, v in ard.data_vars.items()
        if n not in ("valid", "quality") and "time" in v.dims
    ]
    filled = gapfill(ard[bands], ~ard["valid"], every_days=every_days, nodata=float("nan"))
    assert isinstance(filled, xr.Dataset)
    out = filled
    if indices:
        out = out.merge(spectral_indices(filled, indices), compat="override", join="exact")
    if iota2:
        # IOTA²'s NDWI is SWIR-NIR (opposite of the catalogue's McFeeters NDWI): keep both, named apart.
        feats = iota2_features(filled).rename(ndwi="ndwi_iota2")
        if "ndvi" in out:
            feats = feats.drop_vars("ndvi")  # same formula as the catalogue's NDVI
        out = out.merge(feats, compat="override", join="exact")
    out["n_valid"] = ard["valid"].sum("time").astype("uint16")
    out.attrs = dict(ard.attrs, product="s2_l2a_ard_timeseries", gapfill_every_days=every_days)
    out.attrs[RECIPE_ATTR] = {**dict(ard.attrs.get(RECIPE_ATTR) or {}), "every_days": every_days}
    return out
