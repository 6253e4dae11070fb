from __future__ import annotations

import json

from typer.testing import CliRunner

from mus_lab.cli import app

runner = CliRunner()


def test_help_reads_well():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("sample", "search", "demo"):
        assert command in result.output


def test_search_local_catalog_writes_items(scenario, tmp_path):
    out = tmp_path / "items.geojson"
    result = runner.invoke(
        app,
        [
            "search",
            str(scenario.catalog_path),
            "-c",
            "sentinel-1-grd",
            "--datetime",
            "2022-03-01/2022-06-30",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    items = json.loads(out.read_text())["features"]
    assert items and all(f["collection"] == "sentinel-1-grd" for f in items)
    assert all("2022-03-01" <= f["properties"]["datetime"][:10] <= "2022-06-30" for f in items)


def test_bad_bbox_is_a_message_not_a_traceback(scenario):
    result = runner.invoke(
        app, ["search", str(scenario.catalog_path), "-c", "sentinel-2-l2a", "--bbox", "10,50,5,40"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "min_lon" in result.output


def test_unknown_collection_lists_the_known_ones(scenario):
    result = runner.invoke(app, ["search", str(scenario.catalog_path), "-c", "landsat-c2-l2"])
    assert result.exit_code == 2
    assert "sentinel-2-l2a" in result.output


def test_sample_refuses_to_overwrite(tmp_path):
    target = tmp_path / "exists"
    target.mkdir()
    result = runner.invoke(app, ["sample", "--out", str(target), "--size", "64"])
    assert result.exit_code == 2
    assert "overwrite" in result.output
