"""Per-method evidence of open water: a likelihood 0-1 per pixel and date, NaN = none.

SAR methods (on ``(time, y, x)`` dB backscatter, VV and/or VH, each polarisation's
likelihoods averaged):

``threshold``
    Tiled bimodal threshold ``T`` per date (:mod:`mus_lab.flood._tiles`); likelihood
    ``logistic((T - dB) / softness_db)``.
``change``
    UN-SPIDER change detection: focal means (a square of the 50 m disc's area, so the
    filter stays separable) of the image and of a pre-event reference from the same
    relative orbit; ``ratio = after / before`` on dB values, likelihood
    ``logistic((ratio - 1.25) / change_softness)``; pixels that were already water in
    the reference and still are keep the threshold likelihood (water that stays water
    shows no change). Groups under 8 pixels are dropped (likelihood capped at 0.49).
    The reference is the given pre-event image, else the per-orbit temporal median
    (robust as long as a pixel floods on fewer than half of its orbit's dates).
``region``
    Region growing: seeds of threshold likelihood >= ``seed_likelihood`` grow into the
    8-connected pixels darker than ``T + grow_tolerance_db``; inside the region the
    likelihood is that relaxed threshold's, outside the strict one capped at 0.49.

Optical evidence (:func:`optical_evidence`): MNDWI (or NDWI) of a cloud-free
Sentinel-2 date near each SAR date, ``logistic(index / optical_softness)``.

Everything is lazy; neighbourhood steps run with ``dask.array.map_overlap``.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray
from scipy import ndimage

from mus_lab import ard
from mus_lab.ard import QUALITY_BITS
from mus_lab.cube import match_grid, pixel_size_m, standard_grid
from mus_lab.errors import (
    FloodInputError,
    GridMismatchError,
    LinearBackscatterWarning,
    NoBimodalTileError,
)
from mus_lab.flood._grid import keep_grid, nanmean
from mus_lab.flood._options import MappingOptions
from mus_lab.flood._selftrain import fit_models, predict, sample_delayed
from mus_lab.flood._tiles import TileSelection, auto_tile, joint_tile_thresholds

__all__ = [
    "POLARISATIONS",
    "optical_evidence",
    "orbit_references",
    "sar_evidence",
    "sar_polarisations",
    "self_trained_models",
]

POLARISATIONS = ("vv", "vh")
_EIGHT = np.ones((3, 3), bool)


# ----------------------------------------------------------------------------- inputs


def sar_polarisations(sar: xr.Dataset) -> xr.Dataset:
    """The VV/VH variables of ``sar`` (any case) renamed to lower case, with ``valid`` and ``quality``.

    Parameters
    ----------
    sar
        SAR backscatter with variables ``VV``/``vv`` and/or ``VH``/``vh`` on ``y``/``x``.

    Returns
    -------
    xarray.Dataset
        ``vv``/``vh`` and, when present, ``valid`` and ``quality``; a data set without
        ``time`` gets a placeholder date (2000-01-01).

    Raises
    ------
    FloodInputError
        Neither VV nor VH is there, or they lack ``y``/``x`` dimensions.

    Examples
    --------
    >>> sar = xr.Dataset({"VH": (("y", "x"), np.full((2, 2), -20.0, "float32"))})
    >>> out = sar_polarisations(sar)
    >>> list(out.data_vars), out["vh"].dims
    (['vh'], ('time', 'y', 'x'))
    """
    names = {str(n).lower(): n for n in sar.data_vars}
    found = {p: names[p] for p in POLARISATIONS if p in names}
    if not found:
        raise FloodInputError(
            f"The SAR data has no VV or VH variable (it has {sorted(map(str, sar.data_vars))}): "
            "give backscatter in dB with variables (or band descriptions) named VV and/or VH, "
            "e.g. ard.prepare_s1(items, db=True)."
        )
    keep: dict[Hashable, Any] = {v: p for p, v in found.items()}
    for name in ("valid", "quality"):  # the ARD validity convention (mus_lab.contracts)
        if name in sar.data_vars:
            keep[name] = name
    out = sar[list(keep)].rename({k: v for k, v in keep.items() if k != v})
    for p in found:
        if not {"y", "x"} <= set(out[p].dims):
            raise FloodInputError(f"{p.upper()} must have y and x dimensions, got {out[p].dims}.")
    if "time" not in out.dims:
        out = out.expand_dims(time=[np.datetime64("2000-01-01", "ns")])
    return out


def _in_db(sar: xr.Dataset) -> xr.Dataset:
    """Convert polarisations declared linear (attrs) to dB, with a warning."""
    out = sar.copy()
    for p in POLARISATIONS:
        if p not in sar:
            continue
        units = str(sar[p].attrs.get("units", "")).lower()
        declared_linear = units.startswith("linear") or sar.attrs.get("db", 1) == 0
        if declared_linear:
            warnings.warn(
                f"{p.upper()} is linear power (units={units or 'db=0'}): converted to dB. "
                "Pass ard.prepare_s1/prepare_rcm(..., db=True) to silence this.",
                LinearBackscatterWarning,
                stacklevel=3,
            )
            arr = ard.to_db(sar[p])
            out[p] = arr.astype(np.float32).assign_attrs(sar[p].attrs | {"units": "dB"})
    return out


def _dask(arr: xr.DataArray) -> da.Array:
    data = arr.data
    return data if isinstance(data, da.Array) else da.from_array(np.asarray(data))


def _like(data: da.Array, like: xr.DataArray, name: str) -> xr.DataArray:
    return xr.DataArray(data, dims=like.dims, coords=like.coords, name=name)


def _logistic(x: xr.DataArray) -> xr.DataArray:
    out: xr.DataArray = 1.0 / (1.0 + xr.ufuncs.exp(-x.clip(-50, 50)))
    return out.astype(np.float32)


def _resolution(sar: xr.Dataset) -> float:
    """Pixel size in metres (geographic grids: at their centre latitude, not in degrees)."""
    try:
        x, y = pixel_size_m(sar)
    except GridMismatchError:  # a grid-less array (tests with plain coordinates)
        return 10.0
    return float(np.sqrt(x * y))


# ----------------------------------------------------------------------------- kernels


def _focal_mean(
    block: NDArray[np.floating],
    side: int,
    counts: list[tuple[NDArray[np.bool_], NDArray[np.float32]]] | None = None,
) -> NDArray[np.float32]:
    """Focal mean of the finite values in a ``side`` square (NaN where not finite).

    ``counts`` caches the focal share of finite pixels by mask: blocks with the same
    mask (both polarisations, often the image and its reference) share one filter pass.
    """
    good = np.isfinite(block)
    full = bool(good.all())  # the common case: no masking to do (the same values)
    values = block if full else np.where(good, block, 0.0)
    total = ndimage.uniform_filter(
        values.astype(np.float32, copy=False), side, mode="constant", axes=(1, 2)
    )
    count = next((c for m, c in counts or () if np.array_equal(m, good)), None)
    if count is None:
        count = ndimage.uniform_filter(good.astype(np.float32), side, mode="constant", axes=(1, 2))
        if counts is not None:
            counts.append((good, count))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    seen = count > 1e-6
    if not (full and seen.all()):
        out = np.where(seen, out, np.nan).astype(np.float32, copy=False)
        out[~good] = np.nan
    return out


def _nanmedian_time(block: NDArray[np.floating]) -> NDArray[np.float32]:
    empty = np.isnan(block).all(axis=0)  # all-NaN pixels stay NaN, without a warning
    out = np.nanmedian(np.where(empty[None], 0.0, block), axis=0).astype(np.float32)
    out[empty] = np.nan
    return out


def _grow(seeds: NDArray[np.bool_], candidates: NDArray[np.bool_]) -> NDArray[np.bool_]:
    out = np.zeros(seeds.shape, bool)
    for k in range(seeds.shape[0]):
        region = candidates[k] | seeds[k]
        labels, n = ndimage.label(region, structure=_EIGHT)
        keep = np.zeros(n + 1, bool)
        keep[labels[seeds[k]]] = True  # the regions holding a seed (no sort, as unique did)
        keep[0] = False
        out[k] = keep[labels]
    return out


def _big_groups(mask: NDArray[np.bool_], min_px: int) -> NDArray[np.bool_]:
    out = np.zeros(mask.shape, bool)
    for k in range(mask.shape[0]):
        labels, _ = ndimage.label(mask[k], structure=_EIGHT)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        out[k] = sizes[labels] >= min_px
    return out


def _overlap(func: Any, *arrays: da.Array, depth: int, dtype: Any, **kw: Any) -> da.Array:
    smallest = min(min(a.chunks[1]) for a in arrays), min(min(a.chunks[2]) for a in arrays)
    d = int(max(1, min(depth, *smallest)))
    out: da.Array = da.map_overlap(
        func, *arrays, depth={0: 0, 1: d, 2: d}, boundary="none", dtype=dtype, **kw
    )
    return out


# ----------------------------------------------------------------------------- SAR


def _thresholds(
    db: dict[str, xr.DataArray],
    opts: MappingOptions,
    hand: xr.DataArray | None,
    strict: bool,
) -> xr.DataArray:
    """``(time, pol)`` thresholds in dB, with the scene-level no-bimodal-tile check."""
    first = next(iter(db.values()))
    tile = auto_tile((first.sizes["y"], first.sizes["x"]), opts.tile)
    fixed_t: dict[str, xr.DataArray] = {}
    sels: dict[str, TileSelection] = {}
    for p in db:
        fixed = (opts.thresholds or {}).get(p)
        if fixed is not None:
            t = xr.full_like(first["time"], float(fixed), dtype=np.float64)
            fixed_t[p] = t.drop_vars([c for c in t.coords if c != "time"])
            continue
        sels[p] = TileSelection(
            tile=tile,
            n_tiles=opts.n_tiles,
            min_valid=opts.min_valid,
            ashman_min=opts.ashman_min,
            min_share=opts.min_share,
            water_max_db=float(opts.water_max_db.get(p, -15.0)),
            bin_db=opts.bin_db,
            hand_max_m=opts.hand_max_m,
            hand_fraction=opts.hand_fraction,
            bc_min=opts.bc_min,
        )
    tables = (
        joint_tile_thresholds({p: db[p].rename(p) for p in sels}, sels, hand=hand, strict=False)
        if sels
        else {}
    )
    per_pol = []
    for p in db:
        if p in fixed_t:
            per_pol.append(fixed_t[p])
            continue
        found = tables[p].sel(field=opts.threshold_method, drop=True)
        cap = opts.max_threshold_db.get(p)
        per_pol.append(found if cap is None else found.clip(max=float(cap)))
    stacked = xr.concat(per_pol, pd.Index(list(db), name="pol"))
    stacked = stacked.transpose("time", "pol").chunk({"time": -1, "pol": -1})
    names = ", ".join(p.upper() for p in db)

    def check(values: NDArray[np.float64]) -> NDArray[np.float64]:
        if strict and not np.isfinite(values).any():
            raise NoBimodalTileError(
                f"No tile of the SAR image(s) ({names}) is bimodal (water and land): no "
                f"threshold can be drawn with tiles of {tile} px. Give a larger area with some "
                "open water, a smaller tile, a lower ashman_min, or fixed thresholds "
                "(MappingOptions(thresholds={'vh': -22.0}), --vh-threshold on the CLI)."
            )
        return values

    checked = stacked.copy(data=da.map_blocks(check, _dask(stacked), dtype=np.float64))
    return checked.rename("threshold").assign_attrs(units="dB", tile=tile)


def _reference_db(
    arr: xr.DataArray, orbit: NDArray[Any] | None, opts: MappingOptions
) -> xr.DataArray:
    """Per-date reference: the temporal median of the dates of the same orbit."""
    groups = np.zeros(arr.sizes["time"], int) if orbit is None else np.asarray(orbit)
    medians: dict[Any, xr.DataArray] = {}
    for g in pd.unique(groups):
        sub = arr.isel(time=np.flatnonzero(groups == g))
        if sub.sizes["time"] >= opts.reference_dates:
            stack = _dask(sub).rechunk({0: -1})
            med = stack.map_blocks(_nanmedian_time, drop_axis=0, dtype=np.float32)
            medians[g] = _like(med, sub.isel(time=0, drop=True), "reference")
        else:
            medians[g] = xr.full_like(arr.isel(time=0, drop=True), np.nan)
    parts = [
        medians[g].expand_dims(time=[t]) for g, t in zip(groups, arr["time"].values, strict=True)
    ]
    out = xr.concat(parts, "time").astype(np.float32)
    return out.chunk({"time": 1})


def orbit_references(sar: xr.Dataset, *, options: MappingOptions | None = None) -> xr.Dataset:
    """The change-detection reference of every date: its orbit's temporal median (dB).

    Parameters
    ----------
    sar
        As for :func:`sar_evidence` (``relative_orbit`` on ``time`` groups the dates;
        without it all dates form one group).
    options
        ``reference_dates``: groups with fewer dates get NaN (no change evidence).

    Returns
    -------
    xarray.Dataset
        float32 ``vv`` / ``vh`` ``(time, y, x)`` on ``sar``'s dates, lazily.
    """
    opts = options or MappingOptions()
    sar = _in_db(sar_polarisations(standard_grid(sar)))
    pols = [p for p in POLARISATIONS if p in sar]
    valid = sar["valid"].astype(bool) if "valid" in sar else True
    orbit = sar["relative_orbit"].values if "relative_orbit" in sar.coords else None
    out = xr.Dataset({p: _reference_db(sar[p].where(valid), orbit, opts) for p in pols})
    return keep_grid(out, sar)


def _given_reference(reference: xr.Dataset, sar: xr.Dataset, p: str) -> xr.DataArray | None:
    if p not in reference:
        return None
    ref = reference[p]
    same_dates = "time" in ref.dims and np.array_equal(ref["time"].values, sar["time"].values)
    if same_dates and ref.sizes["time"] > 1:  # one reference per date (e.g. per orbit)
        ref = ref.drop_vars([c for c in ref.coords if c not in ("time", "y", "x", "spatial_ref")])
        return ref.chunk({"time": 1}).astype(np.float32)
    if "time" in ref.dims:
        ref = ref.median("time", skipna=True) if ref.sizes["time"] > 1 else ref.isel(time=0)
    ref = ref.drop_vars([c for c in ref.coords if c not in ("y", "x", "spatial_ref")])
    return ref.expand_dims(time=sar["time"].values).chunk({"time": 1}).astype(np.float32)


def _nanmean(parts: list[xr.DataArray]) -> xr.DataArray:
    if len(parts) == 1:
        return parts[0]
    return nanmean(xr.concat(parts, "pol"), "pol").astype(np.float32)


def sar_evidence(
    sar: xr.Dataset,
    *,
    reference: xr.Dataset | None = None,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    thresholds: xr.DataArray | None = None,
    options: MappingOptions | None = None,
    strict: bool = True,
    self_trained: Sequence[Any] | None = None,
) -> xr.Dataset:
    """Likelihood of open water from each SAR method, lazily.

    Parameters
    ----------
    sar
        Backscatter in dB with ``vv`` and/or ``vh`` (any case), ``(time, y, x)`` or
        ``(y, x)``, e.g. ``ard.prepare_s1(items, geobox=grid, speckle="refined_lee",
        db=True)``; an optional ``valid`` (the ARD validity) and ``relative_orbit`` on ``time``.
        Variables declared linear (``units`` or ``db=0``) are converted, with a
        :class:`~mus_lab.errors.LinearBackscatterWarning`.
    reference
        Pre-event backscatter (dB) on the same grid for change detection: one image (or
        a stack, whose median is used), or one reference per date (same ``time`` as
        ``sar``, e.g. :func:`orbit_references`). Default: the per-orbit temporal median.
    hand
        HAND (m) on the same grid: restricts the threshold tiles to low terrain.
    slope
        Slope (degrees) on the same grid: change detection says "not water" above
        ``change_slope_max_deg`` (UN-SPIDER).
    thresholds
        Thresholds (dB) already drawn, ``(time, pol)`` like the ``threshold`` output:
        skips the tile pass (e.g. computed once before writing date by date).
    options
        :class:`MappingOptions` (defaults when ``None``).
    strict
        Raise :class:`~mus_lab.errors.NoBimodalTileError` (when computed) if no date
        and polarisation has a bimodal tile.
    self_trained
        The ``self_trained`` voter's fitted classifiers, one per date (from
        :func:`self_trained_models`, computed): without them they are fitted lazily inside
        the graph, which then needs a sample of every block before any block's vote.

    Returns
    -------
    xarray.Dataset
        ``evidence`` (float32 ``(source, time, y, x)``, sources = the methods, NaN = no
        evidence), ``valid`` (bool ``(time, y, x)``), ``threshold`` (dB, ``(time, pol)``).

    Raises
    ------
    FloodInputError
        No VV/VH.
    GridMismatchError
        HAND, slope or the reference given without a pixel grid.

    Notes
    -----
    ``sar`` may come from rioxarray, odc-stac, stackstac or the project, on a projected or
    a geographic CRS (radii in metres are converted at the scene's latitude). HAND, slope
    and the reference on the SAR grid within 1e-6 of a pixel are used as they are; on
    another grid they are reprojected lazily onto it (bilinear) with a
    :class:`~mus_lab.errors.GridReprojectedWarning`.
    """
    opts = options or MappingOptions()
    sar = _in_db(sar_polarisations(standard_grid(sar)))
    pols = [p for p in POLARISATIONS if p in sar]
    if "valid" in sar:
        valid = sar["valid"].astype(bool)
    else:
        valid = xr.concat([sar[p].notnull() for p in pols], "pol").any("pol")
    db = {p: sar[p].where(valid).astype(np.float32) for p in pols}
    if hand is not None:
        hand = match_grid(hand, sar, names=("HAND", "the SAR"), resampling="bilinear")
    if thresholds is not None:
        thr = thresholds.sel(pol=pols).assign_coords(time=sar["time"].values)
    else:
        thr = _thresholds(db, opts, hand, strict)
    soft = opts.softness_db
    strict_p = {p: _logistic((thr.sel(pol=p, drop=True) - db[p]) / soft) for p in pols}
    p_threshold = _nanmean([strict_p[p].where(db[p].notnull()) for p in pols])
    evidence: dict[str, xr.DataArray] = {}
    if "threshold" in opts.methods:
        evidence["threshold"] = p_threshold
    if "change" in opts.methods:
        if slope is not None:
            slope = match_grid(slope, sar, names=("slope", "the SAR"), resampling="bilinear")
        evidence["change"] = _change(sar, db, thr, reference, opts, valid, slope)
    if "region" in opts.methods:
        evidence["region"] = _region(db, thr, opts)
    if "self_trained" in opts.methods:
        others = list(evidence.values()) or [p_threshold]
        evidence["self_trained"] = _self_trained(db, others, hand, opts, self_trained)
    stack = xr.concat(
        [evidence[m].where(valid) for m in opts.methods if m in evidence],
        pd.Index([m for m in opts.methods if m in evidence], name="source"),
    ).astype(np.float32)
    out = xr.Dataset({"evidence": stack, "valid": valid, "threshold": thr})
    return keep_grid(out.assign_attrs(sar.attrs), sar)


def _fit_delayed(
    db: dict[str, xr.DataArray],
    others: list[xr.DataArray],
    hand: xr.DataArray | None,
    opts: MappingOptions,
) -> Any:
    """The self-trained voter's per-date classifiers, as one delayed object."""
    import dask

    first = db[next(iter(db))]
    chunks = _dask(first).chunks
    ev = [_dask(o.transpose(*first.dims)).rechunk(chunks) for o in others]
    arrays = [_dask(db[p]).rechunk(chunks) for p in db]
    hand_arr = _per_pixel(hand, first) if hand is not None else None
    samples = sample_delayed(
        ev,
        arrays,
        hand_arr,
        window=opts.texture_window,
        confidence=opts.train_confidence,
        max_samples=opts.train_samples,
        seed=opts.train_seed,
    )
    return dask.delayed(fit_models)(
        samples,
        first.sizes["time"],
        max_samples=opts.train_samples,
        min_samples=opts.train_min_samples,
        seed=opts.train_seed,
    )


def _self_trained(
    db: dict[str, xr.DataArray],
    others: list[xr.DataArray],
    hand: xr.DataArray | None,
    opts: MappingOptions,
    models: Sequence[Any] | None,
) -> xr.DataArray:
    import dask

    first = db[next(iter(db))]
    chunks = _dask(first).chunks
    if models is None:
        fitted = _fit_delayed(db, others, hand, opts)
    else:
        if len(models) != first.sizes["time"]:
            raise FloodInputError(
                f"self_trained holds {len(models)} classifiers for {first.sizes['time']} "
                "dates: give the output of self_trained_models(...) for the same SAR data."
            )
        fitted = dask.delayed(list(models), pure=True)
    arrays = [_dask(db[p]).rechunk(chunks) for p in db]
    hand_arr = _per_pixel(hand, first) if hand is not None else None
    out = predict(fitted, arrays, hand_arr, window=opts.texture_window)
    return _like(out, first, "self_trained")


def self_trained_models(
    sar: xr.Dataset,
    *,
    reference: xr.Dataset | None = None,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    thresholds: xr.DataArray | None = None,
    options: MappingOptions | None = None,
) -> Any:
    """The ``self_trained`` voter's classifiers, one per date, as a delayed object.

    Compute it once (``.compute()``: one pass over the scene that keeps only a capped
    sample per block) and pass the list to :func:`sar_evidence` / :func:`map_water`
    (``self_trained=``), so that writing block by block does not hold the scene.

    Parameters
    ----------
    sar, reference, hand, slope, thresholds, options
        As for :func:`sar_evidence`; the labels come from the other methods of
        ``options.methods`` (the threshold alone when none is there).

    Returns
    -------
    dask.delayed.Delayed
        Computes to a list (one per date) of fitted scikit-learn classifiers, or None on
        a date with fewer than ``train_min_samples`` confident pixels of either class.
    """
    opts = options or MappingOptions()
    others = tuple(m for m in opts.methods if m != "self_trained")
    ev = sar_evidence(
        sar,
        reference=reference,
        hand=hand,
        slope=slope,
        thresholds=thresholds,
        options=opts.with_(methods=others or ("threshold",)),
    )
    sar = _in_db(sar_polarisations(standard_grid(sar)))
    db = {p: sar[p].where(ev["valid"]).astype(np.float32) for p in POLARISATIONS if p in sar}
    if hand is not None:
        hand = match_grid(hand, sar, names=("HAND", "the SAR"), resampling="bilinear")
    parts = [ev["evidence"].sel(source=s, drop=True) for s in ev["source"].values]
    return _fit_delayed(db, parts, hand, opts)


def _np_logistic(x: NDArray[np.floating]) -> NDArray[np.float32]:
    # 1 / (1 + exp(-clip(x, -50, 50))), in place on one temporary (the same values).
    y = np.clip(x, -50, 50)
    np.negative(y, out=y)
    np.exp(y, out=y)
    y += 1.0
    np.divide(1.0, y, out=y)
    return y.astype(np.float32, copy=False)


def _np_nanmean(parts: list[NDArray[np.floating]]) -> NDArray[np.float32]:
    if len(parts) == 2 and all(p.dtype == np.float32 for p in parts):
        # The same values as below, without the stack: a float32 sum halved (exact) or kept.
        a, b = parts
        count = np.isfinite(a).astype(np.int8) + np.isfinite(b)
        total = np.where(np.isnan(a), np.float32(0), a) + np.where(np.isnan(b), np.float32(0), b)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / count
        out[count == 0] = np.nan
        return out
    stack = np.stack(parts)
    count = np.isfinite(stack).sum(0)
    total = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def _change_kernel(
    *blocks: NDArray[np.floating],
    n_pols: int,
    side: int,
    ratio: float,
    ratio_softness: float,
    softness_db: float,
    min_px: int,
    slope_max: float,
) -> NDArray[np.float32]:
    """UN-SPIDER change detection of one block (with its halo): after, reference and
    threshold per polarisation, then an optional slope; see the module notes."""
    after, before_raw, thr = (blocks[k * n_pols : (k + 1) * n_pols] for k in range(3))
    parts = []
    counts: list[tuple[NDArray[np.bool_], NDArray[np.float32]]] = []
    for a, r, t in zip(after, before_raw, thr, strict=True):
        before = _focal_mean(r, side, counts)
        smooth = _focal_mean(a, side, counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            quotient = np.where(before < -1.0, smooth / before, 0.0)
        p_change = _np_logistic((quotient - ratio) / ratio_softness)
        with np.errstate(invalid="ignore"):
            stays = np.minimum(
                _np_logistic((t - r) / softness_db), _np_logistic((t - a) / softness_db)
            )
        stays[np.isnan(stays)] = 0.0  # nan_to_num: logistics have no infinities
        p = np.maximum(p_change, stays)
        p[~(np.isfinite(a) & np.isfinite(before))] = np.nan
        parts.append(p)
    p_cd = _np_nanmean(parts)
    keep = _big_groups(p_cd >= 0.5, min_px)
    if len(blocks) > 3 * n_pols:  # slope (UN-SPIDER ignores steep pixels)
        keep &= ~(blocks[-1] >= slope_max)
    return np.where(keep | ~(p_cd >= 0.5), p_cd, np.minimum(p_cd, 0.49)).astype(np.float32)


def _region_kernel(
    *blocks: NDArray[np.floating],
    n_pols: int,
    softness_db: float,
    tolerance_db: float,
    seed_likelihood: float,
) -> NDArray[np.float32]:
    """Region growing of one block (with its halo): dB and threshold per polarisation."""
    db, thr = blocks[:n_pols], blocks[n_pols:]
    with np.errstate(invalid="ignore"):
        strict = _np_nanmean(
            [_np_logistic((t - d) / softness_db) for d, t in zip(db, thr, strict=True)]
        )
        relaxed = _np_nanmean(
            [
                _np_logistic((t + tolerance_db - d) / softness_db)
                for d, t in zip(db, thr, strict=True)
            ]
        )
    grown = _grow(strict >= seed_likelihood, relaxed >= 0.5)
    return np.where(grown, relaxed, np.minimum(strict, 0.49)).astype(np.float32)


def _per_pixel(value: xr.DataArray, like: xr.DataArray) -> da.Array:
    """A per-date (or static) value as a block-aligned (time, y, x) dask array."""
    out = (like.astype(np.float32) * 0 + value).astype(np.float32)
    return _dask(out.transpose(*like.dims)).rechunk(_dask(like).chunks)


def _change(
    sar: xr.Dataset,
    db: dict[str, xr.DataArray],
    thr: xr.DataArray,
    reference: xr.Dataset | None,
    opts: MappingOptions,
    valid: xr.DataArray,
    slope: xr.DataArray | None,
) -> xr.DataArray:
    if reference is not None:
        reference = sar_polarisations(reference)
        pols = [p for p in POLARISATIONS if p in reference]
        # Backscatter only: a validity mask or quality bits do not resample bilinearly.
        reference = match_grid(
            reference[pols].assign_attrs(reference.attrs),
            sar,
            names=("the reference", "the SAR"),
            resampling="bilinear",
        )
        reference = _in_db(reference)
    orbit = sar["relative_orbit"].values if "relative_orbit" in sar.coords else None
    radius_px = opts.smoothing_radius_m / _resolution(sar)
    side = max(1, round(float(np.sqrt(np.pi)) * radius_px))
    side += 1 - side % 2
    pols, afters, refs, thrs = [], [], [], []
    for p, arr in db.items():
        ref = _given_reference(reference, sar, p) if reference is not None else None
        if ref is None and reference is None:
            ref = _reference_db(arr, orbit, opts)
        if ref is None:
            continue
        ref = ref.assign_coords(time=arr["time"].values)
        pols.append(p)
        afters.append(_dask(arr))
        refs.append(_dask(ref.transpose(*arr.dims)).rechunk(_dask(arr).chunks))
        thrs.append(_per_pixel(thr.sel(pol=p, drop=True), arr))
    if not pols:
        return xr.full_like(valid, np.nan, dtype=np.float32)
    extra = [_per_pixel(slope, db[pols[0]])] if slope is not None else []
    # One fused kernel per block: focal means, ratio, persistence, small groups and slope
    # run on the block and its halo, so no intermediate layer waits for its neighbours.
    out = _overlap(
        _change_kernel,
        *afters,
        *refs,
        *thrs,
        *extra,
        depth=side // 2 + opts.min_group_px + 1,
        dtype=np.float32,
        n_pols=len(pols),
        side=side,
        ratio=opts.change_ratio,
        ratio_softness=opts.change_softness,
        softness_db=opts.softness_db,
        min_px=opts.min_group_px,
        slope_max=opts.change_slope_max_deg,
    )
    return _like(out, db[pols[0]], "change")


def _region(
    db: dict[str, xr.DataArray],
    thr: xr.DataArray,
    opts: MappingOptions,
) -> xr.DataArray:
    pols = list(db)
    out = _overlap(
        _region_kernel,
        *[_dask(db[p]) for p in pols],
        *[_per_pixel(thr.sel(pol=p, drop=True), db[p]) for p in pols],
        depth=opts.grow_depth,
        dtype=np.float32,
        n_pols=len(pols),
        softness_db=opts.softness_db,
        tolerance_db=opts.grow_tolerance_db,
        seed_likelihood=opts.seed_likelihood,
    )
    return _like(out, db[pols[0]], "region")


# ----------------------------------------------------------------------------- optical


def optical_evidence(
    s2: xr.Dataset,
    times: Any,
    *,
    options: MappingOptions | None = None,
) -> xr.DataArray:
    """Likelihood of open water from cloud-free Sentinel-2 near each SAR date, lazily.

    Parameters
    ----------
    s2
        Sentinel-2 ARD with a per-date ``valid`` mask and either the bands the index
        needs (``green`` and ``swir16`` for MNDWI, ``green`` and ``nir`` for NDWI) or the
        index itself (``mndwi``/``ndwi``), e.g. ``ard.prepare_s2(items, geobox=grid)``.
        A gap-filled series (no ``valid``) is refused: optical evidence is only used
        where the sky was clear. Snow (``quality`` bit 4) is left out too: MNDWI and
        NDWI call it water.
    times
        SAR dates to give evidence for (``sar.time``).
    options
        :class:`MappingOptions` (``optical_index``, ``optical_max_days``,
        ``optical_softness``).

    Returns
    -------
    xarray.DataArray
        float32 ``(time, y, x)`` on the SAR dates: NaN where no clear Sentinel-2 date
        lies within ``optical_max_days``.

    Raises
    ------
    FloodInputError
        No ``valid`` mask, or neither the index nor its bands.
    """
    opts = options or MappingOptions()
    if "valid" not in s2 or "time" not in s2.dims:
        raise FloodInputError(
            "Optical evidence needs per-date Sentinel-2 ARD with a 'valid' mask "
            "(ard.prepare_s2(...)), not a gap-filled series: it is only used where cloud-free."
        )
    name = opts.optical_index
    if name in s2:
        index = s2[name]
    else:
        other = "swir16" if name == "mndwi" else "nir"
        if "green" not in s2 or other not in s2:
            raise FloodInputError(
                f"Optical evidence ({name.upper()}) needs 'green' and '{other}' (or '{name}') "
                f"in the Sentinel-2 data; it has {sorted(map(str, s2.data_vars))}."
            )
        g, o = s2["green"].astype(np.float32), s2[other].astype(np.float32)
        index = (g - o) / (g + o)
    clear = s2["valid"].astype(bool)
    if "quality" in s2:  # snow is bright in green, dark in SWIR: MNDWI calls it water
        snow = 1 << QUALITY_BITS["snow"]
        clear = clear & ((s2["quality"].astype(np.uint16) & snow) == 0)
    index = index.where(clear)
    target = pd.DatetimeIndex(np.asarray(times)).tz_localize(None)
    near = index.sortby("time").reindex(
        time=target, method="nearest", tolerance=pd.Timedelta(days=opts.optical_max_days)
    )
    out = _logistic(near / opts.optical_softness).where(near.notnull()).rename("optical")
    return keep_grid(out, s2)
