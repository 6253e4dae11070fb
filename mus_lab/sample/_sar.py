"""C-band backscatter (Sentinel-1 and RCM) of the landscape on any grid.

Class signatures in dB follow the phenology of the optical model (crop VH rises with
biomass, wetlands double-bounce in spring, frozen ground darkens in winter, open
water is dark unless the wind roughens it); flooded land behaves as open water. The
descending pass looks at a steeper incidence and is about 1 dB darker. Values are
converted to linear power, an optional noise floor is added, and multiplicative
gamma speckle with ENL 4.4 is applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mus_lab.sample import _pheno
from mus_lab.sample._fields import SmoothField, make_field, rng_for
from mus_lab.sample._landscape import BARE, CROPS, FOREST, GRASS, URBAN, WATER, WETLAND, Landscape

__all__ = ["ENL", "SarDate", "draw_sar_date", "sar_values"]

F32 = NDArray[np.float32]
ENL = 4.4
_STREAM = {"s1": 20, "rcm": 30}


@dataclass(frozen=True)
class SarDate:
    """Random state of one SAR acquisition."""

    sensor: str
    day: dt.date
    index: int
    orbit_state: str
    relative_orbit: int
    incidence: float
    wind: SmoothField
    windy: float
    level: float
    noise_floor_db: float | None


def draw_sar_date(
    seed: int, size: int, sensor: str, day: dt.date, index: int, level: float
) -> SarDate:
    """Draw pass geometry and wind of one SAR date (passes alternate)."""
    rng = rng_for(seed, _STREAM[sensor], day.toordinal())
    asc = index % 2 == 0
    if sensor == "s1":
        orbit, inc, floor = (33 if asc else 106), (33.5 if asc else 41.5), None
    else:
        orbit, inc, floor = (61 if asc else 142), (30.0 if asc else 38.0), -24.0
    windy = float(rng.uniform(0.5, 1.0)) if rng.uniform() < 0.3 else 0.0
    wind = make_field(rng, size, float(np.clip(size / 5, 8, 300)))
    state = "ascending" if asc else "descending"
    return SarDate(sensor, day, index, state, orbit, inc, wind, windy, level, floor)


def _db(
    land: Landscape,
    traits: _pheno.ParcelTraits,
    s: SarDate,
    ri: NDArray,
    ci: NDArray,
    rr: NDArray,
    cc: NDArray,
) -> tuple[F32, F32]:
    t = _pheno.doy(s.day)
    lc = land.landcover[ri, ci]
    parcel = land.parcel[ri, ci]
    fields = land.design.fields
    vv = np.full(lc.shape, -12.0, np.float32)
    vh = np.full(lc.shape, -21.0, np.float32)
    moist = fields["moisture"].at(rr, cc)
    m = lc == CROPS
    g = _pheno.crop_green(t, traits, parcel[m])
    vv[m], vh[m] = -13.0 + 2.5 * g + 1.5 * moist[m], -22.0 + 8.0 * g
    m = lc == GRASS
    g = _pheno.grass_green(t, traits, parcel[m])
    vv[m], vh[m] = -11.5 + 1.5 * g + 1.0 * moist[m], -19.0 + 4.0 * g
    m = lc == FOREST
    leaf = _pheno.forest_leaf(t) / (1.0 + np.exp(-2.0 * fields["decid"].at(rr[m], cc[m])))
    vv[m], vh[m] = -7.5 + 0.5 * leaf, -13.0 + 0.6 * leaf
    m = lc == WETLAND
    bounce = float(np.exp(-(((t - 135.0) / 30.0) ** 2)))
    vv[m], vh[m] = -12.0 + 7.0 * bounce, -20.0 + 3.0 * bounce
    m = lc == URBAN
    vv[m], vh[m] = -4.0, -11.0
    m = lc == BARE
    vv[m], vh[m] = -12.0, -21.0
    anomaly = traits.sar_db[parcel] * np.where((lc == CROPS) | (lc == GRASS), 0.8, 0.3)
    vv += anomaly
    vh += anomaly
    if s.day.month in (12, 1, 2, 3):  # frozen ground and canopy
        veg = lc != URBAN
        vv[veg] -= 1.5
        vh[veg] -= 1.5
    water = lc == WATER
    if s.level > 0:
        water |= land.hand[ri, ci] < s.level
    rough = s.windy * 6.0 * np.clip(s.wind.at(rr[water], cc[water]) + 0.8, 0, 1.6)
    vv[water], vh[water] = -22.5 + rough, -28.0 + 0.5 * rough
    if s.orbit_state == "descending":
        vv -= 1.0
        vh -= 1.0
    return vv, vh


def sar_values(
    land: Landscape,
    traits: _pheno.ParcelTraits,
    state: SarDate,
    rr: NDArray[np.float64],
    cc: NDArray[np.float64],
    block: int,
) -> tuple[F32, F32]:
    """Linear VV and VH backscatter at 10 m pixel coordinates ``rr``, ``cc`` (NaN outside)."""
    n = land.size
    inside = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
    ri = np.clip(np.floor(rr), 0, n - 1).astype(np.intp)
    ci = np.clip(np.floor(cc), 0, n - 1).astype(np.intp)
    vv_db, vh_db = _db(land, traits, state, ri, ci, rr, cc)
    rng = rng_for(land.seed, _STREAM[state.sensor] + 1, state.day.toordinal(), block)
    out = []
    for db in (vv_db, vh_db):
        db = db + 0.25 * rng.standard_normal(db.shape, dtype=np.float32)
        lin = np.power(10.0, db / 10.0, dtype=np.float32)
        if state.noise_floor_db is not None:
            lin += 10.0 ** (state.noise_floor_db / 10.0)
        lin *= rng.gamma(ENL, 1.0 / ENL, lin.shape).astype(np.float32)
        lin[~inside] = np.nan
        out.append(lin.astype(np.float32))
    return out[0], out[1]
