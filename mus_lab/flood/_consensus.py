"""Consensus of the evidence sources into one water map with a likelihood (GFM's idea).

A combination rule is any callable with the :class:`CombinationRule` signature: it
takes the evidence stacked on a ``source`` dimension (likelihoods 0-1, NaN = that
source says nothing here) and returns ``water`` (1.0 / 0.0, NaN = no source) and
``likelihood`` (0-1). Two rules ship:

* :func:`majority_rule` (default): water where more than half of the sources that see
  the pixel say water (likelihood >= 0.5); a tie is broken by the mean likelihood; the
  likelihood is the mean of the sources' likelihoods (Copernicus GFM's consensus).
* :func:`mean_rule`: water where the mean likelihood is >= 0.5.

Plugging in Dempster-Shafer fusion later (``mus_lab.fusion``, another branch) means
writing a rule that turns each source's likelihood into a mass function on
{water, land} (e.g. ``m(water) = p * reliability``, ``m(land) = (1 - p) * reliability``,
the rest on ignorance), combines them, and returns the pignistic probability as the
likelihood: ``consensus(evidence, rule=my_ds_rule)``. Nothing else changes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import xarray as xr

from mus_lab.errors import FloodInputError
from mus_lab.flood._grid import nanmean

__all__ = ["CombinationRule", "consensus", "majority_rule", "mean_rule"]


class CombinationRule(Protocol):
    """Combine evidence ``(source, ...)`` into ``water`` and ``likelihood`` (both ``(...)``)."""

    def __call__(self, evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]: ...


def mean_rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Water where the mean likelihood of the sources is at least 0.5."""
    likelihood = nanmean(evidence, "source")
    water = (likelihood >= 0.5).astype(np.float32).where(likelihood.notnull())
    return water, likelihood


def majority_rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Majority vote of the sources that see a pixel; ties go to the mean likelihood."""
    seen = evidence.notnull()
    n = seen.sum("source")
    yes = ((evidence >= 0.5) & seen).sum("source")
    likelihood = nanmean(evidence, "source")
    water = xr.where(2 * yes > n, 1.0, xr.where(2 * yes < n, 0.0, likelihood >= 0.5))
    return water.astype(np.float32).where(n > 0), likelihood


def consensus(
    evidence: xr.DataArray,
    *,
    rule: CombinationRule = majority_rule,
) -> xr.Dataset:
    """One water map and likelihood from the evidence of several sources.

    Parameters
    ----------
    evidence
        float ``(source, time, y, x)`` likelihoods of water (0-1), NaN = no evidence,
        e.g. ``sar_evidence(...).evidence`` with optical evidence concatenated.
    rule
        :func:`majority_rule` (default), :func:`mean_rule` or any
        :class:`CombinationRule`.

    Returns
    -------
    xarray.Dataset
        ``water`` (uint8: 1 water, 0 not water, 255 no data) and ``likelihood``
        (uint8 0-100, 255 = no data), lazy.

    Raises
    ------
    FloodInputError
        ``evidence`` has no ``source`` dimension.

    Example
    -------
    >>> ev = xr.DataArray([[0.9], [0.2], [0.8]], dims=("source", "x"))
    >>> consensus(ev).water.values.tolist(), consensus(ev).likelihood.values.tolist()
    ([1], [63])
    """
    if "source" not in evidence.dims:
        raise FloodInputError(
            "evidence needs a 'source' dimension (one layer per method or sensor)."
        )
    water, likelihood = rule(evidence)
    seen = likelihood.notnull() & water.notnull()
    w = xr.where(seen, water, 255).astype(np.uint8)
    lk = xr.where(seen, (100.0 * likelihood.clip(0, 1)).round(), 255).astype(np.uint8)
    return xr.Dataset(
        {
            "water": w.assign_attrs(
                nodata=255, flag_values=[0, 1], flag_meanings="not_water water"
            ),
            "likelihood": lk.assign_attrs(nodata=255, units="percent"),
        }
    )
