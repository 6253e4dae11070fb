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

    ``classes_`` holds the class codes in the column order of :meth:`predict_proba`.
    ``fit`` receives the polygon id of each sample (``groups``, for validation splits that
    respect polygons) and the feature names (``"{var}_{YYYYMMDD}"``, variable-major), which
    temporal models use to reshape the vector into ``(time, variable)``.
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
    ) -> Self: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]: ...

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path) -> Self: ...


class RandomForest:
    """Random forest as IOTA² configures it (100 trees, max depth 25, min 5 samples to split).

    Parameters
    ----------
    n_estimators, max_depth, min_samples_split
        Forest size and tree limits (OTB's ``rf.nbtrees``, ``rf.max``, ``rf.min``).
    max_features
        Features tried per split (``"sqrt"`` as OTB's default ``rf.var = 0``).
    class_weight
        ``None`` or ``"balanced"`` (weights inverse to class frequencies).
    voting
        ``"hard"`` (vote shares, IOTA²) or ``"soft"`` (mean leaf probabilities).
    n_jobs
        Threads for training (``-1`` = all cores) and for :meth:`predict_proba` on one call.
    random_state
        Seed.
    """

    kind = "rf"

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
        self.params: dict[str, Any] = {
            "n_estimators": int(n_estimators),
            "max_depth": max_depth,
            "min_samples_split": int(min_samples_split),
            "max_features": max_features,
            "class_weight": class_weight,
            "voting": voting,
            "n_jobs": int(n_jobs),
            "random_state": int(random_state),
        }
        self._rf: Any = None
        self._winners: list[np.ndarray] = []
        self.classes_ = np.empty(0, dtype="int64")

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        groups: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        """Train on ``X`` (n, features) and codes ``y``; ``groups`` and names are not needed."""
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
        self._rf.fit(np.asarray(X, dtype="float32"), np.asarray(y))
        self._prepare()
        return self

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

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Vote shares (hard voting) or mean probabilities (soft), float32 (n, n_classes)."""
        if self._rf is None:
            raise ModelError("This random forest is not trained: call fit first.")
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
        return np.asarray(self._rf.feature_importances_)

    def save(self, folder: Path) -> None:
        import joblib

        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self._rf, folder / "random_forest.joblib", compress=3)
        (folder / "params.json").write_text(json.dumps(self.params))

    @classmethod
    def load(cls, folder: Path) -> Self:
        import joblib

        params = json.loads((folder / "params.json").read_text())
        obj = cls(**params)
        obj._rf = joblib.load(folder / "random_forest.joblib")
        obj._prepare()
        return obj


def _tempcnn() -> type:
    from mus_lab.classify._tempcnn import TempCNN

    return TempCNN


#: Registered model kinds: name -> class (TempCNN imported lazily, with tensorflow).
CLASSIFIERS: dict[str, Any] = {"rf": RandomForest, "tempcnn": _tempcnn}


def classifier_class(kind: str, path: str | None = None) -> Any:
    """The class of a model kind (registered name, or ``"module:QualName"`` for plug-ins)."""
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

    Raises
    ------
    ModelError
        Unknown name, wrong parameters, or an object that is not a :class:`Classifier`.
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
