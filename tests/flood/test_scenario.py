"""The whole product on the sample scenario: accuracy against its flood truth, the product
contracts (flood-extent, flood-risk), the zone table and the STAC items."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import rasterio

from mus_lab import catalog, cube, flood

#: Copernicus GFM's target critical success index (METHODS.md section 7).
GFM_CSI = 0.70


@pytest.fixture(scope="module")
def computed(flood_run):
    extent, summary, by_source = dask.compute(
        flood_run.extent, flood_run.summary, flood_run.by_source()
    )
    return extent, summary, by_source


@pytest.fixture(scope="module")
def truth(flood_catalog, computed):
    extent = computed[0]
    items = catalog.search(flood_catalog, collections="flood-truth")
    loaded = cube.load(items, ("flood",), geobox=cube.geobox_of(extent)).flood
    return flood.align_truth(loaded, extent.time.values).compute()


def test_consensus_beats_every_method_and_reaches_the_gfm_target(computed, truth) -> None:
    extent, _, by_source = computed
    scores = {"consensus": flood.flood_scores(extent.flood, truth)}
    for s in by_source.source.values:
        scores[str(s)] = flood.flood_scores(by_source.sel(source=s), truth)
    table = pd.DataFrame(scores).T[["csi", "miou", "precision", "recall"]].round(3)
    print("\nflood extent vs truth, all SAR dates pooled (S1 + RCM + optical):\n", table)
    cons = scores.pop("consensus")
    assert cons["csi"] >= GFM_CSI, table
    for name, s in scores.items():
        assert cons["csi"] > s["csi"], f"consensus does not beat {name}:\n{table}"
    assert cons["miou"] > cons["csi"]  # the dry class is easy: mean IoU is the flattering one


def test_flood_extent_contract(computed, flood_catalog, scenario) -> None:
    extent = computed[0]
    sar_dates = sorted(set(scenario.dates["s1"]) | set(scenario.dates["rcm"]))
    assert [str(t)[:10] for t in extent.time.values] == sar_dates
    for name in ("water", "flood", "likelihood"):
        assert extent[name].dtype == np.uint8
    assert set(np.unique(extent.water.values)) <= {0, 1, 255}
    assert set(np.unique(extent.flood.values)) <= {0, 1, 255}
    lk = extent.likelihood.values
    assert np.all((lk <= 100) | (lk == 255))
    assert np.all((extent.flood.values != 1) | (extent.water.values == 1))  # flood is water
    items = catalog.search(flood_catalog, collections="flood-extent")
    assert len(items) == len(sar_dates)
    item = sorted(items, key=lambda it: it.datetime)[0]
    assert set(item.assets) == {"water", "flood", "likelihood"}
    assert item.properties["processing:level"] == "L3-flood"
    assert "mapping" in item.properties["mus_lab:parameters"]
    assert any(link.rel == "derived_from" for link in item.links)
    with rasterio.open(item.assets["flood"].get_absolute_href()) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        np.testing.assert_array_equal(src.read(1), extent.flood.values[0])


def test_flood_risk_contract(computed, flood_catalog) -> None:
    summary = computed[1]
    dtypes = {
        "max_extent": np.uint8,
        "frequency": np.float32,
        "n_valid": np.uint16,
        "reference_water": np.uint8,
        "exclusion": np.uint8,
        "hazard": np.float32,
        "risk": np.float32,
        "risk_class": np.uint8,
    }
    for name, dtype in dtypes.items():
        assert summary[name].dtype == dtype, name
        assert summary[name].dims == ("y", "x")
    freq = summary.frequency.values
    assert np.nanmin(freq) >= 0 and np.nanmax(freq) <= 1
    assert int(summary.n_valid.max()) <= 31 and int(summary.n_valid.max()) >= 29
    ref = summary.reference_water.values == 1
    assert np.isnan(freq[ref]).all()
    assert set(np.unique(summary.risk_class.values)) <= {0, 1, 2, 3, 4, 5}
    assert np.nanmax(summary.risk.values) == pytest.approx(1.0)  # normalised by its maximum
    flooded = summary.max_extent.values == 1
    assert summary.max_extent_low.values[flooded].mean() <= 1
    assert ((summary.max_extent_low.values == 1) & ~flooded).sum() == 0
    (item,) = catalog.search(flood_catalog, collections="flood-risk")
    assert set(dtypes) <= set(item.assets) and "zones" in item.assets
    with rasterio.open(item.assets["n_valid"].get_absolute_href()) as src:
        assert src.dtypes[0] == "uint16" and src.nodata is None  # a count: 0 is a value
    assert item.assets["zones"].media_type == "text/csv"
    table = pd.read_csv(item.assets["zones"].get_absolute_href())
    assert list(table.columns) == list(flood.ZONE_COLUMNS)


def test_zone_table_adds_up_to_the_maps(flood_run, computed, scenario) -> None:
    summary = computed[1]
    table = flood_run.zones
    assert sorted(table.zone.unique()) == ["NE", "NW", "SE", "SW"]
    lc = flood_run.summary.exposure  # any grid-aligned layer; land cover from the scenario:
    landcover = (
        cube.load(
            catalog.search(scenario.catalog_path, collections="landcover-truth"),
            ("landcover",),
            geobox=cube.geobox_of(lc),
        )
        .landcover.isel(time=0)
        .values
    )
    flooded = summary.max_extent.values == 1
    pixel_ha = 0.01
    by_class = table.groupby("class_code")[
        ["flooded_ha", "flooded_ha_low", "flooded_ha_high"]
    ].sum()
    for code, row in by_class.iterrows():
        expected = np.sum(flooded & (landcover == code)) * pixel_ha
        assert row.flooded_ha == pytest.approx(expected, abs=0.011), code
    assert (table.flooded_ha_low <= table.flooded_ha + 1e-6).all()
    assert (table.flooded_ha <= table.flooded_ha_high + 1e-6).all()
    at_risk = np.sum(summary.risk_class.values >= 4) * pixel_ha
    assert table.at_risk_ha.sum() == pytest.approx(at_risk, abs=0.011)
    assert table.loc[table.class_name == "water", "flooded_ha"].sum() == 0  # reference water
