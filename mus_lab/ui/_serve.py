"""Serving the dashboards on 127.0.0.1: the flood-risk Voila app and the land-cover Panel app.

One place builds the server commands, used by ``mus-lab dashboards``, ``make dashboards`` and
the browser tests. Voila gets the ``mus_lab`` template (``apps/_jupyter``: the lab template
without its CDN stylesheet links) and only the JupyterLab extensions the page needs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from mus_lab.errors import ProductionError

__all__ = [
    "APPS",
    "AppSpec",
    "DashboardServer",
    "app_command",
    "free_port",
    "hub_server_config",
    "serve",
    "write_hub_server_config",
]


@dataclass(frozen=True)
class AppSpec:
    """A dashboard: how it is served and where its file is (relative to the repository).

    Parameters
    ----------
    title : str
        Name shown to people (``"Flood-risk dashboard (Voila)"``).
    kind : {"voila", "panel"}
        Served by ``voila`` (a notebook) or ``panel serve`` (a script).
    path : str
        The app file, relative to the repository root.

    Raises
    ------
    None
        A record; :data:`APPS` lists the dashboards.

    Examples
    --------
    >>> APPS["landcover_explorer"].kind, APPS["flood_risk"].path
    ('panel', 'apps/flood_risk/app.ipynb')
    """

    title: str
    kind: Literal["voila", "panel"]
    path: str


APPS: dict[str, AppSpec] = {
    "flood_risk": AppSpec("Flood-risk dashboard (Voila)", "voila", "apps/flood_risk/app.ipynb"),
    "landcover_explorer": AppSpec(
        "Land-cover explorer (Panel)", "panel", "apps/landcover_explorer/app.py"
    ),
}

#: JupyterLab extensions kept out of the Voila page: they need JupyterLab itself and would
#: fail there with console errors (HoloViews' JupyterLab renderer, Voila's preview button).
VOILA_DENIED_EXTENSIONS = ("@pyviz/jupyterlab_pyviz", "@voila-dashboards/jupyterlab-preview")

_REPO = Path(__file__).resolve().parents[2]


def hub_server_config() -> dict[str, Any]:
    """The Jupyter server settings that keep the dashboards' extension routes offline.

    On a hub the dashboards are pages of the user's Jupyter server (``/voila/render/...``,
    ``/panel-preview/render/...``), not of ``mus-lab dashboards``. These settings give Voila's
    server extension what :func:`app_command` gives the ``voila`` command: the ``mus_lab``
    template (found on ``JUPYTER_PATH``, which ``binder/start`` sets) and the extension denylist.
    ``mathjax_url``/``mathjax_config`` are set to ``None`` in the server's Tornado settings: left
    unset there, Voila's page configuration falls back to MathJax on ``cdnjs.cloudflare.com``
    and its page loads it (the ``voila`` command sets them to ``None`` itself, which turns
    MathJax off in the page).

    Returns
    -------
    dict
        Traitlets configuration, as written to ``jupyter_server_config.json``.

    Examples
    --------
    >>> hub_server_config()["VoilaConfiguration"]["template"]
    'mus_lab'
    """
    return {
        "ServerApp": {"tornado_settings": {"mathjax_url": None, "mathjax_config": None}},
        "VoilaConfiguration": {
            "template": "mus_lab",
            "extension_denylist": list(VOILA_DENIED_EXTENSIONS),
        },
    }


def write_hub_server_config(config_dir: str | os.PathLike[str]) -> Path:
    """Merge :func:`hub_server_config` into ``config_dir/jupyter_server_config.json``.

    A ``jupyter_server_config.d/*.json`` file would not do: Jupyter Server reads only the
    ``ServerApp.jpserver_extensions`` key of those files. Settings already in the file are
    kept, except the ones :func:`hub_server_config` sets (``tornado_settings`` entries merged).
    ``binder/postBuild`` calls this through ``binder/jupyter_config.py``.

    Parameters
    ----------
    config_dir
        A Jupyter configuration folder (``<sys.prefix>/etc/jupyter`` in the image).

    Returns
    -------
    Path
        The configuration file written.

    Raises
    ------
    ProductionError
        The existing file is not a JSON object.

    Examples
    --------
    >>> import json, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "jupyter_server_config.json").write_text('{"ServerApp": {"port": 9999}}')
    >>> config = json.loads(write_hub_server_config(folder).read_text())
    >>> config["ServerApp"]["port"], config["ServerApp"]["tornado_settings"]["mathjax_url"]
    (9999, None)
    """
    path = Path(config_dir) / "jupyter_server_config.json"
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as err:
            raise ProductionError(
                f"{path} is not valid JSON ({err}): fix or remove it, then run again."
            ) from err
        if not isinstance(config, dict):
            raise ProductionError(f"{path} does not hold a JSON object: fix or remove it.")
    for section, values in hub_server_config().items():
        merged = dict(config.get(section) or {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
        config[section] = merged
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now.

    Returns
    -------
    int
        A port the system just handed out (free now; another process may take it later).

    Examples
    --------
    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app_file(name: str) -> Path:
    if name not in APPS:
        raise ProductionError(f"Unknown dashboard {name!r}: choose among {list(APPS)}.")
    path = _REPO / APPS[name].path
    if not path.is_file():
        raise ProductionError(
            f"{path} is missing: the dashboards ship with the repository; run them from a clone "
            "installed with `pip install -e .` (or `make dashboards`)."
        )
    return path


def app_command(name: str, port: int) -> list[str]:
    """The command line that serves dashboard ``name`` on ``127.0.0.1:port``.

    Parameters
    ----------
    name : str
        A key of :data:`APPS` (``"flood_risk"`` or ``"landcover_explorer"``).
    port : int
        TCP port on 127.0.0.1.

    Returns
    -------
    list of str
        ``python -m voila ...`` (the ``mus_lab`` template, kernel preheated, JupyterLab
        extensions the page cannot use denied) or ``python -m panel serve ...`` (websocket
        origins of 127.0.0.1 and localhost on that port), with this interpreter.

    Raises
    ------
    ProductionError
        Unknown dashboard, or its app file is missing (not a clone of the repository).

    Examples
    --------
    >>> command = app_command("landcover_explorer", 5006)
    >>> command[1:4], "--port=5006" in command
    (['-m', 'panel', 'serve'], True)
    """
    path = _app_file(name)
    if APPS[name].kind == "voila":
        return [
            sys.executable,
            "-m",
            "voila",
            str(path),
            f"--port={port}",
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            "--template=mus_lab",
            # Run the notebook before the first visit: the page opens at once.
            "--preheat_kernel=True",
            *(f"--VoilaConfiguration.extension_denylist={e}" for e in VOILA_DENIED_EXTENSIONS),
        ]
    origin = f"127.0.0.1:{port}"
    return [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(path),
        "--address=127.0.0.1",
        f"--port={port}",
        f"--allow-websocket-origin={origin}",
        f"--allow-websocket-origin=localhost:{port}",
        "--num-procs=1",
    ]


def _environment(catalog: str | None, tiles: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if tiles:
        env["MUS_LAB_TILES"] = tiles
    share = str(_REPO / "apps" / "_jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (share, env.get("JUPYTER_PATH")) if p)
    if catalog:
        env["MUS_LAB_CATALOG"] = (
            catalog if catalog.startswith(("http://", "https://")) else str(Path(catalog).resolve())
        )
    return env


@dataclass
class DashboardServer:
    """A running dashboard server (a child process) and its URL, as :func:`serve` starts it.

    Parameters
    ----------
    name : str
        The dashboard's key in :data:`APPS`.
    title : str
        Its title (for messages).
    url : str
        Where the page is (``http://127.0.0.1:<port>/`` or ``.../app``).
    port : int
        TCP port on 127.0.0.1.
    process : subprocess.Popen
        The server process.
    log_path : pathlib.Path
        File receiving the server's output.

    Raises
    ------
    None
        Its :meth:`wait_ready` raises :class:`~mus_lab.errors.ProductionError`.
    """

    name: str
    title: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None

    def log_tail(self, n: int = 40) -> str:
        """The last lines the server wrote (what to show when it failed).

        Parameters
        ----------
        n : int, optional
            How many lines (default 40).

        Returns
        -------
        str
            Those lines joined by newlines; ``""`` when the log cannot be read.
        """
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout: float = 90.0) -> DashboardServer:
        """Wait until the server accepts connections.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait (default 90: Voila preheats a kernel before it listens).

        Returns
        -------
        DashboardServer
            This server, ready: ``serve(...).wait_ready().url`` opens.

        Raises
        ------
        ProductionError
            The server exited or did not listen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ProductionError(
                    f"The {self.title} server stopped at start (exit code {self.process.returncode}):"
                    f"\n{self.log_tail()}"
                )
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.25)
        self.stop()
        raise ProductionError(
            f"The {self.title} server did not listen on port {self.port} within {timeout:.0f} s:"
            f"\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s)."""
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def serve(
    name: str,
    *,
    port: int | None = None,
    catalog: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    tiles: str | None = None,
) -> DashboardServer:
    """Start serving dashboard ``name`` (``"flood_risk"`` or ``"landcover_explorer"``).

    Parameters
    ----------
    name : str
        A key of :data:`APPS`.
    port : int, optional
        TCP port on 127.0.0.1 (default: a free one).
    catalog : str or path-like, optional
        Catalog the dashboard shows, passed as ``MUS_LAB_CATALOG`` (default: the
        environment's ``MUS_LAB_CATALOG``).
    log : str or path-like, optional
        File for the server's messages (default: a temporary file).
    tiles : str, optional
        Root URL of the tile service the maps are drawn from, passed as ``MUS_LAB_TILES``
        (default: the environment's; unset: the dashboards draw the rasters themselves).

    Returns
    -------
    DashboardServer
        Call ``.wait_ready()`` before opening ``.url``, and ``.stop()`` at the end.

    Raises
    ------
    ProductionError
        Unknown dashboard or app file missing.
    """
    spec = APPS.get(name)
    command = app_command(name, port := port or free_port())
    assert spec is not None
    log_path = (
        Path(log) if log else Path(tempfile.mkstemp(prefix=f"mus_lab-{name}-", suffix=".log")[1])
    )
    stream: IO[bytes] = open(log_path, "wb")
    process = subprocess.Popen(
        command,
        stdout=stream,
        stderr=subprocess.STDOUT,
        env=_environment(os.fspath(catalog) if catalog else None, tiles),
        cwd=str(_REPO),
    )
    stream.close()
    url = f"http://127.0.0.1:{port}/" + ("" if spec.kind == "voila" else "app")
    return DashboardServer(name, spec.title, url, port, process, log_path)
