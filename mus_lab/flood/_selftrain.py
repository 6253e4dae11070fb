"""A per-scene self-trained classifier: the ``self_trained`` voter of the consensus.

Threshold methods see one pixel's backscatter at a time; on real scenes their errors sit
where water and land overlap in the histogram (wind-roughened water, wet soil, speckle).
Self-training (METHODS.md section 7; in the spirit of the automatic labelling of
Martinis et al. 2015 and the Sen1Floods11 weak labels) uses the methods' own confident
answers as labels and lets a classifier that sees more than one number per pixel decide
the uncertain rest:

* **labels**: per date, pixels where every other method that sees the pixel gives a
  likelihood, averaged over the ``texture_window`` square around it, of at least
  ``train_confidence`` (water) or at most ``1 - train_confidence`` (not water): averaged,
  so that a speckle pixel every threshold calls water inside land is no water label
  (labels copied pixel by pixel teach the classifier the thresholds' own errors: on a
  single-look test scene the voter then reached IoU 0.51 instead of 0.96); a random sample of each block, then a balanced sample of at most
  ``train_samples`` per date (deterministic: seeded by ``train_seed`` and the block);
* **features**: VV and VH (dB), their difference VV - VH (the cross-polarisation ratio in
  dB), the local mean and local standard deviation (texture) of each in a
  ``texture_window`` square (5 x 5 by default: the speckle of a single pixel is averaged
  away, and open water is smooth), and HAND when given (NaN is a value: the gradient
  boosting handles it);
* **model**: scikit-learn's ``HistGradientBoostingClassifier`` (100 iterations, 31
  leaves, early stopping off so the fit is deterministic), one per date. Fewer than
  ``train_min_samples`` of either class and the voter abstains (NaN) on that date;
* **prediction** is lazy: one task per block on the block and its halo (half the window),
  the fitted models a dask dependency. Training needs a sample of every block first: a
  caller that writes block by block (:func:`~mus_lab.flood.map_geotiff`) fits the models
  once (:func:`self_trained_models`) and passes them in, so nothing waits in memory.

The voter's likelihood is the classifier's probability of water; it enters the majority
vote like the other methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["fit_models", "labels_from_evidence", "predict", "sample_delayed"]

F32 = NDArray[np.float32]


def _trim(n_blocks: int, i: int, depth: int) -> tuple[int, int]:
    """Halo rows added before and after block ``i`` by ``overlap(boundary='none')``."""
    return (depth if i > 0 else 0), (depth if i < n_blocks - 1 else 0)


def _features(
    pols: Sequence[F32], hand: F32 | None, window: int, trims: tuple[int, int, int, int]
) -> F32:
    """``(t, y, x, n_features)`` of a block; ``pols`` and ``hand`` carry the block's halo."""
    top, bottom, left, right = trims
    feats = []
    for db in pols:
        good = np.isfinite(db)
        v = np.where(good, db, 0.0).astype(np.float64)
        count = ndimage.uniform_filter(
            good.astype(np.float64), window, mode="constant", axes=(1, 2)
        )
        s1 = ndimage.uniform_filter(v, window, mode="constant", axes=(1, 2))
        s2 = ndimage.uniform_filter(v * v, window, mode="constant", axes=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 1e-6, s1 / count, np.nan)
            std = np.sqrt(np.maximum(np.where(count > 1e-6, s2 / count, np.nan) - mean**2, 0))
        feats += [db.astype(np.float64), mean, std]
    if len(pols) == 2:
        feats.append((pols[0] - pols[1]).astype(np.float64))
    if hand is not None:
        feats.append(np.broadcast_to(hand, pols[0].shape).astype(np.float64))
    out = np.stack(feats, -1).astype(np.float32)
    y, x = out.shape[1:3]
    return out[:, top : y - bottom, left : x - right]


def labels_from_evidence(evidence: Sequence[Any], confidence: float) -> Any:
    """1 water / 0 not water / -1 unsure where every seeing source agrees with confidence.

    Parameters
    ----------
    evidence
        Likelihoods (0-1, NaN = abstains) of the other methods, one array each (numpy,
        dask or xarray, same shape).
    confidence
        The likelihood a source must reach (or stay under ``1 - confidence``).

    Returns
    -------
    array
        int8 labels of the same kind and shape.

    Examples
    --------
    >>> ev = [np.array([0.9, 0.9, 0.1, 0.9]), np.array([0.95, np.nan, 0.05, 0.1])]
    >>> labels_from_evidence(ev, 0.8).tolist()
    [1, 1, 0, -1]
    """
    seen = sum((e == e) * 1 for e in evidence)  # NaN != NaN
    wet = sum(((e >= confidence) & (e == e)) * 1 for e in evidence)
    dry = sum(((e <= 1 - confidence) & (e == e)) * 1 for e in evidence)
    water = (wet == seen) & (seen > 0)
    land = (dry == seen) & (seen > 0)
    out = water * 1 + land * 0 - 1 * ~(water | land)
    return out.astype(np.int8) if hasattr(out, "astype") else out


