"""L-TAE, the lightweight temporal attention encoder (Garnot & Landrieu 2020), with keras.

Per pixel, as the paper's encoder after its pixel-set encoder (here the pixel's own
variables): a 1x1 projection of the ``(time, variable)`` series to ``d_model`` channels,
layer normalisation over time and channels, a fixed sinusoidal encoding of each date's
position (``T = 1000``, ``d_model / n_head`` values repeated over the heads) added, then
**one learned master query per head** attends over the dates (keys: a linear map to
``n_head x d_k``; values: the input channels split into ``n_head`` groups, so each head
returns ``d_model / n_head`` channels), the heads are concatenated, then an MLP
(``[d_model, 128]``, batch normalisation, ReLU), dropout 0.2 and layer normalisation, and the
decoder MLP ``[128, 64, 32, n_classes]`` of the paper's classifier. Defaults are the paper's:
``d_model`` 128, 16 heads, ``d_k`` 8, attention dropout 0.1. Positions are the dates' day of
year by default (a choice: the same season gets the same position in every year, and a model
keeps its meaning when applied to another year); ``positions="days"`` counts days since the
first date, as the paper.

Training, standardisation and saving are TempCNN's (:mod:`mus_lab.classify._deep`).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

from mus_lab.classify._deep import (
    TRAINING_DEFAULTS,
    _keras,
    _SeriesNetwork,
    day_positions,
    sinusoid_table,
)
from mus_lab.errors import ModelError

__all__ = ["LTAE"]


@functools.cache
def _layers() -> dict[str, type]:
    """The two custom keras layers (defined on first use: keras loads tensorflow)."""
    keras = _keras()
    ops = keras.ops
    Layer: Any = keras.layers.Layer

    @keras.utils.register_keras_serializable(package="mus_lab")
    class DatePositions(Layer):  # type: ignore[misc,valid-type]
        """Adds the sinusoidal encoding of the dates' positions, repeated over the heads."""

        def __init__(
            self, positions: list[float], d: int, repeat: int, period: float = 1000.0, **kw: Any
        ) -> None:
            super().__init__(**kw)
            self.positions = [float(p) for p in positions]
            self.d, self.repeat, self.period = int(d), int(repeat), float(period)
            table = sinusoid_table(np.asarray(self.positions), self.d, self.period)
            self.table = np.tile(table, (1, self.repeat)).astype("float32")

        def call(self, x: Any) -> Any:
            return x + ops.convert_to_tensor(self.table)[None]

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "positions": self.positions,
                "d": self.d,
                "repeat": self.repeat,
                "period": self.period,
            }

    @keras.utils.register_keras_serializable(package="mus_lab")
    class MasterQueryAttention(Layer):  # type: ignore[misc,valid-type]
        """L-TAE's multi-head attention with one learned query per head."""

        def __init__(self, n_head: int, d_k: int, dropout: float = 0.1, **kw: Any) -> None:
            super().__init__(**kw)
            self.n_head, self.d_k, self.dropout = int(n_head), int(d_k), float(dropout)
            init = keras.initializers.RandomNormal(stddev=float(np.sqrt(2.0 / self.d_k)))
            self.key = keras.layers.Dense(self.n_head * self.d_k, kernel_initializer=init)
            self.drop = keras.layers.Dropout(self.dropout)
            self._init = init

        def build(self, input_shape: Any) -> None:
            self.query = self.add_weight(
                shape=(self.n_head, self.d_k), initializer=self._init, name="query"
            )
            self.key.build(input_shape)

        def call(self, x: Any, training: Any = None) -> Any:
            t, d = x.shape[1], x.shape[2]
            k = ops.reshape(self.key(x), (-1, t, self.n_head, self.d_k))
            scores = ops.einsum("bthk,hk->bht", k, self.query) / float(np.sqrt(self.d_k))
            attn = self.drop(ops.softmax(scores, axis=-1), training=training)
            v = ops.reshape(x, (-1, t, self.n_head, d // self.n_head))
            return ops.reshape(ops.einsum("bht,bthc->bhc", attn, v), (-1, d))

        def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
            return (input_shape[0], input_shape[2])

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "n_head": self.n_head,
                "d_k": self.d_k,
                "dropout": self.dropout,
            }

    return {"DatePositions": DatePositions, "MasterQueryAttention": MasterQueryAttention}


class LTAE(_SeriesNetwork):
    """Lightweight temporal attention encoder (Garnot & Landrieu 2020) for pixel time series.

    Parameters
    ----------
    d_model
        Channels after the input projection (128); a multiple of ``n_head``.
    n_head, d_k
        Attention heads (16) and key size per head (8).
    mlp
        Width of the MLP after the attention (128).
    decoder
        Hidden widths of the classifier MLP (64, 32).
    dropout
        Dropout after the MLP (0.2); the attention weights use 0.1.
    positions
        ``"doy"`` (day of year of each date) or ``"days"`` (days since the first date).
    epochs, batch_size, learning_rate, patience, warmup, validation_ratio, class_weight, sampling_power, noise, shift, lr_schedule, seed, verbose
        Training, as :class:`TempCNN`.

    Raises
    ------
    ModelError
        ``d_model`` not a multiple of ``n_head``, an unknown ``positions``, or a training
        parameter out of range.

    Examples
    --------
    >>> LTAE(epochs=1).get_params()["n_head"]
    16
    """

    kind = "ltae"
    _title = "L-TAE"

    def __init__(
        self,
        *,
        d_model: int = 128,
        n_head: int = 16,
        d_k: int = 8,
        mlp: int = 128,
        decoder: tuple[int, ...] = (64, 32),
        dropout: float = 0.2,
        positions: Literal["doy", "days"] = "doy",
        epochs: int = TRAINING_DEFAULTS["epochs"],
        batch_size: int = TRAINING_DEFAULTS["batch_size"],
        learning_rate: float = TRAINING_DEFAULTS["learning_rate"],
        patience: int = TRAINING_DEFAULTS["patience"],
        warmup: int = TRAINING_DEFAULTS["warmup"],
        validation_ratio: float = TRAINING_DEFAULTS["validation_ratio"],
        class_weight: Literal["balanced"] | None = TRAINING_DEFAULTS["class_weight"],
        sampling_power: float = TRAINING_DEFAULTS["sampling_power"],
        noise: float = TRAINING_DEFAULTS["noise"],
        shift: int = TRAINING_DEFAULTS["shift"],
        lr_schedule: Literal["constant", "plateau"] = TRAINING_DEFAULTS["lr_schedule"],
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        if d_model % n_head:
            raise ModelError(f"d_model ({d_model}) must be a multiple of n_head ({n_head}).")
        if positions not in ("doy", "days"):
            raise ModelError(f"positions must be 'doy' or 'days', got {positions!r}.")
        super().__init__(
            {
                "d_model": int(d_model),
                "n_head": int(n_head),
                "d_k": int(d_k),
                "mlp": int(mlp),
                "decoder": [int(w) for w in decoder],
                "dropout": float(dropout),
                "positions": positions,
                "epochs": int(epochs),
                "batch_size": int(batch_size),
                "learning_rate": float(learning_rate),
                "patience": int(patience),
                "warmup": int(warmup),
                "validation_ratio": float(validation_ratio),
                "class_weight": class_weight,
                "sampling_power": float(sampling_power),
                "noise": float(noise),
                "shift": int(shift),
                "lr_schedule": lr_schedule,
                "seed": int(seed),
                "verbose": int(verbose),
            }
        )

    @classmethod
    def _custom_objects(cls) -> dict[str, Any]:
        return dict(_layers())

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
            Named ``"ltae"`` (imports tensorflow); positions from the training dates, or
            ``0, 1, ...`` before training.
        """
        keras = _keras()
        layers = keras.layers
        custom = _layers()
        p = self.params
        dates = self.dates_ if len(self.dates_) == n_dates else ()
        pos = day_positions(dates, p["positions"]) if dates else [float(i) for i in range(n_dates)]
        inputs = keras.Input(shape=(n_dates, n_variables))
        x = layers.Dense(p["d_model"])(inputs)
        x = layers.LayerNormalization(axis=(1, 2))(x)
        x = custom["DatePositions"](pos, p["d_model"] // p["n_head"], p["n_head"])(x)
        x = custom["MasterQueryAttention"](p["n_head"], p["d_k"], 0.1)(x)
        x = layers.Dense(p["mlp"])(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(p["dropout"])(x)
        x = layers.LayerNormalization()(x)
        for width in p["decoder"]:
            x = layers.Dense(width)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        outputs = layers.Dense(n_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="ltae")
