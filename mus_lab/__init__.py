"""mus_lab: a Jupyter-first Earth-observation lab.

Stages of the data flow, each a subpackage that only imports earlier ones::

    catalog -> cube -> ard -> classify -> fusion -> flood -> publish

beside ``compute`` (Dask clusters), ``production`` (runs and records),
``sample`` (the generated scenario) and ``cli``.
Subpackages are imported on first use so that ``import mus_lab`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mus_lab._settings import get_settings, set_options
from mus_lab.errors import MusLabError, MusLabWarning

__version__ = "0.1.0"

__all__ = [
    "MusLabError",
    "MusLabWarning",
    "__version__",
    "catalog",
    "compute",
    "cube",
    "get_settings",
    "production",
    "sample",
    "set_options",
]

_SUBPACKAGES = {
    "catalog",
    "compute",
    "cube",
    "production",
    "sample",
    "ard",
    "classify",
    "fusion",
    "flood",
    "publish",
    "ui",
}

if TYPE_CHECKING:  # pragma: no cover
    from mus_lab import catalog, compute, cube, production, sample


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mus_lab.{name}")
    raise AttributeError(f"module 'mus_lab' has no attribute {name!r}")