def _focal_nanmean(block: F32, window: int) -> NDArray[np.float64]:
    good = np.isfinite(block)
    v = np.where(good, block, 0.0).astype(np.float64)
    count = ndimage.uniform_filter(good.astype(np.float64), window, mode="constant", axes=(1, 2))
    total = ndimage.uniform_filter(v, window, mode="constant", axes=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 1e-6, total / count, np.nan)
    out[~good] = np.nan
    return out


def _sample_block(
    n_evidence: int,
    hand: F32 | None,
    *blocks: F32,
    t0: int,
    window: int,
    confidence: float,
    trims: tuple[int, int, int, int],
    cap: int,
    seed: tuple[int, ...],
) -> tuple[F32, NDArray[np.int8], NDArray[np.int32]]:
    """Up to ``cap`` pixels per class and date of one block: features, labels, date index.

    ``blocks`` are the other methods' likelihoods, then the polarisations, all with the
    block's halo. Labels come from the likelihoods averaged over the texture window: an
    isolated speckle pixel that every threshold calls water inside land is not a water label
    (labels copied pixel by pixel would teach the classifier the thresholds' own errors).
    """
    evidence, pols = blocks[:n_evidence], blocks[n_evidence:]
    top, bottom, left, right = trims
    smooth = [_focal_nanmean(e, window) for e in evidence]
    full = labels_from_evidence(smooth, confidence)
    y, x = full.shape[1:]
    label = full[:, top : y - bottom, left : x - right]
    rng = np.random.default_rng(list(seed))
    picked: list[tuple[int, NDArray[np.intp]]] = []
    for k in range(label.shape[0]):
        for cls in (0, 1):
            idx = np.flatnonzero(label[k].ravel() == cls)
            if idx.size > cap:
                idx = rng.choice(idx, cap, replace=False)
            picked.append((k, idx))
    if not any(idx.size for _, idx in picked):
        n_feat = 3 * len(pols) + (len(pols) == 2) + (hand is not None)
        return np.zeros((0, n_feat), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int32)
    feats = _features(pols, hand, window, trims)
    xs, ys, ts = [], [], []
    for k, idx in picked:
        flat = feats[k].reshape(-1, feats.shape[-1])
        xs.append(flat[idx])
        ys.append(label[k].ravel()[idx])
        ts.append(np.full(idx.size, t0 + k, np.int32))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int8), np.concatenate(ts)


