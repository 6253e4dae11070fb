"""One entry point, :func:`fuse`, dispatching on what it is given.

Sources may be land-cover products (any object with ``name``, ``classification``,
``probability``, ``confusion`` and ``legend``: :class:`LandCoverLike`, e.g.
:class:`~mus_lab.fusion.LandCoverSource` or ``mus_lab.publish``'s land-cover product, in
memory or read from a catalog), datasets holding ``classification`` / ``probability``
(``classify.predict``'s result), or plain DataArrays: label maps (integer ``y``, ``x``),
probability cubes (``class``, ``y``, ``x``) or mass cubes (``focal``, ``y``, ``x``).

* every source a label map: IOTA²'s mode, exact by table look-up
  (:func:`~mus_lab.fusion._labels.fuse_label_maps`), decision ``"otb"`` by default;
* otherwise each source becomes a mass cube (:func:`masses_from_probabilities`,
  :func:`masses_from_labels`, or as given) and the engine fuses them chunk by chunk
  (:func:`~mus_lab.fusion._fuse.fuse_masses`), decision ``"bel"`` by default.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError
from mus_lab.fusion._fuse import combine_masses, fuse_masses
from mus_lab.fusion._labels import fuse_label_maps
from mus_lab.fusion._masses import masses_from_labels, masses_from_probabilities
from mus_lab.fusion._options import FusionOptions
from mus_lab.fusion._probabilities import labels_of

__all__ = ["FusionSource", "LandCoverLike", "fuse"]

_T = TypeVar("_T")
Kind = Literal["labels", "probabilities", "masses"]


@runtime_checkable
class LandCoverLike(Protocol):
    """What :func:`fuse` reads from a land-cover product (matched by attributes, not class).

    Attributes
    ----------
    name
        Source name (messages, provenance, ``agreement``).
    classification
        Class codes ``(y, x)``, uint8, 0 = no data (lazy).
    probability
        Class probabilities ``("class", "y", "x")``, float32, NaN = no data; ``None`` for a
        label-only product.
    confusion
        Validation confusion matrix (``mus_lab.classify.ConfusionMatrix``), or ``None``.
    legend
        Class code -> class name.

    Parameters
    ----------
    None
        A protocol: any object with these attributes qualifies (``isinstance`` checks them).

    Raises
    ------
    None

    Example
    -------
    >>> from types import SimpleNamespace
    >>> from mus_lab.fusion import LandCoverLike
    >>> product = SimpleNamespace(name="optical", classification=None, probability=None,
    ...                           confusion=None, legend={})
    >>> isinstance(product, LandCoverLike), isinstance(xr.DataArray(), LandCoverLike)
    (True, False)
    """

    @property
    def name(self) -> str: ...

    @property
    def classification(self) -> xr.DataArray: ...

    @property
    def probability(self) -> xr.DataArray | None: ...

    @property
    def confusion(self) -> ConfusionMatrix | None: ...

    @property
    def legend(self) -> Mapping[int, str]: ...


#: One source of :func:`fuse`.
FusionSource: TypeAlias = LandCoverLike | xr.Dataset | xr.DataArray
Sources: TypeAlias = Mapping[str, FusionSource] | Sequence[FusionSource]
Confusions: TypeAlias = (
    Mapping[str, ConfusionMatrix | None] | Sequence[ConfusionMatrix | None] | None
)
Maps: TypeAlias = Mapping[str, xr.DataArray] | Sequence[xr.DataArray] | None
_DEPRECATED_KEYWORDS = ("rule", "decision", "names", "total_conflict")


@dataclass(frozen=True)
class _Input:
    name: str
    kind: Kind
    data: xr.DataArray
    confusion: ConfusionMatrix | None
    legend: Mapping[int, str] | None


def _per_source(
    value: Mapping[str, _T] | Sequence[_T] | None, names: Sequence[str], what: str
) -> list[_T] | None:
    """One value per source, from a sequence (in order) or a mapping by source name."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            raise FusionError(f"No {what} for {missing}: give one per source name {list(names)}.")
        return [value[n] for n in names]
    if len(value) != len(names):
        raise FusionError(
            f"{len(value)} {what} for {len(names)} sources: give one per source, in order."
        )
    return list(value)


def _kind_of(da: xr.DataArray, name: str) -> Kind:
    if "focal" in da.dims:
        return "masses"
    if "class" in da.dims:
        return "probabilities"
    if set(da.dims) == {"y", "x"} and np.issubdtype(da.dtype, np.integer):
        return "labels"
    raise FusionError(
        f"{name} has dims {tuple(da.dims)} and dtype {da.dtype}: give a label map (integer "
        "codes on 'y', 'x'), a probability cube ('class', 'y', 'x') or a mass cube ('focal', "
        "'y', 'x')."
    )


