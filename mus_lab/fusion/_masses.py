"""Mass functions from classifier outputs: label maps (IOTA²/OTB) and probability cubes.

Two ways in, both ending as a mass cube (``DataArray`` with dims ``("focal", "y", "x")``,
coordinate ``focal`` = bit masks, float32, NaN = no data):

* :func:`masses_from_labels` (IOTA²'s mode): a pixel labelled A gets m({A}) = v(A) and
  m(not A) = 1 - v(A), v being the precision (default), recall, overall accuracy or kappa
  from the map's confusion matrix (OTB ``ConfusionMatrixToMassOfBelief``), clipped to [0, 1].
* :func:`masses_from_probabilities`: class probabilities become singleton masses, part of
  each class's mass moves to compound sets {a, b} for the pairs of classes the confusion
  matrix shows to be confused (:func:`confused_pairs`), and the source is discounted by its
  reliability (per class from the confusion matrix, or one number); see
  ``docs/design/0005-fusion.md`` for the exact transfer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import ConfusionMatrixError, FusionError, LegendMismatchError
from mus_lab.fusion import _kernels as K
from mus_lab.fusion._blocks import map_planes
from mus_lab.fusion._frame import NODATA, Frame, sort_masks

__all__ = [
    "MassOf",
    "confused_pairs",
    "frame_of",
    "label_masses",
    "masses_from_labels",
    "masses_from_probabilities",
    "reliability_from_confusion",
    "transfer_matrix",
]

MassOf = Literal["precision", "recall", "accuracy", "kappa"]
Reliability = Literal["precision", "accuracy"] | float | None


def frame_of(cube: xr.DataArray) -> Frame:
    """The :class:`Frame` a mass cube was built over (from its attributes).

    Parameters
    ----------
    cube
        A mass cube (:func:`masses_from_labels`, :func:`masses_from_probabilities`,
        :func:`mass_cube`).

    Returns
    -------
    Frame

    Raises
    ------
    FusionError
        The DataArray carries no frame attributes.

    Example
    -------
    >>> from mus_lab.fusion import frame_of, masses_from_probabilities
    >>> p = xr.DataArray(np.full((2, 1, 1), 0.5), dims=("class", "y", "x"), coords={"class": [3, 8]})
    >>> frame_of(masses_from_probabilities(p, reliability=None)).classes
    (3, 8)
    """
    try:
        classes = tuple(int(c) for c in cube.attrs["frame_classes"])
        names = tuple(str(n) for n in cube.attrs.get("frame_names", ()))
    except KeyError as exc:
        raise FusionError(
            "This DataArray carries no frame: build mass cubes with masses_from_labels, "
            "masses_from_probabilities or mass_cube."
        ) from exc
    return Frame(classes, names)


def _cube_attrs(frame: Frame, **extra: Any) -> dict[str, Any]:
    return {"frame_classes": list(frame.classes), "frame_names": list(frame.names), **extra}


def label_masses(confusion: ConfusionMatrix, *, mob: MassOf = "precision") -> np.ndarray:
    """Per-class mass of belief of a map, in the matrix's label order (OTB's four choices).

    Parameters
    ----------
    confusion
        The map's confusion matrix (rows reference, columns map).
    mob
        ``"precision"`` (default), ``"recall"``, ``"accuracy"`` or ``"kappa"``.

    Returns
    -------
    numpy.ndarray
        One value per class, as OTB computes them (kappa may be negative; precision of a class
        never produced is 0); :func:`masses_from_labels` clips them to [0, 1].

    Raises
    ------
    FusionError
        An unknown ``mob``.

    Example
    -------
    >>> from mus_lab.classify import ConfusionMatrix
    >>> from mus_lab.fusion import label_masses
    >>> cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))
    >>> label_masses(cm).round(3).tolist(), label_masses(cm, mob="accuracy").tolist()
    ([0.889, 0.818], [0.85, 0.85])
    """
    n = len(confusion.labels)
    if mob == "precision":
        return np.asarray(confusion.precision, dtype="float64")
    if mob == "recall":
        return np.asarray(confusion.recall, dtype="float64")
    if mob == "accuracy":
        return np.full(n, confusion.overall_accuracy)
    if mob == "kappa":
        return np.full(n, confusion.kappa)
    raise FusionError(f"mob={mob!r}: choose 'precision', 'recall', 'accuracy' or 'kappa'.")


def _legend_names(frame_codes: Sequence[int], legend: Any) -> tuple[str, ...]:
    if legend is None:
        return tuple(str(c) for c in frame_codes)
    return tuple(str(legend.get(c, c)) for c in frame_codes)


def masses_from_labels(
    labels: xr.DataArray,
    confusion: ConfusionMatrix,
    *,
    mob: MassOf = "precision",
    legend: Mapping[int, str] | None = None,
) -> xr.DataArray:
    """Mass cube of a label map, IOTA²-style: m({A}) = v(A), m(not A) = 1 - v(A).

    Parameters
    ----------
    labels
        Class codes on a grid (``y``, ``x``); 0 = no data (masses NaN).
    confusion
        The map's confusion matrix (rows reference, columns produced); its labels are the frame.
    mob
        Mass of belief: per-class ``"precision"`` (default, IOTA²'s) or ``"recall"``, or the
        map's ``"accuracy"`` (overall) or ``"kappa"`` for every class.
    legend
        Optional ``{code: name}`` for readable focal-set names.

    Returns
    -------
    xarray.DataArray
        Lazy when ``labels`` is, dims ``("focal", "y", "x")``, float32.

    Raises
    ------
    ConfusionMatrixError
        The matrix holds one class; when computed: a pixel holds a label the matrix does not
        know.

    Example
    -------
    >>> from mus_lab.classify import ConfusionMatrix
    >>> from mus_lab.fusion import masses_from_labels
    >>> cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))
    >>> m = masses_from_labels(xr.DataArray(np.array([[1, 0]], np.uint8), dims=("y", "x")), cm)
    >>> m.focal_name.values.tolist(), m.values[:, 0, 0].astype(float).round(3).tolist()
    (['1', '2', '*'], [0.889, 0.111, 0.0])
    """
    frame = Frame(confusion.labels, _legend_names(confusion.labels, legend))
    if frame.size < 2:
        raise ConfusionMatrixError(
            "A confusion matrix over one class says nothing: give two or more."
        )
    v = np.clip(label_masses(confusion, mob=mob), 0.0, 1.0)
    n_cls = frame.size
    focal = sort_masks(
        [1 << i for i in range(n_cls)]
        + [frame.omega & ~(1 << i) for i in range(n_cls)]
        + [frame.omega]
    )
    pos = {m: k for k, m in enumerate(focal)}
    table = np.full((len(focal), n_cls + 1), np.nan, np.float32)  # last column: no data
    for i in range(n_cls):
        table[:, i] = 0.0
        table[pos[1 << i], i] = v[i]
        table[pos[frame.omega & ~(1 << i)], i] = 1.0 - v[i]
    lut = np.full(256, -1, np.int64)
    for i, c in enumerate(frame.classes):
        lut[c] = i
    lut[NODATA] = n_cls

    def _block(lab: np.ndarray) -> np.ndarray:
        idx = lut[np.asarray(lab).astype(np.int64) & 255]
        bad = (idx < 0) | (np.asarray(lab) > 255) | (np.asarray(lab) < 0)
        if bad.any():
            unknown = sorted(set(np.unique(np.asarray(lab)[bad]).tolist()))
            raise ConfusionMatrixError(
                f"The map holds labels {unknown} that its confusion matrix (labels "
                f"{list(frame.classes)}) does not know: give the matrix of this map, or recode "
                "those pixels to 0 (no data)."
            )
        return np.moveaxis(table[:, idx], 0, -1)

    out = xr.apply_ufunc(
        _block,
        labels,
        output_core_dims=[["focal"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"focal": len(focal)}},
    )
    out = out.transpose("focal", ...).assign_coords(
        focal=np.array(focal, np.int64), focal_name=("focal", [frame.label(m) for m in focal])
    )
    out.attrs = _cube_attrs(frame, masses=f"labels, mass of belief = {mob}", mob=mob)
    out.name = labels.name
    return out


def confused_pairs(
    confusion: ConfusionMatrix, *, threshold: float = 0.1
) -> tuple[tuple[int, int], ...]:
    """Pairs of classes whose symmetric confusion rate exceeds ``threshold``.

    The rate of classes a and b is (n_ab + n_ba) / (n_a + n_b): the share of the reference
    samples of a or b that the map gave to the other one.

    Parameters
    ----------
    confusion
        Confusion matrix (rows reference, columns map).
    threshold
        Rate above which a pair counts, in [0, 1].

    Returns
    -------
    tuple of (int, int)
        Class-code pairs, sorted by rate, highest first.

    Raises
    ------
    FusionError
        ``threshold`` outside [0, 1].

    Example
    -------
    >>> from mus_lab.classify import ConfusionMatrix
    >>> from mus_lab.fusion import confused_pairs
    >>> cm = ConfusionMatrix((1, 2, 3), np.array([[70, 25, 5], [20, 75, 5], [2, 3, 95]]))
    >>> confused_pairs(cm, threshold=0.1)
    ((1, 2),)
    """
    if not 0 <= threshold <= 1:
        raise FusionError(f"threshold={threshold}: a confusion rate lies in [0, 1].")
    n = confusion.counts
    rows = n.sum(axis=1)
    out = []
    labels = confusion.labels
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            tot = rows[i] + rows[j]
            rate = (n[i, j] + n[j, i]) / tot if tot else 0.0
            if rate > threshold:
                out.append((rate, (labels[i], labels[j])))
    return tuple(p for _, p in sorted(out, key=lambda x: -x[0]))


def reliability_from_confusion(
    confusion: ConfusionMatrix,
    sets: Iterable[Iterable[int] | int],
    *,
    by: Literal["precision", "recall"] = "precision",
) -> dict[frozenset[int], float]:
    """Reliability of a source for each set of classes, from its confusion matrix.

    For a set A: ``"precision"`` = P(reference in A | map says A) (the set's user's accuracy),
    ``"recall"`` = P(map says A | reference in A). For a singleton these are the class's
    precision and recall. The result feeds :func:`~mus_lab.fusion.discount`.

    Parameters
    ----------
    confusion
        Confusion matrix (rows reference, columns map).
    sets
        Class codes (singletons) or iterables of codes.
    by
        ``"precision"`` (default) or ``"recall"``.

    Returns
    -------
    dict
        ``frozenset of codes -> reliability``.

    Raises
    ------
    ConfusionMatrixError
        A set names classes outside the matrix.

    Example
    -------
    >>> from mus_lab.classify import ConfusionMatrix
    >>> from mus_lab.fusion import reliability_from_confusion
    >>> cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))
    >>> r = reliability_from_confusion(cm, [1, (1, 2)])
    >>> round(r[frozenset({1})], 3), r[frozenset({1, 2})]
    (0.889, 1.0)
    """
    labels = list(confusion.labels)
    n = confusion.counts
    out: dict[frozenset[int], float] = {}
    for s in sets:
        members = frozenset([int(s)] if isinstance(s, int | np.integer) else (int(c) for c in s))
        missing = members - set(labels)
        if missing:
            raise ConfusionMatrixError(
                f"Classes {sorted(missing)} are not in the confusion matrix {labels}."
            )
        idx = [labels.index(c) for c in members]
        hit = n[np.ix_(idx, idx)].sum()
        tot = n[:, idx].sum() if by == "precision" else n[idx, :].sum()
        out[members] = float(hit / tot) if tot else 0.0
    return out


def transfer_matrix(
    frame: Frame,
    *,
    confusion: ConfusionMatrix | None = None,
    reliability: Reliability = "precision",
    compound_threshold: float | None = 0.1,
) -> tuple[np.ndarray, tuple[int, ...], dict[str, float]]:
    """How one unit of probability of each class spreads over focal sets.

    Parameters
    ----------
    frame
        The classes.
    confusion, reliability, compound_threshold
        As :func:`masses_from_probabilities`.

    Returns
    -------
    (numpy.ndarray, tuple of int, dict)
        ``(T, focal, reliabilities)``: ``T[c, k]`` is the share of class c's probability given
        to ``focal[k]``; each row sums to 1. ``reliabilities`` maps each class name to the
        share kept on informative sets (the rest goes to the frame), for provenance.

    Raises
    ------
    FusionError
        A reliability outside its choices, or ``"precision"`` / ``"accuracy"`` without a
        confusion matrix.
    LegendMismatchError
        The matrix's labels differ from the frame's classes.

    Example
    -------
    >>> from mus_lab.fusion import Frame, transfer_matrix
    >>> t, focal, kept = transfer_matrix(Frame((1, 2)), reliability=0.9)
    >>> t.round(3).tolist(), focal, kept
    ([[0.9, 0.0, 0.1], [0.0, 0.9, 0.1]], (1, 2, 3), {'1': 0.9, '2': 0.9})
    """
    n_cls = frame.size
    q = None
    if confusion is not None:
        cm = _matrix_on(confusion, frame)
        col = cm.counts.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where(col > 0, cm.counts / np.where(col > 0, col, 1), 0.0)  # P(ref | pred)
    pairs: tuple[tuple[int, int], ...] = ()
    if confusion is not None and compound_threshold is not None:
        pairs = confused_pairs(_matrix_on(confusion, frame), threshold=compound_threshold)
    if isinstance(reliability, str):
        if q is None:
            raise FusionError(
                f"reliability={reliability!r} needs the source's confusion matrix: pass "
                "confusion=..., or give a number (e.g. reliability=0.9) or None."
            )
        if reliability not in ("precision", "accuracy"):
            raise FusionError(
                f"reliability={reliability!r}: choose 'precision', 'accuracy', a number or None."
            )
    elif reliability is not None and not 0 <= float(reliability) <= 1:
        raise FusionError(f"reliability={reliability}: it must lie in [0, 1].")
    focal = sort_masks(
        [1 << i for i in range(n_cls)] + [frame.mask(p) for p in pairs] + [frame.omega]
    )
    pos = {m: k for k, m in enumerate(focal)}
    t = np.zeros((n_cls, len(focal)))
    kept: dict[str, float] = {}
    for c in range(n_cls):
        code = frame.classes[c]
        partners = [frame.index(b if a == code else a) for a, b in pairs if code in (a, b)]
        shared = {b: float(q[b, c]) if q is not None else 0.0 for b in partners}
        if reliability == "precision":
            assert q is not None
            own = float(q[c, c])
            scale = 1.0
        else:
            if reliability is None:
                r = 1.0
            elif reliability == "accuracy":
                assert confusion is not None  # q is None without it: refused above
                r = _matrix_on(confusion, frame).overall_accuracy
            else:
                r = float(reliability)
            own = max(0.0, 1.0 - sum(shared.values()))
            scale = r
        t[c, pos[1 << c]] = scale * own
        for b, share in shared.items():
            t[c, pos[(1 << c) | (1 << b)]] = scale * share
        t[c, pos[frame.omega]] += 1.0 - t[c].sum()
        kept[frame.names[c]] = round(float(1.0 - t[c, pos[frame.omega]]), 6)
    return t, focal, kept


def _matrix_on(confusion: ConfusionMatrix, frame: Frame) -> ConfusionMatrix:
    if set(confusion.labels) != set(frame.classes):
        raise LegendMismatchError(
            f"The confusion matrix's labels {list(confusion.labels)} differ from the cube's "
            f"classes {list(frame.classes)}: give the matrix of this classifier (or "
            "confusion.reorder(classes) when it only lacks classes never seen in validation)."
        )
    return confusion.reorder(frame.classes)


def masses_from_probabilities(
    probability: xr.DataArray,
    *,
    confusion: ConfusionMatrix | None = None,
    reliability: Reliability = "precision",
    compound_threshold: float | None = 0.1,
) -> xr.DataArray:
    """Mass cube of a class-probability cube, discounted, with compound sets for confused pairs.

    Parameters
    ----------
    probability
        Dims ``("class", "y", "x")`` with an integer ``class`` coordinate (the land-cover
        contract: ``classify.predict(...)["probability"]``); an optional ``class_name``
        coordinate names the classes. NaN = no data. Probabilities are clipped at 0 and
        rescaled to sum to 1.
    confusion
        The classifier's validation confusion matrix (needed for ``reliability="precision"``,
        ``"accuracy"`` and compound sets).
    reliability
        ``"precision"`` (default): a probability p of class c keeps p * P(ref = c | map = c)
        on {c}; ``"accuracy"``: every class keeps the overall accuracy; a number: that
        reliability for every class; ``None``: no discounting. What is not kept goes to the
        whole frame (ignorance).
    compound_threshold
        Classes a, b whose symmetric confusion rate exceeds this get a compound set {a, b};
        the share P(ref = b | map = a) of class a's mass moves to it. ``None``: no compound set.

    Returns
    -------
    xarray.DataArray
        Lazy mass cube, dims ``("focal", "y", "x")``, float32.

    Raises
    ------
    FusionError
        No ``class`` dimension, or a reliability that needs a confusion matrix without one.
    LegendMismatchError
        The matrix's labels differ from the cube's classes.

    Example
    -------
    >>> from mus_lab.fusion import masses_from_probabilities
    >>> p = xr.DataArray(np.array([[[0.8]], [[0.2]]]), dims=("class", "y", "x"),
    ...                  coords={"class": [1, 2]})
    >>> m = masses_from_probabilities(p, reliability=0.5)
    >>> m.focal_name.values.tolist(), m.values[:, 0, 0].astype(float).round(2).tolist()
    (['1', '2', '*'], [0.4, 0.1, 0.5])
    """
    if "class" not in probability.dims:
        raise FusionError(
            f"A probability cube needs a 'class' dimension, got dims {probability.dims}: "
            "pass classify.predict(...)['probability']."
        )
    codes = tuple(int(c) for c in probability["class"].values)
    names = (
        tuple(str(n) for n in probability["class_name"].values)
        if "class_name" in probability.coords
        else tuple(map(str, codes))
    )
    frame = Frame(codes, names)
    t, focal, kept = transfer_matrix(
        frame, confusion=confusion, reliability=reliability, compound_threshold=compound_threshold
    )
    tt = np.ascontiguousarray(t.T.astype(np.float32))  # (focal, class)

    def _block(planes: list[np.ndarray], _: list[np.ndarray]) -> tuple[np.ndarray]:
        p = np.ascontiguousarray(planes[0], dtype=np.float32)  # (class, y, x) as stored
        shape = p.shape[1:]
        n = int(np.prod(shape))
        out = np.empty((tt.shape[0], n), np.float32)
        K.transfer(p.reshape(p.shape[0], n), tt, out)
        return (out.reshape(tt.shape[0], *shape),)

    (out,) = map_planes(
        _block,
        [probability.transpose("class", "y", "x")],
        [],
        [(np.float32, len(focal))],
        name="masses-from-probabilities",
        token=(tt.tobytes(), focal),
    )
    out = out.assign_coords(
        focal=np.array(focal, np.int64), focal_name=("focal", [frame.label(m) for m in focal])
    )
    out.attrs = _cube_attrs(
        frame,
        masses=(
            f"probabilities, reliability={reliability}, compound_threshold={compound_threshold}"
        ),
        reliability=str(kept),
    )
    out.name = probability.name
    return out
