"""``mus-lab fuse`` with typer's CliRunner: label maps, probability cubes, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from mus_lab import catalog
from mus_lab._io import write_cog
from mus_lab.classify import ConfusionMatrix
from mus_lab.cli import app

from .conftest import A_FUSED, A_KEPT, grid

runner = CliRunner()


@pytest.fixture()
def files(vector_a, tmp_path):
    opt, sar, cm_opt, cm_sar, *_ = vector_a
    paths = {
        "opt": write_cog(opt, tmp_path / "optical.tif", nodata=0),
        "sar": write_cog(sar, tmp_path / "sar.tif", nodata=0),
        "opt_cm": cm_opt.to_csv(tmp_path / "optical.csv"),
        "sar_cm": cm_sar.to_csv(tmp_path / "sar.csv"),
    }
    return paths


def _run(*args):
    result = runner.invoke(app, ["fuse", *map(str, args)])
    assert "Traceback" not in result.output
    return result


def test_fuse_label_maps_writes_every_output(files, tmp_path):
    out = tmp_path / "fused"
    result = _run(
        files["opt"], files["sar"], "-m", files["opt_cm"], "-m", files["sar_cm"], "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "Confidence (0 to 1)" in result.output
    with rasterio.open(out / "fused_class.tif") as src:
        np.testing.assert_array_equal(src.read(1), A_FUSED)
    with rasterio.open(out / "agreement.tif") as src:
        np.testing.assert_array_equal(src.read(1), A_KEPT)
    with rasterio.open(out / "conflict.tif") as src:
        assert abs(src.read(1)[0, 0] - 0.071224) < 1e-6
    prov = json.loads((out / "fusion.json").read_text())
    assert prov["rule"] == "dempster" and prov["decision"] == "otb"
    assert prov["sources"] == "optical, sar" and len(prov["inputs"]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fused")]
    again = _run(
        files["opt"], files["sar"], "-m", files["opt_cm"], "-m", files["sar_cm"], "-o", out
    )
    assert again.exit_code == 2 and "--overwrite" in again.output
    yager = _run(
        files["opt"],
        files["sar"],
        "-m",
        files["opt_cm"],
        "-m",
        files["sar_cm"],
        "-o",
        out,
        "--rule",
        "yager",
        "--decision",
        "bel",
        "--overwrite",
    )
    assert yager.exit_code == 0, yager.output
    assert json.loads((out / "fusion.json").read_text())["rule"] == "yager"


def test_fuse_probability_cubes_into_a_catalog(scenario, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cat"
    shutil.copytree(scenario.catalog_path.parent, root)
    paths = []
    for i in range(2):
        p = rng.dirichlet([0.5, 0.5, 0.5], size=(6, 5)).transpose(2, 0, 1)
        cube = grid(p, "float32")
        paths.append(write_cog(cube, tmp_path / f"p{i}.tif", band_names=["1", "2", "5"]))
    result = _run(*paths, "--reliability", "0.8", "--rule", "pcr6", "--catalog", root)
    assert result.exit_code == 0, result.output
    items = catalog.search(root / "catalog.json", collections="landcover-fused")
    assert len(items) == 1
    assert items[0].properties["mus_lab:fusion"]["rule"] == "pcr6"
    with rasterio.open(items[0].assets["fused_class"].get_absolute_href()) as src:
        assert set(np.unique(src.read(1))) <= {1, 2, 5, 255}


def test_bad_input_is_a_message_not_a_traceback(files, vector_a, tmp_path):
    _, sar, _, cm_sar, *_ = vector_a
    out = tmp_path / "o"
    base = [files["opt"], files["sar"], "-m", files["opt_cm"], "-m", files["sar_cm"]]
    r = _run(*base)
    assert r.exit_code == 2 and "--out" in r.output
    r = _run(files["opt"], files["sar"], "-m", files["opt_cm"], "-o", out)
    assert r.exit_code == 2 and "one per map" in r.output
    r = _run(*base, "--rule", "murphy", "-o", out)
    assert r.exit_code == 2 and "Unknown combination rule" in r.output
    shifted = write_cog(
        sar.assign_coords(x=sar.x + 20).odc.assign_crs("EPSG:32631"), tmp_path / "shift.tif"
    )
    r = _run(files["opt"], shifted, "-m", files["opt_cm"], "-m", files["sar_cm"], "-o", out)
    assert r.exit_code == 2 and "different grids" in r.output
    bad = write_cog(sar.copy(data=np.where(sar == 43, 99, sar).astype("uint8")), tmp_path / "b.tif")
    r = _run(files["opt"], bad, "-m", files["opt_cm"], "-m", files["sar_cm"], "-o", out)
    assert r.exit_code == 2 and "[99]" in r.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]
    fewer = ConfusionMatrix(cm_sar.labels[:-1], cm_sar.counts[:-1, :-1]).to_csv(tmp_path / "f.csv")
    r = _run(files["opt"], files["sar"], "-m", files["opt_cm"], "-m", fewer, "-o", out)
    assert r.exit_code == 2 and "different class legends" in r.output
    nodesc = write_cog(grid(np.ones((2, 3, 3)) / 2, "float32"), tmp_path / "nodesc.tif")
    r = _run(nodesc, nodesc, "--reliability", "0.9", "-o", out)
    assert r.exit_code == 2 and "descriptions" in r.output
    r = _run(files["opt"], "-m", files["opt_cm"], "-o", out)
    assert r.exit_code == 2 and "two or more" in r.output
    r = _run(*base, "--reliability", "high", "-o", out)
    assert r.exit_code == 2 and "--reliability" in r.output
