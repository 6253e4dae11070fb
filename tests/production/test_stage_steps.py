"""A chain of the stages over tiles: ARD (S2, S1, RCM) -> land cover -> fusion -> flood, with
kept intermediates, their lifetimes, ``prune``, and retry's size+mtime fast path."""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from mus_lab import classify, flood, production, recipes
from mus_lab.cli import app
from mus_lab.errors import ChainError
from mus_lab.production import _tilerun, _tilesteps
from tests.production.test_tiles import _checksums

PERIOD = "2022-03-01/2022-07-31"


def _models(tmp, scenario, bbox):
    for name, kw in (
        ("optical", {"sensors": "optical", "optical_variables": ("ndvi",)}),
        ("radar", {"sensors": "radar", "speckle": None, "radar_sources": ("sentinel-1-grd",)}),
    ):
        feats, recipe, _ = recipes.features_from_catalog(
            scenario.catalog_path, bbox=bbox, every_days=60, datetime=PERIOD, **kw
        )
        samples = classify.extract_samples(feats, scenario.polygons, layer="reference")
        classify.train(samples, "rf", params={"n_estimators": 8}, recipe=recipe).save(tmp / name)


@pytest.mark.slow
def test_ard_landcover_fusion_flood_over_tiles_with_kept_intermediates(
    tmp_path, scenario, client, monkeypatch
):
    w, s, e, n = scenario.bbox
    bbox = [w, s, e, (s + n) / 2]  # 132 x 69 px: two tiles
    _models(tmp_path, scenario, bbox)
    data = {
        "chain": "stages",
        "catalog": str(scenario.catalog_path),
        "output": "out",
        "period": PERIOD,
        "area": {"bbox": bbox, "tile": 69},
        "steps": {
            "s2": {"uses": "ard.s2", "options": {"bands": ["red", "nir"], "max_cloud": 100}},
            "s1": {"uses": "ard.sar", "options": {"sensor": "s1"}},
            "s1vh": {"uses": "ard.sar", "options": {"sensor": "s1", "polarisation": "vh"}},
            "rcm": {"uses": "ard.sar", "options": {"sensor": "rcm", "polarisation": "vh"}},
            "optical": {
                "uses": "landcover.predict",
                "needs": ["s2"],
                "options": {"model": "optical"},
            },
            "radar": {
                "uses": "landcover.predict",
                "needs": ["s1", "s1vh"],
                "options": {"model": "radar"},
            },
            "fused": {"uses": "fusion.fuse", "needs": ["optical", "radar"]},
            "flood": {"uses": "flood.water", "needs": ["s1"]},
        },
        "intermediates": {"folder": "kept", "keep": {"conflict": "forever", "features": "1h"}},
    }
    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump(data))
    _bad_chains(tmp_path, data)
    spec = production.load_chain(path)
    assert spec.keeps().folder == tmp_path / "kept"
    report = production.run_tiles(path, client=client, log=lambda line: None)
    assert report.ok, report.table()
    tasks = {(t.step, t.tile): t for t in report.tasks}

    # ARD: int16 reflectance per date and band; backscatter in dB per date
    with rasterio.open(tasks[("s2", "r0c0")].outputs["reflectance"]["path"]) as src:
        assert src.dtypes[0] == "int16" and src.descriptions[0].endswith("_red")
    with rasterio.open(tasks[("rcm", "r0c1")].outputs["backscatter"]["path"]) as src:
        assert src.count >= 2 and -40 < np.nanmedian(src.read(1)) < 5

    # land cover read the ARD files of s2 / s1 + s1vh (named, with checksums, as inputs) and
    # mapped what the catalog route maps; fusion used the models' held-out matrices
    _ard_read_and_matrices_used(tmp_path, scenario, spec, tasks)

    # flood: one threshold per date for the scene, from the histograms of both tiles
    scenes = [tasks[("flood", t)].parameters["scene"] for t in ("r0c0", "r0c1")]
    assert scenes[0] == scenes[1]
    db = []
    for tile in ("r0c0", "r0c1"):
        with rasterio.open(tasks[("s1", tile)].outputs["backscatter"]["path"]) as src:
            db.append(src.read(1).ravel())
            dates = list(src.descriptions)
    assert scenes[0]["bands"] == dates
    values = np.concatenate(db)
    counts = np.histogram(values[np.isfinite(values)], bins=np.arange(-40, 10.125, 0.25))[0]
    assert scenes[0]["thresholds_db"][0] == -40 + flood.otsu_threshold_histogram(counts) * 0.25
    with rasterio.open(tasks[("flood", "r0c1")].outputs["water"]["path"]) as src:
        water = src.read(1)
        assert list(src.descriptions) == dates
    expected = np.where(db[1] < np.float32(scenes[0]["thresholds_db"][0]), 1, 0)
    expected = np.where(np.isfinite(db[1]), expected, 255).reshape(water.shape)
    assert (water == expected).all()

    # intermediates: kept ones recorded with their lifetime and published; the probabilities
    # fusion read (not kept) were removed at the run's end
    fused = tasks[("fused", "r0c0")].outputs
    assert fused["conflict"]["intermediate"] and fused["conflict"]["lifetime"] is None
    assert fused["conflict"]["path"].startswith(str(tmp_path / "kept" / "fused"))
    optical = tasks[("optical", "r0c0")].outputs
    assert optical["probabilities"]["pruned"]
    assert not os.path.exists(optical["probabilities"]["path"])
    assert os.path.exists(optical["features"]["path"])
    item = json.loads(
        (spec.output / "catalog" / "optical" / "optical-r0c0" / "optical-r0c0.json").read_text()
    )
    assert item["assets"]["features"]["roles"] == ["intermediate", "features"]
    assert "expires" in item["assets"]["features"] and "probabilities" not in item["assets"]

    # prune, an hour later: the features go, from the disk and the catalog; conflict stays
    dry = CliRunner().invoke(app, ["chain", "prune", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "would remove 0" in dry.output
    removed = production.prune(path, now=time.time() + 3601)
    assert sorted(p.name for p in removed) == ["r0c0_features.tif"] * 2 + ["r0c1_features.tif"] * 2
    assert not os.path.exists(optical["features"]["path"])
    item = json.loads(
        (spec.output / "catalog" / "optical" / "optical-r0c0" / "optical-r0c0.json").read_text()
    )
    assert "features" not in item["assets"] and "classification" in item["assets"]
    assert os.path.exists(fused["conflict"]["path"])

    # retry: nothing to do, and no output is hashed (size and mtime as recorded)
    hashed: list[str] = []
    real = _tilerun.sha256_file
    monkeypatch.setattr(_tilerun, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    before = _checksums(report)
    again = production.retry(path, client=client, log=lambda line: None)
    assert again.ok and {t.attempts for t in again.tasks} == {1} and hashed == []

    # a touched output is hashed once, found equal, and its new mtime recorded
    target = spec.output / "flood" / "r0c0.tif"
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    production.retry(path, client=client, log=lambda line: None)
    assert hashed == [str(target)]
    hashed.clear()
    production.retry(path, client=client, log=lambda line: None)
    assert hashed == []

    # a fused tile gone: the land cover that gives its (pruned) probabilities runs again
    (spec.output / "fused" / "r0c0.tif").unlink()
    mended = production.retry(path, client=client, log=lambda line: None)
    attempts = {(t.step, t.tile): t.attempts for t in mended.tasks}
    assert mended.ok
    assert {k for k, v in attempts.items() if v == 2} == {
        ("fused", "r0c0"),
        ("optical", "r0c0"),
        ("radar", "r0c0"),
    }
    assert _checksums(mended) == before


def _ard_read_and_matrices_used(tmp, scenario, spec, tasks):
    from mus_lab import fusion

    tile = spec.tiles()[0]
    optical = tasks[("optical", tile.id)]
    s2 = tasks[("s2", tile.id)].outputs["reflectance"]
    assert [(i["step"], i["path"], i["sha256"]) for i in optical.inputs] == [
        ("s2", s2["path"], s2["sha256"])
    ]
    assert [i["step"] for i in tasks[("radar", tile.id)].inputs] == ["s1", "s1vh"]
    seen = production.history(optical.outputs["classification"]["path"], spec.source)
    assert seen["inputs"] == optical.inputs
    item = json.loads(
        (
            spec.output / "catalog" / "optical" / f"optical-{tile.id}" / f"optical-{tile.id}.json"
        ).read_text()
    )
    assert (
        f"reading s2/{tile.id}.tif (sha256 {s2['sha256']})"
        in (item["properties"]["processing:lineage"])
    )
    probabilities, matrices = {}, {}
    for name in ("optical", "radar"):  # what the catalog route (before) maps on this tile
        model = classify.load_model(tmp / name)
        feats, _, _ = recipes.features_from_catalog(
            scenario.catalog_path,
            classify.FeatureOptions.from_dict(model.metadata.recipe),
            bbox=tile.bbox_lonlat,
            datetime=PERIOD,
            geobox=tile.geobox,
        )
        result = classify.predict(feats, model)
        with rasterio.open(tasks[(name, tile.id)].outputs["classification"]["path"]) as src:
            assert (src.read(1) == result.classification.values).all()
        probabilities[name] = result.probability
        matrices[name] = model.validation.confusion.reorder(model.classes)
    fused = tasks[("fused", tile.id)]
    recorded = fused.parameters["confusions"]
    assert {n: (tuple(m["labels"]), m["counts"]) for n, m in recorded.items()} == {
        n: (m.labels, m.counts.astype(int).tolist()) for n, m in matrices.items()
    }
    assert fused.parameters["reliabilities"] == {"optical": "precision", "radar": "precision"}
    expected = fusion.fuse(
        probabilities,
        options=fusion.FusionOptions(reliability="precision", compound_threshold=0.1),
        confusions=matrices,
    )
    with rasterio.open(fused.outputs["fused_class"]["path"]) as src:
        assert (src.read(1) == expected["fused_class"].values).all()


def _bad_chains(tmp, data):
    """Land cover reading ARD that cannot give its model's features, and bad fusion options:
    a ChainError naming the fix, before anything runs (no registry)."""
    import copy
    import shutil

    bare = tmp / "bare"  # a model without its held-out matrix
    shutil.copytree(tmp / "radar", bare)
    meta = json.loads((bare / "metadata.json").read_text())
    meta["report"].pop("validation")
    (bare / "metadata.json").write_text(json.dumps(meta))
    cases = [
        (("steps", "s2", "options", "bands"), ["red"], "lack ['nir']: add them"),
        (("steps", "s2", "options", "max_cloud"), 80, "set max_cloud: 100"),
        (("steps", "s1", "options", "speckle"), "lee", "set speckle: None"),
        (("steps", "radar", "needs"), ["s1"], "one ard.sar step per polarisation"),
        (("steps", "optical", "needs"), ["s1"], "its model reads no sentinel-1-grd"),
        (("period",), "2022-04-01/2022-07-31", "set the chain's period"),
        (("steps", "fused", "options"), {"confusion": "sometimes"}, "choose one of"),
        (("steps", "fused", "options"), {"reliability": 2}, "a number in [0, 1]"),
        (("steps", "fused", "options"), {"rule": "nope"}, "nope"),
        (("steps", "radar", "options", "model"), "bare", None),  # auto: 0.9 for it
    ]
    for keys, value, message in cases:
        bad = copy.deepcopy(data)
        where = bad
        for k in keys[:-1]:
            where = where[k]
        where[keys[-1]] = value
        path = tmp / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        if message is None:
            spec = production.load_chain(path)
            fused = next(s for s in spec.steps if s.name == "fused")
            resolved = _tilesteps.options_with_defaults(fused, spec)
            assert resolved["reliabilities"] == {"optical": "precision", "radar": 0.9}
            assert resolved["confusions"]["radar"] is None
            bad["steps"]["fused"]["options"] = {"confusion": "held-out"}
            path.write_text(yaml.safe_dump(bad))
            message = "records no held-out confusion matrix"
        with pytest.raises(ChainError, match=re.escape(message)):
            production.load_chain(path)
    assert not (tmp / "out").exists()


def test_quicklooks_read_the_chains_ard_and_map_what_the_catalog_route_maps(
    tmp_path, scenario, client
):
    w, s, e, n = scenario.bbox
    s2 = {"uses": "ard.s2", "options": {"bands": ["red", "nir"], "max_cloud": 80}}
    data = {
        "chain": "quicklooks",
        "catalog": str(scenario.catalog_path),
        "output": "out",
        "period": PERIOD,
        "area": {"bbox": [w, s, e, (s + n) / 2], "tile": 69},
        "steps": {
            "s2": s2,
            "s1": {"uses": "ard.sar", "options": {"sensor": "s1"}},
            "ndvi": {"uses": "s2.ndvi_median", "needs": ["s2"]},
            "vv": {"uses": "sar.mean_db", "needs": ["s1"]},
            "ndvi_catalog": {"uses": "s2.ndvi_median"},
            "vv_catalog": {"uses": "sar.mean_db"},
        },
    }
    path = tmp_path / "quicklooks.yaml"
    path.write_text(yaml.safe_dump(data))
    report = production.run_tiles(path, client=client, log=lambda line: None)
    assert report.ok, report.table()
    tasks = {(t.step, t.tile): t for t in report.tasks}
    for tile in ("r0c0", "r0c1"):
        # the ARD file is an input of the task (with its checksum): no catalog search
        (read,) = [i for i in tasks[("ndvi", tile)].inputs if "step" in i]
        assert read["step"] == "s2" and read["path"].endswith(f"s2/{tile}.tif")
        assert read["sha256"] == tasks[("s2", tile)].outputs["reflectance"]["sha256"]
        assert not [i for i in tasks[("ndvi", tile)].inputs if "step" not in i]
        assert [i["step"] for i in tasks[("vv", tile)].inputs] == ["s1"]
        assert len(tasks[("ndvi_catalog", tile)].inputs) > 3  # the items it searched
        # same pixels kept; NDVI to float32 rounding (the int16 ARD holds the reflectance
        # exactly), the dB mean to 1e-5 dB (through dB and back)
        for step, tol in (("ndvi", 1e-6), ("vv", 1e-5)):
            ours, theirs = (
                rasterio.open(next(iter(tasks[(name, tile)].outputs.values()))["path"]).read(1)
                for name in (step, f"{step}_catalog")
            )
            both = np.isfinite(ours) & np.isfinite(theirs)
            same = (np.isfinite(ours) == np.isfinite(theirs)).mean()
            worst = np.abs(ours[both] - theirs[both]).max()
            assert both.sum() > 3000 and same == 1.0, (step, tile, both.sum(), same)
            assert worst < tol, (step, tile, worst)

    # an ARD step that cannot give the quicklook's input is refused at load, naming the fix
    import copy

    for keys, value, message in (
        (("s2", "options", "bands"), ["red"], "lacks ['nir']: add them"),
        (("s2", "options", "max_cloud"), 100, "set the same max_cloud on both"),
        (("s1", "options", "speckle"), "lee", "without a speckle filter"),
        (("s1", "options", "polarisation"), "vh", "set band: vh on 'vv'"),
        (("ndvi", "needs"), ["s2", "s2b"], "several ard.s2 steps"),
    ):
        bad = copy.deepcopy(data)
        bad["steps"]["s2b"] = copy.deepcopy(s2)
        bad["steps"][keys[0]][keys[1]] = (
            value if len(keys) == 2 else {**bad["steps"][keys[0]]["options"], keys[2]: value}
        )
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ChainError, match=re.escape(message)):
            production.load_chain(path)
