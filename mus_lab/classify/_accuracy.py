"""Accuracy assessment: OA, kappa, per-class precision/recall/F1, the confusion matrix in
IOTA²'s CSV layout, and area-adjusted accuracy and class areas (Olofsson et al. 2014).

The good-practice estimator treats the map classes as strata: with map area weights
``W_i = A_i / A`` and sample counts ``n_ij`` (map class i, reference class j), the estimated
area proportions are ``p_ij = W_i n_ij / n_i.``; the class areas ``A p_.j`` and the overall,
user's and producer's accuracies follow, with standard errors from Olofsson et al. (2014)
equations 5, 7 and 10-11 (and Olofsson et al. 2013 for the producer's accuracy) and 95 %
intervals of +/- 1.96 SE.

Honesty note: the estimator assumes a (stratified) random sample. Pixels of validation
*polygons* are clustered and were not drawn at random, so these intervals are optimistic; they
are reported because users of IOTA²-style maps ask for area estimates, not as a substitute for a
probability sample.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from mus_lab._io import atomic_path, write_json
from mus_lab.classify._samples import PolygonsLike, Samples, extract_samples
from mus_lab.cube import pixel_area_m2
from mus_lab.errors import ConfusionMatrixError, SamplesError
from mus_lab.publish import ConfusionMatrix

__all__ = ["AccuracyReport", "AreaEstimate", "area_adjusted", "assess", "map_class_pixels"]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class AreaEstimate:
    """Area-adjusted accuracy and class areas with 95 % confidence intervals.

    Attributes
    ----------
    table
        One row per class: ``map_area``, ``area``, ``area_ci``, ``users``, ``users_ci``,
        ``producers``, ``producers_ci`` (areas in the unit of the map areas given).
    overall, overall_ci
        Area-weighted overall accuracy and its 95 % half-width.
    """

    table: pd.DataFrame
    overall: float
    overall_ci: float


def area_adjusted(
    confusion: ConfusionMatrix,
    map_areas: Mapping[int, float],
    *,
    z: float = Z95,
) -> AreaEstimate:
    """Olofsson et al. (2014) stratified estimator from a sample confusion matrix.

    Parameters
    ----------
    confusion
        Sample counts, rows = reference, columns = produced (map), as IOTA² writes them.
    map_areas
        Mapped area (or pixel count) of each class code; classes absent count as 0.
    z
        Normal quantile of the interval (1.96 for 95 %).

    Returns
    -------
    AreaEstimate

    Raises
    ------
    ConfusionMatrixError
        A class with mapped area has no sample (its stratum cannot be estimated).
    """
    labels = list(confusion.labels)
    n = confusion.counts.T  # rows = map class (stratum), columns = reference
    area = np.array([float(map_areas.get(c, 0.0)) for c in labels])
    total = area.sum()
    if total <= 0:
        raise ConfusionMatrixError("The map areas sum to zero: give the mapped area of each class.")
    w = area / total
    n_i = n.sum(axis=1)
    missing = [c for c, a, k in zip(labels, area, n_i, strict=True) if a > 0 and k == 0]
    if missing:
        raise ConfusionMatrixError(
            f"Map classes {missing} have area but no validation sample: the stratified estimator "
            "needs samples in every mapped class (add validation polygons or merge the class)."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n_i[:, None] > 0, n / n_i[:, None], 0.0)  # n_ij / n_i.
        p = w[:, None] * frac
        p_ref = p.sum(axis=0)  # p_.j, estimated proportion of reference class j
        users = np.where(n_i > 0, np.diag(frac), np.nan)
        producers = np.where(p_ref > 0, np.diag(p) / p_ref, np.nan)
        dof = np.where(n_i > 1, n_i - 1, np.nan)
        term = np.where(n_i[:, None] > 1, frac * (1 - frac) / dof[:, None], 0.0)
        se_p = np.sqrt((w[:, None] ** 2 * term).sum(axis=0))
        overall = float(np.trace(p))
        se_overall = float(np.sqrt(np.nansum(w**2 * users * (1 - users) / dof)))
        se_users = np.sqrt(users * (1 - users) / dof)
        # Producer's accuracy (Olofsson et al. 2014, eq. 7 with estimated N_.j).
        big_n = area  # N_i. (map totals); only ratios matter, so areas work as well as counts
        n_ref = (big_n[:, None] * frac).sum(axis=0)  # estimated N_.j
        se_prod = np.empty(len(labels))
        for j in range(len(labels)):
            first = big_n[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / dof[j]
            others = sum(
                big_n[i] ** 2 * frac[i, j] * (1 - frac[i, j]) / dof[i]
                for i in range(len(labels))
                if i != j and n_i[i] > 1
            )
            se_prod[j] = np.sqrt((first + producers[j] ** 2 * others) / n_ref[j] ** 2)
    table = pd.DataFrame(
        {
            "code": labels,
            "map_area": area,
            "area": p_ref * total,
            "area_ci": z * se_p * total,
            "users": users,
            "users_ci": z * se_users,
            "producers": producers,
            "producers_ci": z * se_prod,
        }
    ).set_index("code")
    return AreaEstimate(table, overall, z * se_overall)


@dataclass(frozen=True)
class AccuracyReport:
    """Accuracy of a map against reference samples.

    Attributes
    ----------
    confusion
        Rows = reference, columns = produced (IOTA²'s layout).
    class_names
        Name per class code.
    per_class
        ``name``, ``precision`` (user's), ``recall`` (producer's), ``f1``, ``reference`` and
        ``produced`` sample counts per class code.
    overall_accuracy, kappa, macro_f1
        Summary figures.
    areas
        Area-adjusted estimate (hectares), when the map's class areas were given.
    info
        Counts of samples and polygons, unmapped pixels skipped.
    """

    confusion: ConfusionMatrix
    class_names: Mapping[int, str]
    per_class: pd.DataFrame
    overall_accuracy: float
    kappa: float
    macro_f1: float
    areas: AreaEstimate | None = None
    info: Mapping[str, Any] | None = None

    @classmethod
    def from_confusion(
        cls,
        confusion: ConfusionMatrix,
        class_names: Mapping[int, str] | None = None,
        *,
        map_areas: Mapping[int, float] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> AccuracyReport:
        """Metrics of a confusion matrix (and area-adjusted figures if ``map_areas``).

        Parameters
        ----------
        confusion
            Sample counts, rows = reference, columns = produced.
        class_names
            Name per class code (default: the code).
        map_areas
            Mapped area of each class (hectares): adds :func:`area_adjusted` estimates.
        info
            Counts to carry along (samples, polygons...).

        Returns
        -------
        AccuracyReport

        Raises
        ------
        ConfusionMatrixError
            ``map_areas`` given but a mapped class has no sample (see :func:`area_adjusted`).

        Examples
        --------
        >>> from mus_lab.publish import ConfusionMatrix
        >>> cm = ConfusionMatrix.from_labels(np.array([1, 1, 2, 2]), np.array([1, 2, 2, 2]))
        >>> rep = AccuracyReport.from_confusion(cm, {1: "crop", 2: "forest"})
        >>> rep.overall_accuracy, float(rep.per_class.loc[2, "recall"])
        (0.75, 1.0)
        """
        names = {c: (class_names or {}).get(c, str(c)) for c in confusion.labels}
        per = pd.DataFrame(
            {
                "name": [names[c] for c in confusion.labels],
                "precision": confusion.precision,
                "recall": confusion.recall,
                "f1": confusion.f1,
                "reference": confusion.counts.sum(axis=1).astype("int64"),
                "produced": confusion.counts.sum(axis=0).astype("int64"),
            },
            index=pd.Index(confusion.labels, name="code"),
        )
        present = per["reference"] > 0
        macro = float(per.loc[present, "f1"].mean()) if present.any() else float("nan")
        areas = area_adjusted(confusion, map_areas) if map_areas is not None else None
        return cls(
            confusion,
            names,
            per,
            confusion.overall_accuracy,
            confusion.kappa,
            macro,
            areas,
            dict(info or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (for STAC properties, model reports, notebooks).

        Returns
        -------
        dict
            ``overall_accuracy``, ``kappa``, ``macro_f1`` (rounded to 6 digits),
            ``per_class`` (by code as a string), ``confusion`` (``labels`` and ``counts``,
            rows = reference), ``info`` and, with areas, ``area_adjusted`` (hectares).
        """
        out: dict[str, Any] = {
            "overall_accuracy": round(self.overall_accuracy, 6),
            "kappa": round(self.kappa, 6),
            "macro_f1": round(self.macro_f1, 6),
            "per_class": {
                str(c): {k: (round(float(v), 6) if k != "name" else v) for k, v in row.items()}
                for c, row in self.per_class.iterrows()
            },
            "confusion": {
                "labels": list(self.confusion.labels),
                "counts": self.confusion.counts.astype("int64").tolist(),
            },
            "info": dict(self.info or {}),
        }
        if self.areas is not None:
            out["area_adjusted"] = {
                "overall_accuracy": round(self.areas.overall, 6),
                "overall_accuracy_ci95": round(self.areas.overall_ci, 6),
                "classes_ha": {
                    str(c): {k: round(float(v), 4) for k, v in row.items()}
                    for c, row in self.areas.table.iterrows()
                },
            }
        return out

    def summary(self) -> str:
        """A few lines for people: OA, kappa, macro-F1, then P/R/F1 per class.

        Returns
        -------
        str
            One line of figures, one line per class, and the area-adjusted OA when known.
        """
        lines = [
            f"OA {self.overall_accuracy:.3f}, kappa {self.kappa:.3f}, macro-F1 {self.macro_f1:.3f} "
            f"on {int(self.confusion.total)} samples",
        ]
        for c, row in self.per_class.iterrows():
            lines.append(
                f"  {c:>3} {row['name']:<20} P {row['precision']:.2f} R {row['recall']:.2f} "
                f"F1 {row['f1']:.2f} (n={row['reference']})"
            )
        if self.areas is not None:
            lines.append(
                f"Area-adjusted OA {self.areas.overall:.3f} +/- {self.areas.overall_ci:.3f} (95 %)"
            )
        return "\n".join(lines)

    def save(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the report's files into a folder, each atomically.

        Parameters
        ----------
        folder
            Created if needed; files of the same names are replaced.

        Returns
        -------
        dict of str to pathlib.Path
            ``confusion`` (``confusion.csv``, IOTA²'s layout), ``per_class``
            (``per_class.csv``), ``areas`` (``areas.csv``, only with area estimates) and
            ``report`` (``report.json``, :meth:`to_dict`).
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"confusion": self.confusion.to_csv(out / "confusion.csv")}
        with atomic_path(out / "per_class.csv") as tmp:
            self.per_class.to_csv(tmp)
        paths["per_class"] = out / "per_class.csv"
        if self.areas is not None:
            with atomic_path(out / "areas.csv") as tmp:
                self.areas.table.assign(
                    name=[self.class_names.get(int(c), str(c)) for c in self.areas.table.index]
                ).to_csv(tmp)
            paths["areas"] = out / "areas.csv"
        paths["report"] = write_json(self.to_dict(), out / "report.json")
        return paths


def map_class_pixels(classification: xr.DataArray) -> dict[int, int]:
    """Pixels per class code of a class map, 0 (no data) left out; one pass over the chunks.

    Parameters
    ----------
    classification
        Class codes 0-255 (uint8 map from :func:`predict`), lazy or in memory.

    Returns
    -------
    dict of int to int
        Pixel count per code present (computed now).

    Examples
    --------
    >>> map_class_pixels(xr.DataArray(np.array([[0, 1, 1], [4, 4, 4]], dtype="uint8")))
    {1: 2, 4: 3}
    """
    data = classification.data
    flat = data.ravel().astype("int64") if isinstance(data, dsa.Array) else None
    if flat is not None:
        counts = np.asarray(dsa.bincount(flat, minlength=256).compute())
    else:
        counts = np.bincount(np.asarray(data).ravel().astype("int64"), minlength=256)
    return {int(c): int(v) for c, v in enumerate(counts) if c > 0 and v > 0}


def assess(
    classification: xr.DataArray,
    reference: Samples | PolygonsLike,
    *,
    label: str = "code",
    layer: str | None = None,
    polygon_ids: Sequence[Any] | None = None,
    id_field: str | None = "poly_id",
    classes: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    area_adjusted_estimate: bool = True,
) -> AccuracyReport:
    """Accuracy of a class map against validation samples or polygons.

    Parameters
    ----------
    classification
        uint8 class map (0 = no data) on a grid, lazy or not.
    reference
        Validation :class:`Samples` (their pixels are read from the map) or polygons
        (vector file / GeoDataFrame) rasterised on the map's grid.
    label, layer, id_field
        Reading polygons (see :func:`extract_samples`).
    polygon_ids
        Keep only these polygons (e.g. a model's validation polygons).
    classes
        Legend of the confusion matrix (default: every reference and mapped class).
    class_names
        Names per code (default: from the samples or polygons).
    area_adjusted_estimate
        Also estimate class areas and area-weighted accuracies (Olofsson et al. 2014) from
        the map's class areas.

    Returns
    -------
    AccuracyReport

    Raises
    ------
    SamplesError
        No reference pixel falls on a mapped (non-zero) pixel.
    """
    if isinstance(reference, Samples):
        rows, cols, y = reference.row, reference.col, reference.y
        polys = reference.polygon
        names = dict(reference.class_names)
        produced = np.asarray(
            classification.isel(
                y=xr.DataArray(rows, dims="s"), x=xr.DataArray(cols, dims="s")
            ).values
        )
    else:
        as_features = classification.astype("float32").expand_dims(feature=["map_00000000"])
        smp = extract_samples(
            as_features, reference, label=label, layer=layer, id_field=id_field, classes=classes
        )
        y, polys, names = smp.y, smp.polygon, dict(smp.class_names)
        produced = smp.X[:, 0].astype("int64")
    if polygon_ids is not None:
        keep = np.isin(polys, np.asarray(list(polygon_ids)))
        y, polys, produced = y[keep], polys[keep], produced[keep]
    names.update({int(k): v for k, v in (class_names or {}).items()})
    mapped = produced > 0
    if not mapped.any():
        raise SamplesError(
            "No validation pixel falls on a mapped pixel (all no data or no polygon kept): "
            "check the map, the polygons and polygon_ids."
        )
    y_m, p_m = y[mapped].astype("int64"), produced[mapped].astype("int64")
    labels = (
        sorted({int(c) for c in classes})
        if classes is not None
        else sorted(set(np.unique(y_m).tolist()) | set(np.unique(p_m).tolist()))
    )
    keep = np.isin(y_m, labels)
    cm = ConfusionMatrix.from_labels(y_m[keep], p_m[keep], labels=labels)
    info: dict[str, Any] = {
        "samples": int(keep.sum()),
        "polygons": int(np.unique(polys[mapped]).size),
        "unmapped_samples": int((~mapped).sum()),
    }
    areas = None
    if area_adjusted_estimate:
        pixel_ha = pixel_area_m2(classification) / 10_000.0  # at the centre latitude in degrees
        pixels = map_class_pixels(classification)
        areas = {c: pixels.get(c, 0) * pixel_ha for c in labels}
        extra = sorted(set(pixels) - set(labels))
        if extra:
            info["map_classes_without_reference"] = extra
        try:
            area_adjusted(cm, areas)
        except ConfusionMatrixError as exc:
            info["area_adjusted"] = f"not estimated: {exc}"
            areas = None
    return AccuracyReport.from_confusion(cm, names, map_areas=areas, info=info)
