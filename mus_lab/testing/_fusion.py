"""Synthetic but realistic classifier outputs from a land-cover truth, to exercise fusion.

Real classifier errors are not salt-and-pepper: whole patches go wrong, and they go wrong
towards the classes the sensor cannot tell apart (crops/grassland for a single optical date,
water/wetland or urban/bare for radar). :func:`simulate_source` draws such a map: each class
has its own confusion row, the draw follows a spatially smooth random field (errors clump in
patches), and the probability cube hesitates between the predicted class and the true one's
usual confusions, as a random forest's votes do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from mus_lab.errors import FusionError

__all__ = ["simulate_source"]


def _smooth_uniform(rng: np.random.Generator, shape: tuple[int, int], patch: float) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal(shape), sigma=patch, mode="wrap")
    field = (field - field.mean()) / (field.std() or 1.0)
    return ndtr(field)


def simulate_source(
    truth: xr.DataArray,
    errors: Mapping[tuple[int, int], float],
    *,
    classes: Sequence[int] | None = None,
    base_error: float = 0.02,
    patch: float = 4.0,
    seed: int = 0,
    truth_hint: float = 0.3,
    legend: Mapping[int, str] | None = None,
) -> xr.Dataset:
    """A classifier's output simulated from a land-cover truth map.

    Parameters
    ----------
    truth
        True class codes (``y``, ``x``; 0 = no data), e.g. the sample scenario's land cover.
    errors
        ``{(true, mapped): rate}``: the share of class ``true`` mapped as ``mapped``.
    classes
        The legend's codes (default: the codes in ``truth``).
    base_error
        Share of every class scattered evenly over all the other classes.
    patch
        Size (pixels, Gaussian sigma) of the patches that go wrong together.
    seed
        Random seed: the same seed gives the same source.
    truth_hint
        How much the probabilities lean towards the true class's usual confusions (0: they
        depend on the mapped class only; 1: a wrong pixel's second choice is often the truth,
        as for a random forest near a class boundary).
    legend
        ``{code: name}`` for the ``class_name`` coordinate.

    Returns
    -------
    xarray.Dataset
        The land-cover contract's variables: ``classification`` (uint8, 0 no data),
        ``confidence`` (uint8 0-100, 255 no data), ``probability`` (float32, ``("class", "y",
        "x")``, NaN no data), in memory, on the truth's grid.

    Raises
    ------
    FusionError
        Fewer than two classes, error rates naming classes outside the legend, or a class's
        error rates adding up to 1 or more.

    Example
    -------
    >>> from mus_lab.testing import simulate_source
    >>> truth = xr.DataArray(np.repeat([[1, 2], [2, 3]], 8, axis=1), dims=("y", "x"))
    >>> src = simulate_source(truth, {(1, 2): 0.3}, seed=0)
    >>> sorted(src.data_vars), src.probability.dims
    (['classification', 'confidence', 'probability'], ('class', 'y', 'x'))
    """
    t = np.asarray(truth.values)
    codes = np.array(
        sorted(int(c) for c in (classes if classes is not None else np.unique(t[t > 0])))
    )
    n_cls = len(codes)
    if n_cls < 2:
        raise FusionError("simulate_source needs at least two classes.")
    idx = {int(c): i for i, c in enumerate(codes)}
    rates = np.full((n_cls, n_cls), base_error / (n_cls - 1))
    np.fill_diagonal(rates, 0.0)
    for (a, b), r in errors.items():
        if a not in idx or b not in idx:
            raise FusionError(f"errors names classes {(a, b)} outside the legend {codes.tolist()}.")
        rates[idx[a], idx[b]] += float(r)
    if (rates.sum(axis=1) >= 1).any():
        raise FusionError("The error rates of a class add up to 1 or more: lower them.")
    np.fill_diagonal(rates, 1.0 - rates.sum(axis=1))
    rng = np.random.default_rng(seed)
    u = _smooth_uniform(rng, t.shape, patch)
    sure = 0.35 + 0.55 * _smooth_uniform(rng, t.shape, 2 * patch)
    valid = np.isin(t, codes)
    lut = np.zeros(int(max(codes.max(), t.max())) + 1, np.int64)
    lut[codes] = np.arange(n_cls)
    ti = np.where(valid, lut[np.where(valid, t, 0).astype(np.int64)], 0)
    # Draw the mapped class: the true class first in each row, so errors sit where u is high.
    order = np.argsort(-np.eye(n_cls), axis=1, kind="stable")  # row c: c first, then others
    cum = np.cumsum(np.take_along_axis(rates, order, axis=1), axis=1)
    k = (u[..., None] > cum[ti]).sum(axis=-1).clip(0, n_cls - 1)
    pred = order[ti, k]
    noise = rng.gamma(0.3, 1.0, size=(n_cls, *t.shape))
    noise /= noise.sum(axis=0)
    onehot = np.eye(n_cls)[pred].transpose(2, 0, 1)
    # What the classifier hesitates with: the classes usually confused with the mapped one
    # (column of the confusion rates), plus a hint of the truth's own confusions.
    col = rates / rates.sum(axis=0, keepdims=True)
    hesitation = (truth_hint * rates[ti] + (1 - truth_hint) * col.T[pred]).transpose(2, 0, 1)
    prob = sure * onehot + (1 - sure) * (0.8 * hesitation + 0.2 * noise)
    prob /= prob.sum(axis=0)
    prob[:, ~valid] = np.nan
    label = np.where(valid, codes[np.argmax(np.nan_to_num(prob, nan=-1), axis=0)], 0)
    conf = np.where(valid, np.rint(100 * np.nanmax(np.nan_to_num(prob, nan=0), axis=0)), 255)
    coords = {k: v for k, v in truth.coords.items() if set(v.dims) <= {"y", "x"}}
    names = [str((legend or {}).get(int(c), int(c))) for c in codes]
    da_prob = xr.DataArray(
        prob.astype(np.float32),
        dims=("class", "y", "x"),
        coords={**coords, "class": codes.astype(np.int64), "class_name": ("class", names)},
    )
    return xr.Dataset(
        {
            "classification": xr.DataArray(label.astype(np.uint8), dims=("y", "x"), coords=coords),
            "confidence": xr.DataArray(conf.astype(np.uint8), dims=("y", "x"), coords=coords),
            "probability": da_prob,
        },
        attrs={"simulated": f"simulate_source(seed={seed}, patch={patch})"},
    )
