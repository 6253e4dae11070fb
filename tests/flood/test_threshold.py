"""Thresholds: HydroSAR's EM reproduced on its own fixtures, Otsu, Ashman's D; flood depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mus_lab import flood
from mus_lab.errors import FloodInputError

FIXTURES = "s1_safe_metadata_and_small_rasters/asf_tools_hydrosar_fixtures"
SCALING = 8.732284197109262


@pytest.fixture(scope="module")
def hydrosar(real_data: Path) -> Path:
    return real_data / FIXTURES


def _tiles(folder: Path) -> np.ma.MaskedArray:
    data = np.load(folder / "em_tiles.npz")
    tiles = np.ma.MaskedArray(data["tiles"], mask=data["mask"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.ma.log10(tiles) + 30  # HydroSAR's conftest: log10(power) + 30


@pytest.mark.realdata
def test_em_scene_threshold_reproduces_hydrosar(hydrosar: Path) -> None:
    # METHODS.md section 7: EM on log10(tiles) + 30, scaling 8.7322... -> 27.482176801248677
    got = flood.hydrosar_tiles_threshold(_tiles(hydrosar), SCALING)
    assert got == pytest.approx(27.482176801248677, abs=1e-6)


@pytest.mark.realdata
def test_em_tile_thresholds_reproduce_hydrosar(hydrosar: Path) -> None:
    tiles = _tiles(hydrosar)
    expected = np.load(hydrosar / "em_thresholds.npz")["thresholds"]
    got = [flood.em_threshold(np.ma.round(t * SCALING).astype(int)) for t in tiles]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("estimator", "expected"),
    [("nmad", 7.887911175434299), ("numpy", 16.353520154953003), ("logstat", 21.02364492416382)],
)
def test_water_level_reproduces_hydrosar(hydrosar: Path, estimator: str, expected: float) -> None:
    hand = np.load(hydrosar / "hand_window.npz")["hand_window"]
    window = np.load(hydrosar / "flood_window.npz")["flood_window"]
    got = flood.water_level(hand, window == 1, estimator=estimator, sigma=3)  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-6)


def test_em_threshold_separates_two_gaussians() -> None:
    rng = np.random.default_rng(0)
    water = rng.normal(40, 3, 3000)
    land = rng.normal(70, 4, 7000)
    t = flood.em_threshold(np.round(np.r_[water, land]))
    # HydroSAR's value is one bin below the crossing of the weighted Gaussians (~50.7)
    assert 47 < t < 53
    hist = np.bincount(np.round(np.r_[water, land]).astype(int))
    crossing = flood.em_threshold_histogram(hist)
    assert crossing == pytest.approx(t + 1, abs=0.3)


def test_em_threshold_needs_samples() -> None:
    with pytest.raises(ValueError, match="valid sample"):
        flood.em_threshold(np.ma.masked_all((4, 4)))
    assert np.isnan(flood.em_threshold_histogram([0, 5, 0, 0]))


def test_otsu_and_ashman() -> None:
    rng = np.random.default_rng(1)
    v = np.r_[rng.normal(-26, 1.5, 4000), rng.normal(-16, 2, 6000)]
    t = flood.otsu_threshold(v)
    assert -23 < t < -19
    hist, edges = np.histogram(v, bins=200)
    d, share, dark = flood.ashman_d(hist)
    width = edges[1] - edges[0]
    assert d > 4 and share == pytest.approx(0.4, abs=0.03)
    assert edges[0] + (dark + 0.5) * width == pytest.approx(-26, abs=0.3)
    # One Gaussian: an Otsu split alone would give D = 2.7; the fitted mixture does not.
    one = np.histogram(rng.normal(-16, 2, 10000), bins=200)[0]
    assert flood.ashman_d(one)[0] < 2
    with pytest.raises(ValueError, match="two distinct"):
        flood.otsu_threshold([1.0, 1.0])


def test_flood_depth_per_water_body() -> None:
    hand = np.array([[0.0, 1.0, 9.0, 0.5], [2.0, 3.0, 9.0, 0.5], [9.0, 9.0, 9.0, np.nan]])
    water = np.array([[1, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 0]], np.uint8)
    depth = flood.flood_depth(water, hand, estimator="numpy", sigma=0)
    np.testing.assert_allclose(depth[:2, :2], [[1.5, 0.5], [0.0, 0.0]])  # level = mean 1.5
    np.testing.assert_allclose(depth[:2, 3], [0.0, 0.0])  # second body: level 0.5
    assert depth[0, 2] == 0 and np.isnan(depth[2, 3])
    with pytest.raises(FloodInputError, match="estimator"):
        flood.water_level(hand, water == 1, estimator="basin")  # type: ignore[arg-type]
    with pytest.raises(FloodInputError, match="same grid"):
        flood.flood_depth(water[:2], hand)
