"""Batch reports in a real browser, offline: the HTML copy and the executed notebook in JupyterLab.

A curated notebook runs through :func:`mus_lab.production.run_notebook` on the small test
scenario; its HTML copy (served from 127.0.0.1) and the executed ``.ipynb`` (opened in a
JupyterLab started here on 127.0.0.1 through ``binder/start``, the hub's offline settings) must
draw every figure (pixels that are not background inside each figure) while every request
that would leave 127.0.0.1 is aborted and listed: the list must stay empty.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from mus_lab.production import run_notebook
from mus_lab.ui import DashboardServer, free_port
from tests.ui.conftest import LOCAL, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_search_and_load.ipynb"
NEWS_QUESTION = "official Jupyter news"


@pytest.fixture(scope="module")
def report(scenario, tmp_path_factory) -> Any:
    """Notebook 01 run in batch on the test scenario (two maps in one figure)."""
    out = tmp_path_factory.mktemp("report")
    run = run_notebook(
        NOTEBOOK,
        out,
        parameters={"catalog": str(scenario.catalog_path), "datetime": "2022-03-01/2022-07-31"},
        cwd=out,
    )
    assert run.ok, run.error
    return run


def _figure_outputs(executed: Path) -> int:
    nb = nbformat.read(executed, as_version=4)
    return sum(
        1
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    )


def _offline(page: Page) -> list[str]:
    """Abort and list every request of ``page`` that would leave 127.0.0.1."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.page.context.route("**/*", handle)
    return blocked


def _open(browser: Any, url: str) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    page = Page(context.new_page())
    page.page.on("request", lambda r: page.requests.append(r.url))
    blocked = _offline(page)
    page.page.goto(url, timeout=120_000)
    return page, blocked


def _drawn_share(png: bytes) -> float:
    """Share of pixels of a picture that differ from its most common (background) colour."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height) or []
    background = max(colours)[0] if colours else 0
    return 1.0 - background / (image.width * image.height)


def _assert_figures_drawn(page: Page, selector: str, expected: int) -> None:
    figures = page.page.locator(selector)
    figures.first.wait_for(state="visible", timeout=120_000)
    assert figures.count() == expected
    for i in range(expected):
        figure = figures.nth(i)
        figure.scroll_into_view_if_needed()
        figure.evaluate("img => img.decode()")  # the picture is decoded, not just laid out
        box = figure.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150, box
        share = _drawn_share(page.picture(figure))
        assert share > 0.2, f"figure {i} is nearly blank ({share:.1%} drawn)"


@contextlib.contextmanager
def _http_folder(folder: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_html_copy_draws_its_figures_offline(report, browser, tmp_path):
    html = report.html.read_text()
    assert "<script src=" not in html and "cdnjs" not in html and "unpkg" not in html
    expected = _figure_outputs(report.executed)
    assert expected >= 1
    with _http_folder(report.html.parent) as base:
        page, blocked = _open(browser, base + report.html.name)
        page.text_visible("01 · Search and load")
        _assert_figures_drawn(page, ".jp-OutputArea-output img", expected)
        page.screenshot(tmp_path / "report_html.png")
        page.page.context.close()
    assert blocked == [], "requests that would leave 127.0.0.1"
    assert page.external_requests() == []


@pytest.fixture
def jupyterlab(report, tmp_path) -> Iterator[DashboardServer]:
    """JupyterLab on 127.0.0.1 through ``binder/start`` (offline settings), on the run folder."""
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),  # keeps ~/.jupyter out
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    port = free_port()
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [
                str(ROOT / "binder" / "start"),
                sys.executable,
                "-m",
                "jupyterlab",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={report.executed.parent}",
                "--IdentityProvider.token=",
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(tmp_path),
        )
    server = DashboardServer("lab", "JupyterLab", f"http://127.0.0.1:{port}/", port, process, log)
    try:
        yield server.wait_ready(timeout=120)
    finally:
        server.stop()


def test_executed_notebook_draws_its_figures_in_jupyterlab_offline(
    report, jupyterlab, browser, tmp_path
):
    expected = _figure_outputs(report.executed)
    page, blocked = _open(browser, f"{jupyterlab.url}lab/tree/{report.executed.name}")
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    page.page.locator(f"{panel} .jp-Cell").first.wait_for(state="visible", timeout=120_000)
    _assert_figures_drawn(page, f"{panel} .jp-OutputArea-output img", expected)
    page.screenshot(tmp_path / "report_jupyterlab.png")
    assert page.page.get_by_text(NEWS_QUESTION).count() == 0, "JupyterLab offers to fetch news"
    log = jupyterlab.log_path.read_text(errors="replace")
    page.page.context.close()
    assert blocked == [], "requests that would leave 127.0.0.1"
    assert page.external_requests() == []
    assert "feed.xml" not in log and "pypi.org" not in log
