from __future__ import annotations

import shutil
from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_ard_notebook_records_masking_gapfilling_and_speckle(scenario, tmp_path):
    """Another period and area than the defaults (the demo chain runs those): the west half."""
    catalog_copy = tmp_path / "catalog"
    shutil.copytree(scenario.catalog_path.parent, catalog_copy)
    x0, y0, x1, y1 = scenario.bbox
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "02_ard.ipynb"),
        str(out),
        parameters={
            "catalog": str(catalog_copy / "catalog.json"),
            "datetime": "2022-02-01/2022-07-31",
            "bbox": [x0, y0, (x0 + x1) / 2, y1],
            "speckle": "lee",
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    assert rec["s2_dates"] >= 5
    assert 0.2 < rec["s2_valid_fraction"] < 0.98  # clouds masked, not everything
    assert rec["ts_dates"] >= 15
    assert rec["ts_finite_fraction"] == 1.0  # every pixel with a valid date is filled
    assert -1.0 <= rec["ndvi_range"][0] < 0.0 < rec["ndvi_range"][1] <= 1.0
    assert rec["s1_cv_filtered"] < 0.7 * rec["s1_cv_raw"]
    assert rec["grids_match"] is True
    assert rec["ard_items_written"] == rec["s2_dates"]
    assert (tmp_path / "out").is_dir()
