"""Sentinel-2 L2A surface reflectance, clouds, shadows, snow and SCL for one date.

Reflectance is a per-pixel mixture of endmember spectra whose fractions follow the
class phenology, then brightened by parcel and pixel variation. Clouds are a
thresholded smooth field per date; their shadows are the same field displaced along
the sun direction; snow covers land on some winter dates; flooded land is turbid water.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.stats import norm

from mus_lab.sample import _pheno
from mus_lab.sample._fields import SmoothField, make_field, pixel_centres, rng_for
from mus_lab.sample._landscape import BARE, CROPS, FOREST, GRASS, URBAN, WATER, WETLAND, Landscape
from mus_lab.sample._params import Realism

__all__ = ["BANDS", "OpticalDate", "draw_date", "s2_block", "sun_angles"]

F32 = NDArray[np.float32]

#: (asset key, band name, centre wavelength um, FWHM um, resolution m)
BANDS = (
    ("blue", "B02", 0.490, 0.098, 10),
    ("green", "B03", 0.560, 0.045, 10),
    ("red", "B04", 0.665, 0.038, 10),
    ("rededge1", "B05", 0.704, 0.019, 20),
    ("rededge2", "B06", 0.740, 0.018, 20),
    ("rededge3", "B07", 0.783, 0.028, 20),
    ("nir", "B08", 0.842, 0.145, 10),
    ("nir08", "B8A", 0.865, 0.033, 20),
    ("swir16", "B11", 1.610, 0.143, 20),
    ("swir22", "B12", 2.190, 0.242, 20),
)
# Endmember spectra in the order of BANDS.
_SPECTRA = np.array(
    [
        [0.08, 0.11, 0.14, 0.17, 0.19, 0.21, 0.23, 0.24, 0.32, 0.27],  # soil
        [0.03, 0.07, 0.035, 0.11, 0.30, 0.40, 0.45, 0.47, 0.22, 0.11],  # green vegetation
        [0.07, 0.10, 0.13, 0.17, 0.22, 0.25, 0.27, 0.28, 0.35, 0.28],  # dry vegetation
        [0.02, 0.04, 0.025, 0.07, 0.18, 0.24, 0.27, 0.28, 0.13, 0.06],  # forest canopy
        [0.05, 0.06, 0.04, 0.03, 0.02, 0.015, 0.012, 0.01, 0.005, 0.003],  # clear water
        [0.08, 0.10, 0.09, 0.07, 0.05, 0.04, 0.035, 0.03, 0.01, 0.006],  # turbid water
        [0.11, 0.12, 0.13, 0.15, 0.16, 0.17, 0.19, 0.20, 0.26, 0.23],  # urban
        [0.85, 0.83, 0.80, 0.78, 0.75, 0.72, 0.68, 0.65, 0.12, 0.09],  # snow
    ],
    np.float32,
)
_CLOUD = np.array([0.50, 0.50, 0.50, 0.50, 0.50, 0.50, 0.52, 0.52, 0.40, 0.30], np.float32)
SOIL, GVEG, DRY, CANOPY, CLEAR, TURBID, BUILT, SNOW = range(8)


def sun_angles(day: dt.date) -> tuple[float, float]:
    """Sun azimuth and elevation (degrees) at a 10:30 overpass near 45 N."""
    decl = 23.44 * np.sin(2 * np.pi * (_pheno.doy(day) - 81) / 365.0)
    return 152.0 + 0.1 * decl, float(90.0 - 45.1 + decl - 9.0)


@dataclass(frozen=True)
class OpticalDate:
    """Random state of one Sentinel-2 acquisition."""

    day: dt.date
    index: int
    cloud: SmoothField
    cloud_thr: float
    cirrus: SmoothField
    cirrus_thr: float
    snow: SmoothField | None
    shadow_shift: tuple[float, float]
    edge: float  # 0: full swath; else fraction of the west edge missing
    level: float  # flood water level (m)
    spell: SmoothField | None = None  # persistent cloudy spell (same field on every date)
    spell_thr: float = 9.0


def draw_date(
    seed: int,
    size: int,
    day: dt.date,
    index: int,
    level: float,
    realism: Realism | None = None,
) -> OpticalDate:
    """Draw clouds, cirrus, snow and swath edge of one date (and the cloudy spell over part
    of the scene on the dates of ``realism.cloud_spell_doy``)."""
    rz = Realism() if realism is None else realism
    spell, spell_thr = None, 9.0
    d0, d1 = rz.cloud_spell_doy
    if rz.cloud_spell_share > 0 and d0 <= _pheno.doy(day) <= d1:
        spell = make_field(rng_for(seed, 12), size, float(np.clip(size / 5, 8, 600)))
        spell_thr = float(norm.ppf(1.0 - rz.cloud_spell_share))
    rng = rng_for(seed, 10, day.toordinal())
    cover = rng.uniform(0.0, 0.03) if rng.uniform() < 0.35 else rng.uniform(0.05, 0.85)
    cloud = make_field(rng, size, float(np.clip(size / 7, 8, 400)))
    cirrus = make_field(rng, size, float(np.clip(size / 4, 12, 500)))
    month = day.month
    p_snow = {12: 0.6, 1: 0.8, 2: 0.8, 3: 0.4}.get(month, 0.0)
    snow = (
        make_field(rng, size, float(np.clip(size / 8, 8, 300))) if rng.uniform() < p_snow else None
    )
    az, elev = sun_angles(day)
    length = float(np.clip(1000.0 / np.tan(np.radians(elev)) / 10.0, 3.0, size / 12))
    shift = (length * np.cos(np.radians(az)), -length * np.sin(np.radians(az)))
    edge = rng.uniform(0.1, 0.35) if rng.uniform() < 0.15 else 0.0
    thr = float(norm.ppf(1.0 - cover)) - 0.12
    cirrus_thr = float(norm.ppf(1.0 - rng.uniform(0.05, 0.3))) if rng.uniform() < 0.3 else 9.0
    return OpticalDate(
        day, index, cloud, thr, cirrus, cirrus_thr, snow, shift, edge, level, spell, spell_thr
    )


def _weights(land: Landscape, traits: _pheno.ParcelTraits, rows: slice, t: float) -> F32:
    rz = traits.realism
    lc = land.landcover[rows]
    parcel = land.parcel[rows]
    vigour = 1.0 + rz.vigour_sd * land.vigour[rows].astype(np.float32)
    w = np.zeros((8, *lc.shape), np.float32)
    m = lc == CROPS
    g = np.clip(_pheno.crop_green(t, traits, parcel[m]) * vigour[m], 0, 1)
    residue = np.where(t > traits.eos[parcel[m]], 0.6, 0.2)
    w[GVEG, m], w[DRY, m], w[SOIL, m] = g, (1 - g) * residue, (1 - g) * (1 - residue)
    m = lc == GRASS
    g = np.clip(_pheno.grass_green(t, traits, parcel[m]) * vigour[m], 0, 1)
    dry = np.where(traits.ley[parcel[m]], np.where(t > traits.eos[parcel[m]], 0.6, 0.2), 0.85)
    w[GVEG, m], w[DRY, m], w[SOIL, m] = g, dry * (1 - g), (1 - dry) * (1 - g)
    m = lc == FOREST
    fd = 1.0 / (1.0 + np.exp(-2.0 * land.field("decid", rows)[m]))
    leaf = _pheno.forest_leaf(t)
    w[CANOPY, m], w[DRY, m], w[SOIL, m] = (
        1 - fd + fd * leaf,
        0.7 * fd * (1 - leaf),
        0.3 * fd * (1 - leaf),
    )
    w[CLEAR, lc == WATER] = 1.0
    m = lc == WETLAND
    fw = _pheno.wet_water(t) + 0.15 * land.field("moisture", rows)[m]
    fw = np.clip(rz.marsh_water * fw, 0.02, 0.95)
    gm = _pheno.marsh_green(t)
    w[CLEAR, m], w[GVEG, m], w[DRY, m] = fw, (1 - fw) * gm, (1 - fw) * (1 - gm)
    m = lc == URBAN
    green = 0.2 * _pheno.forest_leaf(t)
    lots = traits.urban_soil[parcel[m]]  # bare lots and building sites
    w[BUILT, m], w[GVEG, m], w[SOIL, m] = 0.8 * (1 - lots), green, 0.2 - green + 1.2 * lots
    w[SOIL, lc == BARE] = 1.25
    return w


def s2_block(
    land: Landscape, traits: _pheno.ParcelTraits, state: OpticalDate, rows: slice
) -> tuple[F32, NDArray[np.uint8]]:
    """Reflectance (10, rows, size) and SCL (rows, size) of full rows at 10 m."""
    n = land.size
    t = _pheno.doy(state.day)
    rz = traits.realism
    # Surface reflectance on the rows and a halo, mixed by the point spread, then cut back.
    halo = int(np.ceil(3 * rz.edge_mix_px))
    ext = slice(max(0, rows.start - halo), min(n, rows.stop + halo))
    inner = slice(rows.start - ext.start, rows.stop - ext.start)
    w = _weights(land, traits, ext, t)
    lc = land.landcover[ext]
    if state.level > 0:
        flooded = (land.hand[ext] < state.level) & (lc != WATER)
        w[:, flooded] *= 0.1
        w[TURBID, flooded] += 0.9
    r, c = pixel_centres(ext.start, ext.stop), pixel_centres(0, n)
    snow = np.zeros(lc.shape, np.float32)
    if state.snow is not None:
        snow = np.clip(0.8 + 0.6 * state.snow.block(r, c), 0, 1)
        snow *= np.select([lc == FOREST, lc == URBAN, lc == WATER], [0.35, 0.6, 0.0], 1.0)
        w *= 1 - snow
        w[SNOW] += snow
    gain = 1.0 + 0.06 * traits.gain[land.parcel[ext]] + 0.04 * land.field("texture", ext)
    refl = np.tensordot(_SPECTRA.T, w, axes=1) * gain
    if rz.edge_mix_px > 0:
        refl = ndimage.gaussian_filter(refl, (0, rz.edge_mix_px, rz.edge_mix_px), mode="nearest")
    refl, w, snow = refl[:, inner], w[:, inner], snow[inner]
    r = r[inner]
    rng = rng_for(land.seed, 11, state.day.toordinal(), rows.start)
    refl *= 1.0 + rz.pixel_noise * rng.standard_normal(refl.shape, dtype=np.float32)
    refl += 0.003 * rng.standard_normal(refl.shape, dtype=np.float32)
    # Atmosphere: cirrus veil, cloud shadows, clouds.
    cirrus = np.clip(state.cirrus.block(r, c) - state.cirrus_thr, 0, 1)
    refl += 0.08 * cirrus
    alpha = np.clip((state.cloud.block(r, c) - state.cloud_thr) / 0.4, 0, 1)
    dr, dc = state.shadow_shift
    shade = np.clip((state.cloud.block(r - dr, c - dc) - state.cloud_thr) / 0.4, 0, 1)
    if state.spell is not None:  # the cloudy spell, with its own shadows
        spell = state.spell
        alpha = np.maximum(alpha, np.clip((spell.block(r, c) - state.spell_thr) / 0.2, 0, 1))
        shade = np.maximum(
            shade, np.clip((spell.block(r - dr, c - dc) - state.spell_thr) / 0.2, 0, 1)
        )
    shade *= 1 - alpha
    refl *= 1 - 0.65 * shade
    refl = refl * (1 - alpha) + alpha * _CLOUD[:, None, None] * (0.8 + 0.4 * alpha)
    refl = np.clip(refl, 0.0001, 1.6).astype(np.float32)
    ndvi = (refl[6] - refl[2]) / (refl[6] + refl[2])
    water = (w[CLEAR] + w[TURBID]) > 0.5
    scl = np.select(
        [alpha > 0.65, alpha > 0.3, cirrus > 0.5, shade > 0.4, snow > 0.5, water, ndvi > 0.4],
        [9, 8, 10, 3, 11, 6, 4],
        5,
    ).astype(np.uint8)
    if state.edge > 0:
        nodata = (c[None, :] + 0.3 * r[:, None]) < state.edge * n * 1.3
        scl[nodata] = 0
        refl[:, nodata] = 0.0
    return refl, scl
