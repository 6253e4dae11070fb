"""mus_lab: a Jupyter-first Earth-observation lab.

Stages of the data flow, each a subpackage that only imports earlier ones::

    contracts -> catalog, cube, compute -> publish -> ard -> classify -> fusion -> flood

``contracts`` defines every product (collections, variables, codes, legends); ``publish``
writes and opens products; ``recipes`` search catalogs and chain the stages; on top sit
``production`` (runs and records), ``ui`` (dashboards) and ``cli``. ``sample`` (the generated
scenario) and ``testing`` (synthetic writers, test helpers) stay outside the stages.
import-linter checks these layers (``make test``).
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
    "ard",
    "catalog",
    "classify",
    "compute",
    "contracts",
    "cube",
    "flood",
    "fusion",
    "get_settings",
    "production",
    "publish",
    "recipes",
    "sample",
    "set_options",
    "testing",
    "ui",
]

_SUBPACKAGES = {
    "contracts",
    "recipes",
    "testing",
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
    from mus_lab import (
        ard,
        catalog,
        classify,
        compute,
        contracts,
        cube,
        flood,
        fusion,
        production,
        publish,
        recipes,
        sample,
        testing,
        ui,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mus_lab.{name}")
    raise AttributeError(f"module 'mus_lab' has no attribute {name!r}")
