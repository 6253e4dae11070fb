"""Models: IOTA² random forest (vote shares), TempCNN (METHODS §4), plug-ins, save/load, metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from mus_lab.classify import (
    Classifier,
    LandCoverModel,
    RandomForest,
    evaluate_seeds,
    extract_samples,
    feature_cube,
    load_model,
    make_classifier,
    train,
)
from mus_lab.errors import FeatureMismatchError, ModelError, MusLabError


@pytest.fixture
def samples(problem):  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    return extract_samples(feature_cube(ds), polys, region_field="region")


def test_random_forest_defaults_are_iota2s() -> None:
    p = RandomForest().get_params()
    assert (p["n_estimators"], p["max_depth"], p["min_samples_split"]) == (100, 25, 5)
    assert p["voting"] == "hard"
    with pytest.raises(ModelError, match="voting"):
        RandomForest(voting="majority")  # type: ignore[arg-type]


def test_confidence_is_the_share_of_trees_voting_for_the_winner(samples) -> None:  # type: ignore[no-untyped-def]
    rf = RandomForest(n_estimators=7, random_state=0, max_features=1).fit(samples.X, samples.y)
    X = samples.X + np.random.default_rng(1).normal(0, 0.3, samples.X.shape).astype("float32")
    proba = rf.predict_proba(X)
    votes = np.stack([rf._rf.classes_[est.predict(X).astype(int)] for est in rf._rf.estimators_])
    expected = np.stack([(votes == c).mean(axis=0) for c in rf.classes_], axis=1)
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert np.unique(np.round(proba * 7, 4) % 1).tolist() == [0.0]  # multiples of 1/7
    assert (proba.max(axis=1) < 1).any()  # some disagreement, so the test can fail
    soft = RandomForest(n_estimators=7, random_state=0, max_features=1, voting="soft")
    soft.fit(samples.X, samples.y)
    np.testing.assert_allclose(soft.predict_proba(X), soft._rf.predict_proba(X), atol=1e-6)


def test_train_reports_validation_on_other_polygons_and_round_trips(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = train(samples, "rf", params={"n_estimators": 10}, seed=3, recipe={"sensors": "test"})
    meta = model.metadata
    rep = meta.report
    assert meta.kind == "rf" and meta.classes == (1, 2, 3)
    assert meta.variables == ("ndvi", "vv") and meta.dates[0] == "20220301"
    assert meta.crs == "EPSG:32633" and meta.resolution == (10.0, 10.0)
    assert {"numpy", "scikit-learn", "mus_lab"} <= set(meta.versions)
    assert not set(rep["train_polygons"]) & set(rep["validation_polygons"])
    assert rep["validation"]["overall_accuracy"] > 0.95  # separable synthetic classes
    assert rep["samples"]["1"]["validation_polygons"] == 2
    assert meta.params["random_state"] == 3
    saved = model.save(tmp_path / "m")
    with pytest.raises(ModelError, match="exists"):
        model.save(tmp_path / "m")
    doc = json.loads((saved / "metadata.json").read_text())
    assert doc["features"][0] == "ndvi_20220301" and doc["recipe"] == {"sensors": "test"}
    back = load_model(saved)
    np.testing.assert_array_equal(back.predict_proba(samples.X), model.predict_proba(samples.X))
    assert back.metadata == model.metadata
    assert back.validation is not None
    assert back.validation.overall_accuracy == pytest.approx(rep["validation"]["overall_accuracy"])


def test_features_that_do_not_match_are_refused(samples) -> None:  # type: ignore[no-untyped-def]
    model = train(samples, "rf", params={"n_estimators": 3})
    names = list(samples.features)
    with pytest.raises(FeatureMismatchError, match="another order"):
        model.check_features(names[::-1])
    with pytest.raises(FeatureMismatchError, match=r"missing \['vv_20220801'\]"):
        model.check_features(names[:-1])
    with pytest.raises(FeatureMismatchError, match="unexpected"):
        model.check_features([*names, "s1_vv_20220301"])
    model.check_features(names)


def test_errors_for_unknown_models_and_bad_files(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="Unknown model 'svm'"):
        train(samples, "svm")
    with pytest.raises(ModelError, match="Wrong parameters"):
        train(samples, "rf", params={"trees": 3})
    with pytest.raises(ModelError, match="not a Classifier"):
        make_classifier(object())  # type: ignore[arg-type]
    with pytest.raises(ModelError, match=r"metadata\.json missing"):
        load_model(tmp_path)
    assert issubclass(ModelError, MusLabError)


class Centroid:
    """A minimal plug-in: nearest class centroid, softmax of negative distances."""

    kind = "centroid"

    def __init__(self, *, temperature: float = 1.0) -> None:
        self.temperature = temperature
        self.classes_ = np.empty(0, "int64")
        self.centres = np.empty((0, 0))

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, groups: Any = None, feature_names: Any = ()
    ) -> Self:
        self.classes_ = np.unique(y)
        self.centres = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(X[:, None, :] - self.centres[None], axis=2) / self.temperature
        e = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return (e / e.sum(axis=1, keepdims=True)).astype("float32")

    def get_params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "c.npz", classes=self.classes_, centres=self.centres, t=self.temperature)

    @classmethod
    def load(cls, folder: Path) -> Self:
        f = np.load(folder / "c.npz")
        obj = cls(temperature=float(f["t"]))
        obj.classes_, obj.centres = f["classes"], f["centres"]
        return obj


def test_a_plugged_in_classifier_trains_saves_and_loads(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(Centroid(), Classifier)
    model = train(samples, Centroid(temperature=0.5), seed=0)
    assert model.metadata.kind == f"{__name__}:Centroid"
    assert model.metadata.report["validation"]["overall_accuracy"] > 0.95
    back = load_model(model.save(tmp_path / "plug"))
    assert isinstance(back.estimators[0], Centroid)
    np.testing.assert_allclose(back.predict_proba(samples.X), model.predict_proba(samples.X))


def test_one_model_per_region(samples) -> None:  # type: ignore[no-untyped-def]
    model = train(samples, "rf", params={"n_estimators": 5}, by_region=True)
    assert model.regional and model.metadata.regions == (1, 2)
    assert set(model.estimators) == {1, 2}
    proba = model.predict_proba(samples.X, samples.region)
    assert np.isfinite(proba).all()
    with pytest.raises(ModelError, match="region map"):
        model.predict_proba(samples.X)
    assert isinstance(model, LandCoverModel)


def test_several_seeds_give_a_mean_and_spread(samples) -> None:  # type: ignore[no-untyped-def]
    table = evaluate_seeds(samples, "rf", seeds=(0, 1, 2), params={"n_estimators": 5})
    assert list(table.index) == [0, 1, 2, "mean", "std"]
    assert 0.9 < table.loc["mean", "overall_accuracy"] <= 1.0
    assert table.loc["std", "overall_accuracy"] >= 0.0


def test_tempcnn_architecture_is_pelletier_2019() -> None:
    from mus_lab.classify import TempCNN

    net = TempCNN().build(n_dates=6, n_variables=2, n_classes=3)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds.count("Conv1D") == 3 and kinds.count("BatchNormalization") == 4
    assert kinds.count("Dropout") == 4 and kinds.count("Dense") == 2
    convs = [layer for layer in net.layers if type(layer).__name__ == "Conv1D"]
    assert all(c.filters == 64 and c.kernel_size == (5,) for c in convs)
    dense = [layer for layer in net.layers if type(layer).__name__ == "Dense"]
    assert dense[0].units == 256 and dense[1].units == 3
    assert all(layer.rate == 0.5 for layer in net.layers if type(layer).__name__ == "Dropout")
    p = TempCNN().get_params()
    assert (p["learning_rate"], p["batch_size"]) == (1e-3, 32)
    # conv: (5*2*64+64) + 2*(5*64*64+64); BN 4 params per channel; dense 6*64*256+256; out 256*3+3
    expected = (5 * 2 * 64 + 64) + 2 * (5 * 64 * 64 + 64) + 3 * 4 * 64
    expected += 6 * 64 * 256 + 256 + 4 * 256 + 256 * 3 + 3
    assert net.count_params() == expected


def test_tempcnn_trains_with_early_stopping_on_polygons_and_round_trips(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    params = {"epochs": 8, "patience": 3, "batch_size": 32, "validation_ratio": 0.5}
    model = train(samples, "tempcnn", params=params, seed=0)
    est = model.estimators[0]
    assert est.n_dates == 6 and est.n_variables == 2
    assert est.mean_.shape == (2,)  # standardised per variable (band), not per date
    assert "val_loss" in est.history_ and est.history_["early_stopping_pixels"][0] > 0
    assert model.metadata.report["validation"]["overall_accuracy"] > 0.9
    back = load_model(model.save(tmp_path / "cnn"))
    np.testing.assert_allclose(
        back.predict_proba(samples.X), model.predict_proba(samples.X), atol=1e-5
    )
    with pytest.raises(ModelError, match="feature names"):
        make_classifier("tempcnn").fit(samples.X, samples.y)
