"""The options of :func:`mus_lab.fusion.fuse`: one frozen dataclass, one vocabulary."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mus_lab.errors import FusionError
from mus_lab.fusion._engine import Decision
from mus_lab.fusion._masses import MassOf, Reliability
from mus_lab.fusion._rules import CombinationRule, Dempster, TotalConflict, get_rule

__all__ = ["FusionOptions", "LabelDecision", "Masses", "Output"]

#: ``"otb"``: OTB's Dempster-Shafer label exactly (label maps only); else max Bel, Pl or BetP.
LabelDecision = Literal["otb", "bel", "pl", "betp"]
#: What a land-cover source gives to the fusion: its probabilities or its class map.
Masses = Literal["auto", "probabilities", "labels"]
#: ``"product"``: the ``landcover-fused`` variables; ``"masses"``: the combined mass cube.
Output = Literal["product", "masses"]

_CHOICES: dict[str, tuple[Any, ...]] = {
    "decision": (None, "otb", "bel", "pl", "betp"),
    "total_conflict": (None, "vacuous", "raise"),
    "masses": ("auto", "probabilities", "labels"),
    "mob": ("precision", "recall", "accuracy", "kappa"),
    "output": ("product", "masses"),
}


def _check_reliability(value: Any) -> None:
    if value is None or value in ("precision", "accuracy"):
        return
    if isinstance(value, str) or not 0.0 <= float(value) <= 1.0:
        raise FusionError(
            f"reliability={value!r}: choose 'precision', 'accuracy', a number in [0, 1] or None."
        )


@dataclass(frozen=True)
class FusionOptions:
    """How :func:`~mus_lab.fusion.fuse` turns sources into evidence and combines it.

    Parameters
    ----------
    rule
        Combination rule: ``"dempster"`` (default), ``"conjunctive"``, ``"yager"``,
        ``"disjunctive"``, ``"pcr5"``, ``"pcr6"``, a registered name or a rule object.
    decision
        ``"bel"`` (max belief), ``"pl"`` (max plausibility), ``"betp"`` (max pignistic
        probability) or ``"otb"`` (OTB's label exactly; label maps with Dempster's rule only).
        ``None`` (default): ``"otb"`` when every source is a label map (IOTA²'s mode), ``"bel"``
        otherwise. Ties give 255 (undecided).
    total_conflict
        Pixels where Dempster's rule meets total conflict (K = 1): ``"vacuous"`` (undecided,
        ignorance 1) or ``"raise"`` (a :class:`~mus_lab.errors.TotalConflictError` when
        computed). ``None`` (default): what the rule object says (``"vacuous"`` for the
        registered ``"dempster"``).
    masses
        What a land-cover source (an object with ``classification``, ``probability``,
        ``confusion``) gives: ``"probabilities"`` (its probability cube), ``"labels"`` (its
        class map and confusion matrix, IOTA²'s mode) or ``"auto"`` (default: the
        probabilities when it has them). Plain DataArrays are used as they are.
    mob
        Mass of belief of a label map (OTB): per-class ``"precision"`` (default) or
        ``"recall"``, or the map's ``"accuracy"`` or ``"kappa"`` for every class.
    reliability
        Discounting of probability cubes: ``"precision"`` (default, per class from the
        confusion matrix), ``"accuracy"``, a number in [0, 1] or ``None`` (no discounting); one
        value for all sources or one per source.
    compound_threshold
        Probability cubes: symmetric confusion rate above which a pair of classes gets a
        compound focal set (``None``: none).
    legend
        ``{code: name}`` of the classes (default: the sources' own legends, else the codes).
    chunks
        Spatial chunk size the sources are rechunked to before fusing (``None``, default: as
        they come; in-memory sources stay in memory).
    output
        ``"product"`` (default): the ``landcover-fused`` variables; ``"masses"``: a dataset
        with one variable ``mass``, the combined mass function (``focal``, ``y``, ``x``).

    Raises
    ------
    FusionError
        An option outside its choices.
    UnknownRuleError
        The rule name is not registered.

    Example
    -------
    >>> from mus_lab.fusion import FusionOptions
    >>> FusionOptions(rule="pcr6", decision="pl").replace(rule="yager").rule
    'yager'
    """

    rule: str | CombinationRule = "dempster"
    decision: LabelDecision | None = None
    total_conflict: TotalConflict | None = None
    masses: Masses = "auto"
    mob: MassOf = "precision"
    reliability: Reliability | tuple[Reliability, ...] = "precision"
    compound_threshold: float | None = 0.1
    legend: Mapping[int, str] | None = None
    chunks: int | None = None
    output: Output = "product"

    def __post_init__(self) -> None:
        for key, choices in _CHOICES.items():
            value = getattr(self, key)
            if value not in choices:
                shown = ", ".join(repr(c) for c in choices)
                raise FusionError(f"{key}={value!r}: choose one of {shown}.")
        get_rule(self.rule)  # unknown names fail here, not when computing
        rel = self.reliability
        if isinstance(rel, Sequence) and not isinstance(rel, str):
            object.__setattr__(self, "reliability", tuple(rel))
            for r in rel:
                _check_reliability(r)
        else:
            _check_reliability(rel)
        if self.compound_threshold is not None and not 0 <= self.compound_threshold <= 1:
            raise FusionError(
                f"compound_threshold={self.compound_threshold}: a confusion rate lies in [0, 1] "
                "(or None for no compound set)."
            )
        if self.chunks is not None and int(self.chunks) < 1:
            raise FusionError(f"chunks={self.chunks}: give a positive number of pixels or None.")

    def replace(self, **changes: Any) -> FusionOptions:
        """A copy with some options changed (checked again).

        Parameters
        ----------
        **changes
            Option names and their new values.

        Returns
        -------
        FusionOptions

        Raises
        ------
        FusionError
            A new value outside its choices.
        """
        return dataclasses.replace(self, **changes)

    def combination_rule(self) -> CombinationRule:
        """The rule object, with :attr:`total_conflict` applied to Dempster's rule.

        Returns
        -------
        CombinationRule
            What :func:`~mus_lab.fusion.get_rule` gives for :attr:`rule`.

        Raises
        ------
        UnknownRuleError
            A rule registered when these options were made is gone.
        """
        return get_rule(self.rule, total_conflict=self.total_conflict)

    def effective_total_conflict(self) -> TotalConflict:
        """What happens at K = 1: this option, else the rule's own (``"vacuous"``).

        Returns
        -------
        str
            ``"vacuous"`` or ``"raise"``.
        """
        r = self.combination_rule()
        return r.total_conflict if isinstance(r, Dempster) else "vacuous"

    def decision_for(self, labels_only: bool) -> Decision | Literal["otb"]:
        """The decision used: :attr:`decision`, or its default for these inputs.

        Parameters
        ----------
        labels_only
            Every source is a label map (IOTA²'s mode).

        Returns
        -------
        str

        Raises
        ------
        FusionError
            ``"otb"`` asked for inputs that are not all label maps.
        """
        if self.decision is None:
            return "otb" if labels_only else "bel"
        if self.decision == "otb" and not labels_only:
            raise FusionError(
                "decision='otb' is OTB's label-map fusion: every source must be a label map "
                "(FusionOptions(masses='labels')); choose 'bel', 'pl' or 'betp' otherwise."
            )
        return self.decision

    def reliability_of(self, n: int) -> list[Reliability]:
        """One reliability per source.

        Parameters
        ----------
        n
            Number of sources.

        Returns
        -------
        list

        Raises
        ------
        FusionError
            A per-source tuple of another length.
        """
        rel = self.reliability
        if isinstance(rel, tuple):
            if len(rel) != n:
                raise FusionError(
                    f"{len(rel)} values of reliability for {n} sources: one per source."
                )
            return list(rel)
        return [rel] * n
