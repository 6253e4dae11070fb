"""Fixtures of the dashboard tests: catalogs with and without products, served apps, Chromium.

The browser is Debian's Chromium (``make chromium`` installs it; never ``playwright install``)
driven by Python playwright, headless and offline: every request is logged, and the tests
assert that none leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

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
#: Where screenshots are also copied for people to look at: the folder named by the setting
#: ``MUS_LAB_SCREENS`` (when it exists); by default they stay in the test's ``tmp_path`` only.
SCREENS = Path(os.environ["MUS_LAB_SCREENS"]) if os.environ.get("MUS_LAB_SCREENS") else None
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:http://127.0.0.1", "about:")


@pytest.fixture(scope="session")
def empty_catalog(scenario) -> Path:
    """The scenario's catalog: sensors and truth, no product of the later stages."""
    return Path(scenario.catalog_path)


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
        """A full-page screenshot at ``path``, copied to :data:`SCREENS` when that is set and exists."""
        self.page.screenshot(path=str(path), full_page=True)
        if SCREENS is not None and SCREENS.is_dir():
            shutil.copy(path, SCREENS / path.name)
        return path

    def table_rows(self) -> list[list[str]]:
        """The cells of the last visible table, row by row."""
        table = self.page.locator("table").filter(visible=True).last
        table.wait_for(state="visible", timeout=60_000)
        rows: list[list[str]] = table.evaluate(
            "t => Array.from(t.querySelectorAll('tbody tr')).map("
            "r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()))"
        )
        return rows

    def picture(self, locator: Any) -> bytes:
        """What an element shows now, as PNG bytes (equal bytes: equal pixels)."""
        locator.wait_for(state="visible", timeout=60_000)
        self.page.wait_for_timeout(300)  # let Bokeh finish drawing
        return bytes(locator.screenshot())

    def wait_for_new_picture(self, locator: Any, before: bytes, timeout: float = 60.0) -> bytes:
        """Wait until an element shows something else than ``before``; return the new picture."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.picture(locator)
            if now != before:
                return now
            self.page.wait_for_timeout(500)
        raise AssertionError(f"the element did not change within {timeout:.0f} s")

    def download(self, label: str, folder: Path) -> Path:
        """Click the visible button ``label`` and save the file it downloads into ``folder``."""
        with self.page.expect_download(timeout=120_000) as info:
            self.page.get_by_text(label, exact=True).filter(visible=True).first.click()
        path = folder / info.value.suggested_filename
        info.value.save_as(str(path))
        return path


@pytest.fixture
def open_page(browser) -> Iterator[Callable[[str], Page]]:
    """Open a URL in a fresh page that logs requests and console errors.

    The viewport is tall enough for a whole dashboard: a full-page screenshot of a taller page
    resizes it, which makes Bokeh lay figures out again while the picture is taken.
    """
    contexts = []

    def _open(url: str) -> Page:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1700}, accept_downloads=True
        )
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

    def _serve(name: str, catalog: Path, log: Path, **kwargs: Any) -> Any:
        server = serve(name, catalog=catalog, log=log, **kwargs)
        servers.append(server)
        return server.wait_ready()

    yield _serve
    for server in servers:
        server.stop()
