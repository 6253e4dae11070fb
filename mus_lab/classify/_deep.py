"""What the keras pixel-series classifiers share (TempCNN, L-TAE): input shaping, per-variable
standardisation, the training loop (augmentation, class-balanced sampling, learning-rate
schedule, early stopping on held-out polygons), traced inference and save/load.

Training choices (measured on the real Slovenian patch: docs/design/0004-landcover.md):

* **Standardisation per variable** (mean and standard deviation over all training pixels and
  dates), as Pelletier et al. (2019): per date would erase the seasonal shape the network
  reads.
* **Class frequencies, optionally damped**: a class is drawn in proportion to its pixel
  count raised to ``1 - sampling_power`` (0: as the samples come; 1: every class equally
  often; 0.5 in proportion to the square root). Default 0: on the real patch, damping (0.5)
  raised macro-F1 but lowered OA (docs/design/0004-landcover.md).
* **Augmentation** (METHODS.md section 8): Gaussian noise (in standardised units) and random
  shifts of the whole series by up to ``shift`` dates (edge values repeated), drawn anew for
  every batch.
* **Learning rate halved** when the early-stopping loss stalls (``lr_schedule="plateau"``).
* **Early stopping** on the loss of polygons held out of the training polygons (per class,
  ``floor(validation_ratio x n)``, so a class with few polygons keeps them all for training),
  best weights restored.

tensorflow is imported only when a network is built, trained or loaded.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np

from mus_lab.classify._features import parse_feature_names
from mus_lab.classify._models import _Estimator
from mus_lab.errors import ModelError

_PREDICT_BATCH = 16384
# keras 3 on numpy 2 converts variables with np.array(copy=False): harmless third-party noise.
_KERAS_NUMPY_NOISE = "__array__ implementation"


def _keras() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tensorflow import keras

    return keras


def _check_training(params: dict[str, Any]) -> None:
    if params["epochs"] < 1 or params["batch_size"] < 1:
        raise ModelError(
            f"epochs and batch_size must be >= 1, got {params['epochs']}, {params['batch_size']}."
        )
    if not 0.0 <= params["validation_ratio"] < 1.0:
        raise ModelError(f"validation_ratio must be in [0, 1), got {params['validation_ratio']}.")
    if not 0.0 <= params["sampling_power"] <= 1.0:
        raise ModelError(f"sampling_power must be in [0, 1], got {params['sampling_power']}.")
    if params["noise"] < 0 or params["shift"] < 0:
        raise ModelError(f"noise and shift must be >= 0, got {params['noise']}, {params['shift']}.")
    if params["lr_schedule"] not in ("constant", "plateau"):
        raise ModelError(
            f"lr_schedule must be 'constant' or 'plateau', got {params['lr_schedule']!r}."
        )


def _batches(
    xs: np.ndarray,
    target: np.ndarray,
    *,
    batch: int,
    rng: np.random.Generator,
    power: float,
    noise: float,
    shift: int,
    weights: np.ndarray | None,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless training batches: an epoch is ``len(target) // batch`` batches."""
    n = target.size
    prob = None
    if power > 0:
        counts = np.bincount(target).astype("float64")
        w = counts[target] ** -power
        prob = w / w.sum()
    t = xs.shape[1]
    steps = max(1, n // batch)
    while True:
        order = rng.permutation(n) if prob is None else rng.choice(n, n, p=prob)
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            xb = xs[idx]
            if shift:
                lag = rng.integers(-shift, shift + 1, idx.size)
                src = np.clip(np.arange(t)[None, :] - lag[:, None], 0, t - 1)
                xb = np.take_along_axis(xb, src[..., None], axis=1)
            if noise:
                xb = xb + rng.normal(0.0, noise, xb.shape).astype("float32")
            if weights is None:
                yield xb, target[idx]
            else:
                yield xb, target[idx], weights[target[idx]]


class _SeriesNetwork(_Estimator):
    """A keras network over ``(time, variable)`` pixel series behind the Classifier protocol.

    Subclasses set ``kind`` and ``_title``, pass their parameters (with the training ones of
    :data:`TRAINING_DEFAULTS`) to ``__init__`` and implement :meth:`build`.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        _check_training(params)
        super().__init__(params)
        self.mean_ = np.empty(0, dtype="float32")
        self.std_ = np.empty(0, dtype="float32")
        self.n_dates = 0
        self.n_variables = 0
        self.dates_: tuple[str, ...] = ()
        self.history_: dict[str, list[float]] = {}
        self._model: Any = None
        self._infer: Any = None
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        if self._model is not None:
            raise ModelError(f"Copy a {self._title} before training it, not after.")
        return type(self)(**self.params)

    def build(self, n_dates: int, n_variables: int, n_classes: int) -> Any:
        """The keras network of these parameters, untrained and uncompiled.

        Parameters
        ----------
        n_dates, n_variables
            Input shape of one pixel: ``(n_dates, n_variables)``.
        n_classes
            Width of the softmax output.

        Returns
        -------
        keras.Model
        """
        raise NotImplementedError

    @classmethod
    def _custom_objects(cls) -> dict[str, Any]:
        return {}

    # -- shapes -------------------------------------------------------------------------------
    def _to_3d(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        x = np.asarray(X, dtype="float32").reshape(n, self.n_variables, self.n_dates)
        x = x.transpose(0, 2, 1)
        return (x - self.mean_) / self.std_

    def _early_stopping_split(
        self, y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator
    ) -> np.ndarray:
        """Boolean mask of the samples held out for early stopping (by polygon, per class)."""
        ratio = self.params["validation_ratio"]
        held = np.zeros(y.size, dtype=bool)
        if ratio == 0.0:
            return held
        if groups is None:
            return rng.random(y.size) < ratio
        for c in np.unique(y):
            polys = np.unique(groups[y == c])
            if polys.size < 2:
                continue
            rng.shuffle(polys)
            # floor, not round: a class with fewer than 1 / ratio polygons keeps them all for
            # training (its few polygons are worth more there than in the stopping loss)
            n_val = min(int(ratio * polys.size + 1e-9), polys.size - 1)
            if n_val:
                held |= (y == c) & np.isin(groups, polys[:n_val])
        return held

    def _trained(self) -> bool:
        return self._model is not None

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None,
        feature_names: tuple[str, ...],
    ) -> None:
        """Train on ``X`` (n, variables x dates, variable-major) and codes ``y``."""
        if not feature_names:
            raise ModelError(
                f"{self._title} needs the feature names ('{{var}}_{{YYYYMMDD}}') to shape the "
                "input as (time, variable)."
            )
        try:
            variables, dates = parse_feature_names(feature_names)
        except Exception as exc:
            raise ModelError(f"{self._title} cannot shape these features: {exc}") from exc
        keras = _keras()
        p = self.params
        keras.utils.set_random_seed(p["seed"])
        rng = np.random.default_rng(p["seed"])
        self.n_variables, self.n_dates = len(variables), len(dates)
        self.dates_ = tuple(str(d) for d in dates)
        self.classes_ = np.unique(y).astype("int64")
        target = np.searchsorted(self.classes_, y)
        x3 = np.asarray(X, dtype="float32").reshape(len(y), self.n_variables, self.n_dates)
        x3 = x3.transpose(0, 2, 1)
        held = self._early_stopping_split(y, groups, rng)
        fit_part = x3[~held]
        self.mean_ = fit_part.mean(axis=(0, 1)).astype("float32")
        self.std_ = np.maximum(fit_part.std(axis=(0, 1)), 1e-6).astype("float32")
        xs = (x3 - self.mean_) / self.std_
        model = self.build(self.n_dates, self.n_variables, self.classes_.size)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        weights = None
        if p["class_weight"] == "balanced":
            counts = np.bincount(target[~held], minlength=self.classes_.size).astype("float64")
            weights = (counts.sum() / (self.classes_.size * np.maximum(counts, 1))).astype(
                "float32"
            )
        callbacks = []
        validation = None
        if held.any():
            validation = (xs[held], target[held])
            start = min(p["warmup"], p["epochs"] - 1)
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=p["patience"],
                    restore_best_weights=True,
                    start_from_epoch=start,
                )
            )
            if p["lr_schedule"] == "plateau":
                callbacks.append(
                    keras.callbacks.ReduceLROnPlateau(
                        monitor="val_loss",
                        factor=0.5,
                        patience=max(1, p["patience"] // 2),
                        min_lr=p["learning_rate"] / 32,
                    )
                )
        n_fit = int((~held).sum())
        batch = min(p["batch_size"], n_fit)
        stream = _batches(
            xs[~held],
            target[~held],
            batch=batch,
            rng=rng,
            power=p["sampling_power"],
            noise=p["noise"],
            shift=p["shift"],
            weights=weights,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _KERAS_NUMPY_NOISE, DeprecationWarning)
            hist = model.fit(
                stream,
                steps_per_epoch=max(1, n_fit // batch),
                epochs=p["epochs"],
                validation_data=validation,
                callbacks=callbacks,
                shuffle=False,  # the stream shuffles (keras cannot shuffle a generator)
                verbose=p["verbose"],
            )
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.history_["early_stopping_pixels"] = [float(held.sum())]
        self._model = model
        self._infer = None

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax probabilities, float32 (n, n_classes)."""
        n = X.shape[0]
        out = np.empty((n, self.classes_.size), dtype="float32")
        with self._lock:
            if self._infer is None:
                import tensorflow as tf

                # A traced graph (reduce_retracing: one trace for any batch length) runs about
                # twice as fast as eager calls of the keras model.
                self._infer = tf.function(
                    lambda x: self._model(x, training=False), reduce_retracing=True
                )
            for s in range(0, n, _PREDICT_BATCH):
                xb = self._to_3d(X[s : s + _PREDICT_BATCH])
                out[s : s + xb.shape[0]] = self._infer(xb).numpy()
        return out

    def _save(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _KERAS_NUMPY_NOISE, DeprecationWarning)
            self._model.save(folder / f"{self.kind}.keras")
        np.savez(folder / "standardisation.npz", mean=self.mean_, std=self.std_)
        state = {
            "params": self.params,
            "classes": self.classes_.tolist(),
            "n_dates": self.n_dates,
            "n_variables": self.n_variables,
            "dates": list(self.dates_),
            "history": self.history_,
        }
        (folder / f"{self.kind}.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a network that :meth:`save` wrote (imports tensorflow).

        Parameters
        ----------
        folder
            Holds ``<kind>.keras`` (the network), ``standardisation.npz`` (per-variable
            mean and standard deviation) and ``<kind>.json`` (parameters, classes, dates,
            history).

        Returns
        -------
        Classifier
            Ready to predict (not to train further: it is loaded uncompiled).
        """
        keras = _keras()
        state = json.loads((folder / f"{cls.kind}.json").read_text())
        params = dict(state["params"])
        obj = cls(**params)
        obj.classes_ = np.asarray(state["classes"], dtype="int64")
        obj.n_dates, obj.n_variables = int(state["n_dates"]), int(state["n_variables"])
        obj.dates_ = tuple(state.get("dates", ()))
        obj.history_ = state["history"]
        std = np.load(folder / "standardisation.npz")
        obj.mean_, obj.std_ = std["mean"], std["std"]
        obj._model = keras.models.load_model(
            folder / f"{cls.kind}.keras", compile=False, custom_objects=cls._custom_objects()
        )
        return obj


#: Training parameters every series network takes (and their defaults).
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "patience": 8,
    "warmup": 3,
    "validation_ratio": 0.2,
    "class_weight": None,
    "sampling_power": 0.0,
    "noise": 0.05,
    "shift": 1,
    "lr_schedule": "plateau",
    "seed": 0,
    "verbose": 0,
}


def sinusoid_table(positions: np.ndarray, d: int, period: float = 1000.0) -> np.ndarray:
    """Sinusoidal position encoding (Vaswani et al. 2017) of ``positions``: ``(len, d)``.

    Column ``2i`` is ``sin(pos / period**(2i/d))``, column ``2i+1`` the cosine, as L-TAE's
    ``get_sinusoid_encoding_table`` (period ``T = 1000``).
    """
    pos = np.asarray(positions, dtype="float64")[:, None]
    j = np.arange(d)[None, :]
    angle = pos / np.power(period, 2 * (j // 2) / d)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle)).astype("float32")


def day_positions(dates: tuple[str, ...], how: str) -> list[float]:
    """Positions of ``YYYYMMDD`` dates: day of year (1-366) or days since the first date."""
    import datetime as dt

    days = [dt.date(int(d[:4]), int(d[4:6]), int(d[6:8])) for d in dates]
    if how == "doy":
        return [float(d.timetuple().tm_yday) for d in days]
    return [float((d - days[0]).days) for d in days]
