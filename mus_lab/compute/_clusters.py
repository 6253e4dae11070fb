"""Start or join a Dask cluster: local by default, Dask Gateway when an address is set."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import dask.config
from distributed import Client, LocalCluster

from mus_lab._settings import get_settings
from mus_lab.errors import ComputeError

__all__ = ["ClusterInfo", "close", "cluster", "describe", "get_client"]


@dataclass(frozen=True)
class ClusterInfo:
    """What a client is connected to, for operators and logs (see :func:`describe`).

    Attributes
    ----------
    kind
        ``"local"`` (started by :func:`get_client`), ``"gateway"`` or ``"external"``.
    scheduler
        The scheduler's address.
    dashboard
        The dashboard link of a local cluster, else ``None``.
    workers, threads
        Workers connected and their threads in total.
    memory_bytes
        Memory limit of all the workers together.

    Examples
    --------
    >>> print(ClusterInfo("local", "tcp://127.0.0.1:8786", None, 2, 4, 2 * 2**30))
    local Dask cluster at tcp://127.0.0.1:8786: 2 worker(s), 4 thread(s), 2.0 GiB
    """

    kind: Literal["local", "gateway", "external"]
    scheduler: str
    dashboard: str | None
    workers: int
    threads: int
    memory_bytes: int

    def __str__(self) -> str:
        gib = self.memory_bytes / 2**30
        dash = f", dashboard {self.dashboard}" if self.dashboard else ""
        return (
            f"{self.kind} Dask cluster at {self.scheduler}: {self.workers} worker(s), "
            f"{self.threads} thread(s), {gib:.1f} GiB{dash}"
        )


def _gateway_address(address: str | None) -> str | None:
    if address:
        return address
    settings = get_settings()
    if settings.gateway_address:
        return settings.gateway_address
    configured = dask.config.get("gateway.address", default=None)
    return str(configured) if configured else None


def _local_client(
    n_workers: int | None, threads_per_worker: int, memory_limit: str | None
) -> Client:
    settings = get_settings()
    workers = n_workers or settings.n_workers or max(1, os.cpu_count() or 1)
    try:
        local = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit or settings.memory_limit,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise ComputeError(
            f"Could not start a local Dask cluster with {workers} worker(s): {exc}. "
            "Lower n_workers or MUS_LAB_N_WORKERS, or free some memory."
        ) from exc
    return Client(local, set_as_default=True)


def _gateway_client(
    address: str,
    n_workers: int | None,
    auth: Any,
    cluster_options: Mapping[str, Any] | None,
) -> Client:
    try:
        from dask_gateway import Gateway
    except ImportError as exc:  # pragma: no cover - dask-gateway is a core dependency
        raise ComputeError("dask-gateway is not installed: pip install dask-gateway") from exc
    gateway = None
    try:
        gateway = Gateway(address, auth=auth)
        options = gateway.cluster_options()
        for key, value in (cluster_options or {}).items():
            options[key] = value
        gw_cluster = gateway.new_cluster(options)
    except Exception as exc:
        if gateway is not None:
            with contextlib.suppress(Exception):
                gateway.close()
        raise ComputeError(
            f"Could not get a cluster from the Dask Gateway at {address}: {exc}. "
            "Check the address (MUS_LAB_GATEWAY_ADDRESS or dask config 'gateway.address') "
            "and your credentials, or unset it to use a local cluster."
        ) from exc
    gw_cluster.scale(n_workers or 1)
    client = gw_cluster.get_client(set_as_default=True)
    # The client owns the cluster: closing it shuts the gateway cluster down.
    client._mus_lab_gateway_cluster = gw_cluster  # type: ignore[attr-defined]
    client._mus_lab_gateway = gateway  # type: ignore[attr-defined]
    return client


def get_client(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | None = None,
    gateway_auth: Any = None,
    cluster_options: Mapping[str, Any] | None = None,
    wait_for_workers: bool = True,
    timeout: float = 120.0,
) -> Client:
    """Return a Dask client: Dask Gateway when an address is configured, else a local cluster.

    Parameters
    ----------
    address
        Dask Gateway address (``http://host:port``). Defaults to
        ``MUS_LAB_GATEWAY_ADDRESS`` then Dask's own ``gateway.address`` configuration;
        when none is set, a local cluster bound to 127.0.0.1 is started.
        A ``tcp://`` or ``tls://`` address joins an existing scheduler.
    n_workers
        Workers to start (local) or to scale the gateway cluster to.
    threads_per_worker
        Threads per local worker.
    memory_limit
        Memory limit per local worker (default ``MUS_LAB_MEMORY_LIMIT`` or ``"auto"``).
    gateway_auth
        Authentication for the gateway (``"basic"``, ``"kerberos"``, ``"jupyterhub"`` or
        an auth object); dask-gateway's own default when ``None``.
    cluster_options
        Options for ``gateway.new_cluster`` (e.g. ``{"worker_memory": 4}``).
    wait_for_workers
        Block until at least one worker is up.
    timeout
        Seconds to wait for workers.

    Returns
    -------
    distributed.Client
        A client set as dask's default; close it with :func:`close` (or use :func:`cluster`).

    Raises
    ------
    ComputeError
        When the cluster cannot be started or reached, or no worker comes up in time.

    Examples
    --------
    >>> client = get_client(n_workers=1)
    >>> describe(client).kind
    'local'
    >>> close(client)
    """
    if address and address.startswith(("tcp://", "tls://")):
        try:
            client = Client(address, timeout=timeout, set_as_default=True)
        except Exception as exc:
            raise ComputeError(
                f"Could not reach the Dask scheduler at {address}: {exc}. "
                "Check that it is running, or call get_client() without an address."
            ) from exc
    else:
        gw = _gateway_address(address)
        if gw:
            client = _gateway_client(gw, n_workers, gateway_auth, cluster_options)
        else:
            client = _local_client(n_workers, threads_per_worker, memory_limit)
    if wait_for_workers:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception as exc:
            close(client)
            raise ComputeError(
                f"No Dask worker came up within {timeout:.0f} s: {exc}. "
                "Raise the timeout or check the cluster's logs."
            ) from exc
    return client


def close(client: Client) -> None:
    """Close a client from :func:`get_client` and shut down the cluster it started.

    Errors while closing are ignored: this is cleanup, safe to call twice.

    Parameters
    ----------
    client
        A client from :func:`get_client`; a gateway or local cluster it started is shut down
        too, an external scheduler is left running.
    """
    gw_cluster = getattr(client, "_mus_lab_gateway_cluster", None)
    local = client.cluster if isinstance(getattr(client, "cluster", None), LocalCluster) else None
    with contextlib.suppress(Exception):
        client.close()
    if gw_cluster is not None:
        with contextlib.suppress(Exception):
            gw_cluster.shutdown()
        with contextlib.suppress(Exception):
            gw_cluster.close()
    gateway = getattr(client, "_mus_lab_gateway", None)
    if gateway is not None:
        with contextlib.suppress(Exception):
            gateway.close()
    if local is not None:
        with contextlib.suppress(Exception):
            local.close()
    forget_closed_client()


def forget_closed_client() -> None:
    """Drop a global ``scheduler="dask.distributed"`` setting that no running client backs.

    ``Client(set_as_default=True)`` sets it and, on close, restores what it found at its
    start, unless another client is still open. Clients closed in another order than they
    opened (a worker's own client, a chain's steps ending after the client) can leave the
    setting behind with no client at all, and every later ``compute()`` of the process
    fails with "Requested dask.distributed scheduler but no Client active".
    """
    if dask.config.get("scheduler", None) not in ("dask.distributed", "distributed"):
        return
    from distributed.client import _get_global_client

    client = _get_global_client()
    if client is None or client.status not in ("running", "newly-created"):
        dask.config.config.pop("scheduler", None)


@contextlib.contextmanager
def cluster(address: str | None = None, **kwargs: Any) -> Iterator[Client]:
    """Context manager around :func:`get_client` that shuts the cluster down on exit.

    Parameters
    ----------
    address
        As for :func:`get_client`.
    **kwargs
        The keyword options of :func:`get_client` (``n_workers``, ``memory_limit`` ...).

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the :class:`distributed.Client`.

    Raises
    ------
    ComputeError
        As :func:`get_client`.

    Examples
    --------
    >>> with cluster(n_workers=1) as client:
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    client = get_client(address, **kwargs)
    try:
        yield client
    finally:
        close(client)


def describe(client: Client) -> ClusterInfo:
    """Summarise the cluster behind ``client`` (kind, scheduler, workers, threads, memory).

    Parameters
    ----------
    client
        A connected Dask client.

    Returns
    -------
    ClusterInfo
        Printable summary (``str(info)``) for operators and logs.

    Examples
    --------
    >>> with cluster(n_workers=1, threads_per_worker=2) as client:
    ...     info = describe(client)
    >>> info.kind, info.workers, info.threads
    ('local', 1, 2)
    """
    info = client.scheduler_info()
    workers = info.get("workers", {})
    if getattr(client, "_mus_lab_gateway_cluster", None) is not None:
        kind: Literal["local", "gateway", "external"] = "gateway"
    elif isinstance(getattr(client, "cluster", None), LocalCluster):
        kind = "local"
    else:
        kind = "external"
    return ClusterInfo(
        kind=kind,
        scheduler=str(client.scheduler.address if client.scheduler else "?"),
        dashboard=client.dashboard_link if kind == "local" else None,
        workers=len(workers),
        threads=sum(int(w.get("nthreads", 0)) for w in workers.values()),
        memory_bytes=sum(int(w.get("memory_limit", 0) or 0) for w in workers.values()),
    )
