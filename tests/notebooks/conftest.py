"""Notebook 03 run once per session (fast settings, a shorter period): its land-cover products
feed notebook 04's test, its records notebook 03's test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill as pm
import pytest

from mus_lab.production import read_records

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: Notebook 03's test period: the scenario (2021-12-01..2022-07-31) without its last month.
LANDCOVER_PERIOD = "2021-12-01/2022-06-30"


@dataclass(frozen=True)
class NotebookRun:
    catalog: Path
    executed: Path
    records: dict[str, Any]
    output_dir: Path


@pytest.fixture(scope="session")
def landcover_run(scenario, tmp_path_factory) -> NotebookRun:
    """Notebook 03 on a copy of the scenario: optical and radar maps written into its catalog."""
    tmp = tmp_path_factory.mktemp("nb03")
    root = tmp / "sc"
    shutil.copytree(scenario.root, root)
    catalog = root / scenario.catalog_path.relative_to(scenario.root)
    executed = tmp / "03_landcover.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "03_landcover.ipynb"),
        str(executed),
        parameters={
            "catalog": str(catalog),
            "datetime": LANDCOVER_PERIOD,
            "sensor_sets": ["optical", "radar"],
            "n_trees": 30,
            "tempcnn_epochs": 8,
            "seeds": [0, 1],
            "output_dir": str(tmp / "out"),
        },
        cwd=str(tmp),
        kernel_name="python3",
        progress_bar=False,
    )
    return NotebookRun(catalog, executed, read_records(executed), tmp / "out")
