from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_zeros

from mus_lab import catalog as cat
from mus_lab._io import write_cog
from mus_lab.production import DEMO_CHAIN, run_demo


def _grid_array(dtype="float32") -> xr.DataArray:
    gbox = GeoBox.from_bbox((600000, 4990000, 612000, 5002000), "EPSG:32618", resolution=10)
    da = xr_zeros(gbox, dtype=dtype, chunks=(300, 300))
    return da + 1


def test_write_cog_streams_and_writes_a_valid_cog(tmp_path):
    da = _grid_array()
    path = write_cog(da, tmp_path / "out.tif", nodata=np.nan, tags={"software": "mus_lab"})
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32618
        assert src.shape == (1200, 1200)
        assert src.profile["tiled"]
        assert src.overviews(1)[0] == 2, "1200 px with 512 px blocks gets overviews"
        assert src.tags()["software"] == "mus_lab"
        assert float(src.read(1).mean()) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_write_cog_failure_leaves_nothing(tmp_path):
    da = _grid_array()
    broken = da.copy(data=da.data.map_blocks(_explode, dtype=da.dtype))
    with pytest.raises(RuntimeError, match="boom"):
        write_cog(broken, tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == []


def _explode(block):
    raise RuntimeError("boom")


@pytest.mark.slow
def test_demo_makes_products_runs_the_notebook_chain_and_says_where(tmp_path):
    lines: list[str] = []
    spring = {"datetime": "2022-04-01/2022-05-31"}  # a short period keeps the test short
    report = run_demo(
        tmp_path / "demo",
        size=64,
        n_workers=1,
        log=lines.append,
        per_notebook={"01_search_and_load": spring, "02_ard": {**spring, "speckle": "lee"}},
    )
    text = report.summary()
    chain = report.chain
    assert chain is not None and chain.ok, chain.table() if chain else lines
    assert [r.notebook.name for r in chain.runs] == list(DEMO_CHAIN)
    records = {r.notebook.stem: r.records for r in chain.runs}
    assert records["01_search_and_load"]["grid"]["shape"] == [64, 64]
    assert records["02_ard"]["ard_items_written"] == records["02_ard"]["s2_dates"] >= 3
    for run in chain.runs:
        assert run.executed.parent == tmp_path / "demo" / "notebooks"
        assert run.html.exists() and run.records_json.exists()
        assert str(run.executed.parent.resolve()) in text
        # every curated notebook's HTML copy carries its figures inline and loads nothing
        # from outside (the browser test opens one of them with the network cut)
        html = run.html.read_text()
        assert html.count('src="data:image/png;base64,') >= 1, run.notebook.name
        loaded = re.findall(r'(?:src="|<link[^>]*href=")(https?://[^"]+)"', html)
        assert not [u for u in loaded if not u.startswith("http://127.0.0.1")], loaded[:3]
    assert "make dashboards" in text and f"--catalog {report.catalog_json.resolve()}" in text
    assert "02_ard.ipynb" in text and "ok" in text
    assert any(line.startswith("[6/6] Running the notebooks") for line in lines)
    assert len(cat.search(report.catalog_json, collections="s2-l2a-ard")) >= 3
    for name in ("s2_ndvi_median", "s1_vv_mean_db", "rcm_vv_mean_db", "quicklook"):
        assert str(report.products[name].resolve()) in text
        assert report.products[name].exists()
    with rasterio.open(report.products["s2_ndvi_median"]) as src:
        ndvi = src.read(1)
    assert np.isfinite(ndvi).mean() > 0.95
    assert -0.3 < np.nanmedian(ndvi) < 0.95
    with rasterio.open(report.products["s1_vv_mean_db"]) as src:
        vv = src.read(1)
    assert -30 < np.nanmedian(vv) < 0
    assert (tmp_path / "demo" / "demo_report.json").exists()
    # The demo also prepares ARD, found again by a search like any other collection.
    from mus_lab import catalog

    for coll in ("s2-l2a-ard", "s1-grd-ard"):
        assert report.figures[f"{coll}_items"] > 0
        found = catalog.search(report.scenario / "catalog", collections=coll)
        # notebook 02 of the chain rewrites s2-l2a-ard over its own period afterwards
        assert 0 < len(found) <= report.figures[f"{coll}_items"]
    s2_item = next(iter(catalog.search(report.scenario / "catalog", collections="s2-l2a-ard")))
    assert {"red", "quality", "valid"} <= set(s2_item.assets)
    assert any(link.rel == "derived_from" for link in s2_item.links)
