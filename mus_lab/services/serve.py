"""Start, stop and list every local service at once (``mus-lab serve``, ``make services``).

PostgreSQL + pgstac (:class:`~mus_lab.services.postgres.PostgresCluster`) comes first, in
``DIR/postgres``; then each service of :data:`SERVICES`, in order, in ``DIR/<name>``.

**The registry.** A service plugs in by one line in :data:`SERVICES` (its name and module)
and one function in its module::

    def service(folder: Path, context: ServeContext) -> Service | None: ...

(or a ``factory(module, folder, context)`` named in its entry, as for the WMS/WCS) returning
an object with ``start()``, ``stop()``, ``url`` and ``running`` (as
:class:`~mus_lab.services.stac_api.StacApiServer`; an optional ``token_file`` attribute is
shown, never the token), or ``None`` to be skipped (say, the WMS/WCS without a product
catalog). It must not start anything: ``stop`` and ``status`` call it too, to find what a
previous ``start`` left in ``folder``. :class:`ServeContext` gives the database URL, the
product catalog and the URLs of the services started before (``context.urls["stac-api"]``).
A module that is not there (not written yet, or its extra not installed) is skipped.

``start`` is all or nothing: when a service fails to start, what this call started is
stopped again and the error names the service. ``stop`` stops every registered service
found in ``DIR`` (latest first) and then PostgreSQL, and leaves no process behind.

Examples
--------
>>> import tempfile
>>> [s.name for s in SERVICES][:1]
['stac-api']
>>> status_services(tempfile.mkdtemp())
[ServiceStatus(name='postgres', state='absent', url=None, token_file=None, note=None)]
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from mus_lab.errors import MusLabError, ServiceError

__all__ = [
    "SERVICES",
    "ServeContext",
    "Service",
    "ServiceEntry",
    "ServiceStatus",
    "start_services",
    "status_services",
    "stop_services",
]


@dataclass(frozen=True)
class ServiceEntry:
    """One registered service.

    Attributes
    ----------
    name
        Its label and the name of its folder under the services folder.
    module
        The module defining ``service(folder, context)``.
    factory
        Instead: ``factory(module, folder, context)``, for a module without ``service``.
    """

    name: str
    module: str
    factory: Callable[[Any, Path, ServeContext], Service | None] | None = None


def _ows(module: Any, folder: Path, context: ServeContext) -> Service | None:
    """The WMS/WCS (MapServer) of the product catalog; skipped at start without a catalog."""
    if context.starting and context.catalog is None:
        return None
    return module.OwsServer(context.catalog, folder)  # type: ignore[no-any-return]


def _tiles(module: Any, folder: Path, context: ServeContext) -> Service | None:
    """XYZ/WMTS tiles and mosaics (titiler-pgstac) of what the STAC API holds.

    Assets are served from the product store (``DIR/products``) and the product catalog's
    folder (``--catalog``) only.
    """
    roots = [context.folder / "products"]
    if context.catalog is not None:
        roots.append(
            context.catalog.parent if context.catalog.suffix == ".json" else context.catalog
        )
    return module.TileServer(context.database_url, folder, roots=roots)  # type: ignore[no-any-return]


def _processes(module: Any, folder: Path, context: ServeContext) -> Service | None:
    """OGC API Processes + WPS: results into ``DIR/products``, published to the STAC API.

    Inputs may be read from the store and from the product catalog's folder (``--catalog``).
    """
    if not context.starting:
        return module.ProcessesServer(folder)  # type: ignore[no-any-return]
    api = context.urls.get("stac-api")
    config = module.ProcessConfig(
        context.folder / "products",
        allowed_roots=(context.catalog.parent,) if context.catalog else (),
        stac_api=api,
        stac_api_token_file=context.folder / "stac-api" / "token" if api else None,
    )
    return module.ProcessesServer(folder, config)  # type: ignore[no-any-return]


#: The services ``mus-lab serve`` starts after PostgreSQL, in this order (stopped in reverse).
SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("stac-api", "mus_lab.services.stac_api"),
    ServiceEntry("tiles", "mus_lab.services.tiles", factory=_tiles),
    ServiceEntry("ows", "mus_lab.services.ows", factory=_ows),
    ServiceEntry("processes", "mus_lab.services.processes", factory=_processes),
)


@dataclass(frozen=True)
class ServeContext:
    """What a service may need to start.

    Attributes
    ----------
    folder
        The services folder (each service has ``folder / name`` of its own).
    database_url
        The pgstac database (its password in a passfile, safe to print); ``""`` when
        PostgreSQL was never started there.
    urls
        Root URLs of the services started before this one, by name.
    catalog
        The product catalog (``catalog.json`` or its folder), if one was given.
    starting
        ``True`` for a start, ``False`` for a stop or a status.
    """

    folder: Path
    database_url: str
    urls: Mapping[str, str] = field(default_factory=dict)
    catalog: Path | None = None
    starting: bool = False


@runtime_checkable
class Service(Protocol):
    """What ``service(folder, context)`` returns."""

    @property
    def url(self) -> str | None: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> Any:
        """Start the service (in its folder, on 127.0.0.1).

        Returns
        -------
        Any
            The service itself.
        """
        ...

    def stop(self) -> None:
        """Stop it, leaving no process."""
        ...


@dataclass(frozen=True)
class ServiceStatus:
    """One line of ``mus-lab serve status``.

    Attributes
    ----------
    name
        ``"postgres"`` or a registered service's name.
    state
        ``"running"``, ``"stopped"`` (its folder is there), ``"absent"`` or ``"skipped"``
        (not started: see ``note``).
    url
        Where it answers (the database URL for PostgreSQL; no password in it).
    token_file
        The file holding its token, if it has one (the token itself is never shown).
    note
        Why it was skipped.
    """

    name: str
    state: Literal["running", "stopped", "absent", "skipped"]
    url: str | None = None
    token_file: str | None = None
    note: str | None = None

    def line(self) -> str:
        """The status as one printable line.

        Returns
        -------
        str
            ``name: state url (token in FILE)``.
        """
        text = f"{self.name}: {self.state}"
        if self.url and self.state == "running":
            text += f" {self.url}"
        if self.token_file and self.state == "running":
            text += f" (token in {self.token_file})"
        if self.note:
            text += f" ({self.note})"
        return text


def _available(entry: ServiceEntry) -> bool:
    try:
        return importlib.util.find_spec(entry.module) is not None
    except (ImportError, ValueError):
        return False


def _make(entry: ServiceEntry, context: ServeContext) -> Service | None:
    """The entry's service object, ``None`` when its module is absent or has no ``service``."""
    if not _available(entry):
        return None
    try:
        module = importlib.import_module(entry.module)
    except ImportError:  # its extra is not installed
        return None
    folder = context.folder / entry.name
    if entry.factory is not None:
        return entry.factory(module, folder, context)
    factory = getattr(module, "service", None)
    if factory is None:
        return None
    return factory(folder, context)  # type: ignore[no-any-return]


