"""Fusion of label maps, IOTA²'s mode (OTB ``FusionOfClassifications -method dempstershafer``).

Each map's label A gives m({A}) = v(A) and m(not A) = 1 - v(A), v from the map's confusion
matrix (precision by default). Every output then depends only on the tuple of labels at a
pixel, so the engine runs once per possible tuple ((C + 1) ** N of them, no data included)
into a look-up table, and the map is fused by table look-up: exact and fast.

``decision="otb"`` reproduces OTB's ``DSFusionOfClassifiersImageFilter`` label for label,
including its special cases, read from its source:

* a source whose mass v is exactly 0 (or negative, e.g. kappa) is left out;
* when the sources with 0 < v < 1 all give one label, that label wins, even if another source
  says something else with v = 1;
* otherwise, labels with v = 1: one such label wins, two different ones -> undecided;
* every source left out with v = 0 -> undecided; no source left -> no data;
* else max Bel over the labels the sources give (Bel of a class no source gave is taken as 0;
  exact Dempster would give it a little belief when exactly one class of the frame is
  unnamed); ties -> undecided.

The other outputs (belief, plausibility, conflict, ignorance, confidence) always describe the
exact combination of all sources (masses clipped to [0, 1]); they differ from OTB's internals
only in the special cases above. The IOTA² fused confidence (``source_confidence``, given the
sources' own confidence maps) is the confidence of the source whose label was kept, the
higher of the two when both agree (IOTA²'s ``compute_confidence_fusion``), 0 when no source
gave the fused label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import ConfusionMatrixError, FusionError, LegendMismatchError
from mus_lab.fusion import _kernels as K
from mus_lab.fusion._engine import _scores, combine
from mus_lab.fusion._frame import NODATA, UNDECIDED, Frame, MassFunction, sort_masks
from mus_lab.fusion._fuse import check_grid, describe_product
from mus_lab.fusion._masses import MassOf, label_masses
from mus_lab.fusion._options import LabelDecision
from mus_lab.fusion._rules import (
    CombinationRule,
    Dempster,
    TotalConflict,
    conjunctive_fold,
    get_rule,
    raise_total_conflict,
)

__all__ = ["fuse_label_maps", "label_table", "otb_decision"]
#: Largest look-up table ((C + 1) ** N label tuples).
MAX_TUPLES = 1_000_000
_VARS = ("fused_class", "belief", "plausibility", "conflict", "ignorance", "confidence")


def otb_decision(labels: Sequence[int], values: Sequence[float]) -> int:
    """OTB's Dempster-Shafer label for one pixel, special cases included (module docstring).

    Parameters
    ----------
    labels
        Each source's label at the pixel (0 = no data).
    values
        Each source's mass of belief for its label.

    Returns
    -------
    int
        The fused label; 255 undecided, 0 no data.

    Raises
    ------
    ValueError
        ``labels`` and ``values`` differ in length.

    Example
    -------
    >>> from mus_lab.fusion import otb_decision
    >>> otb_decision([1, 2], [0.6, 0.4]), otb_decision([1, 2], [0.5, 0.5])
    (1, 255)
    """
    groups: dict[int, list[float]] = {}
    ones: set[int] = set()
    zeros: set[int] = set()
    for lab, v in zip(labels, values, strict=True):
        if lab == NODATA:
            continue
        if 0.0 < v < 1.0:
            groups.setdefault(lab, []).append(v)
        elif v == 1.0:
            ones.add(lab)
        elif v == 0.0:
            zeros.add(lab)
    if len(groups) == 1:
        return next(iter(groups))
    if ones:
        return next(iter(ones)) if len(ones) == 1 else UNDECIDED
    if len(zeros) == len(labels):
        return UNDECIDED
    if not groups:
        return NODATA
    # Dempster over {A}, not-A masses: Bel({A_i}) = k * a_i / (1 - a_i) with one k for all
    # labels, a_i the joint mass of the sources giving A_i; so the largest a_i wins.
    joint = {}
    for lab, vs in groups.items():
        p, q = float(np.prod(vs)), float(np.prod([1.0 - v for v in vs]))
        joint[lab] = p / q  # a / (1 - a) with a = p / (p + q)
    best = max(joint.values())
    winners = [lab for lab, s in joint.items() if s >= best * (1 - K.TIE_TOL)]
    return winners[0] if len(winners) == 1 else UNDECIDED


def _label_focal(frame: Frame) -> tuple[int, ...]:
    return sort_masks(
        [1 << i for i in range(frame.size)]
        + [frame.omega & ~(1 << i) for i in range(frame.size)]
        + [frame.omega]
    )


def label_table(
    values: np.ndarray,
    frame: Frame,
    *,
    rule: str | CombinationRule = "dempster",
    decision: LabelDecision = "otb",
) -> dict[str, np.ndarray]:
    """The product's outputs for every tuple of labels of N label maps (IOTA²'s mode).

    Parameters
    ----------
    values
        ``(N, C)``: each source's raw mass of belief per class (frame order).
    frame
        The classes.
    rule
        Combination rule (name or object).
    decision
        ``"otb"`` (Dempster only), ``"bel"``, ``"pl"`` or ``"betp"``.

    Returns
    -------
    dict of numpy.ndarray
        One array per output variable, plus ``total_conflict`` (bool: tuples where Dempster
        met K = 1); tuple ``(i_1, ..., i_N)`` (class indices, ``C`` = no data) sits at
        ``sum(i_s * (C + 1) ** s)``.

    Raises
    ------
    FusionError
        Too many tuples (more than 1 000 000), or ``"otb"`` with another rule than Dempster's.
    UnknownRuleError
        The rule name is not registered.

    Example
    -------
    >>> from mus_lab.fusion import Frame, label_table
    >>> table = label_table(np.array([[0.8, 0.6], [0.7, 0.9]]), Frame((1, 2)))
    >>> table["fused_class"].tolist()  # (1, 1), (2, 1), (no data, 1), (1, 2), ..., (no data,)*2
    [1, 1, 1, 2, 2, 2, 1, 2, 0]
    """
    n_src, n_cls = values.shape
    n_t = (n_cls + 1) ** n_src
    if n_t > MAX_TUPLES:
        raise FusionError(
            f"{n_src} maps over {n_cls} classes make {n_t} label combinations: fuse fewer maps "
            "at once, or turn them into mass cubes (masses_from_labels) and use fuse()."
        )
    tuples = np.stack(np.unravel_index(np.arange(n_t), (n_cls + 1,) * n_src, order="F"), axis=1)
    focal = _label_focal(frame)
    pos = {m: k for k, m in enumerate(focal)}
    clipped = np.clip(values, 0.0, 1.0)
    masses = []
    for s in range(n_src):
        vals = np.zeros((len(focal), n_t))
        for i in range(n_cls):
            at = tuples[:, s] == i
            vals[pos[1 << i], at] = clipped[s, i]
            vals[pos[frame.omega & ~(1 << i)], at] += 1.0 - clipped[s, i]
        vals[pos[frame.omega], tuples[:, s] == n_cls] = 1.0  # no data: vacuous
        masses.append(MassFunction(frame, focal, vals))
    r = get_rule(rule, total_conflict="vacuous")
    if decision == "otb" and not isinstance(r, Dempster):
        raise FusionError(
            f"decision='otb' is OTB's Dempster-Shafer rule; with rule {r.name!r} choose "
            "decision 'bel', 'pl' or 'betp'."
        )
    comb = combine(masses, rule=r)
    bel, pl, betp = _scores(comb)
    conj, conj_f = conjunctive_fold([m.values for m in masses], [focal] * n_src)
    kk = conj[conj_f.index(0)] if 0 in conj_f else np.zeros(n_t)
    cs = np.zeros((n_cls, n_t))
    for c in range(n_cls):
        if (1 << c) in conj_f:
            cs[c] = conj[conj_f.index(1 << c)]
    codes = np.array(frame.classes, np.uint8)
    code_of = np.append(codes, NODATA)
    src_labels = code_of[tuples].T  # (N, T)
    valid = (tuples < n_cls).any(axis=1)
    if decision == "otb":
        fused = np.array(
            [
                otb_decision(
                    src_labels[:, t].tolist(),
                    [values[s, i] if i < n_cls else 0.0 for s, i in enumerate(tuples[t])],
                )
                for t in range(n_t)
            ],
            np.uint8,
        )
    else:
        scores = {"bel": bel, "pl": pl, "betp": betp}[decision]
        best = scores.max(axis=0)
        ties = (scores >= best * (1 - K.TIE_TOL)).sum(axis=0) > 1
        fused = codes[np.argmax(scores, axis=0)]
        fused[ties] = UNDECIDED
        fused[~valid] = NODATA
    cls_idx = np.full(256, -1)
    cls_idx[codes] = np.arange(n_cls)
    ci = cls_idx[fused]
    decided = ci >= 0
    cols = np.arange(n_t)
    pick = np.where(decided, ci, 0)
    out = {
        "fused_class": fused,
        "belief": np.where(decided, bel[pick, cols], bel.max(axis=0)),
        "plausibility": np.where(decided, pl[pick, cols], pl.max(axis=0)),
        "conflict": kk,
        "ignorance": comb.mass_of_mask(frame.omega),
        "confidence": np.where(decided, cs[pick, cols], 0.0),
    }
    for k in _VARS[1:]:
        out[k] = np.where(fused == NODATA, np.nan, out[k]).astype(np.float32)
    agree = np.zeros(n_t, np.uint8)
    eq = src_labels == fused[None]
    agree[decided & eq[1:].any(axis=0)] = 2
    agree[decided & eq[0]] = 3
    agree[decided & eq.all(axis=0)] = 1
    out["agreement"] = agree
    out["total_conflict"] = valid & (1.0 - kk <= K.TOTAL_CONFLICT_EPS)
    return out


def _as_unit(conf: np.ndarray) -> np.ndarray:
    """A confidence map as 0-1 floats: uint8 0-100 (255 = no data) or floats already 0-1."""
    c = np.asarray(conf)
    if np.issubdtype(c.dtype, np.integer):
        return np.where(c == 255, np.nan, c / 100.0)
    return c.astype("float64")


def fuse_label_maps(
    labels: Sequence[xr.DataArray],
    confusions: Sequence[ConfusionMatrix],
    names: Sequence[str],
    *,
    mob: MassOf,
    rule: CombinationRule,
    decision: LabelDecision,
    total_conflict: TotalConflict,
    confidences: Sequence[xr.DataArray] | None = None,
    legend: Mapping[int, str] | None = None,
) -> xr.Dataset:
    """Fuse label maps with their confusion matrices, IOTA²'s way, by table look-up (lazy).

    What :func:`mus_lab.fusion.fuse` runs when every source is a label map: ``labels`` on one
    grid, first source first (IOTA²: optical then SAR gives ``agreement`` 3 = optical kept,
    2 = SAR kept), each with its confusion matrix (all over the same labels); ``confidences``
    (the maps' own confidence, 0-1 floats or the land-cover contract's uint8 0-100, 255 no
    data) adds ``source_confidence``, IOTA²'s fused confidence.

    Raises
    ------
    LegendMismatchError
        The confusion matrices have different labels.
    GridMismatchError
        The maps are on different grids.
    ConfusionMatrixError
        When computed: a map holds a label its matrix does not know.
    """
    n_src = len(labels)
    src_names = list(names)
    if n_src < 2:
        raise FusionError(f"Fusion needs two or more maps, got {n_src}.")
    if len(confusions) != n_src:
        raise FusionError(
            f"{len(confusions)} confusion matrices for {n_src} maps: give one per map, in order."
        )
    first = set(confusions[0].labels)
    for cm, name in zip(confusions[1:], src_names[1:], strict=True):
        if set(cm.labels) != first:
            only_a, only_b = sorted(first - set(cm.labels)), sorted(set(cm.labels) - first)
            raise LegendMismatchError(
                f"{src_names[0]} and {name} have different class legends ({only_a} only in "
                f"{src_names[0]}'s confusion matrix, {only_b} only in {name}'s): give matrices "
                "over the same classes, e.g. ConfusionMatrix.reorder(union) (a class a map never "
                "produces gets precision 0)."
            )
    codes = tuple(sorted(first))
    frame = Frame(codes, tuple(str((legend or {}).get(c, c)) for c in codes))
    if len(codes) < 2:
        raise ConfusionMatrixError("The confusion matrices hold one class: fusion needs two.")
    check_grid(list(labels), src_names)
    values = np.stack([label_masses(cm.reorder(codes), mob=mob) for cm in confusions])
    table = label_table(values, frame, rule=rule, decision=decision)
    n_cls = frame.size
    lut = np.full(256, -1, np.int64)
    lut[list(codes)] = np.arange(n_cls)
    lut[NODATA] = n_cls
    raise_tc = total_conflict == "raise"
    has_conf = confidences is not None
    if has_conf:
        assert confidences is not None
        if len(confidences) != n_src:
            raise FusionError(f"{len(confidences)} confidence maps for {n_src} maps: one each.")
        check_grid(
            [labels[0], *confidences], [src_names[0], *(f"confidence of {n}" for n in src_names)]
        )

    def _block(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        labs = [np.asarray(a) for a in arrays[:n_src]]
        index = np.zeros(labs[0].shape, np.int64)
        for s, lab in enumerate(labs):
            li = lab.astype(np.int64)
            bad = (li < 0) | (li > 255)
            idx = lut[np.where(bad, 0, li)]
            bad |= idx < 0
            if bad.any():
                unknown = sorted(set(np.unique(lab[bad]).tolist()))
                raise ConfusionMatrixError(
                    f"{src_names[s]} holds labels {unknown} that its confusion matrix (labels "
                    f"{list(codes)}) does not know: give the matrix of this map, or recode those "
                    "pixels to 0 (no data)."
                )
            index += idx * (n_cls + 1) ** s
        if raise_tc and table["total_conflict"][index].any():
            raise_total_conflict(int(table["total_conflict"][index].sum()), index.size)
        out = [table[k][index] for k in (*_VARS, "agreement")]
        if has_conf:
            fused = out[0]
            best = np.zeros(fused.shape)
            for lab, conf in zip(labs, arrays[n_src:], strict=True):
                c = _as_unit(conf)
                best = np.where(lab == fused, np.fmax(best, c), best)
            best = np.where(fused == NODATA, np.nan, best)
            out.append(best.astype(np.float32))
        return tuple(out)

    out_names = [*_VARS, "agreement"] + (["source_confidence"] if has_conf else [])
    dtypes = [np.uint8, *[np.float32] * 5, np.uint8] + ([np.float32] if has_conf else [])
    results = xr.apply_ufunc(
        _block,
        *labels,
        *(confidences or []),
        output_core_dims=[[] for _ in out_names],
        dask="parallelized",
        output_dtypes=dtypes,
        join="exact",
    )
    ds = xr.Dataset(dict(zip(out_names, results, strict=True)))
    reliability = {
        n: dict(zip(codes, np.round(v, 6).tolist(), strict=True))
        for n, v in zip(src_names, values, strict=True)
    }
    return describe_product(
        ds,
        frame,
        src_names,
        rule.name,
        decision,
        masses=f"labels, mass of belief = {mob}",
        reliability=str(reliability),
        total_conflict=total_conflict,
    )
