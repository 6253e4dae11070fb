"""Phenology: how green each class is on a given day, with parcel-specific timing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mus_lab.sample._fields import rng_for

__all__ = ["ParcelTraits", "crop_green", "draw_traits", "forest_leaf", "grass_green", "wet_water"]

F32 = NDArray[np.float32]


def _logistic(x: NDArray | float) -> NDArray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))


@dataclass(frozen=True)
class ParcelTraits:
    """Per-parcel random traits, indexed by parcel id."""

    sos: F32  # start of season (day of year) of crops
    eos: F32  # harvest (day of year)
    gmax: F32
    gain: F32  # brightness anomaly (standard normal)
    mow: F32  # (n, 3) grass cutting days
    sar_db: F32  # backscatter anomaly (dB)


def draw_traits(seed: int, n: int) -> ParcelTraits:
    """Draw the traits of ``n`` parcels: winter cereals (40 %) and summer crops."""
    rng = rng_for(seed, 4)
    winter = rng.uniform(size=n) < 0.4
    sos = np.where(winter, 110.0, 165.0) + rng.normal(0, 9, n)
    eos = np.where(winter, 200.0, 262.0) + rng.normal(0, 9, n)
    mow = np.stack([rng.normal(m, 8, n) for m in (162.0, 208.0, 252.0)], axis=1)
    return ParcelTraits(
        sos.astype(np.float32),
        eos.astype(np.float32),
        rng.uniform(0.65, 0.95, n).astype(np.float32),
        rng.standard_normal(n).astype(np.float32),
        mow.astype(np.float32),
        rng.normal(0, 0.8, n).astype(np.float32),
    )


def doy(day: dt.date) -> float:
    """Day of year (1-366)."""
    return float(day.timetuple().tm_yday)


def crop_green(t: float, traits: ParcelTraits, parcel: NDArray) -> F32:
    """Green fraction of crop pixels: double logistic green-up and harvest."""
    sos, eos = traits.sos[parcel], traits.eos[parcel]
    g = traits.gmax[parcel] * (_logistic((t - sos) / 7.0) - _logistic((t - eos) / 5.0))
    return np.clip(g, 0.0, 1.0).astype(np.float32)


def grass_green(t: float, traits: ParcelTraits, parcel: NDArray) -> F32:
    """Green fraction of grassland: a long season cut two or three times."""
    g = 0.25 + 0.55 * (_logistic((t - 120.0) / 10.0) - _logistic((t - 285.0) / 12.0))
    for k in range(3):
        since = t - traits.mow[parcel, k]
        g = g * np.where(since >= 0, 1.0 - 0.55 * np.exp(-np.maximum(since, 0) / 15.0), 1.0)
    return np.asarray(g, np.float32)


def forest_leaf(t: float) -> float:
    """Leaf fraction of deciduous trees."""
    return float(_logistic((t - 135.0) / 6.0) - _logistic((t - 285.0) / 8.0))


def wet_water(t: float) -> float:
    """Open-water fraction of wetlands: high at the spring melt, low in late summer."""
    return 0.2 + 0.5 * float(np.exp(-(((t - 115.0) / 35.0) ** 2)))


def marsh_green(t: float) -> float:
    """Green fraction of wetland vegetation."""
    return 0.15 + 0.6 * float(_logistic((t - 145.0) / 10.0) - _logistic((t - 270.0) / 10.0))
