"""Consensus of the evidence sources into one water map with a likelihood (GFM's idea).

A vote rule is any callable with the :class:`VoteRule` signature: it
takes the evidence stacked on a ``source`` dimension (likelihoods 0-1, NaN = that
source says nothing here) and returns ``water`` (1.0 / 0.0, NaN = no source) and
``likelihood`` (0-1). Two rules ship:

* :func:`majority_rule` (default): water where more than half of the sources that see
  the pixel say water (likelihood >= 0.5); a tie is broken by the mean likelihood; the
  likelihood is the mean of the sources' likelihoods (Copernicus GFM's consensus).
* :func:`mean_rule`: water where the mean likelihood is >= 0.5.
* :func:`weighted_majority_rule`: the majority vote with some sources weighing more (the
  ``self_trained`` voter, see :class:`~mus_lab.flood.MappingOptions`).

Optical evidence joins through Dempster-Shafer fusion (:func:`with_optical`, the engine of
:mod:`mus_lab.fusion`): the SAR methods' consensus and the optical likelihood each become a
mass function on {water, land}, ``m(water) = r p``, ``m(land) = r (1 - p)``, ``m({water,
land}) = 1 - r`` with the source's reliability ``r``; they are combined (Dempster's rule by
default) and the pignistic probability of water is the likelihood, water where it is at least
0.5. Where the sky was not clear the optical mass is vacuous and the SAR consensus stands;
where no SAR method sees a pixel it stays no data (optical alone makes no SAR flood map).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import xarray as xr

from mus_lab.errors import FloodInputError
from mus_lab.flood._grid import nanmean

__all__ = [
    "VoteRule",
    "consensus",
    "majority_rule",
    "mean_rule",
    "weighted_majority_rule",
    "with_optical",
]


class VoteRule(Protocol):
    """Combine evidence ``(source, ...)`` into ``water`` and ``likelihood`` (both ``(...)``)."""

    def __call__(self, evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]: ...


def mean_rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Water where the mean likelihood of the sources is at least 0.5 (a :class:`VoteRule`).

    Parameters
    ----------
    evidence
        Likelihoods 0-1 stacked on a ``source`` dimension (NaN: that source says nothing).

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        ``water`` (float32 1/0, NaN where no source sees the pixel) and ``likelihood``
        (mean of the sources' likelihoods), without the ``source`` dimension.

    Examples
    --------
    >>> water, lk = mean_rule(xr.DataArray([[0.9, 0.2], [0.3, 0.1]], dims=("source", "x")))
    >>> water.values.tolist(), [round(float(v), 2) for v in lk.values]
    ([1.0, 0.0], [0.6, 0.15])
    """
    likelihood = nanmean(evidence, "source")
    water = (likelihood >= 0.5).astype(np.float32).where(likelihood.notnull())
    return water, likelihood


