"""``mus-lab flood map --sar --optical`` on EPSG:4326 chips shaped like Sen1Floods11's (issue 16):
float32 dB VV/VH with NaN no data, and a 13-band int16 Sentinel-2 L1C chip with no data 0 and
no band descriptions. The same grid written twice (13th digit, WKT without EPSG code) is one
grid; another grid is reprojected onto the SAR grid with a one-line warning."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from mus_lab.cli import app
from tests._geographic import WKT_NO_AUTHORITY, water_mask, write_s1_chip, write_s2_chip

runner = CliRunner()
N = 128


@pytest.fixture(scope="module")
def sar(tmp_path_factory):
    return write_s1_chip(tmp_path_factory.mktemp("s1") / "S1Hand.tif", N)


def _iou(path) -> float:
    with rasterio.open(path) as src:
        water = src.read(1)
        assert src.crs.to_epsg() == 4326
    truth = water_mask(N)
    valid = water != 255
    pred = (water == 1) & valid
    return float((pred & truth).sum() / ((pred | truth) & valid).sum())


@pytest.mark.parametrize(
    "optical",
    [
        {},  # the very same transform
        {"rel": 1e-13},  # the same grid, the 13th digit off (another writer)
        {"crs": WKT_NO_AUTHORITY},  # EPSG:4326 as a WKT without its authority code
    ],
    ids=["same", "13th-digit", "wkt"],
)
def test_flood_map_with_optical_on_the_same_geographic_grid(tmp_path, sar, optical):
    s2 = write_s2_chip(tmp_path / "S2Hand.tif", N, **optical)
    out = tmp_path / "water.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(sar), "--optical", str(s2), "--out",
                              str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "different grids" not in res.output and "Warning" not in res.output
    assert _iou(out) > 0.8


def test_flood_map_reprojects_an_optical_file_on_another_grid_with_one_warning(tmp_path, sar):
    s2 = write_s2_chip(tmp_path / "S2Hand.tif", N, shift_px=(3.0, 2.0))
    out = tmp_path / "water.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(sar), "--optical", str(s2), "--out",
                              str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("Warning")]
    assert len(warning) == 1 and "reprojected onto the grid of the SAR file" in warning[0]
    assert warning[0].count("EPSG:4326") == 2 and "GEOGCRS" not in res.output
    assert _iou(out) > 0.8


def test_flood_map_alone_on_a_geographic_chip_smooths_in_metres(tmp_path, sar):
    from mus_lab.flood._evidence import _resolution
    from mus_lab.flood._file import read_sar_geotiff

    # ~10 m pixels at 14 deg S, not 9e-5 "metres": the change/region radii stay in pixels.
    assert 9.0 < _resolution(read_sar_geotiff(sar)) < 10.5
    out = tmp_path / "water.tif"
    res = runner.invoke(app, ["flood", "map", "--sar", str(sar), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert _iou(out) > 0.8
    with rasterio.open(out) as src:
        assert np.all(src.read(1)[: N // 16, : N // 16] == 255)  # NaN no data stays no data
