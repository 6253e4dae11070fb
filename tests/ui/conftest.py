"""Fixtures of the dashboard tests: catalogs with and without products, served apps, Chromium.

The browser is Debian's Chromium (``make chromium`` installs it; never ``playwright install``)
driven by Python playwright, headless and offline: every request is logged, and the tests
assert that none leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.ui._products import make_products

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:http://127.0.0.1", "about:")


@pytest.fixture(scope="session")
def empty_catalog(scenario) -> Path:
    """The scenario's catalog: sensors and truth, no product of the later stages."""
    return Path(scenario.catalog_path)


@pytest.fixture(scope="session")
def product_catalog(scenario, tmp_path_factory) -> Path:
    """A copy of the scenario's catalog with the products of the real stages added.

    S2 ARD, land cover (optical, radar), their fusion, flood extent and risk: see
    ``tests/ui/_products.py``. The seconds per stage are written to ``timings.json`` beside
    the catalog.
    """
    work = tmp_path_factory.mktemp("products")
    root = work / "catalog"
    shutil.copytree(Path(scenario.catalog_path).parent, root)
    catalog = root / "catalog.json"
    seconds = make_products(catalog, work)
    seconds["total"] = sum(seconds.values())
    (work / "timings.json").write_text(json.dumps(seconds, indent=1))
    return catalog


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Page:
    """A browser page with its request log and console errors."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        return [r for r in self.requests if not r.startswith(LOCAL)]

    def text_visible(self, text: str, timeout: float = 60_000) -> None:
        """Wait until some visible element shows ``text`` (replaced views may linger hidden)."""
        locator = self.page.get_by_text(text, exact=False).filter(visible=True).first
        locator.wait_for(state="visible", timeout=timeout)

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_page(browser) -> Iterator[Callable[[str], Page]]:
    """Open a URL in a fresh page that logs requests and console errors.

    The viewport is tall enough for a whole dashboard: a full-page screenshot of a taller page
    resizes it, which makes Bokeh lay figures out again while the picture is taken.
    """
    contexts = []

    def _open(url: str) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1700})
        contexts.append(context)
        page = context.new_page()
        out = Page(page)
        page.on("request", lambda r: out.requests.append(r.url))
        page.on("console", lambda m: out.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: out.errors.append(str(e)))
        page.goto(url, timeout=120_000)
        return out

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def served() -> Iterator[Callable[..., Any]]:
    """Serve a dashboard on a free port of 127.0.0.1; it stops at the end of the test."""
    from mus_lab.ui import serve

    servers = []

    def _serve(name: str, catalog: Path, log: Path) -> Any:
        server = serve(name, catalog=catalog, log=log)
        servers.append(server)
        return server.wait_ready()

    yield _serve
    for server in servers:
        server.stop()
