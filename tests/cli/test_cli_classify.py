"""``mus-lab landcover train | predict | assess`` with typer's CliRunner, including bad input."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from mus_lab import catalog as cat
from mus_lab.classify import ConfusionMatrix
from mus_lab.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(scenario, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A copy of the scenario (the commands write into its catalog) and an RF model."""
    root = tmp_path_factory.mktemp("cli_lc") / "sc"
    shutil.copytree(scenario.root, root)
    catalog = root / scenario.catalog_path.relative_to(scenario.root)
    polygons = root / scenario.polygons.relative_to(scenario.root)
    model = root.parent / "model_rf"
    result = runner.invoke(
        app,
        [
            "landcover", "train", str(catalog), "-p", str(polygons), "--layer", "reference",
            "-o", str(model), "--trees", "10", "--seed", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return catalog, polygons, model, result.output


def test_train_predict_assess(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog, polygons, model, train_out = workspace
    assert "validation on other polygons: OA" in train_out
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["kind"] == "rf" and meta["params"]["n_estimators"] == 10
    assert meta["recipe"]["sensors"] == "optical" and meta["recipe"]["layer"] == "reference"
    result = runner.invoke(
        app, ["landcover", "predict", str(catalog), "-m", str(model), "--mmu", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 'landcover-optical'" in result.output and "OA " in result.output
    (item,) = cat.search(catalog, collections="landcover-optical")
    assert {"classification", "confidence", "margin", "probability", "confusion"} <= set(
        item.assets
    )
    out = tmp_path / "acc"
    result = runner.invoke(
        app,
        [
            "landcover", "assess", str(catalog), "-p", str(polygons), "--layer", "reference",
            "-o", str(out), "--model", str(model),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cm = ConfusionMatrix.from_csv(out / "confusion.csv")
    written = ConfusionMatrix.from_csv(item.assets["confusion"].get_absolute_href())
    assert (cm.counts == written.counts).all()  # same validation polygons, same map
    assert (out / "areas.csv").exists() and (out / "per_class.csv").exists()
    again = runner.invoke(app, ["landcover", "predict", str(catalog), "-m", str(model)])
    assert again.exit_code == 2 and "exists" in again.output


def test_bad_input_gives_messages_not_tracebacks(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog, polygons, model, _ = workspace
    base = ["landcover", "train", str(catalog), "-p", str(polygons), "--layer", "reference"]
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "m"), "--model", "svm"])
    assert r.exit_code == 2 and "choose rf, tempcnn, ltae or ensemble" in r.output
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "m"), "--label", "LULC_ID"])
    assert r.exit_code == 2 and "no label field 'LULC_ID'" in r.output
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "m"), "--sensors", "lidar"])
    assert r.exit_code == 2 and "optical, radar or stacked" in r.output
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "m"), "--bbox", "1,2,3"])
    assert r.exit_code == 2 and "must have four numbers" in r.output and "got 3" in r.output
    far = gpd.read_file(polygons, layer="reference")
    far["geometry"] = far.translate(xoff=50_000)
    far.to_file(tmp_path / "far.gpkg", layer="reference")
    r = runner.invoke(
        app,
        [
            "landcover",
            "train",
            str(catalog),
            "-p",
            str(tmp_path / "far.gpkg"),
            "-o",
            str(tmp_path / "m"),
        ],
    )
    assert r.exit_code == 2 and "overlaps the cube" in r.output
    r = runner.invoke(app, ["landcover", "predict", str(catalog), "-m", str(tmp_path / "none")])
    assert r.exit_code == 2 and "No land-cover model" in r.output
    # A model whose recipe no longer gives its features: refused, nothing written.
    tampered = tmp_path / "tampered"
    shutil.copytree(model, tampered)
    meta = json.loads((tampered / "metadata.json").read_text())
    meta["recipe"]["every_days"] = 20
    (tampered / "metadata.json").write_text(json.dumps(meta))
    r = runner.invoke(
        app, ["landcover", "predict", str(catalog), "-m", str(tampered), "--collection", "lc-x"]
    )
    assert r.exit_code == 2 and "do not match" in r.output
    assert not (catalog.parent / "lc-x").exists()
    r = runner.invoke(
        app,
        [
            "landcover",
            "assess",
            str(catalog),
            "-p",
            str(polygons),
            "-o",
            str(tmp_path / "a"),
            "--collection",
            "nothing",
        ],
    )
    assert r.exit_code == 2 and "Error" in r.output
