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


def _xdist_group(item: pytest.Item) -> str:
    """The pytest-xdist group of a test: its module, or the folder sharing one costly fixture."""
    path = item.nodeid.split("::", 1)[0]
    if path.startswith(("tests/ui/", "tests/notebooks/test_06")):
        return "products"  # the session's `product_catalog` (and browser)
    if path.startswith(("tests/notebooks/test_03", "tests/notebooks/test_04")):
        return "notebook-landcover"  # notebook 04 fuses what `landcover_run` (notebook 03) made
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (``make test``), a module runs on one worker."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_xdist_group(item)))
