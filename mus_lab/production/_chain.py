"""The notebook chain that ``mus-lab demo`` runs, and helpers the curated notebooks share.

:data:`DEMO_CHAIN` is the one place that lists the curated notebooks run end to end; append a
notebook there when it joins the chain (its ``catalog`` parameter receives the demo catalog).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mus_lab.errors import NoCatalogError, NotebookNotFoundError

__all__ = [
    "DEMO_CHAIN",
    "NoCatalogError",
    "chain_paths",
    "dask_progress",
    "repository_path",
    "require_catalog",
]

#: The curated notebooks run by ``mus-lab demo``, in order (file names in ``notebooks/``).
DEMO_CHAIN: tuple[str, ...] = (
    "01_search_and_load.ipynb",
    "02_ard.ipynb",
    "03_landcover.ipynb",
    "04_fusion.ipynb",
    "05_flood_risk.ipynb",
)

_REPO = Path(__file__).resolve().parents[2]
#: Set in the kernels of batch runs (:mod:`mus_lab.production._figures`): no progress bars.
BATCH_KERNEL = False


def repository_path(name: str) -> Path:
    """A folder of the repository checkout (``notebooks``, ``apps``), or a clear error.

    Parameters
    ----------
    name
        The folder's name at the root of the repository.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    NotebookNotFoundError
        The package is not installed from a clone that has this folder.

    Example
    -------
    >>> repository_path("notebooks").name
    'notebooks'
    """
    path = _REPO / name
    if not path.is_dir():
        raise NotebookNotFoundError(
            f"No {name}/ folder at {path}: the notebooks and apps ship with the repository, "
            "not the wheel. Clone it and install with `pip install -e .` (or `make demo`)."
        )
    return path


def chain_paths(names: tuple[str, ...] = DEMO_CHAIN) -> list[Path]:
    """Paths of the chain's notebooks in the repository's ``notebooks/`` folder.

    Parameters
    ----------
    names
        Notebook file names, in order (default :data:`DEMO_CHAIN`).

    Returns
    -------
    list of Path
        The notebooks, in the same order.

    Raises
    ------
    NotebookNotFoundError
        The repository has no ``notebooks/`` folder, or a notebook of the chain is missing.

    Example
    -------
    >>> [p.name for p in chain_paths(("01_search_and_load.ipynb", "02_ard.ipynb"))]
    ['01_search_and_load.ipynb', '02_ard.ipynb']
    """
    folder = repository_path("notebooks")
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise NotebookNotFoundError(
            f"Notebook(s) {missing} of the chain are not in {folder}: fix DEMO_CHAIN in "
            "mus_lab/production/_chain.py or restore the files."
        )
    return paths


def require_catalog(catalog: str | os.PathLike[str] | None = None) -> str:
    """The catalog a notebook works on: ``catalog`` if given, else ``MUS_LAB_CATALOG``.

    Nothing is generated behind the user's back: without either, the notebook stops with a
    message saying how to make a catalog (``mus-lab sample``, ``make demo``) or point to one.

    Parameters
    ----------
    catalog
        A local catalog (``catalog.json`` or its folder) or a STAC API URL; ``None`` or ``""``
        to use the ``MUS_LAB_CATALOG`` setting.

    Returns
    -------
    str
        The catalog, as given.

    Raises
    ------
    NoCatalogError
        Neither ``catalog`` nor ``MUS_LAB_CATALOG`` is set.

    Example
    -------
    >>> require_catalog("https://earth-search.aws.element84.com/v1")
    'https://earth-search.aws.element84.com/v1'
    >>> require_catalog(tiny.catalog_path).endswith("catalog.json")
    True
    """
    if catalog:
        return os.fspath(catalog)
    from mus_lab import get_settings

    configured = get_settings().catalog
    if configured:
        return configured
    raise NoCatalogError(
        "No catalog to work on: the notebook's `catalog` parameter is None and MUS_LAB_CATALOG "
        "is not set. Point to one: `mus-lab run NOTEBOOK -p catalog PATH_OR_URL` (papermill: "
        '`-p catalog ...`), `catalog = "..."` in the parameters cell, or '
        "`export MUS_LAB_CATALOG=PATH_OR_URL` before starting Jupyter. Or make one: "
        "`mus-lab sample --out sample_scenario --size 256` (its catalog is "
        "sample_scenario/catalog/catalog.json), or `make demo` (then `make lab` uses its catalog)."
    )


@contextlib.contextmanager
def dask_progress(enabled: bool = True, *, min_seconds: float = 1.0) -> Iterator[None]:
    """Show a progress bar for the dask computations of the block (local schedulers).

    With a distributed client, its dashboard shows progress instead and nothing is printed;
    in the kernel of a batch run (``mus-lab run``) nobody watches the cell: nothing is printed.

    Parameters
    ----------
    enabled
        False: no progress bar (the block runs as is).
    min_seconds
        Computations shorter than this show no bar.

    Returns
    -------
    contextlib.AbstractContextManager
        A context manager around the computations.

    Example
    -------
    >>> import dask.array as da
    >>> with dask_progress(min_seconds=60):
    ...     total = int(da.ones(10, chunks=5).sum().compute())
    >>> total
    10
    """
    if not enabled or BATCH_KERNEL:
        yield
        return
    try:
        from distributed import get_client

        get_client()
    except (ImportError, ValueError):
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=min_seconds):
            yield
        return
    yield
