"""The entry points :func:`~mus_lab.fusion.fuse` replaced, kept for one release.

Each warns (:class:`DeprecationWarning`) and calls :func:`~mus_lab.fusion.fuse` with the
equivalent :class:`~mus_lab.fusion.FusionOptions` (its keywords are the options' names, plus
``names``), so the aliases stay thin and take nothing the options do not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.fusion._api import Extras, fuse_with_labels, legacy_options

__all__ = ["combine_cubes", "fuse_labels", "fuse_maps", "fuse_probabilities"]

_DATA = ("confusions", "labels", "confidences")


def _alias(
    old: str, sources: Sequence[xr.DataArray], keywords: dict[str, Any]
) -> tuple[xr.Dataset, dict[str, xr.DataArray]]:
    extras = Extras(**{k: keywords.pop(k) for k in _DATA if k in keywords})
    message = (
        f"fusion.{old} is deprecated and will be removed in the next release: use "
        "fusion.fuse(sources, options=FusionOptions(...), confusions=...)."
    )
    named, options = legacy_options(old, sources, None, keywords, message=message, stacklevel=4)
    return fuse_with_labels(named, options, extras)


def fuse_labels(
    labels: Sequence[xr.DataArray], confusions: Sequence[ConfusionMatrix], **keywords: Any
) -> xr.Dataset:
    """Deprecated: label maps go to ``fuse(maps, confusions=...)`` (IOTA²'s mode there too).

    Parameters
    ----------
    labels, confusions
        The maps and their confusion matrices, in order.
    **keywords
        ``mob``, ``rule``, ``decision``, ``total_conflict``, ``legend`` (options),
        ``confidences`` and ``names``.

    Returns
    -------
    xarray.Dataset
        What ``fuse`` returns.

    Raises
    ------
    FusionError
        Whatever ``fuse`` raises for these maps.
    """
    return _alias("fuse_labels", labels, {**keywords, "confusions": confusions})[0]


def fuse_probabilities(probabilities: Sequence[xr.DataArray], **keywords: Any) -> xr.Dataset:
    """Deprecated: probability cubes go to ``fuse(cubes, options=FusionOptions(...))``.

    Parameters
    ----------
    probabilities
        ``("class", "y", "x")`` cubes, first source first.
    **keywords
        ``reliability``, ``compound_threshold``, ``rule``, ``decision``, ``total_conflict``,
        plus ``confusions``, ``labels`` and ``names``.

    Returns
    -------
    xarray.Dataset
        The ``landcover-fused`` variables.

    Raises
    ------
    LegendMismatchError
        Cubes over different classes (and what else ``fuse`` raises).
    """
    return _alias("fuse_probabilities", probabilities, keywords)[0]


def fuse_maps(
    sources: Sequence[xr.DataArray],
    confusions: Sequence[ConfusionMatrix | None],
    **keywords: Any,
) -> tuple[xr.Dataset, list[xr.DataArray]]:
    """Deprecated: any mix of maps and cubes goes to ``fuse`` itself.

    Parameters
    ----------
    sources, confusions
        Label maps or probability cubes, and one matrix (or None) each.
    **keywords
        Any :class:`~mus_lab.fusion.FusionOptions` field, ``confidences``, ``names``.

    Returns
    -------
    (xarray.Dataset, list of xarray.DataArray)
        The product and each source's own class map.

    Raises
    ------
    GridMismatchError
        Maps on different grids (and what else ``fuse`` raises).
    """
    ds, own = _alias("fuse_maps", sources, {**keywords, "confusions": confusions})
    return ds, list(own.values())


def combine_cubes(masses: Sequence[xr.DataArray], **keywords: Any) -> xr.DataArray:
    """Deprecated: ``fuse(masses, options=FusionOptions(output="masses"))["mass"]``.

    Parameters
    ----------
    masses
        Mass cubes.
    **keywords
        ``rule``, ``total_conflict``, ``names``.

    Returns
    -------
    xarray.DataArray
        The combined masses, ``("focal", "y", "x")``.

    Raises
    ------
    UnknownRuleError
        An unregistered rule name (and what else ``fuse`` raises).
    """
    return _alias("combine_cubes", masses, {**keywords, "output": "masses"})[0]["mass"]
