"""The dashboards in a real browser: served, loaded offline, reacting to widgets and language."""

from __future__ import annotations

import re
import time
from typing import Any

import pandas as pd
import pytest
import rasterio

from mus_lab import catalog as cat
from mus_lab.ui import LEGEND

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _offline_and_clean(page) -> None:
    assert page.external_requests() == [], "a request left 127.0.0.1"
    assert page.errors == [], f"console errors: {page.errors}"


def test_flood_dashboard_without_products_says_how_to_make_them(
    served, open_page, empty_catalog, tmp_path
):
    server = served("flood_risk", empty_catalog, tmp_path / "voila.log")
    page = open_page(server.url)
    page.text_visible("No flood-risk products")
    page.text_visible(f"-p catalog {empty_catalog}")
    page.text_visible("mus-lab demo")
    page.screenshot(tmp_path / "flood_empty_en.png")
    page.page.get_by_text("Français").click()
    page.text_visible("Pas encore de produits de risque d'inondation")
    page.text_visible("Risque d'inondation")
    page.text_visible("Langue")  # the ipywidgets controls follow the language too
    assert page.page.get_by_text("Language").count() == 0
    page.screenshot(tmp_path / "flood_empty_fr.png")
    _offline_and_clean(page)


def _zones_asset(catalog) -> pd.DataFrame:
    (item,) = cat.search(catalog, collections="flood-risk")
    return pd.read_csv(item.assets["zones"].get_absolute_href())


