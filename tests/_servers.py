"""Real servers for the tests, bound to 127.0.0.1, stopped at teardown and by a watchdog."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _watchdog_cmd(seconds: int) -> list[str]:
    # A server left behind by a crashed test run stops by itself.
    return ["timeout", str(seconds)] if shutil.which("timeout") else []


def _wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200 (the proxy routes only once it has its table)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@contextlib.contextmanager
def dask_gateway_server(
    workdir: Path,
    lifetime_s: int = 1200,
    environment: dict[str, str] | None = None,
    worker_memory_gib: float = 4.0,
) -> Iterator[str]:
    """Run a real ``dask-gateway-server`` with the UnsafeLocalBackend on 127.0.0.1.

    Never the plain LocalBackend: run as root it changes the owner of ``/``.
    ``environment`` is given to the clusters' schedulers and workers, with the repository on
    their ``PYTHONPATH`` (steps defined in the tests' modules import there as in pytest).
    """
    environment = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(environment or {})}
    api_port, proxy_port = free_port(), free_port()
    config = workdir / "dask_gateway_config.py"
    config.write_text(
        f"""
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.LocalBackend.clusters_directory = {str(workdir / "clusters")!r}
c.ClusterConfig.scheduler_cmd = [{str(BIN / "dask")!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{str(BIN / "dask")!r}, "worker"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "{float(worker_memory_gib)}G"
c.ClusterConfig.idle_timeout = 300
c.ClusterConfig.environment = {environment!r}
"""
    )
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    # the backend starts schedulers and workers with its own environment too: an outer
    # PYTHONPATH would replace the repository's there
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (environment["PYTHONPATH"], os.environ.get("PYTHONPATH")) if p
    )
    log = (workdir / "gateway.log").open("w")
    proc = subprocess.Popen(
        [*_watchdog_cmd(lifetime_s), str(BIN / "dask-gateway-server"), "-f", str(config)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_for_port(proxy_port, proc=proc)
        wait_for_port(api_port, proc=proc)
        _wait_for_http(f"http://127.0.0.1:{proxy_port}/api/health", proc)
        yield f"http://127.0.0.1:{proxy_port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        _kill_left_in(workdir / "clusters")


def _kill_left_in(folder: Path) -> None:
    """Kill the processes still running in ``folder`` (a scheduler whose gateway died)."""
    import psutil

    prefix = str(folder.resolve())
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if p.cwd().startswith(prefix):
                p.kill()
