"""Soft-voting ensemble: the (weighted) mean of the class probabilities of several classifiers.

Members are trained on the same samples (:class:`Ensemble` through :func:`train`), or models
trained separately are combined afterwards (:func:`mus_lab.classify.ensemble`). The random
forest's probabilities are its vote shares, the networks' their softmax: soft voting averages
them as they are (Kittler et al. 1998's mean rule), which keeps the forest's confidence
meaning inside the mean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from mus_lab.classify._models import (
    Classifier,
    _Estimator,
    classifier_class,
    kind_of,
    make_classifier,
    seed_parameter,
)
from mus_lab.errors import ModelError

__all__ = ["Ensemble", "soft_vote"]


def soft_vote(
    probabilities: Sequence[np.ndarray],
    classes: Sequence[np.ndarray],
    *,
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean of class probabilities whose columns may follow different class lists.

    Parameters
    ----------
    probabilities
        ``(n, k_i)`` arrays, one per member.
    classes
        The class codes of each array's columns.
    weights
        One weight per member (default equal); normalised to sum 1.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 ``(n, k)`` mean probabilities over the union of the classes, and those codes
        (ascending). A class a member lacks counts 0 for that member.

    Raises
    ------
    ModelError
        No member, or the numbers of arrays, class lists and weights differ.

    Examples
    --------
    >>> p, c = soft_vote([np.array([[0.8, 0.2]]), np.array([[0.4, 0.6]])], [[1, 2], [1, 2]])
    >>> c.tolist(), p.round(2).tolist()
    ([1, 2], [[0.6, 0.4]])
    """
    if not probabilities or len(probabilities) != len(classes):
        raise ModelError("Give one class list per probability array (at least one member).")
    w = np.ones(len(probabilities)) if weights is None else np.asarray(weights, dtype="float64")
    if w.size != len(probabilities) or (w < 0).any() or w.sum() <= 0:
        raise ModelError(
            f"Give one non-negative weight per member ({len(probabilities)}), not all 0."
        )
    w = w / w.sum()
    union = np.unique(np.concatenate([np.asarray(c, dtype="int64") for c in classes]))
    n = probabilities[0].shape[0]
    out = np.zeros((n, union.size), dtype="float64")
    for p, c, wi in zip(probabilities, classes, w, strict=True):
        out[:, np.searchsorted(union, np.asarray(c, dtype="int64"))] += wi * np.asarray(p)
    return out.astype("float32"), union


class Ensemble(_Estimator):
    """Soft voting over several classifiers trained on the same samples.

    Parameters
    ----------
    members
        Registered model kinds (``"rf"``, ``"tempcnn"``, ``"ltae"``) or plug-ins'
        ``"module:Class"``.
    member_params
        Parameters per member kind (e.g. ``{"rf": {"n_estimators": 100}}``).
    weights
        One weight per member (default equal).
    seed
        Seed given to every member that takes one (unless its parameters set it).

    Raises
    ------
    ModelError
        Fewer than two members, or weights that do not match them.

    Examples
    --------
    >>> X = np.array([[0.1, 0.2], [0.2, 0.1], [0.9, 0.8], [0.8, 0.9]], dtype="float32")
    >>> ens = Ensemble(members=("rf", "rf"), member_params={"rf": {"n_estimators": 5,
    ...     "min_samples_split": 2}}).fit(X, np.array([1, 1, 2, 2]))
    >>> ens.classes_.tolist(), ens.predict_proba(X).sum(axis=1).round(6).tolist()
    ([1, 2], [1.0, 1.0, 1.0, 1.0])
    """

    kind = "ensemble"
    _title = "ensemble"

    def __init__(
        self,
        *,
        members: Sequence[str] = ("rf", "tempcnn", "ltae"),
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        members = [str(m) for m in members]
        if len(members) < 2:
            raise ModelError(f"An ensemble needs at least two members, got {members}.")
        if weights is not None and len(weights) != len(members):
            raise ModelError(f"Give one weight per member ({len(members)}), got {list(weights)}.")
        super().__init__(
            {
                "members": members,
                "member_params": {str(k): dict(v) for k, v in (member_params or {}).items()},
                "weights": None if weights is None else [float(w) for w in weights],
                "seed": int(seed),
            }
        )
        self.members_: list[Classifier] = []

    @classmethod
    def of(cls, members: Sequence[Classifier], *, weights: Sequence[float] | None = None) -> Self:
        """An ensemble of classifiers already trained (on the same features).

        Parameters
        ----------
        members
            Trained classifiers.
        weights
            One weight per member (default equal).

        Returns
        -------
        Ensemble
            Trained; its classes are the union of the members'.

        Raises
        ------
        ModelError
            Fewer than two members, or one is not trained.
        """
        kinds = [kind_of(m) for m in members]
        obj = cls(
            members=kinds,
            member_params={k: m.get_params() for k, m in zip(kinds, members, strict=True)},
            weights=weights,
        )
        if any(np.asarray(m.classes_).size == 0 for m in members):
            raise ModelError("Combine trained classifiers only (call fit on each first).")
        obj.members_ = list(members)
        obj.classes_ = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        return obj

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        if self.members_:
            raise ModelError("Copy an ensemble before training it, not after.")
        return type(self)(**self.params)

    def _trained(self) -> bool:
        return bool(self.members_)

    def _fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, names: tuple[str, ...]
    ) -> None:
        p = self.params
        members = []
        for kind in p["members"]:
            kw = dict(p["member_params"].get(kind, {}))
            key = seed_parameter(kind)
            if key:
                kw.setdefault(key, p["seed"])
            est = make_classifier(kind, kw)
            est.fit(X, y, groups=groups, feature_names=names)
            members.append(est)
        self.members_ = members
        self.classes_ = np.unique(y).astype("int64")

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Weighted mean of the members' probabilities, float32 (n, n_classes)."""
        probs = [m.predict_proba(X) for m in self.members_]
        mean, union = soft_vote(
            probs, [m.classes_ for m in self.members_], weights=self.params["weights"]
        )
        cols = np.searchsorted(union, self.classes_)
        return mean[:, cols]

    @property
    def history_(self) -> dict[str, list[float]]:
        """The members' training histories, keys prefixed with the member's index and kind."""
        out: dict[str, list[float]] = {}
        for i, m in enumerate(self.members_):
            for k, v in (getattr(m, "history_", None) or {}).items():
                out[f"{i}_{kind_of(m)}_{k}"] = list(v)
        return out

    def _save(self, folder: Path) -> None:
        for i, m in enumerate(self.members_):
            m.save(folder / f"member_{i}")
        state = {
            "params": self.params,
            "classes": self.classes_.tolist(),
            "kinds": [kind_of(m) for m in self.members_],
        }
        (folder / "ensemble.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read an ensemble that :meth:`save` wrote (``ensemble.json``, ``member_<i>/``).

        Parameters
        ----------
        folder
            The folder :meth:`save` wrote.

        Returns
        -------
        Ensemble
            Trained, as saved.
        """
        state = json.loads((folder / "ensemble.json").read_text())
        obj = cls(**state["params"])
        obj.members_ = [
            classifier_class(k).load(folder / f"member_{i}") for i, k in enumerate(state["kinds"])
        ]
        obj.classes_ = np.asarray(state["classes"], dtype="int64")
        return obj
