"""The dashboards through the Jupyter server-extension routes of a hub, offline.

On JupyterHub/Binder the dashboards are pages of the user's Jupyter server
(``/voila/render/...``, ``/panel-preview/render/...``), configured by ``binder/postBuild``
(``binder/jupyter_config.py``) and ``binder/start``. This test builds the same configuration
with the same script, starts ``jupyter server`` through ``binder/start`` on 127.0.0.1 and checks
that both pages render and that no request leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mus_lab.ui import DashboardServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub_server(browser, empty_catalog, tmp_path) -> Iterator[DashboardServer]:
    """``jupyter server`` with the image's configuration; it stops at the end of the test."""
    config_dir = tmp_path / "jupyter_config"
    subprocess.run(
        [sys.executable, str(ROOT / "binder" / "jupyter_config.py"), str(config_dir)],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ)
    env.pop("JUPYTER_PATH", None)  # binder/start puts apps/_jupyter on it
    env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),  # also keeps ~/.jupyter out
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        MUS_LAB_CATALOG=str(empty_catalog),
    )
    port = free_port()
    log = tmp_path / "jupyter_server.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [
                str(ROOT / "binder" / "start"),
                sys.executable,
                "-m",
                "jupyter_server",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={ROOT}",
                "--IdentityProvider.token=",
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(ROOT),
        )
    server = DashboardServer(
        "hub", "Jupyter server", f"http://127.0.0.1:{port}/", port, process, log
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def _not_found(server: DashboardServer) -> list[str]:
    log = server.log_path.read_text(errors="replace")
    return re.findall(r" 404 GET (\S+)", log)


def test_hub_routes_render_offline(hub_server, open_page, empty_catalog, tmp_path):
    # Voila's server extension: the mus_lab template, no MathJax/Font Awesome from a CDN and
    # no JupyterLab-only extension failing in the page.
    flood = open_page(hub_server.url + "voila/render/apps/flood_risk/app.ipynb")
    flood.text_visible("Flood risk")
    flood.text_visible("No flood-risk products")
    flood.text_visible(f"-p catalog {empty_catalog}")
    flood.page.wait_for_load_state("networkidle")
    flood.screenshot(tmp_path / "hub_voila_flood.png")
    assert flood.external_requests() == [], "a request of the Voila route left 127.0.0.1"
    assert flood.errors == [], f"console errors: {flood.errors}"

    # Panel's preview route of the same server.
    explorer = open_page(hub_server.url + "panel-preview/render/apps/landcover_explorer/app.py")
    explorer.text_visible("Land-cover explorer")
    explorer.text_visible("No land-cover products")
    explorer.page.wait_for_load_state("networkidle")
    explorer.screenshot(tmp_path / "hub_panel_landcover.png")
    assert explorer.external_requests() == [], "a request of the Panel route left 127.0.0.1"
    # The preview page has no favicon link: the browser's /favicon.ico is the one 404 allowed.
    missing = _not_found(hub_server)
    assert all(path.endswith("/favicon.ico") for path in missing), missing
    assert len(explorer.errors) == len(missing), f"console errors: {explorer.errors}"
