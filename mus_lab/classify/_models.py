"""Classifiers behind one interface: a :class:`Classifier` protocol, a random forest (IOTA²)
and the registry through which TempCNN or any other model plugs in.

The random forest's ``predict_proba`` returns **vote shares** (hard voting, as OTB/IOTA²):
the class map is the majority vote and the confidence, ``max(proba)``, is the share of trees
voting for the winner, IOTA²'s confidence. ``voting="soft"`` gives scikit-learn's averaged leaf
probabilities instead.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np

from mus_lab.errors import ModelError

__all__ = ["CLASSIFIERS", "Classifier", "RandomForest", "classifier_class", "make_classifier"]

_VOTE_BATCH = 16384


@runtime_checkable
class Classifier(Protocol):
    """What a land-cover model must offer to be trained, applied to cubes, saved and reloaded.

    Any class with these members plugs in (:func:`make_classifier`, :func:`train`), whether or
    not it derives from this protocol. ``kind`` names the model (``"rf"``, ``"tempcnn"``, or
    the plug-in's own name); ``classes_`` holds the class codes in the column order of
    :meth:`predict_proba` once the model is trained.

    Examples
    --------
    >>> isinstance(RandomForest(), Classifier)
    True
    """

    kind: str
    classes_: np.ndarray

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        groups: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        """Train on labelled feature vectors.

        Parameters
        ----------
        X
            ``(n, n_features)`` feature vectors (float32 reflectances, indices, dB...).
        y
            ``(n,)`` integer class codes (1-254).
        groups
            ``(n,)`` id of the polygon each sample comes from, for validation splits that
            keep polygons whole (TempCNN's early stopping); ``None`` when unknown.
        feature_names
            Names of the columns of ``X`` (``"{var}_{YYYYMMDD}"``, variable-major); temporal
            models reshape ``X`` into ``(time, variable)`` with them, others ignore them.

        Returns
        -------
        Classifier
            The classifier itself, trained (``classes_`` set).

        Raises
        ------
        ModelError
            The inputs cannot train this model (e.g. TempCNN without feature names).
        """
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class scores of feature vectors.

        Parameters
        ----------
        X
            ``(n, n_features)`` feature vectors, columns as in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
            float32 ``(n, len(classes_))``, each row summing to 1, columns in the order of
            ``classes_``.

        Raises
        ------
        ModelError
            The classifier is not trained.
        """
        ...

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (JSON values), recorded in the model's metadata.

        Returns
        -------
        dict
            ``type(self)(**get_params())`` makes an untrained copy.
        """
        ...

    def save(self, folder: Path) -> None:
        """Write the trained classifier into ``folder`` (created if needed).

        Parameters
        ----------
        folder
            Folder of its own: :meth:`LandCoverModel.save <mus_lab.classify.LandCoverModel.save>`
            gives each region's classifier one.
        """
        ...

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a classifier written by :meth:`save`.

        Parameters
        ----------
        folder
            The folder :meth:`save` wrote.

        Returns
        -------
        Classifier
            Trained, as it was saved.
        """
        ...


class _Estimator(Classifier):
    """What the built-in classifiers share: parameters, the fit signature and the check that
    the model is trained. Methods without a docstring inherit :class:`Classifier`'s."""

    kind = ""
    _title = "classifier"

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.classes_ = np.empty(0, dtype="int64")

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def fit(self, X: np.ndarray, y: np.ndarray, **fit_options: Any) -> Self:
        # groups= (polygon ids) and feature_names=, as the Classifier protocol documents
        names = tuple(fit_options.get("feature_names", ()))
        self._fit(X, np.asarray(y), fit_options.get("groups"), names)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not self._trained():
            raise ModelError(f"This {self._title} is not trained: call fit first.")
        return self._predict_proba(X)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._save(folder)

    def _trained(self) -> bool:
        raise NotImplementedError

    def _fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, names: tuple[str, ...]
    ) -> None:
        raise NotImplementedError

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _save(self, folder: Path) -> None:
        raise NotImplementedError


class RandomForest(_Estimator):
    """Random forest as IOTA² configures it (100 trees, max depth 25, min 5 samples to split).

    Parameters
    ----------
    n_estimators
        Number of trees (OTB's ``rf.nbtrees``, 100).
    max_depth
        Largest tree depth (``rf.max``, 25); ``None`` grows trees until leaves are pure.
    min_samples_split
        Fewest samples a node needs to be split (``rf.min``, 5).
    max_features
        Features tried per split (``"sqrt"`` as OTB's default ``rf.var = 0``; a share as a
        float or a count as an int).
    class_weight
        ``None`` or ``"balanced"`` (weights inverse to class frequencies).
    voting
        ``"hard"`` (vote shares, IOTA²) or ``"soft"`` (mean leaf probabilities).
    n_jobs
        Threads of :meth:`predict_proba` on one call (``-1`` = all cores); training always
        uses all cores.
    random_state
        Seed of the bootstrap samples and the features tried per split.

    Raises
    ------
    ModelError
        ``voting`` is not ``"hard"`` or ``"soft"``, or ``n_estimators`` is below 1.

    Examples
    --------
    >>> X = np.array([[0.1, 0.2], [0.2, 0.1], [0.9, 0.8], [0.8, 0.9]], dtype="float32")
    >>> rf = RandomForest(n_estimators=10, min_samples_split=2).fit(X, np.array([1, 1, 2, 2]))
    >>> rf.classes_.tolist(), rf.predict_proba(X).shape
    ([1, 2], (4, 2))
    """

    kind = "rf"
    _title = "random forest"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_depth: int | None = 25,
        min_samples_split: int = 5,
        max_features: str | float | int = "sqrt",
        class_weight: Literal["balanced"] | None = None,
        voting: Literal["hard", "soft"] = "hard",
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        if voting not in ("hard", "soft"):
            raise ModelError(f"voting must be 'hard' or 'soft', got {voting!r}.")
        if n_estimators < 1:
            raise ModelError(f"n_estimators must be >= 1, got {n_estimators}.")
        super().__init__(
            {
                "n_estimators": int(n_estimators),
                "max_depth": max_depth,
                "min_samples_split": int(min_samples_split),
                "max_features": max_features,
                "class_weight": class_weight,
                "voting": voting,
                "n_jobs": int(n_jobs),
                "random_state": int(random_state),
            }
        )
        self._rf: Any = None
        self._winners: list[np.ndarray] = []

    def _trained(self) -> bool:
        return self._rf is not None

    def _fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, names: tuple[str, ...]
    ) -> None:
        from sklearn.ensemble import RandomForestClassifier

        p = self.params
        self._rf = RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            min_samples_split=p["min_samples_split"],
            max_features=p["max_features"],
            class_weight=p["class_weight"],
            n_jobs=-1,
            random_state=p["random_state"],
        )
        self._rf.fit(np.asarray(X, dtype="float32"), y)
        self._prepare()

    def _prepare(self) -> None:
        self.classes_ = np.asarray(self._rf.classes_, dtype="int64")
        # Winning class of every leaf: a tree's vote is a table lookup after tree_.apply.
        self._winners = [
            np.argmax(est.tree_.value[:, 0, :], axis=1).astype("intp")
            for est in self._rf.estimators_
        ]

    def _votes(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        votes = np.zeros((n, self.classes_.size), dtype="float32")
        # Row batches that stay in cache while all trees run over them (faster than whole X).
        for s in range(0, n, _VOTE_BATCH):
            xb, vb = X[s : s + _VOTE_BATCH], votes[s : s + _VOTE_BATCH]
            rows = np.arange(xb.shape[0])
            for est, winner in zip(self._rf.estimators_, self._winners, strict=True):
                vb[rows, winner[est.tree_.apply(xb)]] += 1.0
        votes /= len(self._winners)
        return votes

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Vote shares (hard voting) or mean probabilities (soft), float32 (n, n_classes)."""
        X32 = np.ascontiguousarray(X, dtype="float32")
        if self.params["voting"] == "soft":
            self._rf.n_jobs = self.params["n_jobs"]
            return np.asarray(self._rf.predict_proba(X32), dtype="float32")
        jobs = self.params["n_jobs"]
        if jobs == 1 or X32.shape[0] < 20_000:
            return self._votes(X32)
        from concurrent.futures import ThreadPoolExecutor

        parts = np.array_split(X32, jobs if jobs > 0 else 2)
        with ThreadPoolExecutor(len(parts)) as pool:
            return np.concatenate(list(pool.map(self._votes, parts)))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean decrease in impurity per feature (scikit-learn's), in the order of ``X``."""
        return np.asarray(self._rf.feature_importances_)

    def _save(self, folder: Path) -> None:
        import joblib

        joblib.dump(self._rf, folder / "random_forest.joblib", compress=3)
        (folder / "params.json").write_text(json.dumps(self.params))

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a forest that :meth:`save` wrote (``random_forest.joblib``, ``params.json``).

        Parameters
        ----------
        folder
            Folder holding the two files.

        Returns
        -------
        RandomForest
            Trained, with its saved parameters.
        """
        import joblib

        params = json.loads((folder / "params.json").read_text())
        obj = cls(**params)
        obj._rf = joblib.load(folder / "random_forest.joblib")
        obj._prepare()
        return obj


def _tempcnn() -> type:
    from mus_lab.classify._tempcnn import TempCNN

    return TempCNN


def _ltae() -> type:
    from mus_lab.classify._ltae import LTAE

    return LTAE


def _ensemble() -> type:
    from mus_lab.classify._ensemble import Ensemble

    return Ensemble


#: Registered model kinds: name -> class (TempCNN and L-TAE imported lazily, with tensorflow).
CLASSIFIERS: dict[str, Any] = {
    "rf": RandomForest,
    "tempcnn": _tempcnn,
    "ltae": _ltae,
    "ensemble": _ensemble,
}


def seed_parameter(kind: str) -> str | None:
    """Name of the seed parameter of a registered model kind (None for plug-ins)."""
    return {"rf": "random_state", "tempcnn": "seed", "ltae": "seed", "ensemble": "seed"}.get(kind)


def kind_of(est: Classifier) -> str:
    """A classifier's kind: its registered name, else ``"module:QualName"`` (plug-ins)."""
    kind = getattr(est, "kind", "")
    if kind in CLASSIFIERS:
        return str(kind)
    return f"{type(est).__module__}:{type(est).__qualname__}"


def classifier_class(kind: str, path: str | None = None) -> Any:
    """The class of a model kind: a registered name, or ``"module:QualName"`` for plug-ins.

    Parameters
    ----------
    kind
        ``"rf"``, ``"tempcnn"``, ``"ltae"``, ``"ensemble"`` (see :data:`CLASSIFIERS`) or
        ``"module:QualName"``.
    path
        ``"module:QualName"`` to import when ``kind`` is not registered (a saved plug-in's
        ``params["_class"]``); default ``kind`` itself.

    Returns
    -------
    type
        The classifier class (TempCNN's import loads tensorflow).

    Raises
    ------
    ModelError
        The kind is not registered and cannot be imported.

    Examples
    --------
    >>> classifier_class("rf").__name__
    'RandomForest'
    """
    if kind in CLASSIFIERS:
        entry = CLASSIFIERS[kind]
        return entry if isinstance(entry, type) else entry()
    target = path or kind
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelError(
            f"Unknown model {kind!r}: use one of {sorted(CLASSIFIERS)} or a Classifier instance "
            "('module:Class' for a saved plug-in that must be importable)."
        ) from exc


def make_classifier(model: str | Classifier, params: Mapping[str, Any] | None = None) -> Classifier:
    """A fresh, untrained classifier: from a registered name and params, or a copy of an instance.

    Parameters
    ----------
    model
        A registered name (``"rf"``, ``"tempcnn"``, ``"ltae"``, ``"ensemble"``) or a
        :class:`Classifier` instance, which
        is deep-copied (so that training never touches the caller's object).
    params
        Constructor parameters of a named model (ignored for an instance).

    Returns
    -------
    Classifier
        Untrained.

    Raises
    ------
    ModelError
        Unknown name, wrong parameters, or an object that is not a :class:`Classifier`.

    Examples
    --------
    >>> make_classifier("rf", {"n_estimators": 10}).get_params()["n_estimators"]
    10
    """
    if isinstance(model, str):
        cls = classifier_class(model)
        try:
            return cls(**dict(params or {}))  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ModelError(f"Wrong parameters for model {model!r}: {exc}.") from exc
    if not isinstance(model, Classifier):
        raise ModelError(
            f"{type(model).__name__} is not a Classifier (needs kind, classes_, fit, "
            "predict_proba, get_params, save and load)."
        )
    return copy.deepcopy(model)
