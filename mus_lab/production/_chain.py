"""The notebook chain that ``mus-lab demo`` runs, and helpers the curated notebooks share.

:data:`DEMO_CHAIN` is the one place that lists the curated notebooks run end to end; append a
notebook there when it joins the chain (its ``catalog`` parameter receives the demo catalog).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mus_lab.errors import NotebookNotFoundError

__all__ = ["DEMO_CHAIN", "catalog_or_sample", "chain_paths", "dask_progress", "repository_path"]

#: The curated notebooks run by ``mus-lab demo``, in order (file names in ``notebooks/``).
DEMO_CHAIN: tuple[str, ...] = (
    "01_search_and_load.ipynb",
    "02_ard.ipynb",
    "03_landcover.ipynb",
    "04_fusion.ipynb",
    "05_flood_risk.ipynb",
)

_REPO = Path(__file__).resolve().parents[2]


def repository_path(name: str) -> Path:
    """A folder of the repository checkout (``notebooks``, ``apps``), or a clear error.

    Raises
    ------
    NotebookNotFoundError
        The package is not installed from a clone that has this folder.
    """
    path = _REPO / name
    if not path.is_dir():
        raise NotebookNotFoundError(
            f"No {name}/ folder at {path}: the notebooks and apps ship with the repository, "
            "not the wheel. Clone it and install with `pip install -e .` (or `make demo`)."
        )
    return path


def chain_paths(names: tuple[str, ...] = DEMO_CHAIN) -> list[Path]:
    """Paths of the chain's notebooks in the repository's ``notebooks/`` folder."""
    folder = repository_path("notebooks")
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise NotebookNotFoundError(
            f"Notebook(s) {missing} of the chain are not in {folder}: fix DEMO_CHAIN in "
            "mus_lab/production/_chain.py or restore the files."
        )
    return paths


def catalog_or_sample(
    catalog: str | os.PathLike[str] | None = None,
    *,
    sample_dir: str | os.PathLike[str] = "sample_scenario",
    size: int = 256,
) -> str:
    """The catalog a notebook works on: ``catalog`` if given, else ``MUS_LAB_CATALOG``,
    else the sample scenario in ``sample_dir`` (generated there the first time).

    Example
    -------
    >>> catalog_or_sample("https://earth-search.aws.element84.com/v1")
    'https://earth-search.aws.element84.com/v1'
    """
    if catalog:
        return os.fspath(catalog)
    from mus_lab import get_settings, sample

    configured = get_settings().catalog
    if configured:
        return configured
    folder = Path(sample_dir)
    if (folder / "scenario.json").exists():
        return str(sample.Scenario.open(folder).catalog_path)
    return str(sample.generate(folder, size=size, progress=True).catalog_path)


@contextlib.contextmanager
def dask_progress(enabled: bool = True, *, min_seconds: float = 1.0) -> Iterator[None]:
    """Show a progress bar for the dask computations of the block (local schedulers).

    With a distributed client, its dashboard shows progress instead and nothing is printed.
    """
    if not enabled:
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
