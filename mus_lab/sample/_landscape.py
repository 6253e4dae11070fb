"""The landscape: terrain, land cover, parcels and the spring flood.

Everything follows from a few seeded random choices: a river meanders west to east,
terrain rises away from it (height above the river, HAND-like, drives wetland, flood
and forest), one or two blocky towns sit just outside the floodplain, quarries and
ridge tops are bare, and the remaining land is a warped grid of agricultural parcels
that are either crops or grassland. Large features scale with the scene so a 64-pixel
scene still holds every class; parcels keep a field-like size of 10 to 45 pixels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mus_lab.sample._fields import SmoothField, make_field, pixel_centres, rng_for

__all__ = ["Landscape", "build_landscape"]

F32 = NDArray[np.float32]
ROWS_PER_BLOCK = 512
CROPS, GRASS, FOREST, WATER, WETLAND, URBAN, BARE = 1, 2, 3, 4, 5, 6, 7


@dataclass(frozen=True)
class _Design:
    size: int
    phase: float
    freq: float
    amp: float
    width: float
    fields: dict[str, SmoothField]
    lakes: NDArray[np.float64]  # (k, 3): row, col, radius
    towns: NDArray[np.float64]  # (k, 4): row, col, radius, block
    quarries: NDArray[np.float64]  # (k, 4): row0, col0, height, width
    town_table: NDArray[np.float64]
    parcel_size: float
    band_edges: NDArray[np.float64]
    band_width: NDArray[np.float64]
    band_offset: NDArray[np.float64]
    ncols: int

    def river_row(self, cols: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        n = self.size
        arg = 2 * np.pi * self.freq * cols / n + self.phase
        yc = n * (0.5 + self.amp * np.sin(arg))
        slope = self.amp * 2 * np.pi * self.freq * np.cos(arg)
        return yc, slope

    def river_elevation(self, cols: NDArray[Any]) -> NDArray[np.float64]:
        drop = float(np.clip(self.size * 10 * 0.0004, 0.5, 30.0))
        return 60.0 + drop * (1.0 - cols / self.size)


def _design(size: int, seed: int) -> _Design:
    rng = rng_for(seed, 1)
    n = size
    fields = {
        name: make_field(rng_for(seed, 2, k), n, cell)
        for k, (name, cell) in enumerate(
            {
                "hills": n / 5,
                "micro": max(n / 24, 3),
                "forest": max(n / 10, 4),
                "ridge": max(n / 12, 4),
                "lake": max(n / 20, 3),
                "warp_x": max(n / 10, 6),
                "warp_y": max(n / 10, 6),
                "decid": max(n / 12, 4),
                "texture": 6.0,
                "moisture": max(n / 8, 8),
                "vigour": 3.0,  # within-parcel variability (Realism.vigour_sd)
            }.items()
        )
    }
    phase, freq, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.1), rng.uniform(0.05, 0.12)
    width = float(np.clip(0.02 * n, 1.6, 20.0))
    proto = _Design(
        n,
        phase,
        freq,
        amp,
        width,
        fields,
        *(np.zeros((0, 4)),) * 3,
        np.zeros((1, 1)),
        1.0,
        np.zeros(1),
        np.zeros(1),
        np.zeros(1),
        1,
    )
    # Lakes beside the river, towns just outside the floodplain, quarries on high land.
    lakes, towns, quarries = [], [], []
    for _ in range(rng.integers(1, 3) if n < 512 else rng.integers(2, 5)):
        col = rng.uniform(0.15, 0.85) * n
        yc, _ = proto.river_row(np.array([col]))
        side = rng.choice([-1, 1])
        r = float(np.clip(0.04 * n, 3, 80))
        lakes.append((yc[0] + side * (width + 1.2 * r), col, r))
    n_towns = 1 if n < 256 else 2
    cols = rng.permutation([0.25, 0.75])[:n_towns] * n
    for col in cols:
        yc, _ = proto.river_row(np.array([col]))
        side = rng.choice([-1, 1])
        radius = float(np.clip(0.085 * n, 6, 250))
        towns.append((yc[0] + side * 0.17 * n, col, radius, float(np.clip(radius / 4, 3, 25))))
    for _ in range(rng.integers(2, 4)):
        hw = float(np.clip(0.04 * n, 4, 60))
        row = rng.choice([rng.uniform(0.02, 0.15), rng.uniform(0.85, 0.98)]) * n
        quarries.append((row, rng.uniform(0.05, 0.9) * n, hw, hw * rng.uniform(1.0, 1.6)))
    psize = float(np.clip(n / 11, 10, 45))
    edges = np.cumsum(rng.uniform(0.6, 1.4, int(n / (0.6 * psize)) + 6) * psize) - 2 * psize
    nb = edges.size + 1
    return _Design(
        n,
        phase,
        freq,
        amp,
        width,
        fields,
        np.array(lakes),
        np.array(towns),
        np.array(quarries),
        rng.uniform(0, 1, (64, 64)),
        psize,
        edges,
        rng.uniform(0.5, 1.6, nb) * psize,
        rng.uniform(0, 2 * psize, nb),
        int(np.ceil((n + 4 * psize) / (0.5 * psize))) + 2,
    )


def _raw(
    d: _Design, rows: NDArray[np.float64], cols: NDArray[np.float64]
) -> dict[str, NDArray[Any]]:
    """Continuous terrain and land-use scores on a rows x cols grid of pixel centres."""
    n = d.size
    y, x = rows[:, None], cols[None, :]
    yc, slope = d.river_row(cols)
    dist = np.abs(y - yc[None, :]) / np.sqrt(1 + slope[None, :] ** 2)
    dn = dist / n
    f = {k: v.block(rows, cols) for k, v in d.fields.items()}
    h01 = 1.0 / (1.0 + np.exp(-f["hills"]))
    edge = np.clip((dist - d.width) / max(0.03 * n, 2.0), 0, 1)
    hand = 40.0 * (1 - np.exp(-((dn / 0.25) ** 2))) * (0.5 + h01) + 2.0 * f["micro"] * edge
    hand = np.maximum(hand, 0.05 * edge)
    water = dist < d.width
    lake_near = np.zeros_like(hand, dtype=bool)
    for row, col, r in d.lakes:
        e = ((y - row) / r) ** 2 + ((x - col) / (1.4 * r)) ** 2 + 0.25 * f["lake"]
        water |= e < 1.0
        lake_near |= e < 2.2
        hand = hand * np.clip((e - 1.0) / 2.0, 0.0, 1.0) + 0.03 * (e >= 1.0)
    hand[water] = 0.0
    urban = np.zeros_like(water)
    for row, col, radius, blk in d.towns:
        bi, bj = np.floor((y - row) / blk), np.floor((x - col) / blk)
        dist_b = np.hypot((bi + 0.5) * blk, (bj + 0.5) * blk) / radius
        rnd = d.town_table[bi.astype(np.int64) % 64, bj.astype(np.int64) % 64]
        urban |= rnd < np.clip(1.6 - 1.3 * dist_b, 0, 1)
    quarry = np.zeros_like(water)
    for r0, c0, h, w in d.quarries:
        quarry |= (y >= r0) & (y < r0 + h) & (x >= c0) & (x < c0 + w)
    s = d.parcel_size
    yw = y + 0.25 * s * f["warp_y"]
    xw = x + 0.25 * s * f["warp_x"]
    band = np.searchsorted(d.band_edges, yw)
    col_i = np.floor((xw + d.band_offset[band] + s) / d.band_width[band]).astype(np.int64)
    parcel = band * d.ncols + np.clip(col_i, 0, d.ncols - 1) + 1
    return {
        "hand": hand.astype(np.float32),
        "water": water,
        "lake_near": lake_near & ~water,
        "urban": urban,
        "quarry": quarry,
        "ridge": (h01 + 0.3 * f["ridge"]).astype(np.float32),
        "forest": (hand / 25.0 + 0.9 * f["forest"] + 0.25 * f["micro"]).astype(np.float32),
        "parcel": parcel.astype(np.int32),
    }


@dataclass(frozen=True)
class Landscape:
    """The truth of the scene on the Sentinel-2 10 m grid.

    Attributes
    ----------
    hand : ndarray of float32
        Height above the river (m); 0 on permanent water.
    landcover : ndarray of uint8
        Legend codes 1-7.
    parcel : ndarray of int32
        Parcel (or patch) id of each pixel.
    vigour : ndarray of float16
        Within-parcel variability of plant growth (smooth, 30 m scale, zero mean, unit sd).
    """

    size: int
    seed: int
    hand: F32
    landcover: NDArray[np.uint8]
    parcel: NDArray[np.int32]
    parcel_kind: NDArray[np.uint8]
    flood_max: float
    vigour: NDArray[np.float16]
    design: _Design = field(repr=False)

    def dem(self, rows: slice, cols: slice) -> F32:
        """Elevation (m) of a window: river level plus height above the river."""
        c = pixel_centres(cols.start or 0, cols.stop or self.size)
        out: F32 = (self.hand[rows, cols] + self.design.river_elevation(c)[None, :]).astype(
            np.float32
        )
        return out

    def field(self, name: str, rows: slice) -> F32:
        """A smooth texture field (``decid``, ``texture``, ``moisture``...) for full rows."""
        r = pixel_centres(rows.start, rows.stop)
        return self.design.fields[name].block(r, pixel_centres(0, self.size))

    def water_level(self, day: dt.date, peak: dt.date) -> float:
        """Flood water level above the river (m) on ``day``: a 4-6 week spring event."""
        delta = (day - peak).days
        sigma = 11.0 if delta < 0 else 17.0
        level = self.flood_max * float(np.exp(-((delta / sigma) ** 2)))
        return level if level > 0.08 * self.flood_max else 0.0

    def flood(self, rows: slice, level: float) -> NDArray[np.uint8]:
        """Flood truth of full rows: 0 dry, 1 flood water, 2 permanent water."""
        lc = self.landcover[rows]
        out = np.where(lc == WATER, 2, 0).astype(np.uint8)
        if level > 0:
            out[(self.hand[rows] < level) & (lc != WATER)] = 1
        return out


def _classify(
    raw: dict[str, NDArray[Any]], thr: dict[str, float], kind: NDArray[np.uint8]
) -> NDArray:
    lc = kind[raw["parcel"]].copy()
    lc[raw["forest"] > thr["forest"]] = FOREST
    lc[(raw["ridge"] > thr["ridge"]) | raw["quarry"]] = BARE
    lc[raw["urban"]] = URBAN
    lc[(raw["hand"] < thr["wet"]) | raw["lake_near"]] = WETLAND
    lc[raw["water"]] = WATER
    return lc.astype(np.uint8)


def build_landscape(size: int, seed: int) -> Landscape:
    """Draw the landscape of a ``size`` x ``size`` scene from ``seed``.

    Example
    -------
    >>> land = build_landscape(64, 0)
    >>> sorted(set(land.landcover.ravel().tolist()))
    [1, 2, 3, 4, 5, 6, 7]
    """
    d = _design(size, seed)
    prev = pixel_centres(0, size)[:: max(1, size // 300)]
    raw = _raw(d, prev, prev)
    land = ~raw["water"]
    hand = raw["hand"][land]
    thr = {
        "wet": float(np.clip(np.quantile(hand, 0.05), 0.2, 2.5)),
        "ridge": float(np.quantile(raw["ridge"][land], 0.985)),
        "forest": float(np.quantile(raw["forest"][land], 0.68)),
    }
    flood_max = float(np.quantile(hand, 0.17))
    n_parcels = (d.band_edges.size + 2) * d.ncols + 2
    kind = np.where(rng_for(seed, 3).uniform(size=n_parcels) < 0.55, CROPS, GRASS)
    kind = kind.astype(np.uint8)
    hand_a = np.empty((size, size), np.float32)
    lc = np.empty((size, size), np.uint8)
    parcel = np.empty((size, size), np.int32)
    vigour = np.empty((size, size), np.float16)
    cols = pixel_centres(0, size)
    for r0 in range(0, size, ROWS_PER_BLOCK):
        r1 = min(size, r0 + ROWS_PER_BLOCK)
        raw = _raw(d, pixel_centres(r0, r1), cols)
        hand_a[r0:r1] = raw["hand"]
        lc[r0:r1] = _classify(raw, thr, kind)
        parcel[r0:r1] = raw["parcel"]
        vigour[r0:r1] = d.fields["vigour"].block(pixel_centres(r0, r1), cols)
    return Landscape(size, seed, hand_a, lc, parcel, kind, flood_max, vigour, d)


def flood_peak(start: dt.date, end: dt.date) -> dt.date:
    """Peak day of the spring flood: 28 April inside the period, else the nearest one.

    The flood is a spring event: a period without late April may see none of it.
    """
    peaks = [dt.date(y, 4, 28) for y in range(start.year - 1, end.year + 2)]
    inside = [p for p in peaks if start <= p <= end]
    if inside:
        return inside[0]
    return min(peaks, key=lambda p: min(abs((p - start).days), abs((p - end).days)))
