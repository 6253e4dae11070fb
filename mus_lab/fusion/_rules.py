"""Combination rules as plug-ins: a :class:`CombinationRule` protocol and a registry.

Built-in rules (all exact for any number of sources):

``conjunctive``
    Unnormalised conjunctive rule: products go to the intersection; the conflict K stays on
    the empty set.
``dempster``
    Conjunctive, then normalised by 1 / (1 - K). Undefined when K = 1 (total conflict): by
    default such a pixel gets the vacuous mass (all on the frame: "nothing can be said"),
    which the decision turns into *undecided*; ``Dempster(total_conflict="raise")`` raises
    :class:`~mus_lab.errors.TotalConflictError` instead.
``yager``
    Conjunctive, then K moved to the whole frame (conflict becomes ignorance).
``disjunctive``
    Products go to the union (at least one source is right).
``pcr6`` / ``pcr5``
    Proportional conflict redistribution: each partial conflict m1(X) m2(Y) (X and Y
    disjoint) goes back to X and Y in proportion to m1(X) and m2(Y). PCR6 generalises this
    to N sources (each set of a conflicting tuple gets its share); for two sources PCR5 and
    PCR6 are the same rule, so ``pcr5`` refuses more than two sources.

A plug-in rule is any object with a ``name`` and the two methods of
:class:`CombinationRule`; :func:`register_rule` makes it available by name to
:func:`~mus_lab.fusion.combine`, :func:`~mus_lab.fusion.fuse` and ``mus-lab fuse --rule``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from mus_lab.errors import FusionError, MassFunctionError, TotalConflictError, UnknownRuleError
from mus_lab.fusion import _kernels as K
from mus_lab.fusion._frame import sort_masks

__all__ = [
    "PCR5",
    "PCR6",
    "CombinationRule",
    "Conjunctive",
    "Dempster",
    "Disjunctive",
    "Yager",
    "available_rules",
    "get_rule",
    "register_rule",
]

TotalConflict = Literal["vacuous", "raise"]
#: Largest number of focal-set tuples PCR6 enumerates per pixel.
MAX_TUPLES = 2_000_000


@runtime_checkable
class CombinationRule(Protocol):
    """What a combination rule provides (a plug-in: any object with these members).

    Masses are ``(n_focal, n_pixels)`` float64 arrays without NaN (a source with no data at a
    pixel has already been made vacuous there); ``focal`` gives each source's focal-set bit
    masks and ``omega`` the mask of the whole frame.

    Parameters
    ----------
    name
        The name :func:`register_rule` files it under.

    Raises
    ------
    MusLabError
        Whatever the rule raises for inputs it cannot combine (a
        :class:`~mus_lab.errors.FusionError` subclass, by convention).

    Example
    -------
    >>> from mus_lab.fusion import CombinationRule, get_rule
    >>> isinstance(get_rule("yager"), CombinationRule)
    True
    """

    name: str

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        """Focal sets of the combined mass (rows of :meth:`combine`'s result), in order.

        Parameters
        ----------
        focal
            Each source's focal-set bit masks.
        omega
            Mask of the whole frame.

        Returns
        -------
        tuple of int
            The combined masses' focal sets.

        Raises
        ------
        FusionError
            The rule cannot combine these sources (e.g. too many).
        """
        ...

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        """Combine the sources' masses pixel by pixel.

        Parameters
        ----------
        masses
            One ``(n_focal, n_pixels)`` float64 array per source, no NaN.
        focal
            Each source's focal-set bit masks (rows of its array).
        omega
            Mask of the whole frame.

        Returns
        -------
        numpy.ndarray
            ``(len(self.focal_sets(focal, omega)), n_pixels)``.

        Raises
        ------
        TotalConflictError
            A rule that refuses total conflict met it.
        """
        ...


# --------------------------------------------------------------------------- set algebra


def _meet(focal: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """All intersections of one focal set per source (the empty set included)."""
    acc: set[int] = set(focal[0])
    for f in focal[1:]:
        acc = {x & y for x in acc for y in f}
    return sort_masks(acc)


def _join(focal: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    acc: set[int] = set(focal[0])
    for f in focal[1:]:
        acc = {x | y for x in acc for y in f}
    return sort_masks(acc)


@functools.lru_cache(maxsize=256)
def _pair_table(fa: tuple[int, ...], fb: tuple[int, ...], union: bool) -> tuple:
    out = sort_masks((x | y) if union else (x & y) for x in fa for y in fb)
    idx = {m: i for i, m in enumerate(out)}
    tgt = np.array(
        [[idx[(x | y) if union else (x & y)] for y in fb] for x in fa], dtype=np.int64
    ).reshape(len(fa), len(fb))
    return out, tgt


def _fold(
    masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], union: bool
) -> tuple[np.ndarray, tuple[int, ...]]:
    vals, foc = masses[0], tuple(focal[0])
    for b, fb in zip(masses[1:], focal[1:], strict=True):
        out_f, tgt = _pair_table(foc, tuple(fb), union)
        out = np.zeros((len(out_f), vals.shape[1]))
        K.pairs_accumulate(vals, b, tgt, out)
        vals, foc = out, out_f
    return vals, foc


def conjunctive_fold(
    masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Unnormalised conjunctive combination of N sources; the empty set (mask 0) kept."""
    return _fold(masses, focal, union=False)


def reindex(vals: np.ndarray, focal: Sequence[int], target: Sequence[int]) -> np.ndarray:
    """Rows of ``vals`` (over ``focal``) placed on ``target`` (absent sets get 0)."""
    out = np.zeros((len(target), vals.shape[1]))
    pos = {m: i for i, m in enumerate(target)}
    for k, m in enumerate(focal):
        if m in pos:
            out[pos[m]] += vals[k]
        elif np.any(vals[k]):
            raise FusionError(f"internal: focal set {m} missing from the rule's output sets")
    return out


def _with_omega(sets: Sequence[int], omega: int, *, keep_empty: bool = False) -> tuple[int, ...]:
    return sort_masks([*(s for s in sets if s or keep_empty), omega])


# --------------------------------------------------------------------------- built-in rules


class _Builtin(CombinationRule):
    """Base of the built-in rules: a numba fast path exists for two sources (``code``).

    Their methods' documentation is :class:`CombinationRule`'s.
    """

    name: str = ""
    code: int = -1
    max_sources: int | None = None

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        raise NotImplementedError

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        raise NotImplementedError

    def _check(self, focal: Sequence[tuple[int, ...]]) -> None:
        if len(focal) < 1:
            raise FusionError("Nothing to combine: give at least one mass function.")
        if self.max_sources is not None and len(focal) > self.max_sources:
            raise FusionError(
                f"The {self.name} rule combines at most {self.max_sources} sources, got "
                f"{len(focal)}: use 'pcr6' (the same as PCR5 for two sources) for more."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Conjunctive(_Builtin):
    """Unnormalised conjunctive rule (the conflict K stays on the empty set).

    Parameters
    ----------
    None
        Use ``Conjunctive()`` or ``"conjunctive"`` as ``FusionOptions(rule=...)``.

    Raises
    ------
    FusionError
        Nothing to combine (no source).

    Example
    -------
    >>> from mus_lab.fusion import Conjunctive, Frame
    >>> Conjunctive().focal_sets([(1, 3), (2, 3)], Frame((1, 2)).omega)
    (0, 1, 2, 3)
    """

    name = "conjunctive"
    code = K.RULE_CONJ

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        self._check(focal)
        return _with_omega((0, *_meet(focal)), omega, keep_empty=True)

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        vals, foc = conjunctive_fold(masses, focal)
        return reindex(vals, foc, self.focal_sets(focal, omega))


class _Reassigning(_Builtin):
    """Conjunctive combination whose conflict K is then reassigned (Dempster's, Yager's rule):
    the output sets are the non-empty intersections and the frame."""

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        self._check(focal)
        return _with_omega(_meet(focal), omega)

    def _split(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Conjunctive masses of the non-empty sets on :meth:`focal_sets`, K, the sets."""
        vals, foc = conjunctive_fold(masses, focal)
        out_f = self.focal_sets(focal, omega)
        kk = vals[foc.index(0)] if 0 in foc else np.zeros(vals.shape[1])
        rest = [i for i, m in enumerate(foc) if m]
        return reindex(vals[rest], [foc[i] for i in rest], out_f), kk, out_f


@dataclass(frozen=True)
class Dempster(_Reassigning):
    """Dempster's rule: conjunctive, normalised by 1 / (1 - K).

    Parameters
    ----------
    total_conflict
        Pixels with K = 1: ``"vacuous"`` (default) gives them the vacuous mass (ignorance 1,
        decision undecided); ``"raise"`` raises :class:`~mus_lab.errors.TotalConflictError`.

    Raises
    ------
    FusionError
        ``total_conflict`` is neither.
    TotalConflictError
        From :meth:`combine` with ``total_conflict="raise"`` at K = 1.

    Example
    -------
    >>> from mus_lab.fusion import Dempster
    >>> Dempster(total_conflict="raise")
    Dempster(total_conflict='raise')
    """

    total_conflict: TotalConflict = "vacuous"
    name = "dempster"
    code = K.RULE_DEMPSTER

    def __post_init__(self) -> None:
        if self.total_conflict not in ("vacuous", "raise"):
            raise FusionError(
                f"total_conflict={self.total_conflict!r}: choose 'vacuous' or 'raise'."
            )

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        out, kk, out_f = self._split(masses, focal, omega)
        denom = 1.0 - kk
        total = denom <= K.TOTAL_CONFLICT_EPS
        if total.any():
            if self.total_conflict == "raise":
                raise_total_conflict(int(total.sum()), total.size)
            out[:, total] = 0.0
            out[out_f.index(omega), total] = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, ~total] /= denom[~total]
        return out

    def __repr__(self) -> str:
        return f"Dempster(total_conflict={self.total_conflict!r})"


def raise_total_conflict(n: int, of: int) -> None:
    raise TotalConflictError(
        f"Total conflict (K = 1) at {n} of {of} pixels: the sources contradict each other "
        "entirely there, so Dempster's rule is undefined. Discount the sources (reliability < 1), "
        "use rule 'yager' or 'pcr6', or pass total_conflict='vacuous' to mark them undecided."
    )


class Yager(_Reassigning):
    """Yager's rule: conjunctive, the conflict K moved to the whole frame.

    Parameters
    ----------
    None
        ``Yager()`` and the name ``"yager"`` are the same rule.

    Raises
    ------
    FusionError
        Called with no mass function.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, Yager, combine
    >>> frame = Frame((1, 2))
    >>> m = combine([MassFunction.from_dict(frame, {1: 1.0}), MassFunction.from_dict(frame, {2: 1.0})],
    ...             rule=Yager())
    >>> m.to_dict()
    {'*': 1.0}
    """

    name = "yager"
    code = K.RULE_YAGER

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        out, kk, out_f = self._split(masses, focal, omega)
        out[out_f.index(omega)] += kk
        return out


class Disjunctive(_Builtin):
    """Disjunctive rule: products go to the union (assumes at least one source is right).

    Parameters
    ----------
    None
        No settings (``FusionOptions(rule="disjunctive")``).

    Raises
    ------
    FusionError
        An empty list of sources.

    Example
    -------
    >>> from mus_lab.fusion import Disjunctive, Frame
    >>> Disjunctive().focal_sets([(1,), (2,)], Frame((1, 2)).omega)
    (3,)
    """

    name = "disjunctive"
    code = K.RULE_DISJ

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        self._check(focal)
        return _with_omega(_join(focal), omega)

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        vals, foc = _fold(masses, focal, union=True)
        return reindex(vals, foc, self.focal_sets(focal, omega))


class PCR6(_Builtin):
    """PCR6: partial conflicts go back to the sets involved, in proportion to their masses.

    Parameters
    ----------
    None
        Registered as ``"pcr6"``; takes any number of sources.

    Raises
    ------
    FusionError
        No source, or more focal-set tuples per pixel than :data:`MAX_TUPLES`.
    MassFunctionError
        A source puts mass on the empty set.

    Example
    -------
    >>> from mus_lab.fusion import PCR6, Frame, MassFunction, combine
    >>> frame = Frame((1, 2))
    >>> m = combine([MassFunction.from_dict(frame, {1: 1.0}), MassFunction.from_dict(frame, {2: 1.0})],
    ...             rule=PCR6())
    >>> {k: round(v, 3) for k, v in m.to_dict(tol=0).items() if v}
    {'1': 0.5, '2': 0.5}
    """

    name = "pcr6"
    code = K.RULE_PCR

    def focal_sets(self, focal: Sequence[tuple[int, ...]], omega: int) -> tuple[int, ...]:
        self._check(focal)
        if any(0 in f for f in focal):
            raise MassFunctionError(
                f"{self.name.upper()} needs sources without mass on the empty set: normalise them "
                "first (combine them with 'dempster' or 'yager')."
            )
        sets = set(_meet(focal)) | {m for f in focal for m in f}
        return _with_omega(sorted(sets), omega)

    def combine(
        self, masses: Sequence[np.ndarray], focal: Sequence[tuple[int, ...]], omega: int
    ) -> np.ndarray:
        out_f = self.focal_sets(focal, omega)
        n_tuples = int(np.prod([len(f) for f in focal]))
        if n_tuples > MAX_TUPLES:
            raise FusionError(
                f"PCR6 over these sources enumerates {n_tuples} focal-set tuples per pixel: "
                "fuse fewer sources at once or use fewer compound sets."
            )
        pos = {m: i for i, m in enumerate(out_f)}
        tuples = np.array(list(itertools.product(*[range(len(f)) for f in focal])), np.int64)
        inter = np.empty(len(tuples), np.int64)
        for t, idx in enumerate(tuples):
            meet = functools.reduce(lambda x, y: x & y, (focal[s][k] for s, k in enumerate(idx)))
            inter[t] = pos[meet] if meet else -1
        fmax = max(len(f) for f in focal)
        dest = np.zeros((len(focal), fmax), np.int64)
        stack = np.zeros((len(focal), fmax, masses[0].shape[1]))
        for s, (f, m) in enumerate(zip(focal, masses, strict=True)):
            dest[s, : len(f)] = [pos[x] for x in f]
            stack[s, : len(f)] = m
        out = np.zeros((len(out_f), masses[0].shape[1]))
        K.pcr6_tuples(stack, tuples, inter, dest, out)
        return out


class PCR5(PCR6):
    """PCR5 (two sources; for two sources it equals PCR6).

    Parameters
    ----------
    None
        Registered as ``"pcr5"``.

    Raises
    ------
    FusionError
        More than two sources: use PCR6.

    Example
    -------
    >>> from mus_lab.fusion import get_rule
    >>> get_rule("pcr5").max_sources
    2
    """

    name = "pcr5"
    max_sources = 2


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, CombinationRule] = {}


def register_rule(rule: CombinationRule, *, overwrite: bool = False) -> CombinationRule:
    """Make a rule available by its ``name`` (e.g. to ``FusionOptions(rule="mine")``).

    Parameters
    ----------
    rule
        An object with ``name``, ``focal_sets(focal, omega)`` and
        ``combine(masses, focal, omega)`` (:class:`CombinationRule`).
    overwrite
        Replace a rule registered under the same name.

    Returns
    -------
    CombinationRule
        ``rule`` itself.

    Raises
    ------
    FusionError
        The object lacks the protocol's methods, or the name is taken (pass ``overwrite=True``).

    Example
    -------
    >>> from mus_lab.fusion import Yager, available_rules, register_rule
    >>> class Cautious(Yager):
    ...     name = "cautious-demo"
    >>> register_rule(Cautious(), overwrite=True).name in available_rules()
    True
    """
    if not isinstance(rule, CombinationRule) or not getattr(rule, "name", ""):
        raise FusionError(
            f"{rule!r} is not a combination rule: it needs a 'name' and the methods "
            "focal_sets(focal, omega) and combine(masses, focal, omega)."
        )
    if rule.name in _REGISTRY and not overwrite:
        raise FusionError(f"A rule named {rule.name!r} exists: pass overwrite=True to replace it.")
    _REGISTRY[rule.name] = rule
    return rule


def available_rules() -> tuple[str, ...]:
    """Names of the registered rules.

    Parameters
    ----------
    None

    Returns
    -------
    tuple of str
        Sorted names.

    Raises
    ------
    None

    Example
    -------
    >>> from mus_lab.fusion import available_rules
    >>> "dempster" in available_rules()
    True
    """
    return tuple(sorted(_REGISTRY))


def get_rule(
    rule: str | CombinationRule, *, total_conflict: TotalConflict | None = None
) -> CombinationRule:
    """The rule registered under ``rule`` (or ``rule`` itself when it is a rule object).

    Parameters
    ----------
    rule
        A registered name (case-insensitive) or a rule object.
    total_conflict
        Overrides what Dempster's rule does at K = 1 (``"vacuous"`` or ``"raise"``).

    Returns
    -------
    CombinationRule

    Raises
    ------
    UnknownRuleError
        The name is not registered.

    Example
    -------
    >>> from mus_lab.fusion import get_rule
    >>> get_rule("Dempster", total_conflict="raise")
    Dempster(total_conflict='raise')
    """
    if isinstance(rule, str):
        key = rule.strip().lower()
        if key not in _REGISTRY:
            raise UnknownRuleError(
                f"Unknown combination rule {rule!r}: choose one of {', '.join(available_rules())} "
                "(or register your own with mus_lab.fusion.register_rule)."
            )
        out = _REGISTRY[key]
    else:
        out = rule
    if total_conflict is not None and isinstance(out, Dempster):
        out = Dempster(total_conflict=total_conflict)
    return out


for _rule in (Conjunctive(), Dempster(), Yager(), Disjunctive(), PCR5(), PCR6()):
    register_rule(_rule)


# --------------------------------------------------------------------------- fast-path tables


@functools.lru_cache(maxsize=256)
def pair_tables(
    code: int, fa: tuple[int, ...], fb: tuple[int, ...], omega: int
) -> tuple[tuple[int, ...], K.PairTables]:
    """Output focal sets and the integer tables the two-source kernel needs for built-in rule
    ``code`` (``fa`` and ``fb`` hold the frame ``omega``)."""
    rule: _Builtin = {
        K.RULE_CONJ: Conjunctive(),
        K.RULE_DEMPSTER: Dempster(),
        K.RULE_YAGER: Yager(),
        K.RULE_DISJ: Disjunctive(),
        K.RULE_PCR: PCR6(),
    }[code]
    out_f = rule.focal_sets((fa, fb), omega)
    pos = {m: i for i, m in enumerate(out_f)}
    shape = (len(fa), len(fb))
    tsing = np.full(shape, -1, np.int64)
    for i, x in enumerate(fa):
        for j, y in enumerate(fb):
            z = x & y
            if z and z & (z - 1) == 0:
                tsing[i, j] = z.bit_length() - 1
    tables = K.PairTables(
        tgt=np.array([[pos[x & y] if x & y else -1 for y in fb] for x in fa], np.int64).reshape(
            shape
        ),
        tk=np.array([[not (x & y) for y in fb] for x in fa], np.bool_).reshape(shape),
        tsing=tsing,
        # only read for the disjunctive rule
        tdisj=np.array([[pos.get(x | y, 0) for y in fb] for x in fa], np.int64).reshape(shape),
        ia=np.array([pos.get(x, -1) for x in fa], np.int64),
        ib=np.array([pos.get(y, -1) for y in fb], np.int64),
        omega_a=fa.index(omega),
        omega_b=fb.index(omega),
        n_out=len(out_f),
        omega_row=pos[omega],
        empty_row=pos.get(0, -1),
    )
    return out_f, tables
