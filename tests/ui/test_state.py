"""The dashboards' state models and views, driven without a browser."""

from __future__ import annotations

import io
import re
import string

import numpy as np
import pandas as pd
import pytest
import rasterio

from mus_lab import catalog as cat
from mus_lab.errors import MusLabError, ProductionError
from mus_lab.ui import (
    APPS,
    LANDCOVER_NAMES,
    LEGEND,
    RISK_CLASSES,
    TRANSLATIONS,
    FloodRiskState,
    LandcoverState,
    app_command,
    how_to_make,
    translate,
)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_label_exists_in_english_and_french_with_the_same_fields():
    for key, entry in TRANSLATIONS.items():
        assert set(entry) == {"en", "fr"}, key
        assert entry["en"].strip() and entry["fr"].strip(), key
        assert _fields(entry["en"]) == _fields(entry["fr"]), key
    for table in (RISK_CLASSES, LANDCOVER_NAMES):
        for entry in table.values():
            assert set(entry) == {"en", "fr"}
    assert translate("flood_title", "fr") == "Risque d'inondation"
    assert translate("flood_title", "de") == "Flood risk"  # unknown language: English
    with pytest.raises(KeyError):
        translate("no_such_label")


def test_without_catalog_the_dashboards_say_how_to_start():
    for state in (FloodRiskState(catalog=""), LandcoverState(catalog="")):
        assert not state.ready
        assert "mus-lab demo" in state.message and "MUS_LAB_CATALOG" in state.message
        state.language = "fr"
        assert "Produisez les données d'exemple" in state.message


def test_without_products_the_message_gives_the_exact_command(empty_catalog):
    flood = FloodRiskState(catalog=str(empty_catalog))
    assert not flood.ready and flood.dates == [] and flood.date is None
    command = how_to_make("flood-risk", str(empty_catalog))
    assert command in flood.message
    assert command.startswith("mus-lab run notebooks/0") and command.endswith(
        f"-p catalog {empty_catalog}"
    )
    assert "No flood-risk products" in flood.message
    flood.language = "fr"
    assert "Pas encore de produits de risque d'inondation" in flood.message
    landcover = LandcoverState(catalog=str(empty_catalog))
    assert not landcover.ready and landcover.available == []
    assert "No land-cover products" in landcover.message
    assert how_to_make("landcover-fused", str(empty_catalog)) in landcover.message  # 01 ... 04


def test_a_broken_catalog_is_a_message_not_an_exception(tmp_path):
    state = FloodRiskState(catalog=str(tmp_path / "missing" / "catalog.json"))
    assert not state.ready
    assert "could not be read" in state.message


def test_flood_state_reads_the_contract_products(product_catalog):
    state = FloodRiskState(catalog=str(product_catalog))
    items = cat.search(product_catalog, collections="flood-extent")
    assert state.ready
    assert state.dates == sorted(f"{it.datetime:%Y-%m-%d}" for it in items)
    shares = {}
    for day in state.dates:
        state.date = day
        shares[day] = state.flooded_share()
    assert (
        state.dates[int(np.argmax(list(shares.values())))]
        == FloodRiskState(catalog=str(product_catalog)).date
    ), "opens on the date with the most water"
    state.date = max(shares, key=shares.get)
    item = next(it for it in items if f"{it.datetime:%Y-%m-%d}" == state.date)
    with rasterio.open(item.assets["flood"].get_absolute_href()) as src:
        flood = src.read(1)
    assert state.flooded_share() == pytest.approx((flood == 1).sum() / (flood != 255).sum())
    extent = state.extent()
    assert set(np.unique(extent.values[np.isfinite(extent.values)])) <= {0.0, 1.0, 2.0}
    risk = state.risk_class()
    assert np.nanmin(risk.values) >= 1 and np.nanmax(risk.values) <= 5
    likelihood = state.likelihood()
    assert np.nanmin(likelihood.values) >= 0 and np.nanmax(likelihood.values) <= 100


