"""TempCNN (Pelletier et al. 2019) with tensorflow/keras, behind the :class:`Classifier` protocol.

Architecture (METHODS.md section 4): 3 x [Conv1D 64 filters, kernel 5, batch normalisation,
ReLU, dropout 0.5], flatten, dense 256 + batch normalisation + ReLU + dropout 0.5, softmax;
Adam, learning rate 1e-3, batch 32. Input ``(time, variable)``, standardised per variable
(mean and standard deviation over all training pixels and dates). Training (class-balanced
batches, augmentation, learning-rate schedule, early stopping on held-out polygons) is shared
with L-TAE (:mod:`mus_lab.classify._deep`).

tensorflow is imported only when a TempCNN is trained or loaded. Seeds: ``seed`` seeds Python,
numpy and tensorflow (``keras.utils.set_random_seed``), which is global state.
"""

from __future__ import annotations

from typing import Any, Literal

from mus_lab.classify._deep import TRAINING_DEFAULTS, _keras, _SeriesNetwork

__all__ = ["TempCNN"]


class TempCNN(_SeriesNetwork):
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
    sampling_power
        Batches draw each class with a probability proportional to its pixel count raised to
        ``1 - sampling_power``: 0 samples as the pixels come, 1 every class equally often.
    noise
        Standard deviation of the Gaussian noise added to the standardised inputs of each
        batch (augmentation; 0 for none).
    shift
        Largest random shift of a series, in dates (augmentation; 0 for none).
    lr_schedule
        ``"plateau"`` halves the learning rate when the validation loss stalls for
        ``patience // 2`` epochs; ``"constant"`` keeps it.
    seed
        Seed of the split, initial weights, batches and augmentation.
    verbose
        Keras verbosity.

    Raises
    ------
    ModelError
        ``epochs`` or ``batch_size`` below 1, or another training parameter out of range.

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
        epochs: int = TRAINING_DEFAULTS["epochs"],
        batch_size: int = TRAINING_DEFAULTS["batch_size"],
        learning_rate: float = TRAINING_DEFAULTS["learning_rate"],
        filters: int = 64,
        kernel_size: int = 5,
        dense: int = 256,
        dropout: float = 0.5,
        patience: int = TRAINING_DEFAULTS["patience"],
        warmup: int = TRAINING_DEFAULTS["warmup"],
        bn_momentum: float = 0.9,
        validation_ratio: float = TRAINING_DEFAULTS["validation_ratio"],
        class_weight: Literal["balanced"] | None = TRAINING_DEFAULTS["class_weight"],
        sampling_power: float = TRAINING_DEFAULTS["sampling_power"],
        noise: float = TRAINING_DEFAULTS["noise"],
        shift: int = TRAINING_DEFAULTS["shift"],
        lr_schedule: Literal["constant", "plateau"] = TRAINING_DEFAULTS["lr_schedule"],
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
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
                "sampling_power": float(sampling_power),
                "noise": float(noise),
                "shift": int(shift),
                "lr_schedule": lr_schedule,
                "seed": int(seed),
                "verbose": int(verbose),
            }
        )

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
