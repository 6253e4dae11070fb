"""Does fusion help? Fused accuracy against each source's, and errors against conflict."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pandas as pd
import xarray as xr

from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError
from mus_lab.fusion._api import Extras, FusionSource, fuse_with_labels, legacy_options
from mus_lab.fusion._frame import UNDECIDED
from mus_lab.fusion._fuse import check_grid
from mus_lab.fusion._options import FusionOptions

__all__ = ["FusionEvaluation", "evaluate_fusion", "split_reference"]


@dataclass(frozen=True)
class FusionEvaluation:
    """Accuracy of a fusion and of its sources on the same reference pixels.

    Made by :func:`evaluate_fusion`; the attributes are its results.

    Parameters
    ----------
    overall_accuracy, kappa, confusion, n_pixels, undecided_share, conflict_split, error_rate_high_conflict, error_rate_low_conflict, n_high_conflict, n_low_conflict, by_conflict
        See Attributes.

    Raises
    ------
    None

    Attributes
    ----------
    overall_accuracy, kappa
        Per source name and ``"fused"``; undecided fused pixels count as errors in the overall
        accuracy (kappa is over decided pixels).
    confusion
        Confusion matrices (reference rows, map columns) per source and ``"fused"``.
    n_pixels
        Reference pixels evaluated.
    undecided_share
        Share of them the fusion left undecided.
    conflict_split
        Conflict above which a pixel counts as high-conflict.
    error_rate_high_conflict, error_rate_low_conflict
        Fused error rate (1 - accuracy) on pixels with conflict above / at or below the split.
    by_conflict
        Fused error rate per conflict quantile bin.
    """

    overall_accuracy: dict[str, float]
    kappa: dict[str, float]
    confusion: dict[str, ConfusionMatrix]
    n_pixels: int
    undecided_share: float
    conflict_split: float
    error_rate_high_conflict: float
    error_rate_low_conflict: float
    n_high_conflict: int
    n_low_conflict: int
    by_conflict: pd.DataFrame = field(repr=False)

    @property
    def sources(self) -> list[str]:
        return [k for k in self.overall_accuracy if k != "fused"]

    @property
    def best_source(self) -> str:
        return max(self.sources, key=lambda k: self.overall_accuracy[k])

    @property
    def gain(self) -> float:
        """Fused overall accuracy minus the best source's (fraction; x100 for points)."""
        return self.overall_accuracy["fused"] - self.overall_accuracy[self.best_source]

    def table(self) -> pd.DataFrame:
        """One row per map (sources, then fused): overall accuracy and kappa.

        Returns
        -------
        pandas.DataFrame
        """
        return pd.DataFrame(
            {
                "overall_accuracy": pd.Series(self.overall_accuracy),
                "kappa": pd.Series(self.kappa),
            }
        )

    def summary(self) -> str:
        """One paragraph: accuracies, gain over the best source, undecided share, conflict.

        Returns
        -------
        str
        """
        oa = ", ".join(f"{k} {v:.3f}" for k, v in self.overall_accuracy.items())
        return (
            f"{self.n_pixels} reference pixels; overall accuracy: {oa}; fused minus best source "
            f"({self.best_source}): {100 * self.gain:+.2f} points; undecided "
            f"{100 * self.undecided_share:.2f} %; fused error rate {self.error_rate_high_conflict:.3f} "
            f"where conflict > {self.conflict_split:.3f} ({self.n_high_conflict} px) vs "
            f"{self.error_rate_low_conflict:.3f} elsewhere ({self.n_low_conflict} px)"
        )


