"""publish.write_collection: COGs + items, checksums, contracts, attachments, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from mus_lab import catalog as cat
from mus_lab import contracts, publish
from mus_lab.errors import ProductContractError, PublishError

from .conftest import prediction


def test_extra_dimension_becomes_described_bands_with_checksums(catalog_json: Path) -> None:
    ds = prediction()
    coll = publish.write_collection(ds, catalog_json, "probs", level="L3-test")
    item = next(iter(coll.get_items()))
    assert item.id == "probs-summary"
    href = item.assets["probability"].get_absolute_href()
    with rasterio.open(href) as src:
        assert src.count == 3 and src.descriptions == ("11", "12", "31")
        np.testing.assert_array_equal(src.read(), ds.probability.values)
    bands = item.assets["probability"].extra_fields["raster:bands"]
    assert [b["description"] for b in bands] == ["11", "12", "31"]
    for key, asset in item.assets.items():
        path = Path(asset.get_absolute_href())
        assert asset.extra_fields["file:size"] == path.stat().st_size, key
        assert asset.extra_fields["file:checksum"] == publish.checksum(path), key
    assert contracts.EXTENSIONS["file"] in item.stac_extensions
    publish.verify_checksums(item)
    assert len(cat.search(catalog_json, collections="probs")) == 1
    assert (
        json.loads((catalog_json.parent / "probs" / "collection.json").read_text())["id"] == "probs"
    )


def test_damaged_file_fails_its_checksum(catalog_json: Path) -> None:
    coll = publish.write_collection(prediction(), catalog_json, "probs", level="L3-test")
    item = next(iter(coll.get_items()))
    path = Path(item.assets["confidence"].get_absolute_href())
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(PublishError, match=r"confidence.*file:checksum"):
        publish.verify_checksums(item)


def test_contract_checks_variables_and_dtypes_before_writing(catalog_json: Path) -> None:
    ds = prediction()
    with pytest.raises(ProductContractError, match=r"\['margin'\] are missing"):
        publish.write_collection(
            ds.drop_vars("margin"), catalog_json, "lc", contract=contracts.LANDCOVER
        )
    with pytest.raises(ProductContractError, match=r"'confidence' is float64.*uint8"):
        publish.write_collection(
            ds.assign(confidence=ds.confidence.astype("float64") / 3),
            catalog_json,
            "lc",
            contract=contracts.LANDCOVER,
        )
    with pytest.raises(ProductContractError, match=r"'extra' is not part of a landcover"):
        publish.write_collection(
            ds.assign(extra=ds.confidence), catalog_json, "lc", contract=contracts.LANDCOVER
        )
    assert not (catalog_json.parent / "lc").exists()
    assert "lc" not in catalog_json.read_text()


def test_no_catalog_and_existing_collection_are_clear_errors(
    catalog_json: Path, tmp_path: Path
) -> None:
    with pytest.raises(PublishError, match=r"No catalog.json"):
        publish.write_collection(prediction(), tmp_path / "nowhere", "x")
    publish.write_collection(prediction(), catalog_json, "x")
    with pytest.raises(PublishError, match=r"overwrite=True"):
        publish.write_collection(prediction(), catalog_json, "x")
    publish.write_collection(prediction(1), catalog_json, "x", overwrite=True)
    assert catalog_json.read_text().count("./x/collection.json") == 1


def test_files_attach_to_the_summary_item_only(catalog_json: Path, tmp_path: Path) -> None:
    csv = tmp_path / "zones.csv"
    pd.DataFrame({"zone": ["a"], "flooded_ha": [1.0]}).to_csv(csv, index=False)
    ds = prediction()[["confidence"]]
    coll = publish.write_collection(ds, catalog_json, "risk", files={"zones": csv})
    (item,) = coll.get_items()
    assert item.assets["zones"].media_type == "text/csv"
    assert pd.read_csv(Path(item.assets["zones"].get_absolute_href())).zone.tolist() == ["a"]
    with pytest.raises(PublishError, match=r"not a file"):
        publish.write_collection(ds, catalog_json, "other", files={"zones": tmp_path / "no.csv"})
    assert not (catalog_json.parent / "other").exists()
    timed = ds.expand_dims(time=[np.datetime64("2022-04-28")])
    with pytest.raises(PublishError, match=r"time-less"):
        publish.write_collection(timed, catalog_json, "third", files={"zones": csv})


def test_two_extra_dimensions_are_refused(catalog_json: Path) -> None:
    bad = prediction()[["probability"]].expand_dims(run=[1, 2])
    with pytest.raises(ProductContractError, match=r"one extra dimension"):
        publish.write_collection(bad, catalog_json, "bad")
    assert not (catalog_json.parent / "bad").exists()
    assert not list(catalog_json.parent.glob(".bad.tmp-*"))


def test_to_geotiff_uses_the_contract_nodata(tmp_path: Path) -> None:
    ds = prediction()
    out = publish.to_geotiff(ds["confidence"], tmp_path / "c.tif")
    with rasterio.open(out) as src:
        assert src.nodata == contracts.NODATA_SCORE
    with pytest.raises(PublishError, match=r"no pixel grid"):
        publish.to_geotiff(
            ds["confidence"].drop_vars(["x", "y", "spatial_ref"]), tmp_path / "d.tif"
        )
    with pytest.raises(PublishError, match=r"select one date"):
        publish.to_geotiff(ds["probability"].expand_dims(t=[1]), tmp_path / "e.tif")
