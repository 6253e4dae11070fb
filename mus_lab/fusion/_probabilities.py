"""Fusion of class-probability cubes (the land-cover contract's ``probability``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError
from mus_lab.fusion._blocks import map_planes
from mus_lab.fusion._engine import Decision
from mus_lab.fusion._fuse import _names, fuse
from mus_lab.fusion._masses import Reliability, masses_from_probabilities
from mus_lab.fusion._rules import CombinationRule, TotalConflict

__all__ = ["fuse_probabilities", "labels_of"]


def labels_of(probability: xr.DataArray) -> xr.DataArray:
    """Each pixel's most probable class code (0 where the probabilities are NaN), lazily."""
    codes = np.asarray(probability["class"].values, dtype=np.uint8)

    def _block(planes: list[np.ndarray], _: list[np.ndarray]) -> tuple[np.ndarray]:
        p = planes[0]
        bad = np.isnan(p).all(axis=0)
        out = codes[np.argmax(np.where(np.isnan(p), -np.inf, p), axis=0)]
        return (np.where(bad, np.uint8(0), out).astype(np.uint8),)

    (out,) = map_planes(
        _block,
        [probability.transpose("class", "y", "x")],
        [],
        [(np.uint8, None)],
        name="labels-of",
        token=codes.tobytes(),
    )
    return out


def _per_source(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise FusionError(f"{len(value)} values of {what} for {n} sources: one per source.")
        return list(value)
    return [value] * n


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
    """Fuse class-probability cubes: discounted masses with compound sets, then :func:`fuse`.

    Parameters
    ----------
    probabilities
        Two or more cubes ``("class", "y", "x")`` on one grid and legend, first source first.
    confusions
        Each classifier's validation confusion matrix (or ``None`` for a source without one,
        which then needs a numeric ``reliability``).
    reliability
        See :func:`masses_from_probabilities`; one value for all sources or one per source.
    compound_threshold
        Symmetric confusion rate above which a pair of classes gets a compound set.
    rule, decision, names, total_conflict
        As for :func:`fuse`.
    labels
        Each source's class map for ``agreement`` (default: its most probable class).

    Returns
    -------
    xarray.Dataset
        The fused product (lazy); attrs record the rule, masses and reliabilities.
    """
    n = len(probabilities)
    src_names = _names(n, names)
    cms = list(confusions) if confusions is not None else [None] * n
    if len(cms) != n:
        raise FusionError(f"{len(cms)} confusion matrices for {n} cubes: one per cube (or None).")
    rels = _per_source(reliability, n, "reliability")
    masses = [
        masses_from_probabilities(
            p, confusion=cm, reliability=rel, compound_threshold=compound_threshold
        )
        for p, cm, rel in zip(probabilities, cms, rels, strict=True)
    ]
    own = list(labels) if labels is not None else [labels_of(p) for p in probabilities]
    ds = fuse(
        masses,
        rule=rule,
        decision=decision,
        labels=own,
        names=src_names,
        total_conflict=total_conflict,
    )
    ds.attrs["masses"] = (
        f"probabilities, reliability={rels[0] if len(set(map(str, rels))) == 1 else rels}, "
        f"compound_threshold={compound_threshold}"
    )
    ds.attrs["reliability"] = str(
        {name: m.attrs.get("reliability", "") for name, m in zip(src_names, masses, strict=True)}
    )
    ds.attrs["compound_sets"] = str(
        {
            name: [str(f) for f in m["focal_name"].values if "|" in str(f)]
            for name, m in zip(src_names, masses, strict=True)
        }
    )
    return ds
