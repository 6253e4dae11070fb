"""Lazy fusion of mass cubes on a grid: the product variables, chunk by chunk.

:func:`fuse_masses` checks the sources (one grid, one legend), then runs the engine
(:func:`mus_lab.fusion._engine.fuse_arrays`) on every dask chunk, the mass planes of each
chunk as they are stored (:func:`mus_lab.fusion._blocks.map_planes`); nothing is computed
before the caller asks.

The outputs (collection ``landcover-fused``):

``fused_class`` (uint8)
    Decided class; 0 no data (no source covers the pixel), 255 undecided (a tie).
``belief`` / ``plausibility`` (float32)
    Bel and Pl of the decided class under the rule (for undecided pixels: the highest Bel
    and the highest Pl of any class).
``conflict`` (float32)
    K, the mass the sources' (unnormalised) conjunctive combination puts on the empty set:
    how much they contradict each other, whatever the rule.
``ignorance`` (float32)
    Mass left on the whole frame after combination ("any class").
``confidence`` (float32)
    :data:`CONFIDENCE_DEFINITION`.
``agreement`` (uint8)
    1 every source gave the fused class, 3 only the first source did (it was kept),
    2 the second (or a later) source did, 0 none / undecided / no data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import odc.geo.xr  # noqa: F401  (registers .odc: grids are compared with their CRS)
import xarray as xr

from mus_lab.cube import check_same_grid
from mus_lab.errors import FusionError, LegendMismatchError
from mus_lab.fusion._blocks import map_planes
from mus_lab.fusion._engine import Decision, fuse_arrays
from mus_lab.fusion._frame import NODATA, UNDECIDED, Frame, MassFunction
from mus_lab.fusion._masses import frame_of
from mus_lab.fusion._rules import CombinationRule, Dempster

__all__ = ["AGREEMENT_CODES", "CONFIDENCE_DEFINITION", "combine_masses", "fuse_masses", "mass_cube"]

CONFIDENCE_DEFINITION = (
    "Confidence (0 to 1) is the share of all the sources' combined evidence that points to "
    "the mapped class and to nothing else: it is high only where the sources, weighted by "
    "their validated accuracy, agree on this class, and it drops where they contradict each "
    "other or hesitate."
)
AGREEMENT_CODES = {
    0: "no source gave the fused class (or undecided / no data)",
    1: "every source gave the fused class",
    2: "the second source's class was kept",
    3: "the first source's class was kept",
}
_OUT_DTYPES = {
    "fused_class": np.uint8,
    "belief": np.float32,
    "plausibility": np.float32,
    "conflict": np.float32,
    "ignorance": np.float32,
    "confidence": np.float32,
    "agreement": np.uint8,
}
_DESCRIPTIONS = {
    "fused_class": "Fused land-cover class (0 no data, 255 undecided)",
    "belief": "Belief of the fused class",
    "plausibility": "Plausibility of the fused class",
    "conflict": "Conflict K between the sources (conjunctive mass of the empty set)",
    "ignorance": "Mass left on the whole frame after combination",
    "confidence": CONFIDENCE_DEFINITION,
    "agreement": "; ".join(f"{k} {v}" for k, v in AGREEMENT_CODES.items()),
    "source_confidence": "IOTA² fused confidence: the kept source's own confidence (the higher "
    "when both agree), 0 when no source gave the fused class",
}


def describe_product(
    ds: xr.Dataset, frame: Frame, names: Sequence[str], rule: str, decision: str, **extra: str
) -> xr.Dataset:
    """Variable descriptions, nodata codes and the product's attributes (rule, decision,
    sources, frame, ``extra``, confidence definition), in place."""
    for var, da in ds.data_vars.items():
        da.attrs = {"description": _DESCRIPTIONS[str(var)]}
    ds["fused_class"].attrs.update(nodata=NODATA, undecided=UNDECIDED, classes=str(frame.legend))
    ds["agreement"].attrs.update(nodata=0)
    ds.attrs = {
        "rule": rule,
        "decision": decision,
        "sources": ", ".join(names),
        "frame": str(frame.legend),
        **extra,
        "confidence": CONFIDENCE_DEFINITION,
    }
    return ds


def check_grid(objs: Sequence[xr.DataArray], names: Sequence[str]) -> None:
    """:func:`mus_lab.cube.check_same_grid` for fusion inputs: maps without a CRS are compared
    by their size (in-memory arrays). Grids within 1e-6 of a pixel are one grid (fusion works
    on the arrays, the first source's coordinates label the result); a true mismatch is
    refused, never resampled: class maps and probabilities are resampled by their producer."""
    check_same_grid(*objs, names=names, require_crs=False)


def _names(n: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"source {i + 1}" for i in range(n)]
    if len(names) != n:
        raise FusionError(f"{len(names)} names for {n} sources: give one name per source.")
    return [str(v) for v in names]


def _same_frame(frames: Sequence[Frame], names: Sequence[str]) -> Frame:
    first = frames[0]
    for f, name in zip(frames[1:], names[1:], strict=True):
        if set(f.classes) != set(first.classes):
            only_a = sorted(set(first.classes) - set(f.classes))
            only_b = sorted(set(f.classes) - set(first.classes))
            raise LegendMismatchError(
                f"{names[0]} and {name} have different class legends ({only_a} only in "
                f"{names[0]}, {only_b} only in {name}): recode the maps to one legend, or "
                "reorder the confusion matrices onto the union (ConfusionMatrix.reorder)."
            )
        if f.classes != first.classes:
            raise LegendMismatchError(
                f"{names[0]} and {name} list the same classes in different orders: build "
                "their masses over one frame (same class order)."
            )
    return first


def mass_cube(m: MassFunction, like: xr.DataArray) -> xr.DataArray:
    """Wrap an in-memory :class:`MassFunction` (pixels shaped like ``like``) as a mass cube.

    Parameters
    ----------
    m
        Masses of shape ``(n_focal, ny, nx)``.
    like
        A map ``(y, x)`` whose grid coordinates the cube takes.

    Returns
    -------
    xarray.DataArray
        Dims ``("focal", "y", "x")``, float32, with the frame in its attributes: an input of
        :func:`~mus_lab.fusion.fuse`.

    Raises
    ------
    FusionError
        The masses do not have the map's shape.

    Example
    -------
    >>> from mus_lab.fusion import Frame, MassFunction, mass_cube
    >>> frame = Frame((1, 2))
    >>> m = MassFunction.from_dict(frame, {1: np.full((2, 2), 0.7), (1, 2): np.full((2, 2), 0.3)})
    >>> mass_cube(m, xr.DataArray(np.zeros((2, 2)), dims=("y", "x"))).sizes["focal"]
    2
    """
    if m.shape != (like.sizes["y"], like.sizes["x"]):
        raise FusionError(f"Masses of shape {m.shape} do not match the grid of {like.shape}.")
    coords = {k: v for k, v in like.coords.items() if set(v.dims) <= {"y", "x"}}
    out = xr.DataArray(
        m.values.astype(np.float32), dims=("focal", "y", "x"), coords=coords
    ).assign_coords(
        focal=np.array(m.focal, np.int64),
        focal_name=("focal", [m.frame.label(f) for f in m.focal]),
    )
    out.attrs = {"frame_classes": list(m.frame.classes), "frame_names": list(m.frame.names)}
    return out


def _prepare(
    masses: Sequence[xr.DataArray], names: Sequence[str]
) -> tuple[Frame, list[xr.DataArray], list[tuple[int, ...]]]:
    if len(masses) < 2:
        raise FusionError(f"Fusion needs two or more sources, got {len(masses)}.")
    for m, name in zip(masses, names, strict=True):
        if not isinstance(m, xr.DataArray) or "focal" not in m.dims:
            raise FusionError(
                f"{name} is not a mass cube (a DataArray with a 'focal' dim): build it with "
                "masses_from_labels or masses_from_probabilities."
            )
    check_grid(masses, names)
    frame = _same_frame([frame_of(m) for m in masses], names)
    focal = [tuple(int(v) for v in m["focal"].values) for m in masses]
    cubes = [m.transpose("focal", "y", "x") for m in masses]
    return frame, cubes, focal


def fuse_masses(
    masses: Sequence[xr.DataArray],
    names: Sequence[str],
    *,
    rule: CombinationRule,
    decision: Decision,
    labels: Sequence[xr.DataArray] | None = None,
) -> xr.Dataset:
    """Fuse two or more mass cubes into the ``landcover-fused`` product (lazy).

    ``masses`` are on one grid and legend, first source first; ``labels`` are each source's
    own class map for ``agreement`` (default: each source's own decision by the same
    criterion). What :func:`mus_lab.fusion.fuse` runs once the sources are masses.
    """
    frame, cubes, focal = _prepare(masses, names)
    rule.focal_sets(focal, frame.omega)  # early errors (e.g. pcr5 with three sources)
    n_src = len(cubes)
    if labels is not None:
        if len(labels) != n_src:
            raise FusionError(f"{len(labels)} label maps for {n_src} sources: one per source.")
        check_grid([cubes[0], *labels], [names[0], *(f"labels of {n}" for n in names)])
        label_args = list(labels)
    else:
        label_args = []

    def _block(mass: list[np.ndarray], labs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        shape = mass[0].shape[1:]
        n = int(np.prod(shape))
        flat = [np.ascontiguousarray(a).reshape(a.shape[0], n) for a in mass]
        lab = np.stack([np.asarray(v, dtype=np.uint8).reshape(n) for v in labs]) if labs else None
        out = fuse_arrays(flat, focal, frame, rule=rule, by=decision, labels=lab)
        return tuple(out[k].reshape(shape) for k in _OUT_DTYPES)

    results = map_planes(
        _block,
        cubes,
        label_args,
        [(dt, None) for dt in _OUT_DTYPES.values()],
        name="fuse",
        token=(focal, frame, repr(rule), decision),
    )
    ds = xr.Dataset(dict(zip(_OUT_DTYPES, results, strict=True)))
    extra = {"total_conflict": rule.total_conflict} if isinstance(rule, Dempster) else {}
    return describe_product(ds, frame, names, rule.name, decision, **extra)


def combine_masses(
    masses: Sequence[xr.DataArray], names: Sequence[str], *, rule: CombinationRule
) -> xr.DataArray:
    """The combined mass function itself, as a lazy mass cube (``focal`` = the rule's sets).

    Pixels where every source is NaN stay NaN; a source with NaN at a pixel counts as vacuous.
    """
    frame, cubes, focal = _prepare(masses, names)
    omega = frame.omega
    focal = [tuple(f) if omega in f else (*f, omega) for f in focal]
    out_f = tuple(rule.focal_sets(focal, omega))

    def _block(mass: list[np.ndarray], _: list[np.ndarray]) -> tuple[np.ndarray]:
        shape = mass[0].shape[1:]
        n = int(np.prod(shape))
        valid = np.zeros(n, bool)
        clean = []
        for a, f in zip(mass, focal, strict=True):
            a = a.reshape(a.shape[0], n).astype("float64")
            ok = ~np.isnan(a).any(axis=0)
            valid |= ok
            a = np.where(ok, a, 0.0)
            if a.shape[0] < len(f):  # the frame was added to this source's sets
                a = np.concatenate([a, np.zeros((1, n))])
            a[f.index(omega), ~ok] = 1.0
            clean.append(np.ascontiguousarray(a))
        m = rule.combine(clean, focal, omega)
        m[:, ~valid] = np.nan
        return (m.astype(np.float32).reshape(len(out_f), *shape),)

    (out,) = map_planes(
        _block,
        cubes,
        [],
        [(np.float32, len(out_f))],
        name="combine-masses",
        token=(focal, frame, repr(rule)),
    )
    out = out.assign_coords(
        focal=np.array(out_f, np.int64), focal_name=("focal", [frame.label(f) for f in out_f])
    )
    out.attrs = {
        "frame_classes": list(frame.classes),
        "frame_names": list(frame.names),
        "rule": rule.name,
        "sources": ", ".join(names),
    }
    return out
