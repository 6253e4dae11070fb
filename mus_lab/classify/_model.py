"""A trained land-cover model: classifier(s) plus the metadata that makes it safe to reuse.

:func:`train` splits samples by polygon, optionally balances them, fits one classifier (or
one per region, IOTA²'s eco-region stratification), measures it on the held-out polygons and
returns a :class:`LandCoverModel`. The model is saved as a folder (``metadata.json`` plus one
sub-folder per region's classifier), written atomically, and refuses features whose names or
order differ from training (:class:`~mus_lab.errors.FeatureMismatchError`).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mus_lab._io import atomic_folder
from mus_lab.classify._accuracy import AccuracyReport
from mus_lab.classify._features import parse_feature_names
from mus_lab.classify._models import (
    Classifier,
    classifier_class,
    kind_of,
    make_classifier,
    seed_parameter,
)
from mus_lab.classify._samples import Samples, balance, split_by_polygon
from mus_lab.errors import FeatureMismatchError, ModelError, SamplesError
from mus_lab.publish import ConfusionMatrix

__all__ = ["LandCoverModel", "ModelMetadata", "ensemble", "evaluate_seeds", "load_model", "train"]

_VERSIONED = (
    "mus_lab",
    "numpy",
    "scikit-learn",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "xarray",
    "dask",
)


def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class ModelMetadata:
    """What a saved model knows about its training.

    Attributes
    ----------
    kind
        Classifier kind (``"rf"``, ``"tempcnn"`` or a plug-in's ``"module:Class"``).
    params
        Classifier parameters.
    classes, class_names
        Class codes (column order of the probabilities) and their names.
    features
        Feature names in the order the model expects them.
    variables, dates
        The variables and dates (``YYYYMMDD``) the features are made of.
    crs, resolution
        Grid of the training cube.
    regions
        Region codes with their own classifier (``(0,)`` for one model over the whole area).
    report
        Training report: samples per class, split, validation accuracy, timings.
    recipe
        How the features were built (sensors, date grid...), so that ``predict`` can rebuild them.
    versions
        Library versions at training time.
    created, uid
        Creation time (UTC, ISO) and a unique id.
    """

    kind: str
    params: Mapping[str, Any]
    classes: tuple[int, ...]
    class_names: Mapping[int, str]
    features: tuple[str, ...]
    variables: tuple[str, ...]
    dates: tuple[str, ...]
    crs: str
    resolution: tuple[float, float]
    regions: tuple[int, ...] = (0,)
    report: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    uid: str = ""

    def to_json(self) -> dict[str, Any]:
        """The metadata as JSON values (class codes become string keys).

        Returns
        -------
        dict
            What ``metadata.json`` holds; :meth:`from_json` reads it back.
        """
        doc = asdict(self)
        doc["class_names"] = {str(k): v for k, v in self.class_names.items()}
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelMetadata:
        """Metadata from what :meth:`to_json` wrote (codes back to integers, lists to tuples).

        Parameters
        ----------
        doc
            The parsed ``metadata.json``.

        Returns
        -------
        ModelMetadata
        """
        d = dict(doc)
        d["classes"] = tuple(int(c) for c in d["classes"])
        d["class_names"] = {int(k): v for k, v in d["class_names"].items()}
        d["features"] = tuple(d["features"])
        d["variables"] = tuple(d["variables"])
        d["dates"] = tuple(d["dates"])
        d["resolution"] = tuple(d["resolution"])
        d["regions"] = tuple(int(r) for r in d["regions"])
        return cls(**d)


class LandCoverModel:
    """Trained classifier(s) with metadata; apply with :func:`mus_lab.classify.predict`.

    Parameters
    ----------
    estimators
        Trained classifier per region code (``{0: clf}`` for a single model).
    metadata
        See :class:`ModelMetadata`.
    """

    def __init__(self, estimators: Mapping[int, Classifier], metadata: ModelMetadata) -> None:
        self.estimators = dict(estimators)
        self.metadata = metadata

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"LandCoverModel({m.kind}, {len(m.classes)} classes, {len(m.features)} features, "
            f"regions {list(m.regions)})"
        )

    @property
    def classes(self) -> tuple[int, ...]:
        """Class codes, in the column order of :meth:`predict_proba`."""
        return self.metadata.classes

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names in the order the model expects them."""
        return self.metadata.features

    @property
    def regional(self) -> bool:
        """Whether the model has one classifier per region."""
        return self.metadata.regions != (0,)

    @property
    def validation(self) -> AccuracyReport | None:
        """The accuracy on the held-out polygons measured at training time."""
        doc = self.metadata.report.get("validation")
        if not doc:
            return None
        cm = ConfusionMatrix(
            tuple(doc["confusion"]["labels"]), np.array(doc["confusion"]["counts"])
        )
        return AccuracyReport.from_confusion(cm, self.metadata.class_names)

    def check_features(self, features: xr.DataArray | Sequence[str]) -> None:
        """Check that features are exactly the training ones, in the same order.

        Parameters
        ----------
        features
            A feature cube (``feature`` coordinate; its pixel size is checked too, within
            1 %) or the feature names.

        Raises
        ------
        FeatureMismatchError
            Names missing, unexpected or in another order, or another pixel size; the
            message names the differences and the model's recipe.
        """
        names = (
            [str(v) for v in features["feature"].values]
            if isinstance(features, xr.DataArray)
            else [str(v) for v in features]
        )
        want = list(self.metadata.features)
        if names != want:
            missing = [f for f in want if f not in set(names)]
            extra = [f for f in names if f not in set(want)]
            what = (
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} ({len(missing)}), "
                f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''} ({len(extra)})"
                if missing or extra
                else "the same names in another order"
            )
            raise FeatureMismatchError(
                f"The cube's {len(names)} features do not match the {len(want)} this model was "
                f"trained on: {what}. Build the features with the model's recipe "
                f"({dict(self.metadata.recipe) or 'same variables and dates'}), or retrain."
            )
        if isinstance(features, xr.DataArray):
            from mus_lab.cube import geobox_of

            res = geobox_of(features).resolution
            got = (abs(float(res.x)), abs(float(res.y)))
            if not np.allclose(got, self.metadata.resolution, rtol=0.01):
                raise FeatureMismatchError(
                    f"The cube's pixels are {got} but the model was trained at "
                    f"{tuple(self.metadata.resolution)}: load the cube at that resolution or retrain."
                )

    def predict_proba(self, X: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of feature vectors, from each region's classifier.

        Parameters
        ----------
        X
            ``(n, n_features)`` feature vectors in the order of :attr:`features`.
        region
            ``(n,)`` region code per sample; required by a per-region model, ignored
            otherwise.

        Returns
        -------
        numpy.ndarray
            float32 ``(n, len(classes))`` in :attr:`classes` order (a regional classifier
            that never saw a class gives it 0); NaN rows for samples of a region without a
            classifier.

        Raises
        ------
        ModelError
            A per-region model without ``region``.
        """
        classes = np.asarray(self.classes)
        out = np.zeros((X.shape[0], classes.size), dtype="float32")
        if not self.regional:
            parts = [(np.arange(X.shape[0]), self.estimators[0])]
        else:
            if region is None:
                raise ModelError("This model has one classifier per region: give the region map.")
            out[:] = np.nan
            parts = [(np.flatnonzero(region == r), est) for r, est in self.estimators.items()]
        for idx, est in parts:
            if idx.size == 0:
                continue
            proba = est.predict_proba(X[idx])
            cols = np.searchsorted(classes, np.asarray(est.classes_))
            block = np.zeros((idx.size, classes.size), dtype="float32")
            block[:, cols] = proba
            out[idx] = block
        return out

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Save into folder ``path`` atomically (built beside it, then renamed).

        Parameters
        ----------
        path
            Folder to create: ``metadata.json`` plus one ``region_<code>`` sub-folder per
            classifier.
        overwrite
            Replace an existing folder.

        Returns
        -------
        pathlib.Path
            ``path``; :func:`load_model` reads it.

        Raises
        ------
        ModelError
            ``path`` exists and ``overwrite`` is False.
        """
        dest = Path(path)
        if dest.exists() and not overwrite:
            raise ModelError(f"{dest} exists: pass overwrite=True or choose another folder.")
        with atomic_folder(dest) as tmp:
            for region, est in self.estimators.items():
                est.save(tmp / f"region_{region}")
            (tmp / "metadata.json").write_text(
                json.dumps(self.metadata.to_json(), indent=2, default=str)
            )
        return dest


def load_model(path: str | os.PathLike[str]) -> LandCoverModel:
    """Load a model saved by :meth:`LandCoverModel.save`.

    Parameters
    ----------
    path
        The model folder (holding ``metadata.json``).

    Returns
    -------
    LandCoverModel
        Ready for :func:`predict`; a plug-in classifier's module must be importable.

    Raises
    ------
    ModelError
        No model there, or its classifier cannot be loaded.
    """
    folder = Path(path)
    meta_path = folder / "metadata.json"
    if not meta_path.exists():
        raise ModelError(
            f"No land-cover model at {folder} (metadata.json missing): check the path."
        )
    try:
        meta = ModelMetadata.from_json(json.loads(meta_path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{meta_path} is not a mus_lab model description: {exc}") from exc
    cls = classifier_class(meta.kind, meta.params.get("_class"))
    try:
        estimators = {r: cls.load(folder / f"region_{r}") for r in meta.regions}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Cannot load the {meta.kind} classifier from {folder}: {exc}") from exc
    return LandCoverModel(estimators, meta)


def train(
    samples: Samples,
    model: str | Classifier = "rf",
    *,
    params: Mapping[str, Any] | None = None,
    train_ratio: float = 0.5,
    seed: int = 0,
    validation: Samples | None = None,
    by_region: bool = False,
    max_per_class: int | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> LandCoverModel:
    """Train a land-cover model on polygons and measure it on other polygons.

    Parameters
    ----------
    samples
        Samples from :func:`extract_samples`.
    model
        ``"rf"`` (:class:`RandomForest`), ``"tempcnn"`` (:class:`TempCNN`), ``"ltae"``
        (:class:`LTAE`), ``"ensemble"`` (:class:`Ensemble`: soft vote of members trained on
        the same samples) or any :class:`Classifier` instance (copied before training).
    params
        Parameters of a named model (e.g. ``{"n_estimators": 100}``, ``{"epochs": 20}``);
        ``random_state``/``seed`` default to ``seed``.
    train_ratio, seed
        Split by polygon (:func:`split_by_polygon`), unless ``validation`` is given.
    validation
        Separate validation samples; then every sample in ``samples`` trains.
    by_region
        One classifier per region (the samples' ``region``), IOTA²'s eco-region stratification.
    max_per_class
        Balance the training pixels: at most this many per class (and region).
    recipe
        How the features were made (stored so that prediction can rebuild them); default:
        what the samples' feature cube recorded (``samples.recipe``).

    Returns
    -------
    LandCoverModel
        With ``metadata.report`` holding sample counts and validation accuracy.

    Raises
    ------
    SamplesError
        A region has no training sample, or the validation features differ.
    ModelError
        Unknown model or parameters.
    """
    if validation is None:
        fit_set, val_set = split_by_polygon(samples, train_ratio=train_ratio, seed=seed)
    else:
        if validation.features != samples.features:
            raise SamplesError("Validation samples have other features than the training samples.")
        fit_set, val_set = samples, validation
    if max_per_class is not None:
        fit_set = balance(fit_set, max_per_class=max_per_class, seed=seed)
    kw = dict(params or {})
    if isinstance(model, str):
        seed_key = seed_parameter(model)
        if seed_key:
            kw.setdefault(seed_key, seed)
    regions = sorted(int(r) for r in np.unique(fit_set.region)) if by_region else [0]
    estimators: dict[int, Classifier] = {}
    t0 = time.perf_counter()
    for r in regions:
        part = fit_set.subset(fit_set.region == r) if by_region else fit_set
        if len(part) == 0:
            raise SamplesError(f"Region {r} has no training sample: drop it or add polygons.")
        est = make_classifier(model, kw)
        est.fit(part.X, part.y, groups=part.polygon, feature_names=samples.features)
        estimators[r] = est
    fit_s = time.perf_counter() - t0
    first = estimators[regions[0]]
    kind = kind_of(first)
    est_params = dict(first.get_params())
    if ":" in kind:
        est_params["_class"] = kind
    try:
        variables, dates = parse_feature_names(samples.features)
    except FeatureMismatchError:
        variables, dates = list(samples.features), []
    meta = ModelMetadata(
        kind=kind,
        params=est_params,
        classes=tuple(samples.classes),
        class_names=dict(samples.class_names),
        features=tuple(samples.features),
        variables=tuple(variables),
        dates=tuple(dates),
        crs=samples.crs,
        resolution=samples.resolution,
        regions=tuple(regions) if by_region else (0,),
        recipe=dict(recipe if recipe is not None else samples.recipe),
        versions=_versions(),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        uid=uuid.uuid4().hex,
    )
    lcm = LandCoverModel(estimators, meta)
    report: dict[str, Any] = {
        "seed": seed,
        "train_ratio": train_ratio if validation is None else None,
        "max_per_class": max_per_class,
        "fit_seconds": round(fit_s, 3),
        "samples": _count_table(fit_set, val_set),
        "train_polygons": sorted(_plain(v) for v in np.unique(fit_set.polygon)),
        "validation_polygons": sorted(_plain(v) for v in np.unique(val_set.polygon)),
        "extraction": dict(samples.info),
    }
    if len(val_set):
        t1 = time.perf_counter()
        proba = lcm.predict_proba(val_set.X, val_set.region if by_region else None)
        pred_s = time.perf_counter() - t1
        predicted = np.asarray(meta.classes)[np.nanargmax(np.nan_to_num(proba, nan=-1), axis=1)]
        cm = ConfusionMatrix.from_labels(val_set.y, predicted, labels=meta.classes)
        acc = AccuracyReport.from_confusion(cm, meta.class_names)
        report["validation"] = acc.to_dict()
        report["validation_predict_pixels_per_s"] = round(len(val_set) / max(pred_s, 1e-9), 1)
    history = getattr(first, "history_", None)
    if history:
        report["history"] = {k: v[-1] for k, v in history.items() if v}
        report["epochs_run"] = len(history.get("loss", []))
    lcm.metadata = ModelMetadata(**{**asdict(meta), "report": report})
    return lcm


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _count_table(fit_set: Samples, val_set: Samples) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for c in fit_set.classes:
        t, v = fit_set.y == c, val_set.y == c
        out[str(c)] = {
            "train_pixels": int(t.sum()),
            "train_polygons": int(np.unique(fit_set.polygon[t]).size),
            "validation_pixels": int(v.sum()),
            "validation_polygons": int(np.unique(val_set.polygon[v]).size),
        }
    return out


def evaluate_seeds(
    samples: Samples,
    model: str | Classifier = "rf",
    *,
    seeds: Sequence[int] = (0, 1, 2),
    params: Mapping[str, Any] | None = None,
    train_ratio: float = 0.5,
    by_region: bool = False,
    max_per_class: int | None = None,
) -> pd.DataFrame:
    """Train and validate once per seed (new polygon split each time), as IOTA²'s ``runs``.

    Parameters
    ----------
    samples
        Samples from :func:`extract_samples`.
    model, params, train_ratio, by_region, max_per_class
        As in :func:`train`.
    seeds
        One run per seed: the split, the balancing and the model's own seed.

    Returns
    -------
    pandas.DataFrame
        One row per seed (``overall_accuracy``, ``kappa``, ``macro_f1``, pixels) and the rows
        ``mean`` and ``std``.

    Raises
    ------
    SamplesError, ModelError
        As :func:`train`.
    """
    rows = []
    for s in seeds:
        lcm = train(
            samples,
            model,
            params=params,
            train_ratio=train_ratio,
            seed=int(s),
            by_region=by_region,
            max_per_class=max_per_class,
        )
        val = lcm.metadata.report.get("validation", {})
        rows.append(
            {
                "seed": int(s),
                "overall_accuracy": val.get("overall_accuracy", np.nan),
                "kappa": val.get("kappa", np.nan),
                "macro_f1": val.get("macro_f1", np.nan),
                "validation_pixels": int(
                    sum(v["validation_pixels"] for v in lcm.metadata.report["samples"].values())
                ),
            }
        )
    df = pd.DataFrame(rows).set_index("seed")
    stats = df.agg(["mean", "std"])
    return pd.concat([df, stats])


def ensemble(
    models: Sequence[LandCoverModel],
    *,
    weights: Sequence[float] | None = None,
    validation: Samples | None = None,
) -> LandCoverModel:
    """Combine trained models by soft voting (the mean of their class probabilities).

    Parameters
    ----------
    models
        Two or more models trained on the same features, classes and regions (e.g. ``"rf"``,
        ``"tempcnn"`` and ``"ltae"`` from :func:`train` with the same seed).
    weights
        One weight per model (default equal).
    validation
        Samples to measure the ensemble on (e.g. the validation part of
        :func:`split_by_polygon` with the members' seed); the members' reports are kept
        either way.

    Returns
    -------
    LandCoverModel
        Kind ``"ensemble"``; saved, loaded and applied like any model.

    Raises
    ------
    ModelError
        Fewer than two models, or models with other features, classes or regions.
    SamplesError
        ``validation`` has other features.

    Examples
    --------
    >>> from mus_lab import classify, recipes
    >>> feats, _, _ = recipes.features_from_catalog(tiny.catalog_path, every_days=30)
    >>> smp = classify.extract_samples(feats, tiny.polygons, layer="reference")
    >>> a = classify.train(smp, "rf", params={"n_estimators": 5})
    >>> b = classify.train(smp, "rf", params={"n_estimators": 5, "max_depth": 3})
    >>> classify.ensemble([a, b]).metadata.kind
    'ensemble'
    """
    from mus_lab.classify._ensemble import Ensemble

    if len(models) < 2:
        raise ModelError(f"An ensemble needs at least two models, got {len(models)}.")
    first = models[0].metadata
    for m in models[1:]:
        meta = m.metadata
        if (meta.features, meta.classes, meta.regions) != (
            first.features,
            first.classes,
            first.regions,
        ):
            raise ModelError(
                "Models of an ensemble need the same features, classes and regions: retrain "
                f"them on the same samples ({meta.kind} differs from {first.kind})."
            )
    estimators = {
        r: Ensemble.of([m.estimators[r] for m in models], weights=weights) for r in first.regions
    }
    params = estimators[first.regions[0]].get_params()
    report: dict[str, Any] = {
        k: first.report[k]
        for k in ("seed", "train_ratio", "samples", "train_polygons", "validation_polygons")
        if k in first.report
    }
    report["members"] = [
        {
            "kind": m.metadata.kind,
            "uid": m.metadata.uid,
            "validation": {
                k: m.metadata.report.get("validation", {}).get(k)
                for k in ("overall_accuracy", "kappa", "macro_f1")
            },
        }
        for m in models
    ]
    meta = ModelMetadata(
        **{
            **asdict(first),
            "kind": "ensemble",
            "params": params,
            "report": report,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "uid": uuid.uuid4().hex,
        }
    )
    lcm = LandCoverModel(estimators, meta)
    if validation is not None:
        if validation.features != first.features:
            raise SamplesError("Validation samples have other features than the models.")
        proba = lcm.predict_proba(validation.X, validation.region if lcm.regional else None)
        predicted = np.asarray(meta.classes)[np.nanargmax(np.nan_to_num(proba, nan=-1), axis=1)]
        cm = ConfusionMatrix.from_labels(validation.y, predicted, labels=meta.classes)
        report["validation"] = AccuracyReport.from_confusion(cm, meta.class_names).to_dict()
        report["validation_polygons"] = sorted(_plain(v) for v in np.unique(validation.polygon))
        lcm.metadata = ModelMetadata(**{**asdict(meta), "report": report})
    return lcm
