"""The dashboards over the tile service: tiles on a Sentinel-2 background, products from the API."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio

pytest.importorskip("titiler.pgstac", reason="the serve extra is not installed")
pytest.importorskip("stac_fastapi.pgstac", reason="the serve extra is not installed")

from mus_lab import catalog as cat
from mus_lab.ui import LEGEND

COORDS = (
    "() => [...Bokeh.documents[0]._all_models.values()]"
    ".filter(m => m.name === 'mus-coords').map(m => m.text)"
)
SCALEBARS = (
    "() => [...Bokeh.documents[0]._all_models.values()]"
    ".filter(m => m.name === 'mus-scalebar').length"
)


@pytest.fixture(scope="module")
def tile_service(
    pg_cluster: Any, product_catalog: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The products and their sources in a pgstac database, served as tiles."""
    from mus_lab.catalog._pgstac import PgstacHoldings
    from mus_lab.services.tiles import TileServer
    from tests._postgres import new_database

    database = new_database(pg_cluster, "uitiles")
    items = pystac.Catalog.from_file(str(product_catalog)).get_items(recursive=True)
    with PgstacHoldings(database) as holdings:
        holdings.ingest(items)
    folder = tmp_path_factory.mktemp("tile-service")
    with TileServer(database, folder, roots=[product_catalog.parent]) as tiles:
        yield str(tiles.url)
    assert not tiles.running


def test_flood_dashboard_maps_are_tiles_over_sentinel2(
    tile_service: str, product_catalog: Path
) -> None:
    import holoviews as hv

    from mus_lab.ui import FloodRiskDashboard, FloodRiskState

    state = FloodRiskState(catalog=str(product_catalog), tiles=tile_service, max_size=64)
    maps = FloodRiskDashboard(state)._tiled_maps(state.date, False, "en")
    overlays = [
        p.object for p in maps.select() if isinstance(getattr(p, "object", None), hv.Overlay)
    ]
    assert len(overlays) == 2  # the risk classes, the date's flooded area
    urls = [str(tiles.data) for overlay in overlays for tiles in overlay]
    assert sum("/collections/sentinel-2-l2a/tiles/" in u for u in urls) == 2
    assert any("assets=risk_class" in u for u in urls) and any("assets=flood&" in u for u in urls)
    assert all(u.startswith(tile_service) for u in urls)


def test_landcover_explorer_draws_tiles_over_sentinel2(
    tile_service: str, served: Any, open_page: Any, product_catalog: Path, tmp_path: Path
) -> None:
    from PIL import Image

    server = served(
        "landcover_explorer", product_catalog, tmp_path / "panel.log", tiles=tile_service
    )
    page = open_page(server.url)
    answered: list[str] = []
    page.page.on("requestfinished", lambda r: answered.append(r.url))
    page.page.on("requestfailed", lambda r: answered.append(r.url))
    page.text_visible("Fused land cover")
    canvases = page.page.locator(".bk-Canvas")
    canvases.first.wait_for(state="visible", timeout=60_000)
    wanted = ("/collections/sentinel-2-l2a/tiles/", "/collections/landcover-fused/items/")
    for _ in range(120):
        if all(any(w in r for r in page.requests) for w in wanted):
            break
        page.page.wait_for_timeout(500)
    assert all(any(w in r for r in page.requests) for w in wanted), "no tile was asked for"
    for _ in range(240):  # let every tile asked for arrive (and be drawn)
        asked = [r for r in page.requests if "/tiles/" in r]
        if len([r for r in answered if "/tiles/" in r]) >= len(asked):
            break
        page.page.wait_for_timeout(500)
    page.page.wait_for_timeout(1000)
    assert page.page.evaluate(SCALEBARS) >= 1
    picture = np.asarray(Image.open(io.BytesIO(page.picture(canvases.first))).convert("RGB"))
    assert picture.std() > 10  # drawn: background and classes, not a blank frame

    # The coordinates under the mouse follow it, inside the product's area.
    (item,) = cat.search(product_catalog, collections="landcover-fused")
    west, south, east, north = item.bbox
    box = canvases.first.bounding_box()
    before = page.page.evaluate(COORDS)
    page.page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
    for _ in range(20):
        after = page.page.evaluate(COORDS)
        if after != before:
            break
        page.page.wait_for_timeout(250)
    lat_text, lon_text = next(t for t in after if t not in before).split(", ")
    lat, lon = float(lat_text.split("°")[0]), -float(lon_text.split("°")[0])
    assert south <= lat <= north and west <= lon <= east
    shot = page.screenshot(tmp_path / "landcover_tiles_en.png")
    assert shot.stat().st_size > 50_000

    # A click on a tiled map names the products' classes at that point.
    page.page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
    panel = page.page.locator(".mus-pixel").filter(visible=True)
    panel.first.wait_for(timeout=60_000)
    text = "\n".join(panel.first.locator("h3, li").all_inner_texts())
    import re

    match = re.search(r"x=(\d+) m, y=(\d+) m", text)
    assert match, text
    (optical,) = cat.search(product_catalog, collections="landcover-optical")
    with rasterio.open(optical.assets["classification"].get_absolute_href()) as src:
        code = int(next(src.sample([(float(match[1]), float(match[2]))]))[0])
    assert f"Optical land cover: {LEGEND[code]}" in text
    assert page.external_requests() == [], "a request left 127.0.0.1"
    assert page.errors == [], f"console errors: {page.errors}"
