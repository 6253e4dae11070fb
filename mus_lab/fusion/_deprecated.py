"""The entry points :func:`~mus_lab.fusion.fuse` replaced, kept for one release.

Each warns (:class:`DeprecationWarning`) and calls :func:`~mus_lab.fusion.fuse` with the
equivalent :class:`~mus_lab.fusion.FusionOptions`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError
from mus_lab.fusion._api import fuse_with_labels
from mus_lab.fusion._engine import Decision
from mus_lab.fusion._masses import MassOf, Reliability
from mus_lab.fusion._options import FusionOptions, LabelDecision
from mus_lab.fusion._rules import CombinationRule, TotalConflict

__all__ = ["combine_cubes", "fuse_labels", "fuse_maps", "fuse_probabilities"]


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"fusion.{old} is deprecated and will be removed in the next release: use {new}.",
        DeprecationWarning,
        stacklevel=3,
    )


def _named(sources: Sequence[xr.DataArray], names: Sequence[str] | None) -> dict[str, xr.DataArray]:
    if names is None:
        names = [f"source {i + 1}" for i in range(len(sources))]
    if len(names) != len(sources):
        raise FusionError(f"{len(names)} names for {len(sources)} sources: one per source.")
    return dict(zip(map(str, names), sources, strict=True))


def fuse_labels(
    labels: Sequence[xr.DataArray],
    confusions: Sequence[ConfusionMatrix],
    *,
    mob: MassOf = "precision",
    rule: str | CombinationRule = "dempster",
    decision: LabelDecision = "otb",
    confidences: Sequence[xr.DataArray] | None = None,
    names: Sequence[str] | None = None,
    legend: Mapping[int, str] | None = None,
    total_conflict: TotalConflict = "vacuous",
) -> xr.Dataset:
    """Deprecated: ``fuse(labels, confusions=..., options=FusionOptions(...))``.

    Parameters
    ----------
    labels, confusions, mob, rule, decision, confidences, names, legend, total_conflict
        As :func:`~mus_lab.fusion.fuse` and :class:`~mus_lab.fusion.FusionOptions`.

    Returns
    -------
    xarray.Dataset
        The fused product.

    Raises
    ------
    FusionError
        As :func:`~mus_lab.fusion.fuse`.
    """
    _warn("fuse_labels", "fuse(maps, confusions=..., options=FusionOptions(...))")
    opts = FusionOptions(
        rule=rule, decision=decision, total_conflict=total_conflict, mob=mob, legend=legend
    )
    return fuse_with_labels(
        _named(labels, names), options=opts, confusions=confusions, confidences=confidences
    )[0]


def fuse_probabilities(
    probabilities: Sequence[xr.DataArray],
    *,
    confusions: Sequence[ConfusionMatrix | None] | None = None,
    reliability: Reliability | Sequence[Reliability] = "precision",
    compound_threshold: float | None = 0.1,
    rule: str | CombinationRule = "dempster",
    decision: Decision = "bel",
    labels: Sequence[xr.DataArray] | None = None,
    names: Sequence[str] | None = None,
    total_conflict: TotalConflict | None = None,
) -> xr.Dataset:
    """Deprecated: ``fuse(cubes, confusions=..., options=FusionOptions(...))``.

    Parameters
    ----------
    probabilities, confusions, reliability, compound_threshold, rule, decision, labels, names, total_conflict
        As :func:`~mus_lab.fusion.fuse` and :class:`~mus_lab.fusion.FusionOptions`.

    Returns
    -------
    xarray.Dataset
        The fused product.

    Raises
    ------
    FusionError
        As :func:`~mus_lab.fusion.fuse`.
    """
    _warn("fuse_probabilities", "fuse(cubes, confusions=..., options=FusionOptions(...))")
    opts = FusionOptions(
        rule=rule,
        decision=decision,
        total_conflict=total_conflict,
        reliability=reliability
        if isinstance(reliability, str | float | int | None)
        else tuple(reliability),
        compound_threshold=compound_threshold,
    )
    return fuse_with_labels(
        _named(probabilities, names), options=opts, confusions=confusions, labels=labels
    )[0]


def fuse_maps(
    sources: Sequence[xr.DataArray],
    confusions: Sequence[ConfusionMatrix | None],
    *,
    rule: str | CombinationRule = "dempster",
    decision: LabelDecision | None = None,
    mob: MassOf = "precision",
    reliability: Reliability = "precision",
    compound_threshold: float | None = 0.1,
    confidences: Sequence[xr.DataArray] | None = None,
    names: Sequence[str] | None = None,
    total_conflict: TotalConflict | None = None,
) -> tuple[xr.Dataset, list[xr.DataArray]]:
    """Deprecated: ``fuse(maps, confusions=..., options=FusionOptions(...))``.

    Parameters
    ----------
    sources, confusions, rule, decision, mob, reliability, compound_threshold, confidences, names, total_conflict
        As :func:`~mus_lab.fusion.fuse` and :class:`~mus_lab.fusion.FusionOptions`.

    Returns
    -------
    (xarray.Dataset, list of xarray.DataArray)
        The fused product and each source's own class map.

    Raises
    ------
    FusionError
        As :func:`~mus_lab.fusion.fuse`.
    """
    _warn("fuse_maps", "fuse(maps, confusions=..., options=FusionOptions(...))")
    opts = FusionOptions(
        rule=rule,
        decision=decision,
        total_conflict=total_conflict,
        mob=mob,
        reliability=reliability,
        compound_threshold=compound_threshold,
    )
    ds, own = fuse_with_labels(
        _named(sources, names), options=opts, confusions=confusions, confidences=confidences
    )
    return ds, list(own.values())


def combine_cubes(
    masses: Sequence[xr.DataArray],
    *,
    rule: str | CombinationRule = "dempster",
    names: Sequence[str] | None = None,
    total_conflict: TotalConflict | None = None,
) -> xr.DataArray:
    """Deprecated: ``fuse(masses, options=FusionOptions(output="masses"))["mass"]``.

    Parameters
    ----------
    masses, rule, names, total_conflict
        As :func:`~mus_lab.fusion.fuse` and :class:`~mus_lab.fusion.FusionOptions`.

    Returns
    -------
    xarray.DataArray
        The combined mass cube.

    Raises
    ------
    FusionError
        As :func:`~mus_lab.fusion.fuse`.
    """
    _warn("combine_cubes", 'fuse(masses, options=FusionOptions(output="masses"))["mass"]')
    opts = FusionOptions(rule=rule, total_conflict=total_conflict, output="masses")
    return fuse_with_labels(_named(masses, names), options=opts)[0]["mass"]
