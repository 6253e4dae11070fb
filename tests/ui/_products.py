"""The products the dashboards show, made by the real package stages on a small scenario.

This is the chain of notebooks 02 to 05 (``notebooks/``) without papermill: Sentinel-2 ARD
(``s2-l2a-ard``, the explorer's optical series), random-forest land cover from the optical
and the radar features (``landcover-optical``, ``landcover-radar``), their Dempster-Shafer
fusion (``landcover-fused``) and the flood extent and risk with the zone table
(``flood-extent``, ``flood-risk``). Settings are smaller than the notebooks' (few trees, no
TempCNN, no seed study) to keep the tests fast; the product contracts are the same.
"""

from __future__ import annotations

import time
from pathlib import Path

import dask

from mus_lab import ard, classify, cube, flood, fusion, publish, recipes
from mus_lab import catalog as cat

#: Trees of the random forests (the notebook uses 100; the maps are already good with 20).
N_TREES = 20
SOURCES = ("optical", "radar")


def make_products(catalog: Path, work: Path) -> dict[str, float]:
    """Write every product the dashboards show into ``catalog``; return seconds per stage.

    ``work`` receives the zone polygons of the risk table (a 2 x 2 grid, as notebook 05).
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        seconds[name] = now - start
        start = now

    # 02: Sentinel-2 ARD, as notebook 02 writes it.
    s2_items = cat.search(catalog, collections="sentinel-2-l2a")
    s2 = ard.prepare_s2(s2_items, chunks={"time": -1, "x": 512, "y": 512})
    ard.write(
        s2[["red", "nir", "swir16", "quality", "valid"]],
        catalog,
        "s2-l2a-ard",
        sources=list(s2_items),
        overwrite=True,
    )
    lap("s2-l2a-ard")

    # 03: land cover per source (random forest trained and validated on distinct polygons).
    truth = next(iter(cat.search(catalog, collections="landcover-truth")))
    polygons = truth.assets["polygons"].get_absolute_href()
    results, reports, models = {}, {}, {}
    for sensors in SOURCES:
        features, recipe, sources = recipes.features_from_catalog(catalog, sensors=sensors)
        features = dask.persist(features)[0]
        samples = classify.extract_samples(features, polygons, layer="reference")
        model = classify.train(
            samples, "rf", params={"n_estimators": N_TREES}, seed=0, recipe=recipe
        )
        result = classify.predict(features, model, min_pixels=4).compute()
        report = classify.assess(
            result.classification,
            polygons,
            layer="reference",
            polygon_ids=model.metadata.report["validation_polygons"],
        )
        classify.write_landcover(
            result,
            catalog,
            classify.LANDCOVER_COLLECTIONS[sensors],
            model=model,
            accuracy=report,
            sources=sources,
            overwrite=True,
        )
        results[sensors], reports[sensors], models[sensors] = result, report, model
        lap(f"landcover-{sensors}")

    # 04: fusion of the two real land-cover products, in memory (as written), weighted by
    # their validated confusions.
    products = [
        publish.LandCoverProduct.from_prediction(
            results[s], model=models[s], accuracy=reports[s], name=s
        )
        for s in SOURCES
    ]
    fused = fusion.fuse(products).compute()
    written = [it for s in SOURCES for it in cat.search(catalog, collections=f"landcover-{s}")]
    fusion.write_fused(fused, catalog, sources=written, overwrite=True)
    lap("landcover-fused")

    # 05: flood extent per SAR date and flood risk, exposure from the fused land cover.
    grid = cube.reference_geobox(cat.search(catalog, collections="sentinel-2-l2a", max_items=1))
    zones = work / "zones.gpkg"
    flood.grid_zones(grid, rows=2, cols=2).to_file(zones)
    run = recipes.run_risk(catalog, landcover="landcover-fused", zones=zones, overwrite=True)
    run.cleanup()
    lap("flood-extent, flood-risk")
    return seconds
