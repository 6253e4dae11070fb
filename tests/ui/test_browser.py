"""The dashboards in a real browser: served, loaded offline, reacting to widgets and language."""

from __future__ import annotations

import pytest

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


def test_flood_dashboard_shows_maps_table_and_reacts(served, open_page, product_catalog, tmp_path):
    from mus_lab.ui import FloodRiskState

    state = FloodRiskState(catalog=str(product_catalog))
    other = next(d for d in state.dates if d != state.date)
    server = served("flood_risk", product_catalog, tmp_path / "voila.log")
    page = open_page(server.url)
    page.text_visible(f"Flood extent on {state.date}")
    page.text_visible("Uncertainty range (ha)")
    page.text_visible(state.summary())
    assert page.page.locator(".bk-Canvas, canvas").count() >= 2, "no map drawn"
    page.screenshot(tmp_path / "flood_products_en.png")
    page.page.locator("select").first.select_option(other)
    page.text_visible(f"Flood extent on {other}")
    page.page.get_by_text("Français").click()
    page.text_visible(f"Étendue de l'inondation le {other}")
    page.text_visible("Intervalle d'incertitude (ha)")
    page.text_visible("Télécharger le tableau (CSV)")
    page.screenshot(tmp_path / "flood_products_fr.png")
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


def test_landcover_explorer_click_shows_the_pixel(served, open_page, product_catalog, tmp_path):
    server = served("landcover_explorer", product_catalog, tmp_path / "panel.log")
    page = open_page(server.url)
    page.text_visible("Fused land cover")
    page.text_visible("Click a pixel")
    canvases = page.page.locator("canvas")
    canvases.first.wait_for(state="visible", timeout=60_000)
    before = canvases.count()
    box = canvases.first.bounding_box()
    assert box is not None
    page.page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.text_visible("Pixel at x=")
    page.text_visible("Fused land cover:")
    for _ in range(120):  # the details add figures (series, probabilities, masses)
        if canvases.count() > before:
            break
        page.page.wait_for_timeout(500)
    assert canvases.count() > before, "no figure for the clicked pixel"
    page.screenshot(tmp_path / "landcover_click_en.png")
    page.page.get_by_text("Français").click()
    page.text_visible("Pixel à x=")
    page.text_visible("Occupation du sol fusionnée:")
    page.screenshot(tmp_path / "landcover_click_fr.png")
    _offline_and_clean(page)
