"""Land-cover products read back from a catalog as fusion inputs; held-out reference halves."""

from __future__ import annotations

import dataclasses
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rioxarray
import xarray as xr

from mus_lab import catalog as cat
from mus_lab import classify, fusion, recipes
from mus_lab.classify import AccuracyReport, ConfusionMatrix, LandCoverModel, ModelMetadata
from mus_lab.errors import FusionError, MissingLandCoverError

CODES = (1, 2, 3, 4, 5, 6, 7)


def _product(truth: xr.DataArray, error: float, seed: int, train, valid) -> tuple:
    """predict()'s contract from the truth with ``error`` of the pixels shifted to another class."""
    rng = np.random.default_rng(seed)
    t = truth.values.astype(np.uint8)
    noisy = np.where(rng.random(t.shape) < error, rng.integers(1, 8, t.shape), t).astype(np.uint8)
    noisy = np.where(t == 0, 0, noisy).astype(np.uint8)
    probs = np.full((7, *t.shape), 0.05, np.float32)
    np.put_along_axis(probs, np.clip(noisy.astype(int) - 1, 0, 6)[None], 0.7, axis=0)
    coords = {"y": truth.y, "x": truth.x}
    ds = xr.Dataset(
        {
            "classification": (("y", "x"), noisy),
            "confidence": (("y", "x"), np.full(t.shape, 70, np.uint8)),
            "margin": (("y", "x"), np.full(t.shape, 65, np.uint8)),
            "probability": (("class", "y", "x"), probs),
        },
        coords={**coords, "class": list(CODES)},
    ).odc.assign_crs(truth.rio.crs)
    for name, nodata in (("classification", 0), ("confidence", 255), ("margin", 255)):
        ds[name].attrs["nodata"] = nodata
    ref = t[t > 0]
    cm = ConfusionMatrix.from_labels(ref, noisy[t > 0], labels=CODES)
    names = {
        c: n
        for c, n in zip(
            CODES,
            ("crops", "grassland", "forest", "water", "wetland", "urban", "bare"),
            strict=True,
        )
    }
    meta = ModelMetadata(
        kind="rf",
        params={"n_estimators": 3},
        classes=CODES,
        class_names=names,
        features=("f",),
        variables=("f",),
        dates=(),
        crs=str(truth.rio.crs),
        resolution=(10.0, 10.0),
        report={
            "seed": 0,
            "train_ratio": 0.5,
            "train_polygons": train,
            "validation_polygons": valid,
        },
    )
    return ds, LandCoverModel({}, meta), AccuracyReport.from_confusion(cm, names)


@pytest.fixture(scope="module")
def products(scenario, tmp_path_factory):
    """A copy of the scenario catalog with landcover-optical and landcover-radar written by
    classify.write_landcover (the optical map less noisy than the radar one)."""
    root = tmp_path_factory.mktemp("lc") / "catalog"
    shutil.copytree(scenario.catalog_path.parent, root)
    item = next(iter(cat.search(root, collections="landcover-truth")))
    truth = rioxarray.open_rasterio(item.assets["landcover"].get_absolute_href()).squeeze(
        "band", drop=True
    )
    ids = sorted(gpd.read_file(scenario.polygons, layer="reference")["poly_id"].astype(int))
    train, valid = ids[::2], ids[1::2]
    for sensors, error, seed in (("optical", 0.1, 0), ("radar", 0.25, 1)):
        ds, model, acc = _product(truth, error, seed, train, valid)
        classify.write_landcover(
            ds, root, classify.LANDCOVER_COLLECTIONS[sensors], model=model, accuracy=acc
        )
    return root / "catalog.json", truth, train, valid


def test_sources_from_catalog_reads_maps_probabilities_confusions_and_polygons(products):
    catalog, truth, train, valid = products
    optical, radar = recipes.sources_from_catalog(catalog)
    assert (optical.name, radar.collection) == ("optical", "landcover-radar")
    assert optical.item.id == "landcover-optical-summary"
    assert optical.probability.dims == ("class", "y", "x") and optical.probability.chunks
    assert list(optical.probability["class"].values) == list(CODES)
    assert optical.classification.shape == truth.shape
    assert optical.confusion.overall_accuracy > radar.confusion.overall_accuracy > 0.6
    assert list(optical.train_polygons) == train and list(radar.validation_polygons) == valid
    assert optical.legend[3] == "forest"
    fused = fusion.fuse([optical, radar])  # probabilities and confusion matrices of each
    assert fused.attrs["sources"] == "optical, radar"
    assert set(np.unique(fused.fused_class.values)) <= {0, *CODES, fusion.UNDECIDED}
    assert "forest" in fused.fused_class.attrs["classes"]  # the products' legend
    iota2 = fusion.fuse([optical, radar], options=fusion.FusionOptions(masses="labels"))
    assert iota2.attrs["decision"] == "otb"


def test_a_bbox_crops_the_maps_and_a_missing_product_says_to_run_notebook_03(products, scenario):
    catalog, truth, *_ = products
    x0, y0, x1, y1 = scenario.bbox
    (west,) = recipes.sources_from_catalog(
        catalog, {"optical": "landcover-optical"}, bbox=[x0, y0, (x0 + x1) / 2, y1]
    )
    assert west.probability.sizes["y"] == truth.sizes["y"]
    assert (
        abs(west.classification.sizes["x"] - truth.sizes["x"] / 2) <= 3
    )  # a lon/lat box is no UTM rectangle
    assert float(west.classification.x.max()) < float(truth.x.max())
    with pytest.raises(MissingLandCoverError, match=r"run notebooks/03_landcover\.ipynb"):
        recipes.sources_from_catalog(catalog, {"stacked": "landcover-stacked"})
    with pytest.raises(MissingLandCoverError, match=r"does not overlap|run notebooks/03"):
        recipes.sources_from_catalog(catalog, bbox=[x1 + 1, y0, x1 + 2, y1])


def test_held_out_halves_are_whole_validation_polygons_disjoint_from_training(products, scenario):
    catalog, truth, train, _ = products
    sources = recipes.sources_from_catalog(catalog)
    calibration, evaluation = fusion.split_held_out(scenario.polygons, sources)
    cal, ev, t = calibration.values, evaluation.values, truth.values
    assert cal.shape == ev.shape == t.shape
    assert not ((cal > 0) & (ev > 0)).any()
    assert (cal[cal > 0] == t[cal > 0]).mean() > 0.95 and (ev[ev > 0] == t[ev > 0]).mean() > 0.95
    assert len(set(np.unique(ev)) - {0}) >= 5  # most classes in both halves
    from rasterio import features

    gdf = gpd.read_file(scenario.polygons, layer="reference").to_crs(truth.rio.crs)
    trained = features.rasterize(
        gdf[gdf.poly_id.isin(train)].geometry, out_shape=t.shape, transform=truth.rio.transform()
    )
    assert not ((trained > 0) & ((cal > 0) | (ev > 0))).any()
    cm = sources[1].confusion_on(calibration)
    assert cm.counts.sum() == int(((cal > 0) & (sources[1].classification.values > 0)).sum())
    lonely = dataclasses.replace(sources[0], validation_polygons=())
    with pytest.raises(FusionError, match="does not record its validation polygons"):
        fusion.split_held_out(scenario.polygons, [lonely])