def majority_rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Majority vote of the sources that see a pixel; ties go to the mean likelihood.

    The default :class:`VoteRule` (Copernicus GFM's consensus).

    Parameters
    ----------
    evidence
        ``(source, ...)`` likelihoods; a source votes water at 0.5 or more, NaN abstains.

    Returns
    -------
    (xarray.DataArray, xarray.DataArray)
        float32 votes' decision (1/0, NaN where every source abstains) and the mean
        likelihood of the voters, both without ``source``.

    Examples
    --------
    >>> ev = xr.DataArray([[0.9, 0.9], [0.6, 0.1], [0.1, float("nan")]], dims=("source", "x"))
    >>> water, lk = majority_rule(ev)
    >>> water.values.tolist(), [round(float(v), 2) for v in lk.values]
    ([1.0, 1.0], [0.53, 0.5])
    """
    seen = evidence.notnull()
    n = seen.sum("source")
    yes = ((evidence >= 0.5) & seen).sum("source")
    likelihood = nanmean(evidence, "source")
    water = xr.where(2 * yes > n, 1.0, xr.where(2 * yes < n, 0.0, likelihood >= 0.5))
    return water.astype(np.float32).where(n > 0), likelihood


def weighted_majority_rule(weights: Mapping[str, float]) -> VoteRule:
    """A majority vote where some sources count more than one vote (a :class:`VoteRule`).

    Water where the weights of the sources voting water (likelihood >= 0.5) exceed half the
    weight of the sources that see the pixel; a tie goes to the weighted mean likelihood,
    which is also the likelihood. Sources not named weigh 1, so with every weight 1 this is
    :func:`majority_rule`. :func:`~mus_lab.flood.map_water` uses it for the
    ``self_trained`` voter (``MappingOptions.self_trained_weight``).

    Parameters
    ----------
    weights
        Weight (> 0) per source name (the ``source`` coordinate of the evidence).

    Returns
    -------
    VoteRule

    Raises
    ------
    FloodInputError
        A weight that is not a positive number.

    Examples
    --------
    The self-trained voter at weight 2 against threshold and region growing: with one of
    them it wins, against both it ties and the mean likelihood decides.

    >>> ev = xr.DataArray([[0.9, 0.2], [0.2, 0.3], [0.8, 0.9]], dims=("source", "x"))
    >>> ev = ev.assign_coords(source=["threshold", "region", "self_trained"])
    >>> water, lk = weighted_majority_rule({"self_trained": 2.0})(ev)
    >>> water.values.tolist(), [round(float(v), 3) for v in lk.values]
    ([1.0, 1.0], [0.675, 0.575])
    """
    bad = {k: v for k, v in weights.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise FloodInputError(f"weights {bad}: give each source a positive finite weight.")
    table = {str(k): float(v) for k, v in weights.items()}

    def rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        if "source" not in evidence.coords:
            return majority_rule(evidence)
        w = xr.DataArray(
            np.array([table.get(str(s), 1.0) for s in evidence["source"].values], np.float32),
            dims="source",
        )
        seen = evidence.notnull()
        n = (seen * w).sum("source")
        yes = (((evidence >= 0.5) & seen) * w).sum("source")
        likelihood = (evidence.fillna(0.0) * w).sum("source") / n.where(n > 0)
        water = xr.where(2 * yes > n, 1.0, xr.where(2 * yes < n, 0.0, likelihood >= 0.5))
        return water.astype(np.float32).where(n > 0), likelihood.astype(np.float32)

    return rule


def _binary_masses(frame: Any, p: np.ndarray, reliability: float) -> Any:
    from mus_lab.fusion import MassFunction

    seen = np.isfinite(p)
    q = np.where(seen, np.clip(p, 0.0, 1.0), 0.0)
    r = np.where(seen, reliability, 0.0)
    return MassFunction(frame, (1, 2, 3), np.stack([r * q, r * (1.0 - q), 1.0 - r]))


def _fuse_block(
    sar: np.ndarray, optical: np.ndarray, *, sar_r: float, optical_r: float, rule: str
) -> np.ndarray:
    """Pignistic probability of water of the two sources' combined masses (NaN: none)."""
    from mus_lab.fusion import Frame, combine, pignistic

    frame = Frame((1, 2), ("water", "land"))
    shape = sar.shape
    m = combine(
        [
            _binary_masses(frame, sar.reshape(-1), sar_r),
            _binary_masses(frame, optical.reshape(-1), optical_r),
        ],
        rule=rule,
    )
    betp = pignistic(m)[0].reshape(shape)
    return np.where(np.isfinite(sar) | np.isfinite(optical), betp, np.nan).astype(np.float32)


def with_optical(
    sar_rule: VoteRule = majority_rule,
    *,
    sar_reliability: float = 0.9,
    optical_reliability: float = 0.3,
    fusion_rule: str = "dempster",
) -> VoteRule:
    """A rule that fuses the SAR consensus with the ``optical`` source (Dempster-Shafer).

    Parameters
    ----------
    sar_rule
        Consensus of the SAR methods (every source but ``optical``).
    sar_reliability, optical_reliability
        Shafer discounting of each source (1 = fully reliable); the rest of the mass goes to
        {water, land} (ignorance).
    fusion_rule
        A rule of :func:`mus_lab.fusion.available_rules`: ``"dempster"``, ``"pcr6"``...

    Returns
    -------
    VoteRule
        Water where the fused BetP(water) >= 0.5 (the SAR consensus where no optical
        evidence; no data where no SAR evidence), likelihood = BetP(water).

    Raises
    ------
    FloodInputError
        A reliability outside [0, 1].

    Examples
    --------
    With a trusted optical source (0.8): sure SAR water against clear optical land stays water
    (SAR is more reliable), barely; hesitant
    SAR water is overturned; no optical date: the SAR consensus stands.

    >>> nan = float("nan")
    >>> ev = xr.DataArray([[0.9, 0.6, 0.7], [0.9, 0.6, 0.7], [0.05, 0.05, nan]], dims=("source", "x"))
    >>> ev = ev.assign_coords(source=["threshold", "change", "optical"])
    >>> water, lk = with_optical(optical_reliability=0.8)(ev)
    >>> water.values.tolist(), [round(float(v), 3) for v in lk.values]
    ([1.0, 0.0, 1.0], [0.547, 0.25, 0.7])
    """
    for name, r in (
        ("sar_reliability", sar_reliability),
        ("optical_reliability", optical_reliability),
    ):
        if not 0.0 <= r <= 1.0:
            raise FloodInputError(f"{name}={r}: give a reliability between 0 and 1.")

    def rule(evidence: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        sources = [str(s) for s in evidence["source"].values]
        sar_sources = [s for s in sources if s != "optical"]
        water, likelihood = sar_rule(evidence.sel(source=sar_sources))
        if "optical" not in sources:
            return water, likelihood
        optical = evidence.sel(source="optical", drop=True)
        betp = xr.apply_ufunc(
            _fuse_block,
            likelihood.astype(np.float32),
            optical.astype(np.float32),
            dask="parallelized",
            output_dtypes=[np.float32],
            kwargs={
                "sar_r": sar_reliability,
                "optical_r": optical_reliability,
                "rule": fusion_rule,
            },
        )
        # Optical evidence only refines SAR observations: where no SAR method sees the pixel
        # (e.g. outside the swath) it stays no data, whatever the optical says.
        both = optical.notnull() & water.notnull()
        fused_water = xr.where(both, (betp >= 0.5).astype(np.float32), water)
        return fused_water.astype(np.float32), xr.where(both, betp, likelihood)

    return rule


def consensus(
    evidence: xr.DataArray,
    *,
    rule: VoteRule = majority_rule,
) -> xr.Dataset:
    """One water map and likelihood from the evidence of several sources.

    Parameters
    ----------
    evidence
        float ``(source, time, y, x)`` likelihoods of water (0-1), NaN = no evidence,
        e.g. ``sar_evidence(...).evidence`` with optical evidence concatenated.
    rule
        :func:`majority_rule` (default), :func:`mean_rule` or any
        :class:`VoteRule`.

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
