"""TempCNN (Pelletier et al. 2019) with tensorflow/keras, behind the :class:`Classifier` protocol.

Architecture (METHODS.md section 4): 3 x [Conv1D 64 filters, kernel 5, batch normalisation,
ReLU, dropout 0.5], flatten, dense 256 + batch normalisation + ReLU + dropout 0.5, softmax;
Adam, learning rate 1e-3, batch 32. Input ``(time, variable)``, standardised per variable
(mean and standard deviation over all training pixels and dates). Early stopping watches the
loss on a validation split made **by polygon** inside the training polygons.

tensorflow is imported only when a TempCNN is trained or loaded. Seeds: ``seed`` seeds Python,
numpy and tensorflow (``keras.utils.set_random_seed``), which is global state.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from mus_lab.classify._features import parse_feature_names
from mus_lab.classify._models import _Estimator
from mus_lab.errors import ModelError

__all__ = ["TempCNN"]

_PREDICT_BATCH = 16384
# keras 3 on numpy 2 converts variables with np.array(copy=False): harmless third-party noise.
_KERAS_NUMPY_NOISE = "__array__ implementation"


def _keras() -> Any:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tensorflow import keras

    return keras


class TempCNN(_Estimator):
    """Temporal convolutional network for pixel time series.

    Parameters
    ----------
    epochs
        Maximum epochs (early stopping usually ends sooner).
    batch_size, learning_rate
        Adam settings (32 and 1e-3 in the paper).
    filters, kernel_size, dense, dropout
        Architecture (64, 5, 256, 0.5 in the paper).
    patience
        Epochs without a better validation loss before stopping (best weights kept).
    warmup
        Epochs before early stopping may act (batch-normalisation statistics settle first).
    bn_momentum
        Momentum of the batch-normalisation moving statistics: 0.9 rather than keras' 0.99,
        so that they settle within a few epochs on the few hundred batches of polygon samples
        (with 0.99 the validation loss first rises for several epochs and early stopping keeps
        an untrained network).
    validation_ratio
        Share of the training polygons (per class) held out for early stopping.
    class_weight
        ``None`` or ``"balanced"`` (loss weights inverse to class frequencies).
    seed
        Seed of the split, initial weights and batches.
    verbose
        Keras verbosity.

    Raises
    ------
    ModelError
        ``epochs`` or ``batch_size`` below 1, or ``validation_ratio`` outside [0, 1).

    Examples
    --------
    >>> TempCNN(epochs=1).get_params()["filters"]
    64
    """

    kind = "tempcnn"
    _title = "TempCNN"

    def __init__(
        self,
        *,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        filters: int = 64,
        kernel_size: int = 5,
        dense: int = 256,
        dropout: float = 0.5,
        patience: int = 5,
        warmup: int = 3,
        bn_momentum: float = 0.9,
        validation_ratio: float = 0.2,
        class_weight: Literal["balanced"] | None = None,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        if epochs < 1 or batch_size < 1:
            raise ModelError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}.")
        if not 0.0 <= validation_ratio < 1.0:
            raise ModelError(f"validation_ratio must be in [0, 1), got {validation_ratio}.")
        super().__init__(
            {
                "epochs": int(epochs),
                "batch_size": int(batch_size),
                "learning_rate": float(learning_rate),
                "filters": int(filters),
                "kernel_size": int(kernel_size),
                "dense": int(dense),
                "dropout": float(dropout),
                "patience": int(patience),
                "warmup": int(warmup),
                "bn_momentum": float(bn_momentum),
                "validation_ratio": float(validation_ratio),
                "class_weight": class_weight,
                "seed": int(seed),
                "verbose": int(verbose),
            }
        )
        self.mean_ = np.empty(0, dtype="float32")
        self.std_ = np.empty(0, dtype="float32")
        self.n_dates = 0
        self.n_variables = 0
        self.history_: dict[str, list[float]] = {}
        self._model: Any = None
        self._infer: Any = None
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> TempCNN:
        if self._model is not None:
            raise ModelError("Copy a TempCNN before training it, not after.")
        return TempCNN(**self.params)

    # -- shapes -------------------------------------------------------------------------------
    def _to_3d(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        x = np.asarray(X, dtype="float32").reshape(n, self.n_variables, self.n_dates)
        x = x.transpose(0, 2, 1)
        return (x - self.mean_) / self.std_

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
            Named ``"tempcnn"`` (imports tensorflow).
        """
        keras = _keras()
        layers = keras.layers
        p = self.params
        inputs = keras.Input(shape=(n_dates, n_variables))
        x = inputs
        for _ in range(3):
            x = layers.Conv1D(p["filters"], p["kernel_size"], padding="same")(x)
            x = layers.BatchNormalization(momentum=p["bn_momentum"])(x)
            x = layers.Activation("relu")(x)
            x = layers.Dropout(p["dropout"])(x)
        x = layers.Flatten()(x)
        x = layers.Dense(p["dense"])(x)
        x = layers.BatchNormalization(momentum=p["bn_momentum"])(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(p["dropout"])(x)
        outputs = layers.Dense(n_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="tempcnn")

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
            n_val = int(np.clip(round(ratio * polys.size), 1, polys.size - 1))
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
                "TempCNN needs the feature names ('{var}_{YYYYMMDD}') to shape the input as (time, variable)."
            )
        try:
            variables, dates = parse_feature_names(feature_names)
        except Exception as exc:
            raise ModelError(f"TempCNN cannot shape these features: {exc}") from exc
        keras = _keras()
        p = self.params
        keras.utils.set_random_seed(p["seed"])
        rng = np.random.default_rng(p["seed"])
        self.n_variables, self.n_dates = len(variables), len(dates)
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
            w = counts.sum() / (self.classes_.size * np.maximum(counts, 1))
            weights = {i: float(v) for i, v in enumerate(w)}
        callbacks = []
        validation = None
        if held.any():
            validation = (xs[held], target[held])
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=p["patience"],
                    restore_best_weights=True,
                    start_from_epoch=min(p["warmup"], p["epochs"] - 1),
                )
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _KERAS_NUMPY_NOISE, DeprecationWarning)
            hist = model.fit(
                xs[~held],
                target[~held],
                batch_size=p["batch_size"],
                epochs=p["epochs"],
                validation_data=validation,
                callbacks=callbacks,
                class_weight=weights,
                shuffle=True,
                verbose=p["verbose"],
            )
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.history_["early_stopping_pixels"] = [float(held.sum())]
        self._model = model

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
            self._model.save(folder / "tempcnn.keras")
        np.savez(folder / "standardisation.npz", mean=self.mean_, std=self.std_)
        state = {
            "params": self.params,
            "classes": self.classes_.tolist(),
            "n_dates": self.n_dates,
            "n_variables": self.n_variables,
            "history": self.history_,
        }
        (folder / "tempcnn.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path) -> Self:
        """Read a network that :meth:`save` wrote (imports tensorflow).

        Parameters
        ----------
        folder
            Holds ``tempcnn.keras`` (the network), ``standardisation.npz`` (per-variable
            mean and standard deviation) and ``tempcnn.json`` (parameters, classes, history).

        Returns
        -------
        TempCNN
            Ready to predict (not to train further: it is loaded uncompiled).
        """
        keras = _keras()
        state = json.loads((folder / "tempcnn.json").read_text())
        obj = cls(**state["params"])
        obj.classes_ = np.asarray(state["classes"], dtype="int64")
        obj.n_dates, obj.n_variables = int(state["n_dates"]), int(state["n_variables"])
        obj.history_ = state["history"]
        std = np.load(folder / "standardisation.npz")
        obj.mean_, obj.std_ = std["mean"], std["std"]
        obj._model = keras.models.load_model(folder / "tempcnn.keras", compile=False)
        return obj
