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
from scipy import ndimage

from mus_lab.sample import _pheno
from mus_lab.sample._fields import SmoothField, make_field, pixel_centres, rng_for
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
    moist: F32,
    decid: F32,
) -> tuple[F32, F32]:
    """Backscatter (dB) of the 10 m pixels ``ri``, ``ci`` (coordinates ``rr``, ``cc``) with
    the soil moisture and deciduous-share fields there."""
    rz = traits.realism
    t = _pheno.doy(s.day)
    lc = land.landcover[ri, ci]
    parcel = land.parcel[ri, ci]
    vigour = 1.0 + rz.vigour_sd * land.vigour[ri, ci].astype(np.float32)
    vv = np.full(lc.shape, -12.0, np.float32)
    vh = np.full(lc.shape, -21.0, np.float32)
    m = lc == CROPS
    g = np.clip(_pheno.crop_green(t, traits, parcel[m]) * vigour[m], 0, 1)
    # Low-biomass crops (Realism.low_biomass_share): soil and a thin canopy give a meadow's
    # volume term and a damped seasonal swing.
    low = traits.low_biomass[parcel[m]]
    gr = 0.25 + 0.5 * g
    vv[m] = np.where(low, -11.5 + 1.5 * gr + 1.0 * moist[m], -13.0 + 2.5 * g + 1.5 * moist[m])
    vh[m] = np.where(low, -19.0 + 4.0 * gr, -22.0 + 8.0 * g)
    m = lc == GRASS
    # A ley's dense sward backscatters as a meadow (Realism.ley_share).
    g = np.clip(_pheno.grass_green(t, traits, parcel[m], leys=False) * vigour[m], 0, 1)
    vv[m], vh[m] = -11.5 + 1.5 * g + 1.0 * moist[m], -19.0 + 4.0 * g
    m = lc == FOREST
    leaf = _pheno.forest_leaf(t) / (1.0 + np.exp(-2.0 * decid[m]))
    vv[m], vh[m] = -7.5 + 0.5 * leaf, -13.0 + 0.6 * leaf
    m = lc == WETLAND
    bounce = float(np.exp(-(((t - 135.0) / 30.0) ** 2)))
    vv[m], vh[m] = -12.0 + 7.0 * bounce, -20.0 + 3.0 * bounce
    m = lc == URBAN
    z = rz.urban_sar_sd_db * traits.urban_db[parcel[m]]  # street orientation
    vv[m], vh[m] = -4.0 + z, -11.0 + 0.8 * z
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


_STRIP = 2048  # 10 m columns per window of the mixed backscatter


def _mixed(
    land: Landscape,
    traits: _pheno.ParcelTraits,
    state: SarDate,
    rr: NDArray[np.float64],
    cc: NDArray[np.float64],
    sigma: float,
) -> tuple[F32, F32]:
    """Linear VV and VH at ``rr``, ``cc`` of the 10 m backscatter mixed by a Gaussian point
    spread of ``sigma`` pixels (computed on windows of the 10 m grid around the points)."""
    n = land.size
    halo = int(np.ceil(3 * sigma)) + 1
    fields = land.design.fields
    out = (np.zeros(rr.shape, np.float32), np.zeros(rr.shape, np.float32))
    rc, cc_c = np.clip(rr, 0, n - 1e-6), np.clip(cc, 0, n - 1e-6)
    for c0 in range(0, n, _STRIP):
        sel = (cc_c >= c0) & (cc_c < c0 + _STRIP)
        if not sel.any():
            continue
        r_lo = max(0, int(np.floor(rc[sel].min())) - halo)
        r_hi = min(n, int(np.ceil(rc[sel].max())) + halo + 1)
        c_lo, c_hi = max(0, c0 - halo), min(n, c0 + _STRIP + halo)
        wr, wc = pixel_centres(r_lo, r_hi), pixel_centres(c_lo, c_hi)
        ri, ci = np.meshgrid(np.arange(r_lo, r_hi), np.arange(c_lo, c_hi), indexing="ij")
        moist, decid = fields["moisture"].block(wr, wc), fields["decid"].block(wr, wc)
        dbs = _db(land, traits, state, ri, ci, ri + 0.5, ci + 0.5, moist, decid)
        coords = np.stack([rc[sel] - 0.5 - r_lo, cc_c[sel] - 0.5 - c_lo])
        for k, db in enumerate(dbs):
            lin = np.power(10.0, db / 10.0, dtype=np.float32)
            lin = ndimage.gaussian_filter(lin, sigma, mode="nearest")
            out[k][sel] = ndimage.map_coordinates(lin, coords, order=1, mode="nearest")
    return out


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
    sigma = traits.realism.sar_edge_mix_px
    if sigma > 0:
        pure = _mixed(land, traits, state, rr, cc, sigma)
    else:
        ri = np.clip(np.floor(rr), 0, n - 1).astype(np.intp)
        ci = np.clip(np.floor(cc), 0, n - 1).astype(np.intp)
        fields = land.design.fields
        moist, decid = fields["moisture"].at(rr, cc), fields["decid"].at(rr, cc)
        pure = tuple(
            np.power(10.0, db / 10.0, dtype=np.float32)
            for db in _db(land, traits, state, ri, ci, rr, cc, moist, decid)
        )
    rng = rng_for(land.seed, _STREAM[state.sensor] + 1, state.day.toordinal(), block)
    out = []
    for lin in pure:
        noise = 0.25 * rng.standard_normal(lin.shape, dtype=np.float32)
        lin = lin * np.power(10.0, noise / 10.0, dtype=np.float32)
        if state.noise_floor_db is not None:
            lin += 10.0 ** (state.noise_floor_db / 10.0)
        lin *= rng.gamma(ENL, 1.0 / ENL, lin.shape).astype(np.float32)
        lin[~inside] = np.nan
        out.append(lin.astype(np.float32))
    return out[0], out[1]
