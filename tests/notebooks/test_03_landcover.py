from __future__ import annotations

import pytest

from mus_lab import catalog as cat
from tests.notebooks.conftest import LANDCOVER_PERIOD


@pytest.mark.slow
def test_landcover_notebook_maps_assesses_and_writes(scenario, landcover_run):
    """Run on a shorter period than the scenario's (the session fixture, also feeding 04)."""
    rec = landcover_run.records
    n = rec["n_dates"]["optical"]  # 10-day dates: the whole scenario (to 31 July) gives 25
    assert 18 <= n < 25 and rec["n_dates"]["radar"] == n, LANDCOVER_PERIOD
    assert rec["n_features"] == {"optical": 13 * n, "radar": 6 * n}
    assert rec["grid"] == [128, 128]
    val, maps = rec["validation"], rec["map_accuracy"]
    # floors of docs/design/0004-landcover.md for the optical map; the radar map loses its July
    # dates here: OA 0.73 against 0.90 on the whole series (measured, 30 trees).
    for sensors, floor in (("optical", 0.85), ("radar", 0.65)):
        assert val[f"rf-{sensors}"]["overall_accuracy"] >= floor
        assert maps[f"rf-{sensors}"]["overall_accuracy"] >= floor
        assert val[f"rf-{sensors}"]["kappa"] >= floor - 0.1
    assert val["tempcnn-optical"]["overall_accuracy"] >= 0.70
    # two seeds of 30 trees: 0.80 measured since the smaller parcels of docs/design/0015
    # (more mixed edge pixels; 0.85+ before)
    assert 0.75 <= rec["seeds_oa"]["mean"] <= 1.0 and rec["seeds_oa"]["std"] < 0.1
    assert 0.8 <= rec["area_adjusted_oa"] <= 1.0
    assert rec["written_items"] == ["landcover-optical-summary", "landcover-radar-summary"]
    (item,) = cat.search(landcover_run.catalog, collections="landcover-radar")
    training = item.properties["mus_lab:training"]
    assert len(training["validation_polygons"]) == rec["validation_polygons"] > 10
    assert not set(training["validation_polygons"]) & set(training["train_polygons"])
    # Section 6: every 4th optical date written as GeoTIFFs, read back with cube.open_series.
    mine = rec["user_series"]
    assert mine["files"] == mine["dates"] == len(range(0, n, 4))
    assert mine["variables"] == ["red", "nir", "swir16"] and mine["features"] == 3 * mine["files"]
    assert mine["overall_accuracy"] >= 0.75  # 0.86 measured (6 dates x 3 bands, 30 trees)
