"""Notebook 00 end to end against the local replay server of the recorded provider answers.

CDSE OData (real products; stand-in bodies whose size and MD5 the server rewrites into the
answers) and EODMS (real RCM level-1 items ordered through the DDS: 202 then 200) are
searched together, harvested into the holdings, harvested again (nothing downloaded) and
ingested into a real PostgreSQL + pgstac database, which answers like the folder.
"""

from __future__ import annotations

from pathlib import Path

import papermill as pm
import pytest

from mus_lab.production import read_records
from mus_lab.testing import ReplayServer
from tests._postgres import new_database

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
@pytest.mark.realdata
def test_find_and_harvest_notebook_against_the_replayed_providers(
    real_data: Path, pg_cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = new_database(pg_cluster, "nb00")
    with ReplayServer(real_data, stand_in_sizes=True) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)  # the kernel inherits them (credentials included)
        out = tmp_path / "executed.ipynb"
        pm.execute_notebook(
            str(NOTEBOOKS / "00_find_and_harvest.ipynb"),
            str(out),
            parameters={
                "sources": ["cdse-odata", "eodms"],
                "bbox": None,  # the recorded answers are over Guam (CDSE) and Ontario (EODMS)
                "datetime": None,
                "collections": {"optical": ["sentinel-2-l1c"], "radar": ["rcm-grd"]},
                "max_cloud": 100.0,  # the two recorded Sentinel-2 products are 95 % cloudy
                "database": database,
                "output_dir": str(tmp_path / "out"),
            },
            cwd=str(tmp_path),
            kernel_name="python3",
            progress_bar=False,
        )
        orders = [path for _m, path, _q in server.requests if "/dds/v1/item/" in path]
    rec = read_records(out)
    assert rec["found"] == {"cdse-odata/sentinel-2-l1c": 2, "eodms/rcm-grd": 2}
    assert rec["harvest"] == {"files": 4, "bytes": rec["harvest"]["bytes"], "items": 4,
                              "failed": 0, "unverified": 2}  # fmt: skip
    assert rec["harvest"]["bytes"] > 0
    assert rec["rerun"] == {"files": 0, "skipped": 4}
    assert rec["held"] == {"items": 4, "collections": ["rcm-grd", "sentinel-2-l1c"]}
    assert rec["database_same_answer"] is True
    # Each EODMS product was ordered (202), polled, then downloaded; never ordered again.
    assert len(orders) == 4
    held = sorted((tmp_path / "out" / "holdings").glob("*/*/*.json"))
    assert len(held) == 4
    text = out.read_text(encoding="utf-8")
    for _user, password in ReplayServer.users.values():
        assert password not in text