def _why(entry: ServiceEntry) -> str:
    if entry.name == "ows":
        return "no product catalog: give --catalog PATH"
    return f"{entry.module} cannot run here (its extra or its service() is missing)"


def _cluster(folder: Path, *, durable: bool = True) -> Any:
    from mus_lab.services.postgres import PostgresCluster

    return PostgresCluster(folder / "postgres", durable=durable)


def _database_url(cluster: Any) -> str:
    try:
        return str(cluster.url)
    except ServiceError:  # never started
        return ""


def _status(name: str, service: Any, folder: Path) -> ServiceStatus:
    token = getattr(service, "token_file", None)
    running = bool(service.running)
    state: Literal["running", "stopped", "absent"] = (
        "running" if running else "stopped" if folder.exists() else "absent"
    )
    return ServiceStatus(name, state, service.url, str(token) if token else None)


def start_services(
    folder: str | os.PathLike[str],
    *,
    catalog: str | os.PathLike[str] | None = None,
    durable: bool = True,
    only: tuple[str, ...] | None = None,
) -> list[ServiceStatus]:
    """Start PostgreSQL + pgstac and every registered service found, on 127.0.0.1.

    Parameters
    ----------
    folder
        The services folder (created when missing).
    catalog
        The product catalog for the WMS/WCS (without one it is skipped).
    durable
        ``False`` starts PostgreSQL without fsync (tests, benchmarks).
    only
        Names of the registered services to start (default: all found).

    Returns
    -------
    list of ServiceStatus
        PostgreSQL first, then each started (or skipped) service.

    Raises
    ------
    ServiceError
        PostgreSQL or a service failed to start (what this call started is stopped
        again), or ``only`` names an unknown service.
    """
    root = Path(folder).expanduser().absolute()
    known = {e.name for e in SERVICES}
    unknown = sorted(set(only or ()) - known)
    if unknown:
        raise ServiceError(
            f"Unknown service(s) {', '.join(unknown)}: choose among {', '.join(sorted(known))}."
        )
    root.mkdir(parents=True, exist_ok=True)
    cluster = _cluster(root, durable=durable)
    was_running = cluster.status() == "running"
    cluster.start()
    started: list[tuple[str, Service]] = []
    urls: dict[str, str] = {}
    done = [ServiceStatus("postgres", "running", cluster.url)]
    try:
        for entry in SERVICES:
            if only is not None and entry.name not in only:
                continue
            products = Path(catalog).expanduser().absolute() if catalog else None
            context = ServeContext(root, cluster.url, dict(urls), products, starting=True)
            service = _make(entry, context)
            if service is None:
                if _available(entry):
                    done.append(ServiceStatus(entry.name, "skipped", note=_why(entry)))
                continue
            was_up = service.running
            try:
                service.start()
            except MusLabError as exc:
                raise ServiceError(f"{entry.name} did not start: {exc}") from None
            if not was_up:
                started.append((entry.name, service))
            urls[entry.name] = str(service.url)
            done.append(_status(entry.name, service, root / entry.name))
    except BaseException:
        for _, service in reversed(started):
            with contextlib.suppress(Exception):
                service.stop()
        if not was_running:
            with contextlib.suppress(Exception):
                cluster.stop()
        raise
    return done