def test_flood_dashboard_shows_maps_table_and_reacts(served, open_page, product_catalog, tmp_path):
    from mus_lab.ui import FloodRiskState

    state = FloodRiskState(catalog=str(product_catalog))
    other = state.dates[0]
    assert other != state.date  # it opens on the flood peak, not on the first date
    zones = _zones_asset(product_catalog)
    server = served("flood_risk", product_catalog, tmp_path / "voila.log")
    page = open_page(server.url)
    page.text_visible(f"Flood extent on {state.date}")
    page.text_visible("Uncertainty range (ha)")
    page.text_visible(state.summary())
    maps = page.page.locator(".bk-Canvas")
    assert maps.count() == 2, "the risk map and the extent map are drawn"
    # The zone table on the page is the product's table (rounded, in the page's language).
    rows = page.table_rows()
    assert len(rows) == len(zones)
    assert [r[:2] for r in rows] == zones[["zone", "class_name"]].to_numpy().tolist()
    assert [float(r[2]) for r in rows] == pytest.approx(zones.flooded_ha.round(1).tolist())
    assert [float(r[4]) for r in rows] == pytest.approx(zones.at_risk_ha.round(1).tolist())
    risk_before, extent_before = page.picture(maps.nth(0)), page.picture(maps.nth(1))
    page.screenshot(tmp_path / "flood_products_en.png")

    # Another date: the extent map is drawn again with that date's water, the risk map stays.
    page.page.locator("select").first.select_option(other)
    page.text_visible(f"Flood extent on {other}")
    extent_after = page.wait_for_new_picture(maps.nth(1), extent_before)
    assert page.picture(maps.nth(0)) == risk_before
    assert extent_after != extent_before

    # The likelihood toggle swaps the risk classes for that date's likelihood.
    page.page.get_by_text("Show the flood likelihood of the chosen date").click()
    page.text_visible(f"Flood likelihood (%): {other}")
    page.wait_for_new_picture(maps.nth(0), risk_before)

    # Exports: the zone table as CSV (the product's table) and the map as a PNG.
    csv = page.download("Download the table (CSV)", tmp_path)
    pd.testing.assert_frame_equal(pd.read_csv(csv), zones)
    png = page.download("Download the map (PNG)", tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    # French, then back to English.
    page.page.get_by_text("Français").click()
    page.text_visible(f"Étendue de l'inondation le {other}")
    page.text_visible("Intervalle d'incertitude (ha)")
    page.text_visible("Télécharger le tableau (CSV)")
    page.text_visible("Afficher la probabilité d'inondation de la date choisie")
    _table_shows(page, "cultures")
    assert page.page.get_by_text("Uncertainty range (ha)").filter(visible=True).count() == 0
    page.screenshot(tmp_path / "flood_products_fr.png")
    page.page.get_by_text("English").click()
    page.text_visible(f"Flood extent on {other}")
    _table_shows(page, "crops")
    _offline_and_clean(page)


def test_landcover_explorer_without_products_says_how_to_make_them(
    served, open_page, empty_catalog, tmp_path
):
    server = served("landcover_explorer", empty_catalog, tmp_path / "panel.log")
    page = open_page(server.url)
    page.text_visible("No land-cover products")
    page.text_visible("mus-lab run notebooks/0")
    page.screenshot(tmp_path / "landcover_empty_en.png")
    page.page.get_by_text("Français").click()
    page.text_visible("Pas encore de produits d'occupation du sol")
    page.text_visible("Explorateur d'occupation du sol")
    page.screenshot(tmp_path / "landcover_empty_fr.png")
    _offline_and_clean(page)


def _pixel_of(text: str) -> tuple[float, float]:
    match = re.search(r"x=(\d+) m, y=(\d+) m", text)
    assert match, text
    return float(match[1]), float(match[2])


def test_landcover_explorer_click_shows_the_pixel(served, open_page, product_catalog, tmp_path):
    server = served("landcover_explorer", product_catalog, tmp_path / "panel.log")
    page = open_page(server.url)
    page.text_visible("Fused land cover")
    page.text_visible("Click a pixel")
    # A layer button shows its map: the radar land cover is one click away.
    assert page.page.get_by_text("Radar land cover", exact=True).filter(visible=True).count() == 1
    page.page.get_by_role("button", name="Radar land cover").click()
    page.page.get_by_text("Radar land cover", exact=True).nth(1).wait_for(timeout=30_000)
    for _ in range(60):
        if page.page.get_by_text("Radar land cover", exact=True).filter(visible=True).count() == 2:
            break
        page.page.wait_for_timeout(500)
    assert page.page.get_by_text("Radar land cover", exact=True).filter(visible=True).count() == 2
    canvases = page.page.locator("canvas")
    canvases.first.wait_for(state="visible", timeout=60_000)
    before = canvases.count()
    box = canvases.first.bounding_box()
    assert box is not None

    def click(fx: float, fy: float, previous: str | None) -> str:
        page.page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        for _ in range(120):
            shown = page.page.locator(".mus-pixel").filter(visible=True)
            text = (
                "\n".join(shown.first.locator("h3, li").all_inner_texts()) if shown.count() else ""
            )
            if text and text != previous:
                return text
            page.page.wait_for_timeout(500)
        raise AssertionError("the pixel panel did not change after a click")

    first = click(0.3, 0.5, None)
    assert "Pixel at x=" in first and "Fused land cover:" in first
    for _ in range(120):  # the details add figures (series, probabilities, masses)
        if canvases.count() > before:
            break
        page.page.wait_for_timeout(500)
    assert canvases.count() > before, "no figure for the clicked pixel"
    # The classes named for the clicked pixel are the products' classes there.
    x, y = _pixel_of(first)
    for collection, label in (
        ("landcover-optical", "Optical land cover"),
        ("landcover-radar", "Radar land cover"),
    ):
        (item,) = cat.search(product_catalog, collections=collection)
        with rasterio.open(item.assets["classification"].get_absolute_href()) as src:
            code = int(next(src.sample([(x, y)]))[0])
        assert f"{label}: {LEGEND[code]}" in first
    csv = page.download("Download the pixel's values (CSV)", tmp_path)
    table = pd.read_csv(csv)
    assert (table.x.iloc[0], table.y.iloc[0]) == pytest.approx((x, y), abs=10)
    assert set(table.kind) == {"class", "series", "probability", "mass"}
    sums = table[table.kind == "probability"].groupby("source").value.sum()
    assert sums.to_dict() == pytest.approx({"optical": 1.0, "radar": 1.0}, abs=1e-5)
    png = page.download("Download the maps (PNG)", tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    page.screenshot(tmp_path / "landcover_click_en.png")
    # Another pixel: the panel tells about that one.
    second = click(0.7, 0.2, first)
    assert _pixel_of(second) != (x, y)

    page.page.get_by_text("Français").click()
    page.text_visible("Pixel à x=")
    page.text_visible("Occupation du sol fusionnée:")
    page.text_visible("Télécharger les cartes (PNG)")
    page.screenshot(tmp_path / "landcover_click_fr.png")
    _offline_and_clean(page)


def _table_shows(page: Any, name: str, timeout: float = 20) -> None:
    """Wait until a row of the zone table names ``name`` (the table redraws after the title)."""
    deadline = time.monotonic() + timeout
    while name not in (names := {r[1] for r in page.table_rows()}):
        assert time.monotonic() < deadline, f"{name!r} not in the table: {sorted(names)}"
        time.sleep(0.2)