def test_flood_zone_table_totals_and_exports(product_catalog):
    state = FloodRiskState(catalog=str(product_catalog))
    zones = state.zones()
    assert list(zones.columns) == [
        "zone", "class_code", "class_name", "flooded_ha", "flooded_ha_low",
        "flooded_ha_high", "at_risk_ha",
    ]  # fmt: skip
    totals = state.totals()
    assert totals["flooded"] == pytest.approx(zones.flooded_ha.sum())
    assert totals["low"] <= totals["flooded"] <= totals["high"]
    assert f"{totals['flooded']:,.0f} ha flooded" in state.summary()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(state.zones_csv())), zones)
    state.language = "fr"
    table = state.zone_table()
    assert list(table.columns)[2:] == [
        "Inondé (ha)",
        "Intervalle d'incertitude (ha)",
        "À risque (ha)",
    ]
    assert "cultures" in set(table["Occupation du sol"])
    assert "ha inondés" in state.summary()
    png = state.map_png(dpi=40)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_landcover_state_layers_and_one_pixel(product_catalog):
    state = LandcoverState(catalog=str(product_catalog))
    assert state.ready and len(state.available) == 10  # with the entropy of both maps
    assert {"optical_entropy", "radar_entropy"} <= set(state.available)
    assert state.layer("optical_entropy").max() <= 100
    assert set(state.layers) <= set(state.available) and "fused_class" in state.layers
    fused = state.layer("fused_class")
    assert set(np.unique(fused.values[np.isfinite(fused.values)])) <= set(range(1, 9))
    x, y = float(fused.x[40]), float(fused.y[70])
    state.pixel = (x, y)
    item = next(iter(cat.search(product_catalog, collections="landcover-optical")))
    with rasterio.open(item.assets["classification"].get_absolute_href()) as src:
        code = int(next(src.sample([(x, y)]))[0])
    legend = state.legend()
    assert state.pixel_classes()[state.layer_title("optical_class")] == legend[code]
    probs = state.pixel_probabilities()
    assert set(probs.source) == {"optical", "radar"}
    assert probs.groupby("source").probability.sum().to_numpy() == pytest.approx(
        [1.0, 1.0], abs=1e-5
    )
    masses = state.pixel_masses()
    assert 0 <= masses["belief"] <= masses["plausibility"] <= 1
    series = state.pixel_series()
    n_s1 = len(cat.search(product_catalog, collections="sentinel-1-grd"))
    assert (series.series == "S1 VV (dB)").sum() == n_s1
    ndvi = series[series.series == "S2 NDVI"]
    expected = {}  # the ARD's valid observations at that pixel (cloudy dates are masked)
    for ard_item in cat.search(product_catalog, collections="s2-l2a-ard"):
        red, nir, valid = (
            _pixel(ard_item.assets[band].get_absolute_href(), x, y)
            for band in ("red", "nir", "valid")
        )
        if valid == 1:
            expected[pd.Timestamp(ard_item.datetime).tz_localize(None)] = (nir - red) / (nir + red)
    assert 0 < len(expected) < len(cat.search(product_catalog, collections="s2-l2a-ard"))
    assert dict(zip(ndvi.time, ndvi.value, strict=True)) == pytest.approx(expected, abs=1e-6)
    assert ndvi.value.between(-1, 1).all() and ndvi.time.is_monotonic_increasing
    assert series[series.series.str.startswith("S1")].value.between(-40, 10).all()
    state.language = "fr"
    assert state.legend()[1] == "cultures" and state.legend()[8] == "indécis"


def test_landcover_exports_the_pixel_and_the_maps(product_catalog):
    state = LandcoverState(catalog=str(product_catalog), language="fr")
    assert state.pixel_table().empty
    fused = state.layer("fused_class")
    x, y = float(fused.x[90]), float(fused.y[20])
    state.pixel = (x, y)
    table = pd.read_csv(io.StringIO(state.pixel_csv()))
    assert list(table.columns) == ["x", "y", "kind", "source", "name", "time", "value"]
    assert set(table.kind) == {"class", "series", "probability", "mass"}
    item = next(iter(cat.search(product_catalog, collections="landcover-radar")))
    codes = item.assets["probability"].extra_fields["mus_lab:class_codes"]
    with rasterio.open(item.assets["probability"].get_absolute_href()) as src:
        expected = next(src.sample([(x, y)]))
    radar = table[(table.kind == "probability") & (table.source == "radar")]
    assert radar.name.tolist() == [LEGEND[c] for c in codes]  # English whatever the page's
    assert radar.value.to_numpy() == pytest.approx(expected, abs=1e-6)
    with rasterio.open(item.assets["classification"].get_absolute_href()) as src:
        code = int(next(src.sample([(x, y)]))[0])  # sieved: not always the most probable
    assert table[(table.kind == "class") & (table.source == "radar")].value.tolist() == [code]
    masses = table[table.kind == "mass"].set_index("name").value
    assert masses.to_dict() == pytest.approx(
        {k: v for k, v in state.pixel_masses().items() if k != "fused_class"}
    )
    png = state.maps_png(dpi=40)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def _pixel(href: str, x: float, y: float) -> float:
    with rasterio.open(href) as src:
        return float(next(src.sample([(x, y)]))[0])


def test_views_build_for_both_states(empty_catalog, product_catalog):
    import holoviews as hv
    from bokeh.document import Document

    from mus_lab.ui import FloodRiskDashboard, LandcoverExplorer

    for catalog in (empty_catalog, product_catalog):
        flood = FloodRiskDashboard(FloodRiskState(catalog=str(catalog)))
        assert flood.body().get_root(Document()) is not None
        if flood.state.ready:  # the toggle swaps the risk classes for the date's likelihood
            shown = flood._maps(flood.state.date, True, "en")[0][1].object
            assert isinstance(shown, hv.Image) and shown.vdims[0].name == "likelihood"
            shown = flood._maps(flood.state.date, False, "en")[0][1].object
            assert shown.vdims[0].name == "risk_class"
        controls = flood.controls()
        flood.state.language = "fr"
        assert controls.children[1].children[0].description == "Langue"
        explorer = LandcoverExplorer(LandcoverState(catalog=str(catalog)))
        assert explorer.panel().get_root(Document()) is not None


