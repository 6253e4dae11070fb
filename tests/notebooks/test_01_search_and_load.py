from __future__ import annotations

from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("datetime", "half_area"),
    [("2022-03-01/2022-07-31", False), ("2021-12-01/2022-02-28", True)],
    ids=["spring-summer", "winter-west-half"],
)
def test_notebook_runs_and_records_its_results(scenario, tmp_path, datetime, half_area):
    x0, y0, x1, y1 = scenario.bbox
    bbox = [x0, y0, (x0 + x1) / 2, y1] if half_area else None
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "01_search_and_load.ipynb"),
        str(out),
        parameters={
            "catalog": str(scenario.catalog_path),
            "datetime": datetime,
            "bbox": bbox,
            "max_cloud": 90.0,
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    counts = rec["item_counts"]
    assert counts["s2"] >= 2 and counts["s1"] >= 2 and counts["rcm"] >= 1
    assert rec["lazy"] is True
    assert rec["grid"]["crs"] == "EPSG:32618" and rec["grid"]["resolution"] == 10.0
    if half_area:
        assert 55 <= rec["grid"]["shape"][1] <= 75
    else:
        assert rec["grid"]["shape"] == [128, 128]
    assert -0.2 < rec["ndvi_median_mean"] < 0.9
    assert -25.0 < rec["s1_vv_db_median"] < -3.0
