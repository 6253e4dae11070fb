"""The evidence engine on in-memory arrays: combine, discount, Bel / Pl / BetP, decisions.

These functions work on :class:`MassFunction` objects (one pixel or an array of pixels) and
are what :func:`mus_lab.fusion.fuse` runs on every dask chunk (:func:`fuse_arrays`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from mus_lab.errors import FusionError, MassFunctionError
from mus_lab.fusion import _codegen
from mus_lab.fusion import _kernels as K
from mus_lab.fusion._frame import NODATA, UNDECIDED, Frame, MassFunction, popcount
from mus_lab.fusion._rules import (
    CombinationRule,
    Dempster,
    _Builtin,
    conjunctive_fold,
    get_rule,
    pair_tables,
    raise_total_conflict,
)

__all__ = [
    "Decision",
    "belief",
    "combine",
    "conflict",
    "decide",
    "discount",
    "fuse_arrays",
    "pignistic",
    "plausibility",
]

Decision = Literal["bel", "pl", "betp"]
_BY = {"bel": K.BY_BEL, "pl": K.BY_PL, "betp": K.BY_BETP}
_UINT8 = ("fused_class", "agreement")


def _by(decision: str) -> int:
    if decision not in _BY:
        raise FusionError(f"decision={decision!r}: choose 'bel', 'pl' or 'betp'.")
    return _BY[decision]


@functools.lru_cache(maxsize=256)
def summary_tables(focal: tuple[int, ...], classes: tuple[int, ...]) -> K.SummaryTables:
    """Which classes each combined focal set holds, and where the singletons and frame are."""
    n_cls = len(classes)
    omega = (1 << n_cls) - 1
    ptr = [0]
    idx: list[int] = []
    for m in focal:
        idx += [c for c in range(n_cls) if (m >> c) & 1]
        ptr.append(len(idx))
    pos = {m: i for i, m in enumerate(focal)}
    cls_ptr = [0]
    cls_rows: list[int] = []
    for c in range(n_cls):
        cls_rows += [t for t, m in enumerate(focal) if (m >> c) & 1]
        cls_ptr.append(len(cls_rows))
    return K.SummaryTables(
        memb_ptr=np.array(ptr, np.int64),
        memb_idx=np.array(idx, np.int64),
        cls_ptr=np.array(cls_ptr, np.int64),
        cls_rows=np.array(cls_rows, np.int64),
        inv_size=np.array([1.0 / popcount(m) if m else 0.0 for m in focal]),
        sing=np.array([pos.get(1 << c, -1) for c in range(n_cls)], np.int64),
        codes=np.array(classes, np.uint8),
        omega_row=pos.get(omega, -1),
        empty_row=pos.get(0, -1),
    )


def _same_frame(masses: Sequence[MassFunction]) -> Frame:
    if not masses:
        raise FusionError("Nothing to combine: give at least one mass function.")
    frame = masses[0].frame
    for m in masses[1:]:
        if m.frame.classes != frame.classes:
            raise MassFunctionError(
                f"Mass functions over different frames {list(frame.classes)} and "
                f"{list(m.frame.classes)}: build them over one frame."
            )
    shapes = {m.shape for m in masses}
    if len(shapes) > 1:
        raise MassFunctionError(f"Mass functions cover different pixel shapes {sorted(shapes)}.")
    return frame


def combine(
    masses: Sequence[MassFunction], *, rule: str | CombinationRule = "dempster"
) -> MassFunction:
    """Combine mass functions (one per source) with a rule; pixel by pixel, vectorised.

    Parameters
    ----------
    masses
        Two or more mass functions over the same frame and pixel shape.
    rule
        ``"dempster"``, ``"conjunctive"``, ``"yager"``, ``"disjunctive"``, ``"pcr5"``,
        ``"pcr6"``, a registered name or a :class:`CombinationRule`.

    Returns
    -------
    MassFunction
        The combined masses (the conjunctive rule keeps the conflict on the empty set).

    Raises
    ------
    TotalConflictError
        Dempster's rule with ``total_conflict="raise"`` meets K = 1.
    UnknownRuleError
        The rule name is not registered.

    Example
    -------
    >>> frame = Frame((1, 2), ("a", "b"))
    >>> m1 = MassFunction.from_dict(frame, {"a": 0.8, ("a", "b"): 0.2})
    >>> m2 = MassFunction.from_dict(frame, {"b": 0.5, ("a", "b"): 0.5})
    >>> {k: round(v, 4) for k, v in combine([m1, m2]).to_dict().items()}
    {'a': 0.6667, 'b': 0.1667, '*': 0.1667}
    """
    frame = _same_frame(masses)
    r = get_rule(rule)
    shape = masses[0].shape
    n = int(np.prod(shape))
    arrays = [m.reshape(n) for m in masses]
    if any(np.isnan(a).any() for a in arrays):
        raise MassFunctionError("NaN masses: mark no data as NaN only in cubes given to fuse().")
    focal = [m.focal for m in masses]
    out = r.combine(arrays, focal, frame.omega)
    out_f = r.focal_sets(focal, frame.omega)
    return MassFunction(frame, out_f, out.reshape(len(out_f), *shape))


def conflict(masses: Sequence[MassFunction]) -> np.ndarray:
    """Conflict K: mass the unnormalised conjunctive combination puts on the empty set.

    Parameters
    ----------
    masses
        Mass functions over the same frame and pixel shape.

    Returns
    -------
    numpy.ndarray
        K per pixel (shape of the masses' pixels), 0 (agreement) to 1 (total conflict).

    Raises
    ------
    MassFunctionError
        The mass functions have different frames or pixel shapes.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, conflict
    >>> frame = Frame((1, 2))
    >>> m1 = MassFunction.from_dict(frame, {1: 0.8, (1, 2): 0.2})
    >>> m2 = MassFunction.from_dict(frame, {2: 0.5, (1, 2): 0.5})
    >>> float(conflict([m1, m2]))
    0.4
    """
    _same_frame(masses)
    n = int(np.prod(masses[0].shape))
    vals, foc = conjunctive_fold([m.reshape(n) for m in masses], [m.focal for m in masses])
    kk = vals[foc.index(0)] if 0 in foc else np.zeros(n)
    return kk.reshape(masses[0].shape)


def discount(m: MassFunction, reliability: Any) -> MassFunction:
    """Shafer discounting: m'(A) = r m(A) for A != frame, the rest goes to the frame.

    Parameters
    ----------
    m
        Mass function.
    reliability
        One reliability in [0, 1] (or an array of them, one per pixel), or a mapping
        ``{focal set: reliability}`` (sets as for :meth:`Frame.mask`; a class code alone is its
        singleton) for class-dependent discounting, e.g. from
        :func:`~mus_lab.fusion.reliability_from_confusion`. Sets missing from the mapping are
        not discounted.

    Returns
    -------
    MassFunction
        Same focal sets plus the frame.

    Raises
    ------
    MassFunctionError
        A reliability outside [0, 1].

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, discount
    >>> m = MassFunction.from_dict(Frame((1, 2)), {1: 1.0})
    >>> {k: round(v, 3) for k, v in discount(m, 0.9).to_dict().items()}
    {'1': 0.9, '*': 0.1}
    """
    frame = m.frame
    focal = m.focal if frame.omega in m.focal else (*m.focal, frame.omega)
    vals = np.concatenate([m.values, np.zeros((len(focal) - len(m.focal), *m.shape))])
    if isinstance(reliability, Mapping):
        rows = np.ones(len(focal))
        for key, r in reliability.items():
            mask = frame.mask(key)
            if mask in focal:
                rows[focal.index(mask)] = float(r)
        r_arr = np.broadcast_to(rows.reshape((-1,) + (1,) * len(m.shape)), vals.shape)
    else:
        r_arr = np.broadcast_to(np.asarray(reliability, dtype="float64"), m.shape)[None]
        r_arr = np.broadcast_to(r_arr, vals.shape)
    if np.any((r_arr < 0) | (r_arr > 1)):
        raise MassFunctionError("Reliabilities must lie in [0, 1] (1 = fully reliable).")
    is_omega = np.array([f == frame.omega for f in focal])
    out = np.where(is_omega.reshape((-1,) + (1,) * len(m.shape)), vals, vals * r_arr)
    out[focal.index(frame.omega)] += (vals - out).sum(axis=0)
    return MassFunction(frame, focal, out)


def _scores(m: MassFunction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(np.prod(m.shape))
    c = m.frame.size
    bel, pl, betp = np.empty((c, n)), np.empty((c, n)), np.empty((c, n))
    K.class_scores(m.reshape(n), summary_tables(m.focal, m.frame.classes), bel, pl, betp)
    empty = m.mass_of_mask(0).reshape(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        betp = np.where(1 - empty > 0, betp / (1 - empty), 0.0)
    return bel, pl, betp


def belief(m: MassFunction, members: Any) -> np.ndarray:
    """Bel(A): total mass of the non-empty focal sets inside A.

    Parameters
    ----------
    m
        Mass function.
    members
        The set A: a class code or name, or an iterable of them.

    Returns
    -------
    numpy.ndarray
        Bel(A) per pixel.

    Raises
    ------
    MassFunctionError
        A member is not in the frame.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, belief, plausibility
    >>> m = MassFunction.from_dict(Frame((1, 2, 3)), {1: 0.5, (1, 2): 0.3, (1, 2, 3): 0.2})
    >>> float(belief(m, (1, 2))), float(plausibility(m, 2))
    (0.8, 0.5)
    """
    a = m.frame.mask(members)
    inside = [k for k, f in enumerate(m.focal) if f and not f & ~a]
    return m.values[inside].sum(axis=0)


def plausibility(m: MassFunction, members: Any) -> np.ndarray:
    """Pl(A): total mass of the focal sets that meet A (1 - Bel of the complement).

    Parameters
    ----------
    m, members
        As :func:`belief`.

    Returns
    -------
    numpy.ndarray
        Plausibility of the set at each pixel.

    Raises
    ------
    MassFunctionError
        ``members`` names a class outside ``m.frame``.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, plausibility
    >>> m = MassFunction.from_dict(Frame((1, 2)), {1: 0.6, (1, 2): 0.4})
    >>> float(plausibility(m, 2))
    0.4
    """
    a = m.frame.mask(members)
    meet = [k for k, f in enumerate(m.focal) if f & a]
    return m.values[meet].sum(axis=0)


def pignistic(m: MassFunction) -> np.ndarray:
    """Pignistic probability BetP of each class: each set's mass shared among its classes.

    Parameters
    ----------
    m
        Mass function (mass on the empty set is left out and the rest renormalised).

    Returns
    -------
    numpy.ndarray
        ``(n_classes, *shape)``, frame order.

    Raises
    ------
    MassFunctionError
        Not raised for a valid mass function (masses are checked when it is built).

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, pignistic
    >>> m = MassFunction.from_dict(Frame((1, 2)), {1: 0.6, (1, 2): 0.4})
    >>> pignistic(m).round(2).tolist()
    [0.8, 0.2]
    """
    return _scores(m)[2].reshape(m.frame.size, *m.shape)


def decide(m: MassFunction, *, by: Decision = "bel") -> np.ndarray:
    """Class code of max Bel, max Pl or max BetP per pixel; ties -> 255 (undecided).

    Parameters
    ----------
    m
        Mass function; pixels with NaN masses get 0 (no data).
    by
        ``"bel"`` (default), ``"pl"`` or ``"betp"``.

    Returns
    -------
    numpy.ndarray
        uint8 class codes, the masses' pixel shape.

    Raises
    ------
    FusionError
        ``by`` is not one of the three.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, decide
    >>> m = MassFunction.from_dict(Frame((4, 7)), {4: [0.6, 0.3], 7: [0.4, 0.3], (4, 7): [0, 0.4]})
    >>> decide(m).tolist()
    [4, 255]
    """
    _by(by)
    scores = dict(zip(("bel", "pl", "betp"), _scores(m), strict=True))[by]
    best = scores.max(axis=0)
    ties = (scores >= best * (1 - K.TIE_TOL)).sum(axis=0) > 1
    codes = np.array(m.frame.classes, np.uint8)
    out = codes[np.argmax(scores, axis=0)]
    out[ties] = UNDECIDED
    out[np.isnan(m.values).any(axis=0).reshape(-1)] = NODATA
    return out.reshape(m.shape)


# --------------------------------------------------------------------------- chunk engine


def _with_omega(a: np.ndarray, focal: tuple[int, ...], omega: int) -> tuple[np.ndarray, tuple]:
    if omega in focal:
        return a, focal
    return np.concatenate([a, np.zeros((1, a.shape[1]), a.dtype)]), (*focal, omega)


def _outputs(n: int) -> K.Outputs:
    return K.Outputs(
        **{k: np.empty(n, np.uint8 if k in _UINT8 else np.float32) for k in K.Outputs._fields}
    )


def fuse_arrays(
    arrays: Sequence[np.ndarray],
    focal: Sequence[tuple[int, ...]],
    frame: Frame,
    *,
    rule: CombinationRule,
    by: Decision = "bel",
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Fuse sources given as ``(n_focal, n_pixels)`` arrays (NaN = no data) into the outputs.

    Returns ``fused_class`` (uint8), ``belief``, ``plausibility``, ``conflict``, ``ignorance``,
    ``confidence`` (float32) and ``agreement`` (uint8), each ``(n_pixels,)``.
    """
    omega = frame.omega
    pairs = [_with_omega(a, tuple(f), omega) for a, f in zip(arrays, focal, strict=True)]
    arrays = [p[0] for p in pairs]
    focal = [p[1] for p in pairs]
    n = arrays[0].shape[1]
    code = _by(by)
    if labels is None:
        labels = np.stack(
            [
                decide(MassFunction(frame, f, a.astype("float64")), by=by)
                for a, f in zip(arrays, focal, strict=True)
            ]
        )
    labels = np.ascontiguousarray(labels, dtype=np.uint8).reshape(len(arrays), n)
    fast = (
        isinstance(rule, _Builtin)
        and len(arrays) == 2
        and not any(0 in f for f in focal)
        and type(rule).__name__
        in ("Conjunctive", "Dempster", "Yager", "Disjunctive", "PCR5", "PCR6")
    )
    if fast:
        assert isinstance(rule, _Builtin)
        out_f, pt = pair_tables(rule.code, focal[0], focal[1], omega)
        tc = isinstance(rule, Dempster) and rule.total_conflict == "raise"
        f32 = all(x.dtype == np.float32 for x in arrays)
        dt = np.float32 if f32 else np.float64
        a, b = (np.ascontiguousarray(x, dtype=dt) for x in arrays)
        prm = K.Params(
            rule=rule.code,
            tc_mode=K.TC_FLAG if tc else K.TC_VACUOUS,
            by=code,
            tie=K.TIE_TOL32 if f32 else K.TIE_TOL,
            eps=K.TOTAL_CONFLICT_EPS32 if f32 else K.TOTAL_CONFLICT_EPS,
        )
        if _codegen.supported(rule.code, code, n):
            kernel = _codegen.generated_fuse2(
                rule.code, focal[0], focal[1], frame.classes, np.dtype(dt).name
            )
            floats = np.empty((5, n), np.float32)
            codes = np.empty((2, n), np.uint8)
            n_total = kernel(a, b, labels, prm.tie, prm.eps, tc, floats, codes)
            if n_total and tc:
                raise_total_conflict(int(n_total), n)
            return dict(zip(_codegen.OUTPUTS, [*codes, *floats], strict=True))
        out = _outputs(n)
        n_total = K.fuse2(a, b, labels, pt, summary_tables(out_f, frame.classes), prm, out)
        if n_total and tc:
            raise_total_conflict(int(n_total), n)
        return out._asdict()
    valid = np.zeros(n, bool)
    clean = []
    for a, f in zip(arrays, focal, strict=True):
        ok = ~np.isnan(a).any(axis=0)
        valid |= ok
        a = np.where(ok, a, 0.0).astype("float64")
        a[f.index(omega), ~ok] = 1.0
        clean.append(np.ascontiguousarray(a))
    conj, conj_f = conjunctive_fold(clean, focal)
    kk = conj[conj_f.index(0)] if 0 in conj_f else np.zeros(n)
    cs = np.zeros((frame.size, n))
    for c in range(frame.size):
        if (1 << c) in conj_f:
            cs[c] = conj[conj_f.index(1 << c)]
    m = np.ascontiguousarray(rule.combine(clean, focal, omega), dtype="float64")
    out_f = tuple(rule.focal_sets(focal, omega))
    if m.shape != (len(out_f), n):
        raise FusionError(
            f"Rule {rule.name!r} returned masses of shape {m.shape}, expected {(len(out_f), n)}."
        )
    if omega not in out_f:  # a plug-in rule without the frame among its sets
        m = np.concatenate([m, np.zeros((1, n))])
        out_f = (*out_f, omega)
    prm = K.Params(
        rule=K.RULE_PLUGIN, tc_mode=K.TC_VACUOUS, by=code, tie=K.TIE_TOL, eps=K.TOTAL_CONFLICT_EPS
    )
    st = summary_tables(out_f, frame.classes)
    out = _outputs(n)
    K.summarise(m, np.ascontiguousarray(kk), cs, valid, labels, st, prm, out)
    return out._asdict()
