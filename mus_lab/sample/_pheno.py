"""Phenology: how green each class is on a given day, with parcel-specific timing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mus_lab.sample._fields import rng_for
from mus_lab.sample._params import Realism

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
    ley: NDArray[np.bool_]  # grassland parcel sown as a ley (crop-like greenness)
    low_biomass: NDArray[np.bool_]  # crop parcel with a grass-like VH volume term
    urban_soil: F32  # bare-soil share of urban blocks
    urban_db: F32  # urban backscatter anomaly (standard normal)
    winter: NDArray[np.bool_]  # winter cereal (sown in autumn)
    realism: Realism = field(default_factory=Realism)


def draw_traits(seed: int, n: int, realism: Realism | None = None) -> ParcelTraits:
    """Draw the traits of ``n`` parcels: winter cereals (40 %) and summer crops.

    Per-parcel spreads and the shares of leys and low-biomass crops follow ``realism``
    (default :class:`Realism`); :meth:`Realism.off` draws the former traits exactly.
    """
    rz = Realism() if realism is None else realism
    rng = rng_for(seed, 4)
    winter = rng.uniform(size=n) < 0.4
    z_sos, z_eos = rng.standard_normal(n), rng.standard_normal(n)
    sos = np.where(winter, 110.0, 165.0) + rz.sos_sd_days * z_sos
    eos = np.where(winter, 200.0, 262.0) + rz.eos_sd_days * z_eos
    mow = np.stack([rng.normal(m, 8, n) for m in (162.0, 208.0, 252.0)], axis=1)
    gmax = rz.peak_min + (0.95 - rz.peak_min) * rng.uniform(0.0, 1.0, n)
    gain = rng.standard_normal(n)
    sar_db = rz.sar_parcel_db * rng.standard_normal(n)
    more = rng_for(seed, 6)  # drawn after the former traits: Realism.off() keeps them
    ley = more.uniform(size=n) < rz.ley_share
    low = more.uniform(size=n) < rz.low_biomass_share
    urban_soil = rz.urban_soil_max * more.uniform(size=n)
    urban_db = more.standard_normal(n)
    # Leys are sown in spring and cut late in summer: to optical sensors, a spring crop.
    sos = np.where(ley, 165.0 + rz.sos_sd_days * z_sos, sos)
    eos = np.where(ley, 262.0 + rz.eos_sd_days * z_eos, eos)
    return ParcelTraits(
        sos.astype(np.float32),
        eos.astype(np.float32),
        gmax.astype(np.float32),
        gain.astype(np.float32),
        mow.astype(np.float32),
        sar_db.astype(np.float32),
        ley,
        low,
        urban_soil.astype(np.float32),
        urban_db.astype(np.float32),
        winter,
        rz,
    )


def doy(day: dt.date) -> float:
    """Day of year (1-366)."""
    return float(day.timetuple().tm_yday)


def crop_green(t: float, traits: ParcelTraits, parcel: NDArray) -> F32:
    """Green fraction of crop pixels: double logistic green-up and harvest."""
    sos, eos = traits.sos[parcel], traits.eos[parcel]
    up = _logistic((t - sos) / 7.0)
    g = traits.gmax[parcel] * (up - _logistic((t - eos) / 5.0))
    wg = traits.realism.winter_green
    if wg > 0:  # winter cereals are green from their autumn sowing to the spring growth
        g = g + np.where(traits.winter[parcel], wg * (1.0 - up), 0.0)
    return np.clip(g, 0.0, 1.0).astype(np.float32)


def grass_green(t: float, traits: ParcelTraits, parcel: NDArray, *, leys: bool = True) -> F32:
    """Green fraction of grassland: a long season cut two or three times; with ``leys``, the
    leys follow a spring crop's curve instead, from stubble to a cut that regrows to 20 %
    of the peak (what optical sensors see of them)."""
    g = 0.25 + 0.55 * (_logistic((t - 120.0) / 10.0) - _logistic((t - 285.0) / 12.0))
    for k in range(3):
        since = t - traits.mow[parcel, k]
        g = g * np.where(since >= 0, 1.0 - 0.55 * np.exp(-np.maximum(since, 0) / 15.0), 1.0)
    ley = traits.ley[parcel] if leys else np.zeros(np.shape(parcel), bool)
    if ley.any():
        sos, eos = traits.sos[parcel[ley]], traits.eos[parcel[ley]]
        up = _logistic((t - sos) / 7.0)
        cut = _logistic((t - eos) / 5.0)
        gl = traits.gmax[parcel[ley]] * (up - 0.8 * cut)
        g = np.broadcast_to(np.asarray(g, np.float32), parcel.shape).copy()
        g[ley] = np.clip(0.05 * (1 - up) + gl, 0.0, 1.0)
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
