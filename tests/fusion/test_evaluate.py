"""Evaluation on the sample scenario with simulated sources, and the product written to STAC."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
import rioxarray

from mus_lab import catalog, fusion
from mus_lab.classify import ConfusionMatrix
from mus_lab.errors import FusionError, ProductContractError, PublishError
from mus_lab.testing import simulate_source

# Optical (one season of S2): crops/grassland and urban/bare confused; radar: water/wetland,
# bare mapped as grassland, a little crops/grassland and forest/wetland.
OPTICAL_ERRORS = {(1, 2): 0.22, (2, 1): 0.18, (6, 7): 0.2, (7, 6): 0.2, (5, 2): 0.1}
RADAR_ERRORS = {(4, 5): 0.2, (5, 4): 0.25, (1, 2): 0.08, (2, 1): 0.1, (3, 5): 0.06, (7, 2): 0.15}


@pytest.fixture(scope="module")
def setting(scenario):
    truth = rioxarray.open_rasterio(scenario.landcover).squeeze("band", drop=True)
    truth = truth.odc.assign_crs(truth.rio.crs)
    _, even = fusion.split_reference(scenario.polygons, truth)
    held_out = even.values > 0  # even polygons: reference; every other pixel: validation
    t = truth.values
    legend = {k: v for k, v in scenario.legend.items() if k}
    kw = {"classes": list(legend), "legend": legend}
    optical = simulate_source(truth, OPTICAL_ERRORS, seed=1, **kw)
    radar = simulate_source(truth, RADAR_ERRORS, seed=2, **kw)
    validation = ~held_out & (t > 0)
    cms = [
        ConfusionMatrix.from_labels(
            t[validation], s.classification.values[validation], labels=list(legend)
        )
        for s in (optical, radar)
    ]
    reference = truth.copy(data=np.where(held_out, t, 0).astype(np.uint8))
    return truth, optical, radar, cms, reference, legend


def test_fused_probabilities_beat_the_better_source_and_conflict_flags_errors(setting):
    _, optical, radar, cms, reference, _ = setting
    ev = fusion.evaluate_fusion(
        {"optical": optical.probability, "radar": radar.probability}, cms, reference
    )
    print(ev.summary())
    assert ev.n_pixels > 1000
    assert 0.7 < ev.overall_accuracy["radar"] < ev.overall_accuracy["optical"] < 0.95
    assert ev.gain > 0.005  # published optical + SAR gains: +0.75 to +5 points
    assert ev.error_rate_high_conflict > 3 * ev.error_rate_low_conflict
    assert ev.by_conflict.error_rate.iloc[-1] > ev.by_conflict.error_rate.iloc[0]
    assert set(ev.table().index) == {"optical", "radar", "fused"}
    pcr = fusion.evaluate_fusion(
        [optical.probability, radar.probability],
        cms,
        reference,
        options=fusion.FusionOptions(rule="pcr6"),
    )
    assert pcr.gain > 0.005


def test_label_maps_iota2_mode_and_mixed_sources(setting):
    _, optical, radar, cms, reference, _ = setting
    ev = fusion.evaluate_fusion(
        {"opt": optical.classification, "sar": radar.classification}, cms, reference
    )
    print(ev.summary())
    worst = min(ev.overall_accuracy["opt"], ev.overall_accuracy["sar"])
    assert ev.overall_accuracy["fused"] > worst
    assert ev.error_rate_high_conflict > 3 * ev.error_rate_low_conflict
    mixed = fusion.evaluate_fusion([optical.probability, radar.classification], cms, reference)
    assert mixed.overall_accuracy["fused"] > worst
    with pytest.raises(FusionError, match="no class code"):
        fusion.evaluate_fusion([optical.classification, radar.classification], cms, reference * 0)


def test_write_fused_into_the_catalog_and_find_it_again(setting, scenario, tmp_path):
    _, optical, radar, cms, _, legend = setting
    root = tmp_path / "cat"
    shutil.copytree(scenario.catalog_path.parent, root)
    ds = fusion.fuse(
        {"optical": optical.classification.chunk(64), "radar": radar.classification.chunk(64)},
        confusions=cms,
        confidences=[optical.confidence.chunk(64), radar.confidence.chunk(64)],
        options=fusion.FusionOptions(legend=legend),
    )
    sources = catalog.search(root / "catalog.json", collections="landcover-truth")
    coll = fusion.write_fused(ds, root, sources=list(sources))
    found = catalog.search(root / "catalog.json", collections="landcover-fused")
    assert len(found) == 1 and coll.id == "landcover-fused"
    item = found[0]
    assert item.properties["mus_lab:fusion"]["rule"] == "dempster"
    assert "optical" in item.properties["mus_lab:fusion"]["reliability"]
    assert any(lk.rel == "derived_from" for lk in item.links)
    classes = item.assets["fused_class"].extra_fields["classification:classes"]
    assert {c["value"]: c["name"] for c in classes} == {0: "no_data", **legend, 255: "undecided"}
    assert set(item.assets) >= {"fused_class", "confidence", "agreement", "source_confidence"}
    with rasterio.open(item.assets["fused_class"].get_absolute_href()) as src:
        np.testing.assert_array_equal(src.read(1), ds.fused_class.values)
        assert src.nodata == 0
    with rasterio.open(item.assets["conflict"].get_absolute_href()) as src:
        np.testing.assert_allclose(src.read(1), ds.conflict.values, equal_nan=True)
    with pytest.raises(PublishError, match="overwrite=True"):
        fusion.write_fused(ds, root)
    with pytest.raises(ProductContractError, match="Not a fused product"):
        fusion.write_fused(ds[["fused_class"]], root, overwrite=True)


def test_split_reference_is_by_polygon(setting, scenario):
    truth = setting[0]
    odd, even = fusion.split_reference(scenario.polygons, truth)
    assert ((odd > 0) & (even > 0)).sum() == 0
    for part in (odd, even):
        inside = part.values > 0
        assert inside.sum() > 500
        np.testing.assert_array_equal(part.values[inside], truth.values[inside])
