"""Doctest namespace for ``pytest --doctest-modules mus_lab`` (run by ``make test``).

Every docstring example may use ``np``, ``xr`` and ``tiny``: a small generated sample scenario
(:func:`mus_lab.testing.tiny_scenario`, 64 px), made once per test session in a temporary folder.
"""

from __future__ import annotations

import pytest


class _LazyScenario:
    """Generates the tiny scenario on first attribute access (most doctests do not need it)."""

    def __init__(self, root) -> None:  # type: ignore[no-untyped-def]
        self._root = root
        self._scenario = None

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if self._scenario is None:
            from mus_lab.testing import tiny_scenario

            self._scenario = tiny_scenario(self._root)
        return getattr(self._scenario, name)


@pytest.fixture(scope="session")
def _tiny_root(tmp_path_factory):  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("doctest-scenario")


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace, _tiny_root):  # type: ignore[no-untyped-def]
    import numpy as np
    import xarray as xr

    doctest_namespace.update(np=np, xr=xr, tiny=_LazyScenario(_tiny_root))
