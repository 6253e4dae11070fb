"""Notebook 07 end to end on the test scenario: chain, check, run, products, history, retry."""

from __future__ import annotations

from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_production_notebook_runs_a_chain_and_retries_only_the_lost_product(scenario, tmp_path):
    w, s, e, n = scenario.bbox
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "07_production.ipynb"),
        str(out),
        parameters={
            "catalog": str(scenario.catalog_path),
            "bbox": [w, s, e, (s + n) / 2],  # two tiles of 69 px
            "tile": 69,
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    assert rec["tiles"] == 2
    assert set(rec["items"]) == {"sentinel-2-l2a", "sentinel-1-grd", "rcm-grd"}
    assert all(v > 0 for v in rec["items"].values())
    assert rec["run_state"] == "done" and rec["tasks"] == {"done": 6}
    assert (
        rec["mosaic_shape"] == [69, 132] and rec["mosaic_valid_share"] > 0.8
    )  # no clear date: NaN
    assert rec["history_inputs"] > 0
    assert rec["rerun"] == 1 and rec["same_bytes"] is True
    assert rec["view_failed_rows"] == 0
    assert (tmp_path / "out" / "products" / "registry.sqlite").is_file()
