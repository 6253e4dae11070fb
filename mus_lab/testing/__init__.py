"""Test and teaching helpers: synthetic product writers, simulated sources, laziness checks.

Nothing here is a stage: no stage (``catalog`` ... ``flood``, ``publish``) imports this package
(import-linter checks it); :mod:`mus_lab.sample` and the tests may. Members are imported on
first use, so ``import mus_lab.testing`` stays light.

Members
-------
raise_if_dask_computes
    Context manager that fails when dask computes inside it (xarray's test idea).
tiny_scenario
    A small generated sample scenario, cached per folder (doctests, tutorials, tests).
separable_scenario
    The test suite's scenario (128 px, Dec-Jul, separable classes), also used by benchmarks.
write_rcm_product
    Writes an RCM level-1 product folder (product.xml, LUTs, noise, GeoTIFFs) from arrays.
write_rcm_ard_item
    Writes a small EODMS ``rcm-ard`` item (reconstructed from the real notebooks) with COGs.
FileServer, Fault
    A fault-injecting HTTP file server on 127.0.0.1 (Range, drops, 429/503, expiring tokens,
    202 "being prepared"), to test and benchmark downloads.
simulate_source
    A simulated land-cover source (class map + probabilities) of known accuracy, for fusion.
ReplayServer
    A local HTTP server replaying the recorded provider answers (STAC, CDSE OData and
    OpenSearch, EODMS, token endpoints, orders), for offline provider tests.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Fault",
    "FileServer",
    "ReplayServer",
    "raise_if_dask_computes",
    "separable_scenario",
    "simulate_source",
    "tiny_scenario",
    "write_rcm_ard_item",
    "write_rcm_product",
]

_WHERE = dict(
    Fault="_fileserver",
    FileServer="_fileserver",
    raise_if_dask_computes="_dask",
    tiny_scenario="_scenario",
    separable_scenario="_scenario",
    write_rcm_product="_rcm",
    write_rcm_ard_item="_rcm_ard",
    simulate_source="_fusion",
    ReplayServer="_replay",
)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"mus_lab.testing.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'mus_lab.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
