"""Land-cover classification from ARD time series (IOTA²-style): samples by polygon, models,
lazy prediction with confidence, and accuracy assessment."""

from mus_lab.classify._confusion import ConfusionMatrix

__all__ = ["ConfusionMatrix"]