def stop_services(folder: str | os.PathLike[str]) -> list[ServiceStatus]:
    """Stop every registered service found in ``folder`` (latest first), then PostgreSQL.

    Parameters
    ----------
    folder
        The services folder given to :func:`start_services`.

    Returns
    -------
    list of ServiceStatus
        What is left (every state ``stopped`` or ``absent``).

    Raises
    ------
    ServiceError
        A service or PostgreSQL did not stop (the others are stopped all the same).
    """
    root = Path(folder).expanduser().absolute()
    cluster = _cluster(root)
    context = ServeContext(root, _database_url(cluster))
    errors: list[str] = []
    for entry in reversed(SERVICES):
        if not (root / entry.name).exists():
            continue
        try:
            service = _make(entry, context)
            if service is not None:
                service.stop()
        except MusLabError as exc:
            errors.append(f"{entry.name}: {exc}")
    if (root / "postgres").exists():
        try:
            cluster.stop()
        except MusLabError as exc:
            errors.append(f"postgres: {exc}")
    if errors:
        raise ServiceError("Some services did not stop: " + "; ".join(errors))
    return status_services(root)


def status_services(folder: str | os.PathLike[str]) -> list[ServiceStatus]:
    """Say which services of ``folder`` run, and where.

    Parameters
    ----------
    folder
        The services folder.

    Returns
    -------
    list of ServiceStatus
        PostgreSQL, then each registered service whose folder exists.

    Raises
    ------
    ServiceError
        A cluster is there but the PostgreSQL binaries are not installed.
    """
    root = Path(folder).expanduser().absolute()
    cluster = _cluster(root)
    state = cluster.status()
    url = _database_url(cluster)
    out = [ServiceStatus("postgres", state, url or None)]
    context = ServeContext(root, url)
    for entry in SERVICES:
        if not (root / entry.name).exists():
            continue
        service = _make(entry, context)
        if service is not None:
            out.append(_status(entry.name, service, root / entry.name))
    return out
