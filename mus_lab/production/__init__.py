"""Production: runs, recorded outputs and provenance shared by notebooks, CLI and dashboards.

Batch runs of the curated notebooks (:func:`run_notebook`, :func:`run_chain`, papermill
underneath) write the executed notebook, an HTML copy and the recorded values (:func:`record`,
:func:`read_records`) into a run folder; :func:`run_demo` runs the whole :data:`DEMO_CHAIN`.
Both copies show every figure offline: the batch kernel gives each HoloViews figure a static
picture (:func:`static_png`, :func:`enable_static_figures`) and the HTML copy loads nothing from
the network (:func:`export_html`). A notebook given no catalog stops with
:class:`NoCatalogError` (:func:`require_catalog`).

Production chains at tile scale (:func:`load_chain`, :func:`run_tiles`, :func:`retry`,
:func:`status`, :func:`cancel`, :func:`history`, :func:`prune`, :func:`run_view`): a YAML chain of steps over a tiling of an
area, run as step x tile tasks on the Dask cluster and recorded in a job registry
(:class:`Registry`: SQLite by default, PostgreSQL when the chain file or ``MUS_LAB_REGISTRY`` names one).

The demo (:func:`run_demo`) and the chain runner are imported on first use: ``record`` in a notebook must not pull
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
    from mus_lab.production._chainfile import (
        ChainSpec,
        IntermediatesSpec,
        StepSpec,
        load_chain,
    )
    from mus_lab.production._demo import DemoReport, run_demo
    from mus_lab.production._demo import s2_clear_ndvi_median as quicklook_ndvi
    from mus_lab.production._registry import Registry
    from mus_lab.production._runview import run_grid, run_view
    from mus_lab.production._tilerun import (
        RunReport,
        cancel,
        check_coverage,
        history,
        open_registry,
        prune,
        retry,
        run_tiles,
        status,
    )
    from mus_lab.production._tilesteps import (
        INTERMEDIATES,
        StepKind,
        TileTask,
        register_step,
        step_kinds,
    )

_DEMO = "mus_lab.production._demo"
_TILES = "mus_lab.production._tilerun"
_LAZY = {
    "DemoReport": (_DEMO, "DemoReport"),
    "run_demo": (_DEMO, "run_demo"),
    "quicklook_ndvi": (_DEMO, "s2_clear_ndvi_median"),
    "ChainSpec": ("mus_lab.production._chainfile", "ChainSpec"),
    "StepSpec": ("mus_lab.production._chainfile", "StepSpec"),
    "IntermediatesSpec": ("mus_lab.production._chainfile", "IntermediatesSpec"),
    "INTERMEDIATES": ("mus_lab.production._tilesteps", "INTERMEDIATES"),
    "prune": (_TILES, "prune"),
    "load_chain": ("mus_lab.production._chainfile", "load_chain"),
    "Registry": ("mus_lab.production._registry", "Registry"),
    "TileTask": ("mus_lab.production._tilesteps", "TileTask"),
    "StepKind": ("mus_lab.production._tilesteps", "StepKind"),
    "register_step": ("mus_lab.production._tilesteps", "register_step"),
    "step_kinds": ("mus_lab.production._tilesteps", "step_kinds"),
    "RunReport": (_TILES, "RunReport"),
    "run_tiles": (_TILES, "run_tiles"),
    "retry": (_TILES, "retry"),
    "status": (_TILES, "status"),
    "cancel": (_TILES, "cancel"),
    "history": (_TILES, "history"),
    "check_coverage": (_TILES, "check_coverage"),
    "open_registry": (_TILES, "open_registry"),
    "run_grid": ("mus_lab.production._runview", "run_grid"),
    "run_view": ("mus_lab.production._runview", "run_view"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mus_lab.production' has no attribute {name!r}")


__all__ = [
    "DEMO_CHAIN",
    "INTERMEDIATES",
    "RECORD_MIMETYPE",
    "ChainReport",
    "ChainSpec",
    "DemoReport",
    "IntermediatesSpec",
    "NoCatalogError",
    "NotebookParameter",
    "NotebookRun",
    "Registry",
    "RunReport",
    "StepKind",
    "StepSpec",
    "TileTask",
    "cancel",
    "chain_paths",
    "check_coverage",
    "check_parameters",
    "dask_progress",
    "enable_static_figures",
    "export_html",
    "history",
    "load_chain",
    "notebook_parameters",
    "open_registry",
    "parse_value",
    "prune",
    "quicklook_ndvi",
    "read_records",
    "record",
    "register_step",
    "repository_path",
    "require_catalog",
    "retry",
    "run_chain",
    "run_demo",
    "run_grid",
    "run_notebook",
    "run_tiles",
    "run_view",
    "static_png",
    "status",
    "step_kinds",
]