def fit_models(
    samples: Sequence[tuple[F32, NDArray[np.int8], NDArray[np.int32]]],
    n_times: int,
    *,
    max_samples: int,
    min_samples: int,
    seed: int,
) -> list[Any]:
    """One classifier per date from the blocks' samples (None where too few of a class).

    Parameters
    ----------
    samples
        ``(features, labels, date index)`` per block.
    n_times
        Number of dates.
    max_samples, min_samples
        Balanced sample size cap per date; fewest pixels of each class to fit.
    seed
        Random seed (balanced subsample and the model).

    Returns
    -------
    list
        A fitted ``HistGradientBoostingClassifier`` or None, per date.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.concatenate([s[0] for s in samples]) if samples else np.zeros((0, 1), np.float32)
    y = np.concatenate([s[1] for s in samples]) if samples else np.zeros(0, np.int8)
    t = np.concatenate([s[2] for s in samples]) if samples else np.zeros(0, np.int32)
    rng = np.random.default_rng(seed)
    models: list[Any] = []
    for k in range(n_times):
        here = t == k
        wet = np.flatnonzero(here & (y == 1))
        dry = np.flatnonzero(here & (y == 0))
        n = min(wet.size, dry.size, max_samples // 2)
        if n < min_samples:
            models.append(None)
            continue
        rows = np.concatenate(
            [rng.choice(wet, n, replace=False), rng.choice(dry, n, replace=False)]
        )
        model = HistGradientBoostingClassifier(
            max_iter=100, max_leaf_nodes=31, early_stopping=False, random_state=seed
        )
        models.append(model.fit(x[rows], y[rows]))
    return models


def _predict_block(
    models: Sequence[Any],
    hand: F32 | None,
    *pols: F32,
    t0: int,
    window: int,
    trims: tuple[int, int, int, int],
) -> F32:
    feats = _features(pols, hand, window, trims)
    t, y, x, nf = feats.shape
    out = np.full((t, y, x), np.nan, np.float32)
    top, _, left, _ = trims
    for k in range(t):
        model = models[t0 + k]
        if model is None:
            continue
        flat = feats[k].reshape(-1, nf)
        seen = np.zeros(y * x, bool)
        for db in pols:
            seen |= np.isfinite(db[k, top : top + y, left : left + x]).ravel()
        if seen.any():
            prob = np.full(y * x, np.nan, np.float32)
            prob[seen] = model.predict_proba(flat[seen])[:, 1]
            out[k] = prob.reshape(y, x)
    return out


def _halo_blocks(
    pols: Sequence[da.Array], hand: da.Array | None, depth: int
) -> tuple[list[Any], Any, tuple[tuple[int, ...], ...]]:
    chunks = pols[0].chunks
    halo = [
        da.overlap.overlap(p.rechunk(chunks), depth={0: 0, 1: depth, 2: depth}, boundary="none")
        for p in pols
    ]
    hb = None
    if hand is not None:
        h = hand.rechunk(chunks)
        hb = da.overlap.overlap(h, depth={0: 0, 1: depth, 2: depth}, boundary="none").to_delayed()
    return [h.to_delayed() for h in halo], hb, chunks


def sample_delayed(
    evidence: Sequence[da.Array],
    pols: Sequence[da.Array],
    hand: da.Array | None,
    *,
    window: int,
    confidence: float,
    max_samples: int,
    seed: int,
) -> list[Any]:
    """Per-block delayed samples (features, labels, date index) of the confident pixels.

    Parameters
    ----------
    evidence
        The other methods' likelihoods (0-1, NaN abstains), ``(time, y, x)`` each.
    pols
        dB backscatter per polarisation, ``(time, y, x)``.
    hand
        HAND broadcast to ``(time, y, x)``, or None.
    window, confidence, max_samples, seed
        Texture (and label-averaging) window, label confidence, per-date sample cap, seed.

    Returns
    -------
    list of dask.delayed.Delayed
    """
    depth = window // 2
    halo, hb, chunks = _halo_blocks([*evidence, *pols], hand, depth)
    n_spatial = len(chunks[1]) * len(chunks[2])
    cap = max(200, 2 * max_samples // max(n_spatial, 1))
    t_starts = np.cumsum((0, *chunks[0]))
    out = []
    for it in range(len(chunks[0])):
        for iy in range(len(chunks[1])):
            for ix in range(len(chunks[2])):
                trims = (*_trim(len(chunks[1]), iy, depth), *_trim(len(chunks[2]), ix, depth))
                out.append(
                    dask.delayed(_sample_block)(
                        len(evidence),
                        None if hb is None else hb[it, iy, ix],
                        *[h[it, iy, ix] for h in halo],
                        t0=int(t_starts[it]),
                        window=window,
                        confidence=confidence,
                        trims=trims,
                        cap=cap,
                        seed=(seed, it, iy, ix),
                    )
                )
    return out


def predict(
    models: Any, pols: Sequence[da.Array], hand: da.Array | None, *, window: int
) -> da.Array:
    """The classifiers' probability of water, ``(time, y, x)`` float32, lazily.

    Parameters
    ----------
    models
        Per-date fitted classifiers (None: abstain), or a delayed object giving them.
    pols
        dB backscatter per polarisation, ``(time, y, x)``.
    hand
        HAND broadcast to ``(time, y, x)``, or None.
    window
        Texture window (px).

    Returns
    -------
    dask.array.Array
        float32, NaN where the voter abstains or no polarisation is valid.
    """
    depth = window // 2
    halo, hb, chunks = _halo_blocks(pols, hand, depth)
    t_starts = np.cumsum((0, *chunks[0]))
    rows = []
    for it, ct in enumerate(chunks[0]):
        plane = []
        for iy, cy in enumerate(chunks[1]):
            line = []
            for ix, cx in enumerate(chunks[2]):
                trims = (*_trim(len(chunks[1]), iy, depth), *_trim(len(chunks[2]), ix, depth))
                task = dask.delayed(_predict_block, pure=True)(
                    models,
                    None if hb is None else hb[it, iy, ix],
                    *[h[it, iy, ix] for h in halo],
                    t0=int(t_starts[it]),
                    window=window,
                    trims=trims,
                )
                line.append(da.from_delayed(task, (ct, cy, cx), dtype=np.float32))
            plane.append(line)
        rows.append(plane)
    return da.block(rows)
