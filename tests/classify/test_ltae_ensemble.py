"""L-TAE (Garnot & Landrieu 2020), the soft-voting ensemble and the entropy map."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from mus_lab.classify import (
    Ensemble,
    ensemble,
    extract_samples,
    feature_cube,
    load_model,
    normalised_entropy,
    predict,
    split_by_polygon,
    train,
)
from mus_lab.errors import ModelError
from mus_lab.publish import LandCoverProduct


@pytest.fixture
def samples(problem):  # type: ignore[no-untyped-def]
    ds, _, polys = problem
    return extract_samples(feature_cube(ds), polys, region_field="region")


SMALL_LTAE = {
    "epochs": 6,
    "patience": 3,
    "batch_size": 64,
    "validation_ratio": 0.5,  # 2 training polygons per class: hold one out
    "d_model": 32,
    "n_head": 4,
    "d_k": 4,
}


def test_ltae_architecture_is_garnot_2020() -> None:
    from mus_lab.classify import LTAE

    net = LTAE().build(n_dates=6, n_variables=2, n_classes=3)
    by_kind: dict[str, list[Any]] = {}
    for layer in net.layers:
        by_kind.setdefault(type(layer).__name__, []).append(layer)
    attention = by_kind["MasterQueryAttention"][0]
    assert (attention.n_head, attention.d_k) == (16, 8)  # one learned query per head
    assert tuple(attention.query.shape) == (16, 8) and attention.key.units == 16 * 8
    assert [d.units for d in by_kind["Dense"]] == [128, 128, 64, 32, 3]  # in, MLP, decoder
    table = by_kind["DatePositions"][0].table
    assert table.shape == (6, 128)  # d_model / n_head values, repeated over the 16 heads
    np.testing.assert_allclose(table[:, :8], table[:, 8:16])
    with pytest.raises(ModelError, match="multiple of n_head"):
        LTAE(d_model=100)
    with pytest.raises(ModelError, match="sampling_power"):
        LTAE(sampling_power=2.0)


def test_ltae_trains_with_date_positions_and_round_trips(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = train(samples, "ltae", params=SMALL_LTAE, seed=0)
    est = model.estimators[0]
    assert model.metadata.kind == "ltae" and model.metadata.params["seed"] == 0
    assert "val_loss" in est.history_ and est.history_["early_stopping_pixels"][0] > 0
    assert model.metadata.report["validation"]["overall_accuracy"] > 0.9
    doy = [dt.date.fromisoformat(d).timetuple().tm_yday for d in ("2022-03-01", "2022-04-01")]
    positions = next(la for la in est._model.layers if type(la).__name__ == "DatePositions")
    assert list(positions.positions)[:2] == doy  # day of year of the training dates
    back = load_model(model.save(tmp_path / "ltae"))
    np.testing.assert_allclose(
        back.predict_proba(samples.X), model.predict_proba(samples.X), atol=1e-5
    )


def test_ensemble_probabilities_are_the_mean(samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = train(samples, "rf", params={"n_estimators": 5, "max_features": 1}, seed=0)
    b = train(samples, "rf", params={"n_estimators": 3, "max_depth": 2}, seed=0)
    X = samples.X + np.random.default_rng(1).normal(0, 0.3, samples.X.shape).astype("float32")
    pa, pb = a.predict_proba(X), b.predict_proba(X)
    _, val = split_by_polygon(samples, seed=0)
    ens = ensemble([a, b], validation=val)
    np.testing.assert_allclose(ens.predict_proba(X), (pa + pb) / 2, atol=1e-6)
    weighted = ensemble([a, b], weights=[3, 1])
    np.testing.assert_allclose(weighted.predict_proba(X), 0.75 * pa + 0.25 * pb, atol=1e-6)
    assert ens.metadata.kind == "ensemble" and ens.metadata.params["members"] == ["rf", "rf"]
    assert [m["uid"] for m in ens.metadata.report["members"]] == [a.metadata.uid, b.metadata.uid]
    assert ens.metadata.report["validation"]["overall_accuracy"] > 0.9
    back = load_model(ens.save(tmp_path / "ens"))
    np.testing.assert_allclose(back.predict_proba(X), ens.predict_proba(X), atol=1e-6)
    # trained together through train(): the members get the seed
    together = train(
        samples,
        "ensemble",
        params={"members": ["rf", "rf"], "member_params": {"rf": {"n_estimators": 4}}},
    )
    assert all(m.params["random_state"] == 0 for m in together.estimators[0].members_)
    with pytest.raises(ModelError, match="at least two"):
        Ensemble(members=["rf"])
    with pytest.raises(ModelError, match="same features"):
        ensemble([a, train(samples, "rf", params={"n_estimators": 2}, by_region=True)])


class Fixed:
    """A plug-in that gives every pixel the probabilities (0.5, 0.25, 0.25)."""

    kind = "fixed"

    def __init__(self) -> None:
        self.classes_ = np.empty(0, "int64")

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, groups: Any = None, feature_names: Any = ()
    ) -> Self:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile(np.array([0.5, 0.25, 0.25], "float32"), (X.shape[0], 1))

    def get_params(self) -> dict[str, Any]:
        return {}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(cls, folder: Path) -> Self:
        return cls()


def test_entropy_is_the_normalised_shannon_entropy(problem, samples) -> None:  # type: ignore[no-untyped-def]
    by_hand = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3)  # 0.946395
    assert float(normalised_entropy(np.array([0.5, 0.25, 0.25]))) == pytest.approx(by_hand)
    assert normalised_entropy(np.array([[1.0, 0.0], [0.5, 0.5]]), axis=1).tolist() == [0.0, 1.0]
    ds, _, _ = problem
    fc = feature_cube(ds).copy()
    fc[:, 0, 0] = np.nan
    model = train(samples, Fixed())
    res = predict(fc, model).compute()
    ent = res.entropy.values
    assert ent[0, 0] == 255 and res.entropy.attrs["nodata"] == 255
    assert (ent.ravel()[1:] == round(100 * by_hand)).all()  # 95
    assert (res.confidence.values.ravel()[1:] == 50).all()
    assert (res.margin.values.ravel()[1:] == 25).all()
    product = LandCoverProduct.from_prediction(res, model=model)
    assert product.entropy is not None and product.entropy.dtype == np.uint8
