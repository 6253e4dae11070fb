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


def test_ard_commands_write_ard_into_the_catalog(scenario, tmp_path):
    import shutil

    from mus_lab import catalog

    root = tmp_path / "cat"
    shutil.copytree(scenario.catalog_path.parent, root)
    period = "2022-04-01/2022-05-31"
    r = runner.invoke(app, ["ard", "s2", str(root), "--datetime", period, "--every", "10"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ard", "s1", str(root), "--datetime", period, "--speckle", "lee"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ard", "rcm", str(root), "--datetime", period])
    assert r.exit_code == 0, r.output
    s2 = catalog.search(root, collections="s2-l2a-series")  # gap-filled: the series product
    s1 = catalog.search(root, collections="s1-grd-ard")
    rcm = catalog.search(root, collections="rcm-grd-ard")
    assert len(s2) >= 6 and len(s1) >= 4 and len(rcm) >= 2  # 10-day series (+ summary); SAR dates
    assert {"ndvi", "mndwi", "red"} <= set(s2[0].assets)
    assert {"vv", "vh", "valid", "quality"} <= set(s1[0].assets)


def test_ard_bad_input_is_a_message(scenario, tmp_path):
    r = runner.invoke(app, ["ard", "s2", str(scenario.catalog_path), "--invalid", "a,b"])
    assert r.exit_code == 2 and "SCL class numbers" in r.output
    r = runner.invoke(app, ["ard", "s2", str(scenario.catalog_path), "--invalid", "0,12"])
    assert r.exit_code == 2 and "Unknown SCL classes" in r.output
    r = runner.invoke(app, ["ard", "s1", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "Traceback" not in r.output
