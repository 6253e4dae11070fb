"""Tiled bimodal thresholds of a SAR time series, streamed chunk by chunk.

Each date is cut into square tiles (HydroSAR's approach). For every tile one pass over
the data keeps only a histogram of dB values (``bin_db`` wide bins) and the number of valid
pixels, so memory never holds more than a chunk.
Per date and polarisation the tiles are then selected for bimodality:

* at least ``min_valid`` of the tile is valid (and, with HAND, at least ``hand_fraction``
  of it lies below ``hand_max_m``: HydroSAR's HAND candidates);
* a two-Gaussian mixture fitted to its histogram (EM) has Ashman's D >= ``ashman_min``
  (Ashman et al. 1994: D > 2 for a clean separation) and at least ``min_share`` of the
  pixels in the smaller component, and Sarle's bimodality coefficient of the histogram
  exceeds ``bc_min`` (5/9, a uniform distribution's: SAS Institute 1990, Pfister et al.
  2013);
* VV and VH jointly: tiles whose other polarisation is bimodal too (its coefficient above
  ``bc_min``) rank first, tiles bimodal in one polarisation only fill in for it;
* the dark component is dark enough to be open water (mean below ``water_max_db``).

Fitting a mixture to every tile would be slow, so tiles are screened first with an Otsu
split (both sides populated, dark side dark enough) and the ``4 * n_tiles`` candidates
with the most balanced share of low-backscatter pixels (below ``water_max_db``) are fitted
(split-based selection, Martinis et al. 2015, Chini et al. 2017): where water is a small
share of the scene, the few tiles that hold it come first.
The passing tiles are thresholded: expectation-maximisation
(HydroSAR's three-class EM on each tile, median of the four lowest) and Otsu (on their
pooled histogram). A tile's EM threshold must lie between the two modes of its fitted
mixture: when the three classes split a narrow water mode (well-filtered speckle), the
darkest two cross below the water mean, and the mixture's own crossing is used instead. A date without any bimodal tile borrows the median threshold of the
other dates of the same polarisation; when no date has one, computing the result raises
:class:`~mus_lab.errors.NoBimodalTileError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from numpy.typing import NDArray

from mus_lab.errors import NoBimodalTileError
from mus_lab.flood._threshold import (
    BC_MIN,
    ashman_d,
    bimodality_coefficient,
    em_threshold_histogram,
    mixture_crossing,
    otsu_threshold_histogram,
    two_modes,
)

__all__ = ["TileSelection", "auto_tile", "joint_tile_thresholds", "tile_thresholds"]

#: Histogram range of backscatter (dB): values outside fall into the end bins.
DB_RANGE = (-45.0, 10.0)
#: Fields of the per-date result: EM and Otsu thresholds (dB) and tiles used.
FIELDS = ("em", "otsu", "n_tiles")


@dataclass(frozen=True)
class TileSelection:
    """How tiles are chosen and thresholded (see the module notes)."""

    tile: int
    n_tiles: int = 5
    min_valid: float = 0.8
    ashman_min: float = 2.0
    min_share: float = 0.1
    water_max_db: float = -15.0
    bin_db: float = 0.25
    hand_max_m: float = 15.0
    hand_fraction: float = 0.8
    bc_min: float = BC_MIN

    @property
    def n_bins(self) -> int:
        return round((DB_RANGE[1] - DB_RANGE[0]) / self.bin_db)

    def to_db(self, position: float) -> float:
        """dB value of a (fractional) bin position: bin ``k`` is centred on ``k``."""
        return DB_RANGE[0] + (position + 0.5) * self.bin_db


def auto_tile(shape: tuple[int, int], tile: int | None) -> int:
    """The tile side: ``tile`` if given, else 256 px or less so that 4 x 4 tiles fit."""
    if tile is not None:
        return int(tile)
    side = min(shape)
    fit = 2 ** math.floor(math.log2(max(side // 4, 8)))
    return int(min(256, fit))


def _tile_view(block: NDArray[np.float32], tile: int) -> NDArray[np.float32]:
    """(t, y, x) -> (t, ny, nx, tile, tile), padding partial tiles with NaN."""
    t, y, x = block.shape
    ny, nx = -(-y // tile), -(-x // tile)
    if (ny * tile, nx * tile) != (y, x):
        padded = np.full((t, ny * tile, nx * tile), np.nan, np.float32)
        padded[:, :y, :x] = block
        block = padded
    return block.reshape(t, ny, tile, nx, tile).transpose(0, 1, 3, 2, 4)


def _block_stats(block: NDArray[np.floating], sel: TileSelection) -> NDArray[np.float64]:
    """Per tile of the block: the histogram (``n_bins``) and the number of valid pixels.

    One ``bincount`` over the block as it lies in memory (bin = tile * n_bins + dB bin; no
    data goes to one extra bin, dropped), partial tiles at the edges counting what they have.
    """
    data = np.asarray(block, np.float32)
    t, y, x = data.shape
    tile, nb = sel.tile, sel.n_bins
    ny, nx = -(-y // tile), -(-x // tile)
    valid = np.isfinite(data)
    idx = np.floor((np.where(valid, data, 0.0) - DB_RANGE[0]) / sel.bin_db)
    np.clip(idx, 0, nb - 1, out=idx)
    owner = (
        np.arange(t)[:, None, None] * (ny * nx)
        + (np.arange(y) // tile)[None, :, None] * nx
        + (np.arange(x) // tile)[None, None, :]
    ) * nb
    flat = owner + idx.astype(np.int64)
    flat[~valid] = t * ny * nx * nb
    hist = np.bincount(flat.ravel(), minlength=t * ny * nx * nb + 1)[:-1]
    hist = hist.reshape(t, ny, nx, nb)
    return np.concatenate([hist, hist.sum(-1)[..., None]], -1).astype(np.float64)


def _select(
    stats: NDArray[np.float64],
    hand_ok: NDArray[np.bool_] | None,
    sel: TileSelection,
    partners: tuple[NDArray[np.float64], ...] = (),
) -> NDArray[np.float64]:
    """EM and Otsu thresholds (dB) of one date's tiles, and how many tiles were used.

    ``partners`` are the same date's tile statistics of the other polarisation(s): tiles
    bimodal there too (bimodality coefficient above 5/9) are preferred.
    """
    nb = sel.n_bins
    hist = stats[..., :nb].reshape(-1, nb)
    n_valid = stats[..., nb].ravel()
    ok = n_valid >= sel.min_valid * sel.tile * sel.tile
    if hand_ok is not None:
        ok &= hand_ok.ravel()
    partner_hists = [p[..., :nb].reshape(-1, nb) for p in partners]
    # Cheap screen first (Otsu split: both sides populated, dark side dark enough), ranked
    # by the balance of low-backscatter pixels (share below water_max_db, the closer to
    # one half the better: split-based selection, Martinis et al. 2015, Chini et al. 2017),
    # so that the few tiles holding water lead even where water is a small share of the
    # scene. Then the bimodality tests proper on the 4 * n_tiles best candidates.
    screened: list[tuple[float, int]] = []
    bins = np.arange(nb, dtype=np.float64)
    dark_bins = bins < (sel.water_max_db - DB_RANGE[0]) / sel.bin_db
    for i in np.flatnonzero(ok):
        split = otsu_threshold_histogram(hist[i])
        if not np.isfinite(split):
            continue
        below = bins < split
        n0, n1 = hist[i][below].sum(), hist[i][~below].sum()
        if min(n0, n1) < sel.min_share * (n0 + n1):
            continue
        m0 = (hist[i][below] * bins[below]).sum() / n0
        if sel.to_db(m0) > sel.water_max_db:
            continue
        dark = hist[i][dark_bins].sum() / (n0 + n1)
        screened.append((float(min(dark, 1.0 - dark)), int(i)))
    # A tile is trusted when its fitted mixture has Ashman's D >= ashman_min (and a smaller
    # mode of at least min_share, dark enough to be water) and its bimodality coefficient
    # exceeds 5/9; tiles bimodal in the other polarisation too rank first (VV and VH
    # jointly), then by D.
    chosen: list[tuple[bool, float, int]] = []
    for _, k in sorted(screened, reverse=True)[: 4 * sel.n_tiles]:
        d, share, dark_mean = ashman_d(hist[k])
        if not (
            d >= sel.ashman_min
            and share >= sel.min_share
            and sel.to_db(dark_mean) <= sel.water_max_db
            and bimodality_coefficient(hist[k]) > sel.bc_min
        ):
            continue
        joint = all(bimodality_coefficient(ph[k]) > sel.bc_min for ph in partner_hists)
        chosen.append((joint, d, k))
    if not chosen:
        return np.array([np.nan, np.nan, 0.0])
    best = [i for *_, i in sorted(chosen, reverse=True)[: sel.n_tiles]]
    em = [_guarded_em(hist[i]) for i in best]
    em_pos = float(np.median(np.sort(np.asarray(em))[:4]))
    otsu_pos = otsu_threshold_histogram(hist[best].sum(0))
    return np.array([sel.to_db(em_pos), sel.to_db(otsu_pos), float(len(best))])


def _guarded_em(counts: NDArray[np.float64]) -> float:
    """HydroSAR's three-class EM threshold, kept only between the tile's two modes.

    With a narrow water mode (well-filtered speckle) the three classes can split the water
    itself, and the darkest two then cross below the water mean; the crossing of the
    tile's two-Gaussian mixture is used instead.
    """
    t = em_threshold_histogram(counts)
    fit = two_modes(counts)
    if fit is None:
        return t
    means, variances, weights = fit
    if np.isfinite(t) and means[0] < t < means[1]:
        return t
    return mixture_crossing(means, variances, weights)


def _date_thresholds(*parts: Any, sels: tuple[TileSelection, ...]) -> NDArray[np.float64]:
    """One date block: the stats of every polarisation, then the HAND candidates (or None)."""
    stats: list[NDArray[np.float64]] = list(parts[:-1])
    hand_ok = parts[-1]
    ok = None if hand_ok is None else np.asarray(hand_ok)[0, :, :, 0]
    n_t = stats[0].shape[0]
    out = np.zeros((n_t, 1, 1, len(FIELDS) * len(stats)))
    for j, (s, sel) in enumerate(zip(stats, sels, strict=True)):
        others = [o for i, o in enumerate(stats) if i != j]
        for k in range(n_t):
            partners = tuple(o[k] for o in others)
            out[k, 0, 0, j * len(FIELDS) : (j + 1) * len(FIELDS)] = _select(s[k], ok, sel, partners)
    return out


def _fill_dates(values: NDArray[np.float64], pol: str, strict: bool) -> NDArray[np.float64]:
    out = values.copy()
    for j in (0, 1):
        col = out[:, j]
        missing = ~np.isfinite(col)
        if missing.all():
            if strict:
                raise NoBimodalTileError(
                    f"No tile of the {pol.upper()} image is bimodal (water and land): no "
                    "threshold can be drawn. Give a larger area with some open water, a smaller "
                    "tile (tile=...), lower ashman_min, or fixed thresholds (thresholds=...)."
                )
            continue
        col[missing] = np.median(col[~missing])
    return out


def _hand_ok(hand: xr.DataArray, sel: TileSelection, chunks: tuple) -> da.Array:
    low = (hand < sel.hand_max_m).astype(np.float32).where(hand.notnull())
    data = low.data if isinstance(low.data, da.Array) else da.from_array(low.values)
    data = data.rechunk(chunks)

    def frac(block: NDArray[np.floating]) -> NDArray[np.bool_]:
        tiles = _tile_view(np.asarray(block, np.float32)[None], sel.tile)[0]
        return np.asarray(np.nansum(tiles, axis=(-2, -1)) >= sel.hand_fraction * sel.tile**2)

    tiles_y = tuple(-(-c // sel.tile) for c in data.chunks[0])
    tiles_x = tuple(-(-c // sel.tile) for c in data.chunks[1])
    out: da.Array = data.map_blocks(frac, chunks=(tiles_y, tiles_x), dtype=bool)
    return out


def _tile_stats(db: xr.DataArray, sel: TileSelection) -> da.Array:
    """Per-tile histograms and valid counts, one block per date."""
    data = db.data if isinstance(db.data, da.Array) else da.from_array(db.values)
    cy, cx = data.chunks[1][0], data.chunks[2][0]
    step_y = max(sel.tile, -(-cy // sel.tile) * sel.tile)
    step_x = max(sel.tile, -(-cx // sel.tile) * sel.tile)
    data = data.rechunk((1, step_y, step_x))
    tiles_y = tuple(-(-c // sel.tile) for c in data.chunks[1])
    tiles_x = tuple(-(-c // sel.tile) for c in data.chunks[2])
    n_feat = sel.n_bins + 1
    stats: da.Array = data.map_blocks(
        _block_stats,
        sel,
        chunks=(data.chunks[0], tiles_y, tiles_x, (n_feat,)),
        new_axis=3,
        dtype=np.float64,
    ).rechunk((1, -1, -1, -1))
    return stats


def joint_tile_thresholds(
    dbs: dict[str, xr.DataArray],
    sels: dict[str, TileSelection],
    *,
    hand: xr.DataArray | None = None,
    strict: bool = True,
) -> dict[str, xr.DataArray]:
    """Per-date EM and Otsu thresholds (dB) of each polarisation, tiles chosen jointly, lazily.

    Every polarisation is thresholded on its own tiles, but tiles that are bimodal in the
    other polarisation too (bimodality coefficient above ``bc_min``) rank first: where VV
    and VH agree that a tile holds water and land, it is trusted before tiles bimodal in
    one polarisation only (e.g. VH on a noise floor, a dark field in VV).

    Parameters
    ----------
    dbs
        Backscatter in dB per polarisation, ``(time, y, x)`` on one grid, NaN where not valid.
    sels
        Tile selection per polarisation (same ``tile`` and ``bin_db`` for all).
    hand
        Optional HAND (m) on the same grid, ``(y, x)``, for HydroSAR's HAND candidates.
    strict
        Raise :class:`NoBimodalTileError` at compute time when a polarisation has no
        bimodal tile on any date (else its thresholds stay NaN).

    Returns
    -------
    dict of xarray.DataArray
        Per polarisation, float64 ``(time, field)`` with fields ``em``, ``otsu`` (dB) and
        ``n_tiles``.
    """
    pols = list(dbs)
    first = sels[pols[0]]
    stats = [_tile_stats(dbs[p], sels[p]) for p in pols]
    ok = None
    if hand is not None:
        data = _dask_of(dbs[pols[0]])  # the pixel chunks of the tile pass
        cy, cx = data.chunks[1][0], data.chunks[2][0]
        step_y = max(first.tile, -(-cy // first.tile) * first.tile)
        step_x = max(first.tile, -(-cx // first.tile) * first.tile)
        pix = data.rechunk((1, step_y, step_x)).chunks
        ok = _hand_ok(hand, first, (pix[1], pix[2])).rechunk((-1, -1))
        ok = ok[None, :, :, None]  # broadcast over the dates' blocks
    n = len(FIELDS)
    per_date = da.map_blocks(
        _date_thresholds,
        *stats,
        ok,
        sels=tuple(sels[p] for p in pols),
        chunks=(stats[0].chunks[0], (1,), (1,), (n * len(pols),)),
        dtype=np.float64,
    )[:, 0, 0, :].rechunk((-1, -1))
    out = {}
    for j, p in enumerate(pols):
        db = dbs[p]
        pol = str(p or db.name or db.attrs.get("polarisation", "sar"))
        filled = per_date[:, j * n : (j + 1) * n].map_blocks(
            _fill_dates, pol, strict, dtype=np.float64
        )
        out[p] = xr.DataArray(
            filled,
            dims=("time", "field"),
            coords={"time": db["time"].values, "field": list(FIELDS)},
            name=f"threshold_{pol}",
        )
    return out


def _dask_of(arr: xr.DataArray) -> da.Array:
    return arr.data if isinstance(arr.data, da.Array) else da.from_array(arr.values)


def tile_thresholds(
    db: xr.DataArray,
    sel: TileSelection,
    *,
    hand: xr.DataArray | None = None,
    strict: bool = True,
) -> xr.DataArray:
    """Per-date EM and Otsu thresholds (dB) of one polarisation, lazily.

    Parameters
    ----------
    db
        Backscatter in dB, ``(time, y, x)``, NaN where not valid.
    sel
        Tile selection settings.
    hand
        Optional HAND (m) on the same grid, ``(y, x)``, for HydroSAR's HAND candidates.
    strict
        Raise :class:`NoBimodalTileError` at compute time when no date has a bimodal
        tile (else the thresholds stay NaN).

    Returns
    -------
    xarray.DataArray
        float64 ``(time, field)`` with fields ``em``, ``otsu`` (dB) and ``n_tiles``.
    """
    pol = str(db.name or db.attrs.get("polarisation", "sar"))
    return joint_tile_thresholds({pol: db}, {pol: sel}, hand=hand, strict=strict)[pol]