def evaluate_fusion(
    sources: Mapping[str, FusionSource] | Sequence[FusionSource],
    confusions: Mapping[str, ConfusionMatrix | None] | Sequence[ConfusionMatrix | None] | None,
    reference: xr.DataArray,
    *,
    options: FusionOptions | None = None,
    conflict_split: float | None = None,
    conflict_bins: int = 5,
    **deprecated: Any,
) -> FusionEvaluation:
    """Fuse the sources and score the result and each source against a reference.

    Parameters
    ----------
    sources
        What :func:`~mus_lab.fusion.fuse` takes (label maps, probability cubes, land-cover
        products; a list or a ``{name: source}`` mapping), first source first.
    confusions
        Each source's confusion matrix, from validation pixels that are NOT in ``reference``
        (``None``: the products' own).
    reference
        Reference class codes on the same grid, 0 outside the held-out pixels / polygons.
    options
        The fusion's :class:`~mus_lab.fusion.FusionOptions` (``decision`` defaults to
        ``"otb"`` for label maps, ``"bel"`` otherwise).
    conflict_split
        Conflict above which a pixel counts as high-conflict (default: the median conflict of
        the reference pixels).
    conflict_bins
        Number of conflict quantile bins in ``by_conflict``.
    **deprecated
        The old keywords ``rule``, ``decision``, ``mob``, ``reliability``,
        ``compound_threshold`` and ``names`` (a :class:`DeprecationWarning`).

    Returns
    -------
    FusionEvaluation

    Raises
    ------
    FusionError
        No reference pixel, or mass cubes (no class map of their own to score).
    GridMismatchError
        The reference is not on the sources' grid.

    Example
    -------
    >>> from mus_lab.classify import ConfusionMatrix
    >>> from mus_lab.fusion import evaluate_fusion
    >>> cm = ConfusionMatrix((1, 2), np.array([[8, 2], [1, 9]]))
    >>> a = xr.DataArray(np.array([[1, 2, 2, 1]], np.uint8), dims=("y", "x"))
    >>> b = xr.DataArray(np.array([[1, 1, 2, 2]], np.uint8), dims=("y", "x"))
    >>> ev = evaluate_fusion({"optical": a, "radar": b}, [cm, cm], a.copy(data=[[1, 2, 2, 2]]))
    >>> ev.overall_accuracy
    {'optical': 0.75, 'radar': 0.75, 'fused': 0.5}
    """
    if deprecated:
        sources, options = legacy_options(
            "evaluate_fusion", sources, options, deprecated, allowed=_OLD_KEYWORDS
        )
    fused, own = fuse_with_labels(sources, options, Extras(confusions=confusions))
    if not own:
        raise FusionError(
            "Mass cubes carry no class map of their own to score: evaluate label maps or "
            "probability cubes."
        )
    src_names = list(own)
    check_grid([*own.values(), reference], [*src_names, "reference"])
    ref, fc, kk, *maps = dask.compute(
        reference.values if reference.chunks is None else reference.data,
        fused["fused_class"].data,
        fused["conflict"].data,
        *[o.data for o in own.values()],
    )
    ref = np.asarray(ref).astype(np.int64)
    at = ref > 0
    n = int(at.sum())
    if n == 0:
        raise FusionError(
            "The reference holds no class code (> 0): give the held-out reference pixels."
        )
    r = ref[at]
    legend = tuple(int(c) for c in ast.literal_eval(fused.fused_class.attrs["classes"]))
    oa: dict[str, float] = {}
    kappa: dict[str, float] = {}
    cms: dict[str, ConfusionMatrix] = {}
    for name, m in zip([*src_names, "fused"], [*maps, fc], strict=True):
        v = np.asarray(m).astype(np.int64)[at]
        oa[name] = float(np.mean(v == r))
        ok = np.isin(v, legend) & np.isin(r, legend)
        cm = ConfusionMatrix.from_labels(r[ok], v[ok], labels=legend)
        cms[name] = cm
        kappa[name] = cm.kappa
    f = np.asarray(fc)[at]
    k = np.asarray(kk, dtype="float64")[at]
    wrong = f.astype(np.int64) != r
    split = float(np.nanmedian(k)) if conflict_split is None else float(conflict_split)
    high = k > split
    low = ~high & np.isfinite(k)
    bins = pd.qcut(pd.Series(k), q=conflict_bins, duplicates="drop")
    by = (
        pd.DataFrame({"conflict": bins, "error": wrong})
        .groupby("conflict", observed=True)["error"]
        .agg(["size", "mean"])
        .rename(columns={"size": "pixels", "mean": "error_rate"})
    )
    return FusionEvaluation(
        overall_accuracy=oa,
        kappa=kappa,
        confusion=cms,
        n_pixels=n,
        undecided_share=float(np.mean(f == UNDECIDED)),
        conflict_split=split,
        error_rate_high_conflict=float(wrong[high].mean()) if high.any() else float("nan"),
        error_rate_low_conflict=float(wrong[low].mean()) if low.any() else float("nan"),
        n_high_conflict=int(high.sum()),
        n_low_conflict=int(low.sum()),
        by_conflict=by,
    )


_OLD_KEYWORDS = ("rule", "decision", "mob", "reliability", "compound_threshold", "names")


def split_reference(
    polygons: Any,
    truth: xr.DataArray,
    *,
    field: str = "code",
    id_field: str = "poly_id",
    layer: str | None = "reference",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Split reference polygons by polygon (never by pixel): even ids held out, odd ids kept.

    Parameters
    ----------
    polygons
        GeoDataFrame or path of a vector file (e.g. ``Scenario.polygons``), in the grid's CRS.
    truth
        A map on the target grid (for its shape, transform and coordinates).
    field, id_field, layer
        Class-code and polygon-id columns; layer of a GeoPackage.

    Returns
    -------
    (validation, held_out)
        Two uint8 maps of class codes (0 elsewhere): pixels of odd-id polygons (to build the
        confusion matrices) and of even-id polygons (to evaluate on).

    Raises
    ------
    FusionError
        No polygon.

    Example
    -------
    >>> from mus_lab.fusion import open_map, split_reference
    >>> odd, even = split_reference(tiny.polygons, open_map(tiny.landcover))
    >>> bool(((odd > 0) & (even > 0)).any())
    False
    """
    import geopandas as gpd
    from rasterio import features

    gdf = (
        polygons if isinstance(polygons, gpd.GeoDataFrame) else gpd.read_file(polygons, layer=layer)
    )
    if gdf.empty:
        raise FusionError("No reference polygon: give a non-empty polygon layer.")
    gbox = truth.odc.geobox
    shape = (truth.sizes["y"], truth.sizes["x"])
    rasters = []
    for keep in (1, 0):
        sub = gdf[gdf[id_field].astype(int) % 2 == keep]
        rasters.append(
            features.rasterize(
                zip(sub.geometry, sub[field].astype(int), strict=True),
                out_shape=shape,
                transform=gbox.affine,
                fill=0,
                dtype="uint8",
            )
            if len(sub)
            else np.zeros(shape, np.uint8)
        )
    coords = {k: v for k, v in truth.coords.items() if set(v.dims) <= {"y", "x"}}
    validation, held_out = (xr.DataArray(r, dims=("y", "x"), coords=coords) for r in rasters)
    return validation, held_out