def _pick(
    name: str,
    classification: xr.DataArray | None,
    probability: xr.DataArray | None,
    options: FusionOptions,
) -> xr.DataArray:
    """The variable of a land-cover source that ``options.masses`` asks for."""
    if options.masses == "probabilities" and probability is None:
        raise FusionError(
            f"{name} has no probability cube: fuse its class map with "
            "FusionOptions(masses='labels')."
        )
    if options.masses != "labels" and probability is not None:
        return probability
    if classification is None:
        raise FusionError(f"{name} has no classification: give its class map or probabilities.")
    return classification


def _source_names(sources: Any) -> list[tuple[str, Any]]:
    if isinstance(sources, Mapping):
        return [(str(k), v) for k, v in sources.items()]
    if isinstance(sources, xr.DataArray | xr.Dataset | LandCoverLike | str) or not isinstance(
        sources, Sequence
    ):
        raise FusionError(
            f"fuse takes two or more sources, as a list or a {{name: source}} mapping; got one "
            f"{type(sources).__name__}."
        )
    pairs = [
        (str(s.name) if isinstance(s, LandCoverLike) else f"source {i + 1}", s)
        for i, s in enumerate(sources)
    ]
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise FusionError(
            f"Sources named {names}: names must differ; pass a {{name: source}} mapping."
        )
    return pairs


def _inputs(sources: Sources, options: FusionOptions, confusions: Confusions) -> list[_Input]:
    pairs = _source_names(sources)
    names = [n for n, _ in pairs]
    cms = _per_source(confusions, names, "confusion matrices") or [None] * len(pairs)
    out = []
    for (name, src), cm in zip(pairs, cms, strict=True):
        legend: Mapping[int, str] | None = None
        if isinstance(src, LandCoverLike):
            data = _pick(name, src.classification, src.probability, options)
            cm = cm if cm is not None else src.confusion
            legend = dict(src.legend) or None
        elif isinstance(src, xr.Dataset):
            data = _pick(name, src.get("classification"), src.get("probability"), options)
        elif isinstance(src, xr.DataArray):
            data = src
        else:
            raise FusionError(
                f"{name} is a {type(src).__name__}: give a land-cover product (with name, "
                "classification, probability, confusion, legend), a label map, a probability "
                "cube or a mass cube."
            )
        kind = _kind_of(data, name)
        if kind == "labels" and cm is None:
            raise FusionError(
                f"{name} is a label map: it needs its confusion matrix (confusions=[...], or "
                "the product's own)."
            )
        if options.chunks is not None:
            data = data.chunk({"y": options.chunks, "x": options.chunks})
        out.append(_Input(name, kind, data, cm, legend))
    return out


def _legend(options: FusionOptions, inputs: Sequence[_Input]) -> Mapping[int, str] | None:
    if options.legend is not None:
        return options.legend
    return next((i.legend for i in inputs if i.legend), None)


def _named_classes(probability: xr.DataArray, legend: Mapping[int, str] | None) -> xr.DataArray:
    if legend is None or "class_name" in probability.coords:
        return probability
    names = [str(legend.get(int(c), int(c))) for c in probability["class"].values]
    return probability.assign_coords(class_name=("class", names))


def _masses(
    inputs: Sequence[_Input], options: FusionOptions, legend: Mapping[int, str] | None
) -> list[xr.DataArray]:
    out = []
    for i, rel in zip(inputs, options.reliability_of(len(inputs)), strict=True):
        if i.kind == "masses":
            out.append(i.data)
        elif i.kind == "probabilities":
            out.append(
                masses_from_probabilities(
                    _named_classes(i.data, legend),
                    confusion=i.confusion,
                    reliability=rel,
                    compound_threshold=options.compound_threshold,
                )
            )
        else:
            assert i.confusion is not None  # checked by _inputs
            out.append(masses_from_labels(i.data, i.confusion, mob=options.mob, legend=legend))
    return out


def _own_labels(i: _Input) -> xr.DataArray | None:
    if i.kind == "labels":
        return i.data
    if i.kind == "probabilities":
        return labels_of(i.data)
    return None


