"""Production: runs, recorded outputs and provenance shared by notebooks, CLI and dashboards.

Batch runs of the curated notebooks (:func:`run_notebook`, :func:`run_chain`, papermill
underneath) write the executed notebook, an HTML copy and the recorded values (:func:`record`,
:func:`read_records`) into a run folder; :func:`run_demo` runs the whole :data:`DEMO_CHAIN`.

The demo (:func:`run_demo`) is imported on first use: ``record`` in a notebook must not pull
in the whole data stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mus_lab.production._chain import (
    DEMO_CHAIN,
    catalog_or_sample,
    chain_paths,
    dask_progress,
    repository_path,
)
from mus_lab.production._params import (
    NotebookParameter,
    check_parameters,
    notebook_parameters,
    parse_value,
)
from mus_lab.production._records import RECORD_MIMETYPE, read_records, record
from mus_lab.production._run import ChainReport, NotebookRun, run_chain, run_notebook

if TYPE_CHECKING:  # pragma: no cover
    from mus_lab.production._demo import DemoReport, run_demo
    from mus_lab.production._demo import s2_clear_ndvi_median as quicklook_ndvi

_LAZY = {
    "DemoReport": "DemoReport",
    "run_demo": "run_demo",
    "quicklook_ndvi": "s2_clear_ndvi_median",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("mus_lab.production._demo"), _LAZY[name])
    raise AttributeError(f"module 'mus_lab.production' has no attribute {name!r}")


__all__ = [
    "DEMO_CHAIN",
    "RECORD_MIMETYPE",
    "ChainReport",
    "DemoReport",
    "NotebookParameter",
    "NotebookRun",
    "catalog_or_sample",
    "chain_paths",
    "check_parameters",
    "dask_progress",
    "notebook_parameters",
    "parse_value",
    "quicklook_ndvi",
    "read_records",
    "record",
    "repository_path",
    "run_chain",
    "run_demo",
    "run_notebook",
]
