"""Local services the lab runs for itself: PostgreSQL + pgstac, the STAC API, tiles, WMS/WCS,
processes (OGC API Processes, WPS), notices.

Everything here starts from an explicit call (``make services`` / ``mus-lab serve``, which
start them all through the registry of :mod:`mus_lab.services.serve`, a test fixture,
:class:`~mus_lab.services.postgres.PostgresCluster`,
:class:`~mus_lab.services.stac_api.StacApiServer`, :class:`~mus_lab.services.tiles.TileServer`,
:class:`~mus_lab.services.ows.OwsServer`,
:class:`~mus_lab.services.processes.ProcessesServer`), binds 127.0.0.1 only and runs as an
ordinary user. It sits at the top layer beside ``cli``, ``production`` and ``ui``: no
stage imports it (the notices hear of new items through :mod:`mus_lab.catalog._events`,
:mod:`mus_lab.services.notices`). The submodules are imported on first use, so that
``python -m mus_lab.services.postgres`` runs its module once.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OwsServer",
    "PostgresCluster",
    "ProcessesServer",
    "StacApiServer",
    "TileServer",
    "find_postgres_bindir",
]


def __getattr__(name: str) -> Any:
    if name == "OwsServer":
        from mus_lab.services import ows

        return ows.OwsServer
    if name == "StacApiServer":
        from mus_lab.services import stac_api

        return stac_api.StacApiServer
    if name == "ProcessesServer":
        from mus_lab.services import processes

        return processes.ProcessesServer
    if name == "TileServer":
        from mus_lab.services import tiles

        return tiles.TileServer
    if name in __all__:
        from mus_lab.services import postgres

        return getattr(postgres, name)
    raise AttributeError(f"module 'mus_lab.services' has no attribute {name!r}")
