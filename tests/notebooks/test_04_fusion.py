from __future__ import annotations

import shutil

import papermill as pm
import pytest

from mus_lab import catalog as cat
from mus_lab.production import read_records
from tests.notebooks.conftest import NOTEBOOKS


@pytest.mark.slow
def test_fusion_notebook_fuses_the_landcover_maps_of_notebook_03(scenario, landcover_run, tmp_path):
    """04 on the real maps of 03 (session fixture), over the southern three quarters of the scene."""
    catalog_copy = tmp_path / "catalog"
    shutil.copytree(landcover_run.catalog.parent, catalog_copy)
    x0, y0, x1, y1 = scenario.bbox
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "04_fusion.ipynb"),
        str(out),
        parameters={
            "catalog": str(catalog_copy / "catalog.json"),
            "bbox": [x0, y0, x1, y0 + 0.75 * (y1 - y0)],
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    assert rec["source_items"] == {
        "optical": "landcover-optical-summary",
        "radar": "landcover-radar-summary",
    }
    assert rec["grid"][1] == landcover_run.records["grid"][1]  # the bbox crops rows only
    assert 0.7 * 128 < rec["grid"][0] < 0.8 * 128
    pixels = rec["reference_pixels"]
    assert pixels["calibration"] > 500 and pixels["evaluation"] > 500
    for oa in (rec["oa"], rec["iota2_oa"]):
        assert set(oa) == {"optical", "radar", "fused"}
        assert all(0.5 < v <= 1.0 for v in oa.values())
    assert rec["gain_points"] == pytest.approx(
        100 * (rec["oa"]["fused"] - max(rec["oa"]["optical"], rec["oa"]["radar"]))
    )
    assert set(rec["oa_by_rule"]) == {"dempster", "yager", "pcr6"}
    high, low = rec["error_rate_high_low_conflict"]
    assert high > low
    assert rec["undecided_share"] < 0.01
    found = cat.search(catalog_copy / "catalog.json", collections="landcover-fused")
    assert [it.id for it in found] == rec["fused_items"] == ["landcover-fused-summary"]
    assert {link.target for link in found[0].links if link.rel == "derived_from"}  # provenance


@pytest.mark.slow
def test_fusion_notebook_without_landcover_products_says_to_run_03_first(scenario, tmp_path):
    catalog_copy = tmp_path / "catalog"
    shutil.copytree(scenario.catalog_path.parent, catalog_copy)
    with pytest.raises(pm.PapermillExecutionError, match="MissingLandCoverError") as info:
        pm.execute_notebook(
            str(NOTEBOOKS / "04_fusion.ipynb"),
            str(tmp_path / "executed.ipynb"),
            parameters={"catalog": str(catalog_copy / "catalog.json")},
            cwd=str(tmp_path),
            kernel_name="python3",
            progress_bar=False,
        )
    assert "run notebooks/03_landcover.ipynb" in str(info.value)
