from __future__ import annotations

import shutil
from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
def test_landcover_notebook_maps_assesses_and_writes(scenario, tmp_path):
    root = tmp_path / "sc"
    shutil.copytree(scenario.root, root)
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "03_landcover.ipynb"),
        str(out),
        parameters={
            "catalog": str(root / scenario.catalog_path.relative_to(scenario.root)),
            "polygons": str(root / scenario.polygons.relative_to(scenario.root)),
            "n_trees": 30,
            "tempcnn_epochs": 8,
            "seeds": [0, 1],
            "output_dir": str(tmp_path / "out"),
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    rec = read_records(out)
    assert rec["n_features"] == {"optical": 325, "radar": 150, "stacked": 475}
    val, maps = rec["validation"], rec["map_accuracy"]
    for sensors in ("optical", "radar", "stacked"):  # floors of docs/design/0004-landcover.md
        assert val[f"rf-{sensors}"]["overall_accuracy"] >= 0.85
        assert maps[f"rf-{sensors}"]["overall_accuracy"] >= 0.85
        assert val[f"rf-{sensors}"]["kappa"] >= 0.75
    assert val["tempcnn-optical"]["overall_accuracy"] >= 0.70
    assert 0.85 <= rec["seeds_oa"]["mean"] <= 1.0 and rec["seeds_oa"]["std"] < 0.1
    assert 0.8 <= rec["area_adjusted_oa"] <= 1.0
    assert rec["written_items"] == [
        "landcover-optical-summary",
        "landcover-radar-summary",
        "landcover-stacked-summary",
    ]
