"""Production: runs, recorded outputs and provenance shared by notebooks, CLI and dashboards.

Batch runs of the curated notebooks (:func:`run_notebook`, :func:`run_chain`, papermill
underneath) write the executed notebook, an HTML copy and the recorded values (:func:`record`,
:func:`read_records`) into a run folder; :func:`run_demo` runs the whole :data:`DEMO_CHAIN`.
Both copies show every figure offline: the batch kernel gives each HoloViews figure a static
picture (:func:`static_png`, :func:`enable_static_figures`) and the HTML copy loads nothing from
the network (:func:`export_html`). A notebook given no catalog stops with
:class:`NoCatalogError` (:func:`require_catalog`).

The demo (:func:`run_demo`) is imported on first use: ``record`` in a notebook must not pull
in the whole data stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mus_lab.production._chain import (
    DEMO_CHAIN,
    NoCatalogError,
    chain_paths,
    dask_progress,
    repository_path,
    require_catalog,
)
from mus_lab.production._figures import enable_static_figures, static_png
from mus_lab.production._offline import export_html
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
    "NoCatalogError",
    "NotebookParameter",
    "NotebookRun",
    "chain_paths",
    "check_parameters",
    "dask_progress",
    "enable_static_figures",
    "export_html",
    "notebook_parameters",
    "parse_value",
    "quicklook_ndvi",
    "read_records",
    "record",
    "repository_path",
    "require_catalog",
    "run_chain",
    "run_demo",
    "run_notebook",
    "static_png",
]
