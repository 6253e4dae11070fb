"""Runtime settings, validated in one place and read lazily (never at import time).

Every setting can come from an environment variable (``MUS_LAB_<NAME>``) or be
changed for a block of code with :func:`set_options`, like ``xarray.set_options``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["Settings", "get_settings", "resolve_chunks", "set_options"]


@dataclass(frozen=True)
class Settings:
    """mus_lab runtime settings.

    Attributes
    ----------
    real_data:
        Folder with the real test data (``MUS_LAB_REAL_DATA``, default ``../shared/data``).
    gateway_address:
        Dask Gateway address; when set, :func:`mus_lab.compute.get_client` asks the
        gateway for a cluster instead of starting a local one (``MUS_LAB_GATEWAY_ADDRESS``).
    n_workers:
        Workers of the local cluster (``MUS_LAB_N_WORKERS``, default: one per core).
    memory_limit:
        Memory limit per local worker, as Dask understands it (``MUS_LAB_MEMORY_LIMIT``).
    chunk_size:
        Default spatial chunk size in pixels for lazy cubes (``MUS_LAB_CHUNK_SIZE``).
    http_timeout:
        Seconds before a STAC API request is abandoned (``MUS_LAB_HTTP_TIMEOUT``).
    catalog:
        The catalog (local path or STAC API URL) that the dashboards show and that notebooks
        use when their ``catalog`` parameter is left at ``None`` (``MUS_LAB_CATALOG``).
    tiles:
        Root URL of the tile service (``mus_lab.services.tiles``) the dashboards draw their
        maps from, over a true-colour Sentinel-2 mosaic (``MUS_LAB_TILES``); unset: they draw
        the product rasters themselves.
    sen2cor, maja:
        Executables of the external L1C -> L2A processors (``MUS_LAB_SEN2COR``,
        ``MUS_LAB_MAJA``); unset: ``L2A_Process`` / ``maja`` on ``PATH``
        (:mod:`mus_lab.ard.external`).
    registry:
        The job registry of production chains that name none (``MUS_LAB_REGISTRY``): a
        ``postgresql://`` URL (e.g. the holdings database) or an SQLite file; unset:
        ``<output>/registry.sqlite`` of each chain.
    """

    real_data: Path = Path("../shared/data")
    gateway_address: str | None = None
    n_workers: int | None = None
    memory_limit: str = "auto"
    chunk_size: int = 2048
    http_timeout: float = 30.0
    catalog: str | None = None
    tiles: str | None = None
    sen2cor: str | None = None
    maja: str | None = None
    registry: str | None = None


_overrides: dict[str, Any] = {}


def _from_env() -> Settings:
    base = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = os.environ.get(f"MUS_LAB_{f.name.upper()}")
        if raw is None or raw == "":
            continue
        current = getattr(base, f.name)
        if isinstance(current, Path) or f.name == "real_data":
            values[f.name] = Path(raw)
        elif isinstance(current, bool):
            values[f.name] = raw.lower() in {"1", "true", "yes"}
        elif isinstance(current, int) or f.name == "n_workers":
            values[f.name] = int(raw)
        elif isinstance(current, float):
            values[f.name] = float(raw)
        else:
            values[f.name] = raw
    return replace(base, **values)


def get_settings() -> Settings:
    """Return the settings in force: defaults, then environment, then :func:`set_options`.

    Returns
    -------
    Settings
        A frozen snapshot; read it again after changing the environment or the options.

    Examples
    --------
    >>> with set_options(http_timeout=5.0):
    ...     get_settings().http_timeout
    5.0
    """
    return replace(_from_env(), **_overrides)


@contextlib.contextmanager
def set_options(**kwargs: Any) -> Iterator[Settings]:
    """Override settings for a ``with`` block.

    Parameters
    ----------
    **kwargs
        Setting names (the fields of :class:`Settings`) and their values for the block.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the :class:`Settings` in force inside the block; the previous ones come back
        on exit.

    Raises
    ------
    MusLabError
        An unknown setting name (the message lists the known ones).

    Examples
    --------
    >>> from mus_lab import set_options
    >>> with set_options(chunk_size=512) as s:
    ...     s.chunk_size
    512
    """
    known = {f.name for f in fields(Settings)}
    unknown = set(kwargs) - known
    if unknown:
        from mus_lab.errors import MusLabError

        raise MusLabError(f"Unknown option(s) {sorted(unknown)}: choose among {sorted(known)}.")
    saved = dict(_overrides)
    _overrides.update(kwargs)
    try:
        yield get_settings()
    finally:
        _overrides.clear()
        _overrides.update(saved)


def resolve_chunks(chunks: int | None = None) -> int:
    """The spatial chunk size to use: ``chunks`` when given, else the setting ``chunk_size``.

    Every stage function that takes ``chunks=None`` resolves it here, so ``MUS_LAB_CHUNK_SIZE``
    and :func:`set_options` reach every stage.

    Parameters
    ----------
    chunks
        Chunk side in pixels, or ``None`` for the setting.

    Returns
    -------
    int
        A positive chunk side in pixels.

    Raises
    ------
    MusLabError
        ``chunks`` is not a positive integer.

    Examples
    --------
    >>> resolve_chunks(256)
    256
    >>> with set_options(chunk_size=1024):
    ...     resolve_chunks()
    1024
    """
    value = get_settings().chunk_size if chunks is None else chunks
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        from mus_lab.errors import MusLabError

        raise MusLabError(
            f"chunks={value!r}: give a positive number of pixels (e.g. 1024), or None for the "
            "setting chunk_size (MUS_LAB_CHUNK_SIZE)."
        )
    return int(value)
