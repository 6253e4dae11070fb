"""From water maps to flood products: reference water, exclusion mask, flood extent per date
and the time-series summary (maximum extent, frequency, valid observations, hazard).

Exclusion mask (uint8 bit flags, GFM's idea):

====  ==================  ==============================================================
flag  name                effect
====  ==================  ==============================================================
1     ``hand``            HAND above ``hand_max_m``: flood is physically implausible, 0
2     ``slope``           slope above ``slope_max_deg``: flood set to 0
4     ``shadow_layover``  the SAR data mask says invalid on every date with data: 255
8     ``lookalike``       dark on >= ``lookalike_frequency`` of dates but not reference
                          water (and, with optical evidence, never water in Sentinel-2):
                          sand, tarmac, shadow; water and flood set to 255 (no data)
====  ==================  ==============================================================

Reference (permanent or seasonal) water = the independent reference (a given map, or
the land-cover water classes) plus the pixels that are water on at least
``reference_frequency`` of the valid dates (UN-SPIDER: 10 months of 12), look-alikes
removed. Without an independent reference no look-alike can be told from a lake, so
flag 8 is only set when one is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab.contracts import EXCLUSION_FLAGS
from mus_lab.cube import match_grid
from mus_lab.flood._options import MappingOptions

__all__ = [
    "EXCLUSION_FLAGS",
    "combine_series",
    "exclusion_mask",
    "flood_extent",
    "flood_summary",
    "reference_water",
]

_NOT_FLOOD = EXCLUSION_FLAGS["hand"] | EXCLUSION_FLAGS["slope"]
_NO_DATA = EXCLUSION_FLAGS["shadow_layover"] | EXCLUSION_FLAGS["lookalike"]


def _counts(water: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    n_valid = (water != 255).sum("time")
    n_water = (water == 1).sum("time")
    return n_water, n_valid


def combine_series(*maps: xr.Dataset) -> xr.Dataset:
    """Concatenate per-sensor water maps (``water``, ``likelihood``...) on ``time``.

    Two acquisitions on the same day (e.g. Sentinel-1 and RCM) become one date: the
    mean of their likelihoods where both see the pixel, water where it is >= 50.
    Variables without ``time`` are taken from the first map.

    Parameters
    ----------
    *maps
        :func:`map_water` outputs (after :func:`map_series` for a series) on one grid; same-day
        dates need ``water`` and ``likelihood`` (uint8, 255 = no data).

    Returns
    -------
    xarray.Dataset
        Dates ascending, one per day where two sensors met; lazy.
    """
    timed = [m[[v for v in m.data_vars if "time" in m[v].dims]] for m in maps]
    timed = [
        t.drop_vars(
            [c for c in t.coords if c not in t.dims and c != "spatial_ref" and "time" in t[c].dims]
        )
        for t in timed
    ]
    out = xr.concat(timed, "time").sortby("time")
    days = pd.DatetimeIndex(out["time"].values).normalize()
    if days.has_duplicates:
        groups = []
        for day in pd.unique(days):
            sub = out.isel(time=np.flatnonzero(days == day))
            if sub.sizes["time"] == 1:
                groups.append(sub)
                continue
            lk = sub["likelihood"].where(sub["likelihood"] != 255).mean("time")
            seen = lk.notnull()
            merged = sub.isel(time=[0]).copy()
            merged["likelihood"] = (
                xr.where(seen, lk.round(), 255)
                .astype(np.uint8)
                .expand_dims(time=merged.time.values)
            )
            merged["water"] = (
                xr.where(seen, lk >= 50, 255).astype(np.uint8).expand_dims(time=merged.time.values)
            )
            groups.append(merged[["water", "likelihood"]])
        out = xr.concat(groups, "time")
    static = [v for v in maps[0].data_vars if "time" not in maps[0][v].dims]
    for v in static:
        out[v] = maps[0][v]
    return out


def reference_water(
    water: xr.DataArray,
    *,
    independent: xr.DataArray | None = None,
    lookalike: xr.DataArray | None = None,
    options: MappingOptions | None = None,
) -> xr.DataArray:
    """Reference water (uint8 1/0): independent reference plus frequently wet pixels.

    Parameters
    ----------
    water
        Water per date (uint8 1/0/255, ``(time, y, x)``).
    independent
        Independent reference water (bool or 1/0 on the same grid), e.g. a land-cover
        water class or a permanent-water map; optional.
    lookalike
        Look-alike pixels (bool) to leave out; optional.
    options
        ``reference_frequency`` (default 10/12).

    Returns
    -------
    xarray.DataArray
        uint8 1/0 ``(y, x)`` named ``reference_water`` (``nodata`` attribute 255), lazy.

    Examples
    --------
    >>> w = xr.DataArray(np.array([1, 1, 1, 0, 1, 0], "uint8").reshape(3, 2, 1),
    ...                  dims=("time", "y", "x"))
    >>> reference_water(w).values.ravel().tolist()
    [1, 0]
    """
    opts = options or MappingOptions()
    n_water, n_valid = _counts(water)
    often = (n_water >= opts.reference_frequency * n_valid) & (n_valid > 0)
    if lookalike is not None:
        often = often & ~lookalike
    if independent is not None:
        often = often | (independent == 1)
    return often.astype(np.uint8).rename("reference_water").assign_attrs(nodata=255)


def exclusion_mask(
    water: xr.DataArray,
    *,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    invalid: xr.DataArray | None = None,
    independent_water: xr.DataArray | None = None,
    optical: xr.DataArray | None = None,
    options: MappingOptions | None = None,
) -> xr.DataArray:
    """Exclusion flags (uint8, see the module table), lazily.

    Parameters
    ----------
    water
        Water per date (uint8 1/0/255, ``(time, y, x)``): gives the dark frequency.
    hand, slope
        HAND (m) and slope (degrees) on the same grid; optional.
    invalid
        SAR data mask says invalid (layover/shadow), bool ``(time, y, x)``; optional.
    independent_water
        Independent reference water (bool or 1/0); look-alikes are only flagged with it.
    optical
        Optical evidence ``(time, y, x)`` (likelihood 0-1, NaN = none): pixels that
        Sentinel-2 ever sees as water are not look-alikes.
    options
        ``hand_max_m``, ``slope_max_deg``, ``lookalike_frequency``.

    Returns
    -------
    xarray.DataArray
        uint8 flags ``(y, x)`` named ``exclusion`` (:data:`EXCLUSION_FLAGS`, CF
        ``flag_masks``/``flag_meanings`` attributes), lazy.

    Raises
    ------
    GridMismatchError
        ``water``, HAND or slope has no pixel grid (HAND and slope on another grid are
        reprojected bilinearly onto it, with a :class:`~mus_lab.errors.GridReprojectedWarning`).
    """
    opts = options or MappingOptions()
    flags = xr.zeros_like(water.isel(time=0, drop=True), dtype=np.uint8)
    if hand is not None:
        hand = match_grid(hand, water, names=("HAND", "the water map"), resampling="bilinear")
        flags = flags | (hand > opts.hand_max_m).astype(np.uint8) * EXCLUSION_FLAGS["hand"]
    if slope is not None:
        slope = match_grid(slope, water, names=("slope", "the water map"), resampling="bilinear")
        flags = flags | (slope > opts.slope_max_deg).astype(np.uint8) * EXCLUSION_FLAGS["slope"]
    n_water, n_valid = _counts(water)
    if invalid is not None:
        never = (invalid.sum("time") > 0) & (n_valid == 0)
        flags = flags | never.astype(np.uint8) * EXCLUSION_FLAGS["shadow_layover"]
    if independent_water is not None:
        dark = (n_water >= opts.lookalike_frequency * n_valid) & (n_valid > 0)
        look = dark & (independent_water != 1)
        if optical is not None:
            look = look & ~(optical >= 0.5).any("time")
        flags = flags | look.astype(np.uint8) * EXCLUSION_FLAGS["lookalike"]
    return (
        flags.astype(np.uint8)
        .rename("exclusion")
        .assign_attrs(
            nodata=255,
            flag_masks=list(EXCLUSION_FLAGS.values()),
            flag_meanings=" ".join(EXCLUSION_FLAGS),
        )
    )


def flood_extent(
    water_map: xr.Dataset,
    reference: xr.DataArray,
    exclusion: xr.DataArray | None = None,
) -> xr.Dataset:
    """Per-date ``water``, ``flood`` (water minus reference water) and ``likelihood``.

    Parameters
    ----------
    water_map
        ``water`` and ``likelihood`` (uint8, ``(time, y, x)``) from :func:`consensus`.
    reference
        Reference water (1/0) on the same grid.
    exclusion
        Exclusion flags; flags 1-2 make flood 0, flags 4-8 make everything no data.

    Returns
    -------
    xarray.Dataset
        uint8 ``water`` (1/0/255), ``flood`` (1/0/255), ``likelihood`` (0-100/255).
    """
    water, lk = water_map["water"], water_map["likelihood"]
    nodata = water == 255
    not_flood = reference == 1
    if exclusion is not None:
        nodata = nodata | ((exclusion & _NO_DATA) > 0)
        not_flood = not_flood | ((exclusion & _NOT_FLOOD) > 0)
    flood = xr.where(nodata, 255, xr.where(not_flood, 0, water)).astype(np.uint8)
    out = xr.Dataset(
        {
            "water": xr.where(nodata, 255, water).astype(np.uint8),
            "flood": flood,
            "likelihood": xr.where(nodata, 255, lk).astype(np.uint8),
        }
    )
    for v in out.data_vars:
        out[v].attrs = {"nodata": 255}
    out["likelihood"].attrs["units"] = "percent"
    return out


def flood_summary(
    extent: xr.Dataset,
    reference: xr.DataArray,
    exclusion: xr.DataArray,
    *,
    likelihood_bounds: Sequence[int] = (75, 25),
) -> xr.Dataset:
    """Time-series products of a flood extent series, lazily.

    Parameters
    ----------
    extent
        :func:`flood_extent` output.
    reference, exclusion
        Reference water and exclusion flags (written along).
    likelihood_bounds
        ``(low, high)``: the low bound of the extent counts flood pixels of likelihood
        >= ``low`` (default 75); the high bound adds every valid pixel of likelihood
        >= ``high`` (default 25) that may flood (not reference water, not excluded).

    Returns
    -------
    xarray.Dataset
        ``max_extent`` (uint8 1/0/255), ``frequency`` (float32 flooded / valid, NaN on
        reference water and where never valid), ``n_valid`` (uint16), ``hazard``
        (float32 0-1: likelihood-weighted frequency, the expected share of observations
        flooded), ``reference_water``, ``exclusion``, and the bounds ``max_extent_low``
        / ``max_extent_high`` (uint8 1/0/255).
    """
    flood, lk = extent["flood"], extent["likelihood"]
    valid = flood != 255
    n_valid = valid.sum("time")
    n_flood = (flood == 1).sum("time")
    seen = n_valid > 0
    usable = seen & (reference != 1)
    frequency = (n_flood / n_valid.where(seen)).where(usable).astype(np.float32)
    weighted = ((flood == 1) * lk.where(valid, 0).astype(np.float32) / 100.0).sum("time")
    hazard = (weighted / n_valid.where(seen)).where(usable).astype(np.float32)
    low, high = (int(v) for v in likelihood_bounds)
    can_flood = (reference != 1) & ((exclusion & _NOT_FLOOD) == 0)
    ever_low = ((flood == 1) & (lk >= low)).any("time")
    ever_high = ((flood == 1) | (valid & (lk >= high) & can_flood)).any("time")

    def coded(mask: xr.DataArray) -> xr.DataArray:
        return xr.where(seen, mask, 255).astype(np.uint8).assign_attrs(nodata=255)

    return xr.Dataset(
        {
            "max_extent": coded(n_flood > 0),
            "frequency": frequency.assign_attrs(units="1"),
            # A count: 0 is a value (never observed), so no nodata (not the 255 of the masks).
            "n_valid": xr.DataArray(
                n_valid.astype(np.uint16).data,
                dims=n_valid.dims,
                coords=n_valid.coords,
                attrs={"units": "1", "long_name": "valid observations"},
            ),
            "hazard": hazard.assign_attrs(units="1"),
            "reference_water": reference.astype(np.uint8).assign_attrs(nodata=255),
            "exclusion": exclusion.astype(np.uint8).assign_attrs(nodata=255),
            "max_extent_low": coded(ever_low),
            "max_extent_high": coded(ever_high),
        }
    )
