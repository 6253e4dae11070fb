"""Typed products: in memory -> write -> from_catalog gives the same product; bad items refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mus_lab import contracts, publish
from mus_lab.errors import ProductContractError, PublishError

from .conftest import prediction


class _Meta(SimpleNamespace):
    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "class_names": {str(k): v for k, v in self.class_names.items()},
            "features": list(self.features),
            "recipe": {"sensors": "optical", "every_days": 10},
            "report": dict(self.report),
        }


def _model() -> SimpleNamespace:
    meta = _Meta(
        kind="rf",
        classes=(11, 12, 31),
        class_names={11: "crops", 12: "grassland", 31: "forest"},
        features=("red_20220101", "nir_20220101"),
        params={"n_estimators": 10},
        report={"train_polygons": [1, 2], "validation_polygons": [3, 4], "seed": 0},
    )
    return SimpleNamespace(metadata=meta)


def _accuracy() -> SimpleNamespace:
    cm = publish.ConfusionMatrix((11, 12, 31), np.array([[5, 1, 0], [0, 4, 1], [0, 0, 6]]))
    return SimpleNamespace(
        confusion=cm,
        overall_accuracy=0.88,
        kappa=0.8,
        macro_f1=0.87,
        to_dict=lambda: {"overall_accuracy": 0.88, "kappa": 0.8, "macro_f1": 0.87},
    )


def test_landcover_round_trip(catalog_json: Path) -> None:
    made = publish.LandCoverProduct.from_prediction(
        prediction(), model=_model(), accuracy=_accuracy(), name="optical"
    )
    assert made.collection == "landcover-optical" and made.item is None
    made.write(catalog_json)
    back = publish.LandCoverProduct.from_catalog(catalog_json, "landcover-optical")
    assert back.name == "optical" and back.item is not None
    assert back.legend == made.legend == {11: "crops", 12: "grassland", 31: "forest"}
    np.testing.assert_array_equal(back.classification.values, made.classification.values)
    np.testing.assert_allclose(back.probability.values, made.probability.values)
    assert list(back.probability["class"].values) == [11, 12, 31]
    assert back.confusion.labels == made.confusion.labels
    np.testing.assert_array_equal(back.confusion.counts, made.confusion.counts)
    assert back.train_polygons == (1, 2) and back.validation_polygons == (3, 4)
    assert back.model["recipe"] == {"sensors": "optical", "every_days": 10}
    assert back.accuracy == {"overall_accuracy": 0.88, "kappa": 0.8, "macro_f1": 0.87}
    item = back.item
    assert contracts.EXTENSIONS["classification"] in item.stac_extensions
    assert item.properties["processing:level"] == contracts.LANDCOVER.level
    assert {"model", "confusion", "accuracy"} <= set(item.assets)
    publish.verify_checksums(item)
    ref = xr.zeros_like(back.classification) + back.classification.where(
        back.classification == 11, 0
    )
    cm = back.confusion_on(ref)
    assert cm.counts.sum() == int((back.classification == 11).sum())


def test_landcover_from_maps_needs_no_model(catalog_json: Path) -> None:
    pred = prediction()
    lc = publish.LandCoverProduct.from_maps(
        pred.classification, pred.probability, legend={11: "a", 12: "b", 31: "c"}, name="radar"
    )
    assert lc.collection == "landcover-radar"
    with pytest.raises(ProductContractError, match=r"margin"):  # a written product is complete
        lc.write(catalog_json)
    with pytest.raises(ProductContractError, match=r"dims"):
        publish.LandCoverProduct.from_maps(pred.probability, legend={})


def test_fused_round_trip(catalog_json: Path) -> None:
    pred = prediction()
    ds = xr.Dataset(
        {
            "fused_class": pred.classification.assign_attrs(
                classes=str({11: "a", 12: "b", 31: "c"})
            ),
            **{
                v: pred.probability.isel({"class": 0}, drop=True)
                for v in ("belief", "plausibility", "conflict", "ignorance", "confidence")
            },
            "agreement": xr.ones_like(pred.classification),
        },
        attrs={"rule": "dempster", "decision": "max_bel", "sources": "optical, radar"},
    )
    made = publish.FusedProduct.from_fusion(ds)
    made.write(catalog_json)
    back = publish.FusedProduct.from_catalog(catalog_json)
    assert back.legend == {11: "a", 12: "b", 31: "c"}
    assert back.fusion["rule"] == "dempster"
    np.testing.assert_array_equal(back.data.fused_class.values, ds.fused_class.values)
    classes = back.item.assets["fused_class"].extra_fields["classification:classes"]
    assert {c["value"] for c in classes} >= {0, 11, 12, 31, contracts.UNDECIDED}
    with pytest.raises(ProductContractError, match=r"Not a fused product"):
        publish.FusedProduct.from_fusion(ds.drop_vars("belief"))


def test_flood_products_round_trip(catalog_json: Path) -> None:
    pred = prediction()
    t = [np.datetime64("2022-04-01"), np.datetime64("2022-04-13")]
    water = (pred.confidence > 50).astype("uint8").expand_dims(time=t)
    extent = xr.Dataset({"water": water, "flood": water, "likelihood": water * 90})
    publish.FloodExtentProduct(extent).write(catalog_json)
    back = publish.FloodExtentProduct.from_catalog(catalog_json)
    assert back.data.sizes["time"] == 2
    np.testing.assert_array_equal(back.data.water.values, extent.water.values)
    summary = xr.Dataset(
        {v.name: (pred.confidence % 2).astype(v.dtype) for v in contracts.FLOOD_RISK.variables}
    )
    zones = pd.DataFrame({c: [1] for c in contracts.ZONE_COLUMNS})
    publish.FloodRiskProduct(summary, zones=zones).write(catalog_json)
    risk = publish.FloodRiskProduct.from_catalog(catalog_json)
    assert list(risk.zones.columns) == list(contracts.ZONE_COLUMNS)
    assert risk.class_names == contracts.RISK_CLASS_NAMES
    with pytest.raises(ProductContractError, match=r"zone table lacks"):
        publish.FloodRiskProduct(summary, zones=zones.drop(columns="zone")).write(
            catalog_json, collection="risk-2"
        )


def _tamper(item_json: Path, edit) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(item_json.read_text())
    edit(doc)
    item_json.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["assets"].pop("margin"), "asset 'margin' is missing"),
        (
            lambda d: d["assets"]["confidence"]["raster:bands"][0].update(data_type="float32"),
            "asset 'confidence' has raster:bands data_type 'float32'",
        ),
        (
            lambda d: d["assets"]["classification"].pop("classification:classes"),
            "asset 'classification' has no legend",
        ),
        (lambda d: d["assets"].pop("model"), "metadata asset 'model' is missing"),
        (
            lambda d: d["assets"]["margin"].pop("file:checksum"),
            "asset 'margin' has no file:checksum",
        ),
    ],
)
def test_items_that_break_the_contract_are_refused_by_name(
    catalog_json: Path, edit, field: str
) -> None:  # type: ignore[no-untyped-def]
    publish.LandCoverProduct.from_prediction(prediction(), model=_model()).write(catalog_json)
    item_json = catalog_json.parent / "landcover-optical" / "landcover-optical-summary"
    _tamper(item_json / "landcover-optical-summary.json", edit)
    with pytest.raises(ProductContractError) as err:
        publish.LandCoverProduct.from_catalog(catalog_json)
    message = str(err.value)
    assert "collection 'landcover-optical'" in message
    assert "item 'landcover-optical-summary'" in message
    assert field in message


def test_absent_product_says_how_to_make_it(catalog_json: Path) -> None:
    with pytest.raises(PublishError, match=r"No product 'landcover-fused'.*Write it first"):
        publish.FusedProduct.from_catalog(catalog_json)


def test_static_catalog_target_publishes_and_opens(tmp_path: Path) -> None:
    target = publish.StaticCatalog.create(tmp_path / "products")
    lc = publish.LandCoverProduct.from_prediction(prediction(), model=_model())
    target.publish(lc)
    again = target.open(publish.LandCoverProduct)
    assert again.legend == lc.legend
    assert isinstance(target, publish.Target)


def test_product_exports_to_a_self_contained_folder(tmp_path: Path) -> None:
    lc = publish.LandCoverProduct.from_prediction(prediction(), model=_model())
    root = lc.to_folder(tmp_path / "export")
    back = publish.LandCoverProduct.from_catalog(root)
    np.testing.assert_array_equal(back.classification.values, lc.classification.values)
    with pytest.raises(PublishError, match=r"exists"):
        lc.to_folder(tmp_path / "export")


def test_fusion_takes_products_in_memory_or_from_a_catalog_alike(catalog_json: Path) -> None:
    from mus_lab import fusion, recipes

    made = [
        publish.LandCoverProduct.from_prediction(
            prediction(seed), model=_model(), accuracy=_accuracy(), name=name
        )
        for seed, name in ((1, "optical"), (2, "radar"))
    ]
    in_memory = fusion.fuse(made).compute()
    for product in made:
        product.write(catalog_json)
    read = recipes.sources_from_catalog(catalog_json)
    assert [p.name for p in read] == ["optical", "radar"]
    from_catalog = fusion.fuse(read).compute()
    np.testing.assert_array_equal(from_catalog.fused_class.values, in_memory.fused_class.values)
    np.testing.assert_allclose(from_catalog.belief.values, in_memory.belief.values, rtol=1e-6)
    assert from_catalog.attrs["sources"] == in_memory.attrs["sources"] == "optical, radar"
