"""Notebook 06 end to end: its own services, publish, query, WMS/WCS with OWSLib, notices."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records
from mus_lab.services.ows import find_mapserv
from mus_lab.services.postgres import find_postgres_bindir
from mus_lab.services.serve import stop_services

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
pytest.importorskip("stac_fastapi.pgstac", reason="the serve extra is not installed")
pytest.importorskip("owslib", reason="the serve extra is not installed")


@pytest.mark.slow
def test_publish_notebook_serves_queries_notifies_and_stops(product_catalog, tmp_path):
    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed: run `make postgis`")
    if find_mapserv() is None:
        pytest.skip("MapServer is not installed: run `make mapserver`")
    out = tmp_path / "executed.ipynb"
    # PostgreSQL runs as user postgres when we are root: its folder must be reachable
    work = Path(tempfile.mkdtemp(prefix="mus-lab-nb06-")) if os.geteuid() == 0 else tmp_path
    work.chmod(0o755)
    try:
        _run(product_catalog, out, work, tmp_path)
    finally:  # a notebook that failed half-way leaves its services: stop them
        stop_services(work / "out" / "services")
        if work != tmp_path:
            shutil.rmtree(work, ignore_errors=True)
    rec = read_records(out)
    assert rec["conformance_classes"] >= 10
    published = rec["published"]
    assert {"landcover-optical", "landcover-radar"} <= set(published)
    assert any(c.startswith("flood") for c in published) and len(published) >= 4
    assert all(n > 0 for n in published.values())
    assert rec["api_counts"] == published  # pushed twice, no duplicate
    assert rec["landcover_found"] == published["landcover-optical"] + published["landcover-radar"]
    assert rec["sorted_collections"] == sorted(rec["sorted_collections"])
    assert rec["notices_sent"] == rec["feed_entries"] == sum(published.values())
    assert rec["notices_again"] == 0
    assert rec["wms_layers"] >= 10 and rec["feature_info_class_code"] is not None
    assert rec["wcs_subset_equal"] is True
    assert rec["process_status"] == "successful" and rec["process_lineage_names_job"] is True
    assert rec["process_result_in_api"] == 1
    assert rec["left_running"] == []


def _run(catalog: Path, out: Path, work: Path, cwd: Path) -> None:
    pm.execute_notebook(
        str(NOTEBOOKS / "06_publish_and_serve.ipynb"),
        str(out),
        parameters={"catalog": str(catalog), "output_dir": str(work / "out")},
        cwd=str(cwd),
        kernel_name="python3",
        progress_bar=False,
    )