def _masses_attrs(
    inputs: Sequence[_Input], masses: Sequence[xr.DataArray], options: FusionOptions
) -> dict[str, str]:
    kinds = {i.kind for i in inputs}
    if kinds == {"masses"}:
        return {}
    rels = options.reliability_of(len(inputs))
    rel = rels[0] if len(set(map(str, rels))) == 1 else rels
    if kinds == {"probabilities"}:
        return {
            "masses": (
                f"probabilities, reliability={rel}, compound_threshold={options.compound_threshold}"
            ),
            "reliability": str(
                {
                    i.name: m.attrs.get("reliability", "")
                    for i, m in zip(inputs, masses, strict=True)
                }
            ),
            "compound_sets": str(
                {
                    i.name: [str(f) for f in m["focal_name"].values if "|" in str(f)]
                    for i, m in zip(inputs, masses, strict=True)
                }
            ),
        }
    return {
        "masses": f"mixed: labels (mass of belief = {options.mob}), probabilities "
        f"(reliability={rel})"
    }


def legacy_options(
    where: str,
    sources: Any,
    options: FusionOptions | None,
    keywords: Mapping[str, Any],
    *,
    allowed: Sequence[str] | None = None,
    message: str | None = None,
    stacklevel: int = 3,
) -> tuple[Any, FusionOptions]:
    """Sources and options from the keywords of an old entry point (``names=`` and
    :class:`FusionOptions` fields, or only those ``allowed``), with a
    :class:`DeprecationWarning` (``message``, default: pass the options instead)."""
    fields = {f.name for f in dataclasses.fields(FusionOptions)} | {"names"}
    unknown = sorted(set(keywords) - set(allowed or fields))
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword arguments {unknown}")
    warnings.warn(
        message
        or f"{where}(..., {', '.join(f'{k}=' for k in keywords)}) is deprecated: pass "
        "options=FusionOptions(...) (and a {name: source} mapping for names).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    if options is not None:
        raise FusionError(
            f"{where}() got options and the old keywords {sorted(keywords)}: put them in the "
            "options."
        )
    kw = dict(keywords)
    names = kw.pop("names", None)
    if names is not None:
        if len(names) != len(sources):
            raise FusionError(f"{len(names)} names for {len(sources)} sources: one per source.")
        sources = dict(zip(map(str, names), sources, strict=True))
    if isinstance(kw.get("reliability"), list):
        kw["reliability"] = tuple(kw["reliability"])
    return sources, FusionOptions(**kw)


@dataclass(frozen=True)
class Extras:
    """What :func:`fuse` takes besides the sources and options (see its parameters)."""

    confusions: Confusions = None
    labels: Maps = None
    confidences: Maps = None


def fuse_with_labels(
    sources: Sources, options: FusionOptions | None, extras: Extras = Extras()
) -> tuple[xr.Dataset, dict[str, xr.DataArray]]:
    """:func:`fuse`, and each source's own class map by name: its labels, or its most probable
    class (empty when mass cubes come without ``labels``, or for ``output="masses"``)."""
    opts = options or FusionOptions()
    inputs = _inputs(sources, opts, extras.confusions)
    names = [i.name for i in inputs]
    if len(inputs) < 2:
        raise FusionError(f"Fusion needs two or more sources, got {len(inputs)}.")
    rule = opts.combination_rule()
    legend = _legend(opts, inputs)
    own = _per_source(extras.labels, names, "label maps")
    conf = _per_source(extras.confidences, names, "confidence maps")
    labels_only = all(i.kind == "labels" for i in inputs)
    if opts.output == "masses":
        if own is not None or conf is not None:
            raise FusionError("labels and confidences go with output='product', not 'masses'.")
        cube = combine_masses(_masses(inputs, opts, legend), names, rule=rule)
        return xr.Dataset({"mass": cube}, attrs=dict(cube.attrs)), {}
    decision = opts.decision_for(labels_only)
    if conf is not None and not labels_only:
        raise FusionError("Source confidence maps go with label maps only (IOTA²'s mode).")
    if labels_only:
        if own is not None:
            raise FusionError(
                "labels= gives probability or mass cubes their own class maps; label maps are "
                "their own: leave it out."
            )
        ds = fuse_label_maps(
            [i.data for i in inputs],
            [i.confusion for i in inputs if i.confusion is not None],
            names,
            mob=opts.mob,
            rule=rule,
            decision=decision,
            total_conflict=opts.effective_total_conflict(),
            confidences=conf,
            legend=legend,
        )
        return ds, {i.name: i.data for i in inputs}
    if decision == "otb":  # decision_for refuses it here; this narrows the type
        raise FusionError("decision='otb' is for label maps only.")
    masses = _masses(inputs, opts, legend)
    if own is None:
        found = [_own_labels(i) for i in inputs]
        own = [v for v in found if v is not None] if all(v is not None for v in found) else None
    ds = fuse_masses(masses, names, rule=rule, decision=decision, labels=own)
    ds.attrs.update(_masses_attrs(inputs, masses, opts))
    return ds, dict(zip(names, own, strict=True)) if own is not None else {}


def fuse(
    sources: Sources,
    *,
    options: FusionOptions | None = None,
    confusions: Confusions = None,
    labels: Maps = None,
    confidences: Maps = None,
    **deprecated: Any,
) -> xr.Dataset:
    """Fuse two or more land-cover sources into the ``landcover-fused`` product (lazy).

    Parameters
    ----------
    sources
        Two or more sources on one grid and legend, first source first (the ``agreement``
        codes name the first and second sources), as a list or a ``{name: source}`` mapping.
        A source is a land-cover product (:class:`LandCoverLike`: ``name``,
        ``classification``, ``probability``, ``confusion``, ``legend``), a dataset with
        ``classification`` / ``probability`` variables, a label map (integer ``y``, ``x``;
        0 = no data), a probability cube (``class``, ``y``, ``x``) or a mass cube (``focal``,
        ``y``, ``x``: :func:`masses_from_labels`, :func:`masses_from_probabilities`,
        :func:`mass_cube`). Every source a label map: IOTA²'s mode (exact, by table look-up);
        otherwise each becomes a mass cube and the engine runs chunk by chunk.
    options
        :class:`FusionOptions` (rule, decision, total conflict, masses, reliability...);
        default ``FusionOptions()``: Dempster's rule.
    confusions
        Each source's validation confusion matrix (a list in order, or by name; ``None``
        entries allowed): needed by label maps, and by probability cubes with
        ``reliability="precision"`` or ``"accuracy"``. A land-cover product's own matrix is
        used where none is given.
    labels
        Each source's own class map for ``agreement`` (probability or mass cubes; default:
        a cube's most probable class, a mass cube's own decision).
    confidences
        Label maps only: the maps' own confidence (0-1 floats, or the land-cover contract's
        uint8 0-100 with 255 no data); adds ``source_confidence``, IOTA²'s fused confidence.
    **deprecated
        The old keywords ``rule``, ``decision``, ``total_conflict`` and ``names`` (a
        :class:`DeprecationWarning`; give :class:`FusionOptions` and a mapping instead).

    Returns
    -------
    xarray.Dataset
        ``fused_class``, ``belief``, ``plausibility``, ``conflict``, ``ignorance``,
        ``confidence``, ``agreement`` (+ ``source_confidence``) on the sources' grid,
        dask-backed when they are; attributes record the rule, decision, sources and masses.
        With ``FusionOptions(output="masses")``: one variable ``mass``, the combined mass
        function (``focal``, ``y``, ``x``).

    Raises
    ------
    FusionError
        Fewer than two sources, a source of no known kind, a label map without its
        confusion matrix, or options that do not fit the sources.
    GridMismatchError
        The sources are on different grids.
    LegendMismatchError
        The sources (or their confusion matrices) have different class legends.
    UnknownRuleError
        The rule name is not registered.
    TotalConflictError
        When computed, with ``total_conflict="raise"``: Dempster's rule met K = 1.
    ConfusionMatrixError
        When computed: a label map holds a label its matrix does not know.

    Example
    -------
    Two label maps with their confusion matrices (IOTA²'s mode):

    >>> from mus_lab import fusion
    >>> from mus_lab.classify import ConfusionMatrix
    >>> cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))  # precision 8/9, 9/11
    >>> a = xr.DataArray(np.array([[1, 2, 2]], np.uint8), dims=("y", "x"))
    >>> b = xr.DataArray(np.array([[1, 1, 0]], np.uint8), dims=("y", "x"))
    >>> ds = fusion.fuse({"optical": a, "radar": b}, confusions=[cm, cm])
    >>> ds.fused_class.values.tolist(), ds.agreement.values.tolist()
    ([[1, 1, 2]], [[1, 2, 3]])

    Two probability cubes, PCR6 and max plausibility:

    >>> p = xr.DataArray(np.array([[[0.7]], [[0.3]]], np.float32), dims=("class", "y", "x"),
    ...                  coords={"class": [1, 2]})
    >>> opts = fusion.FusionOptions(rule="pcr6", decision="pl", reliability=0.9)
    >>> fusion.fuse([p, 1 - p], options=opts).fused_class.values.tolist()
    [[255]]
    """
    if deprecated:
        sources, options = legacy_options(
            "fuse", sources, options, deprecated, allowed=_DEPRECATED_KEYWORDS
        )
    return fuse_with_labels(sources, options, Extras(confusions, labels, confidences))[0]