def test_server_commands_are_local_and_offline():
    voila = app_command("flood_risk", 8866)
    assert "--Voila.ip=127.0.0.1" in voila and "--template=mus_lab" in voila
    assert any("extension_denylist=@pyviz/jupyterlab_pyviz" in a for a in voila)
    panel = app_command("landcover_explorer", 5006)
    assert "--address=127.0.0.1" in panel and "--allow-websocket-origin=127.0.0.1:5006" in panel
    assert set(APPS) == {"flood_risk", "landcover_explorer"}
    with pytest.raises(ProductionError, match="Unknown dashboard"):
        app_command("nope", 1)
    template = re.compile(r"https://")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for app in APPS.values():
        assert (root / app.path).is_file()
        assert not template.search((root / app.path).read_text())


def test_landcover_state_shows_the_products_own_legend(product_catalog, tmp_path):
    """Names and colours come from the products' classification:classes, not a fixed table."""
    import json
    import shutil

    root = tmp_path / "catalog"
    shutil.copytree(product_catalog.parent, root)
    relabelled = {1: ("maize", "123456"), 3: ("conifers", "0A3D1F")}
    for path in root.rglob("*.json"):
        doc = json.loads(path.read_text())
        for asset in doc.get("assets", {}).values() if doc.get("type") == "Feature" else []:
            for entry in asset.get("classification:classes", []):
                if entry.get("value") in relabelled and "optical" in doc["collection"]:
                    entry["title"], entry["color_hint"] = relabelled[entry["value"]]
        path.write_text(json.dumps(doc))
    state = LandcoverState(catalog=str(root / "catalog.json"))
    classes = state.classes()
    assert classes[1] == ("maize", "#123456") and classes[3] == ("conifers", "#0A3D1F")
    assert classes[2][0] == "grassland" and len(classes) == 7  # untouched classes as written
    legend, colours = state.legend(), state.colours()
    assert legend[1] == "maize" and colours[0] == "#123456" and legend[8] == "undecided"
    state.language = "fr"
    assert state.legend()[1] == "maize" and state.legend()[2] == "prairies"  # unknown: as is
    fused = state.layer("optical_class")
    x, y = float(fused.x[40]), float(fused.y[70])
    item = next(iter(cat.search(root / "catalog.json", collections="landcover-optical")))
    with rasterio.open(item.assets["classification"].get_absolute_href()) as src:
        code = int(next(src.sample([(x, y)]))[0])
    state.pixel, state.language = (x, y), "en"
    assert state.pixel_classes()[state.layer_title("optical_class")] == classes[code][0]
    table = state.pixel_table()
    row = table[(table.kind == "class") & (table.source == "optical")].iloc[0]
    assert row["value"] == code and row["name"] == classes[code][0]


def test_the_dashboards_read_the_one_contract():
    """No copies: the dashboards, the stages and the sample use mus_lab.contracts' objects."""
    from mus_lab import contracts, flood
    from mus_lab.sample import LEGEND as SCENARIO_LEGEND
    from mus_lab.ui import RISK_COLOURS, ZONE_COLUMNS

    assert ZONE_COLUMNS is contracts.ZONE_COLUMNS is flood.ZONE_COLUMNS
    assert RISK_COLOURS is contracts.RISK_COLOURS
    from mus_lab.ui import risk_name

    # the dashboard names the risk classes as the product's legend does
    assert [risk_name(c, "en") for c in range(1, 6)] == list(contracts.RISK_CLASS_NAMES)
    assert LEGEND == dict(contracts.SAMPLE_LEGEND)
    assert {c: n for c, n in SCENARIO_LEGEND.items() if c != 0} == dict(contracts.SAMPLE_LEGEND)


def test_every_product_of_the_real_stages_meets_its_contract(product_catalog):
    """What the stages wrote (ARD, land cover, fusion, flood) passes check_item and its checksums."""
    from mus_lab import contracts, publish

    checked = set()
    for kind, contract in contracts.CONTRACTS.items():
        collections = (
            list(contracts.LANDCOVER_COLLECTIONS.values())
            if kind == "landcover"
            else [contract.collection]
        )
        for coll in collections:
            try:
                items = cat.search(product_catalog, collections=coll)
            except MusLabError:
                continue
            for item in items:
                publish.check_item(item, contract)
                publish.verify_checksums(item)
                checked.add(kind)
    assert checked >= {"s2-ard", "landcover", "fused", "flood-extent", "flood-risk"}
