from __future__ import annotations

import shutil
from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_fusion_notebook_records_accuracy_conflict_and_product(scenario, tmp_path):
    catalog_copy = tmp_path / "catalog"
    shutil.copytree(scenario.catalog_path.parent, catalog_copy)
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "04_fusion.ipynb"),
        str(out),
        parameters={"catalog": str(catalog_copy / "catalog.json")},
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    assert rec["reference_pixels"] > 1000
    assert 0.7 < rec["validation_oa"]["radar"] < 0.99
    assert rec["oa"]["fused"] > max(rec["oa"]["optical"], rec["oa"]["radar"])
    assert 0 < rec["gain_points"] < 10
    high, low = rec["error_rate_high_low_conflict"]
    assert high > 2 * low
    assert set(rec["oa_by_rule"]) == {"dempster", "yager", "pcr6"}
    assert rec["undecided_share"] < 0.01
    assert rec["fused_items"] == 1
