"""Flood depth from a water extent and HAND (HydroSAR's statistical estimators).

For each connected water body the water surface is set at ``mean + sigma * spread`` of
the HAND values under it, and the depth of a pixel is that level minus its HAND (at
least 0). The three statistical estimators of HydroSAR's ``flood_map`` are offered
(its fourth, a basin-hopping fit, is not reproducible upstream and is left out):

* ``"numpy"``: mean and standard deviation;
* ``"nmad"``: mean and the normalised median absolute deviation (robust to outliers);
* ``"logstat"``: mean and standard deviation of log(HAND), back in metres (for very
  skewed HAND; zero and negative HAND are left out).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from mus_lab.errors import FloodInputError

__all__ = ["DepthEstimator", "flood_depth", "water_level"]

DepthEstimator = Literal["numpy", "nmad", "logstat"]
#: Median absolute deviation of a standard normal (scipy's ``scale="normal"``).
_NORMAL_MAD = 0.6744897501960817


def _log(values: NDArray[np.floating]) -> NDArray[np.floating]:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(values)
    out[np.isinf(out)] = np.nan
    return out


def water_level(
    hand: ArrayLike,
    water: ArrayLike,
    *,
    estimator: DepthEstimator = "nmad",
    sigma: float = 3.0,
) -> float:
    """Water level (m above the drainage) of one water body.

    Parameters
    ----------
    hand
        Height above nearest drainage (m) of a window.
    water
        Boolean mask of the water body in that window.
    estimator
        ``"numpy"``, ``"nmad"`` or ``"logstat"`` (see the module notes).
    sigma
        Spreads added to the mean (HydroSAR's ``water_level_sigma``, default 3).

    Returns
    -------
    float
        The level, NaN when the body has no finite HAND value.

    Raises
    ------
    FloodInputError
        An unknown estimator.

    Example
    -------
    >>> water_level([[1.0, 2.0], [3.0, 9.0]], [[1, 1], [1, 0]], estimator="numpy", sigma=0)
    2.0
    """
    h = np.asarray(hand)
    if not np.issubdtype(h.dtype, np.floating):
        h = h.astype(np.float64)
    # Statistics in the input's precision, as HydroSAR computes them (float32 HAND).
    h = h[np.asarray(water, dtype=bool)]
    # Statistics in the input's precision (float32 HAND stays float32), sums in float64:
    # what reproduces HydroSAR's published values.
    if estimator == "numpy":
        if not np.isfinite(h).any():
            return float("nan")
        return float(np.nanmean(h)) + sigma * float(np.nanstd(h))
    if estimator == "nmad":
        if not np.isfinite(h).any():
            return float("nan")
        mad = np.nanmedian(np.abs(h - np.nanmedian(h)))
        return float(np.nanmean(h)) + sigma * (float(mad) / _NORMAL_MAD)
    if estimator == "logstat":
        logs = _log(h)
        if not np.isfinite(logs).any():
            return float("nan")
        return float(np.exp(np.nanmean(logs))) + sigma * float(np.exp(np.nanstd(logs)))
    raise FloodInputError(
        f"estimator={estimator!r} is not known: choose 'numpy', 'nmad' or 'logstat'."
    )


def flood_depth(
    water: ArrayLike,
    hand: ArrayLike,
    *,
    estimator: DepthEstimator = "nmad",
    sigma: float = 3.0,
) -> NDArray[np.float32]:
    """Water depth (m) of every water pixel, 0 elsewhere, NaN where HAND is missing.

    Each 8-connected water body gets its own level (:func:`water_level`). The whole
    array is labelled at once: pass a window (a few thousand pixels a side), not a
    continent.

    Parameters
    ----------
    water
        Water (or flood) mask, 2-D; 255 counts as not water.
    hand
        HAND (m) on the same grid.
    estimator, sigma
        See :func:`water_level`.

    Returns
    -------
    numpy.ndarray
        float32 depths.

    Raises
    ------
    FloodInputError
        Shapes differ or the estimator is unknown.
    """
    w = np.asarray(water)
    h = np.asarray(hand, dtype=np.float64)
    if w.shape != h.shape or w.ndim != 2:
        raise FloodInputError(
            f"water {w.shape} and hand {h.shape} must be 2-D arrays of one shape: "
            "put both on the same grid first."
        )
    mask = (w == 1) if w.dtype != bool else w
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    depth = np.zeros(w.shape, np.float64)
    for k, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        body = labels[window] == k
        level = water_level(h[window], body, estimator=estimator, sigma=sigma)
        sub = depth[window]
        sub[body] = level - h[window][body]
    depth = np.where(np.isnan(h), np.nan, np.maximum(depth, 0.0))
    return depth.astype(np.float32)
