"""Shared fixtures: one small generated scenario for the whole session, real-data location."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import hypothesis  # noqa: F401  (imported early: a late import at summary time trips CPython 3.11.7 gh-106905)
import pytest

from mus_lab import get_settings

# Scripts that tests run in a fresh interpreter (they execute at import): not test modules.
collect_ignore = ["_sdk_inputs_script.py"]


@pytest.fixture(autouse=True)
def _dask_scheduler_setting_is_left_as_found():
    """Fail the test that leaves dask's global ``scheduler`` setting changed, then restore it.

    A setting left behind (a client closed out of order, a step still running) sends every
    later ``compute()`` of this worker process elsewhere: the error belongs to the test that
    left it, not to the unrelated tests after it.
    """
    import dask

    before = dask.config.get("scheduler", None)
    yield
    after = dask.config.get("scheduler", None)
    if after != before:
        if before is None:
            dask.config.config.pop("scheduler", None)
        else:
            dask.config.set(scheduler=before)
        pytest.fail(f"the test left dask's scheduler setting at {after!r} (found {before!r})")


@pytest.fixture(scope="session")
def scenario(tmp_path_factory):
    """A small sample scenario (128 x 128 px) spanning the baseline change and the flood.

    Separable classes (``Realism.off()``): the calibrated realism of the demo needs the late
    summer (harvest, cuts) to tell leys from crops, which this Dec-Jul, 20-day series lacks
    (RF optical OA 0.46 with the defaults, 0.88 separable). The tests here check the
    machinery; the realism is checked in tests/sample and measured by
    benchmarks/calibrate_scenario.py (docs/design/0015-scenario-realism.md).
    """
    from mus_lab.testing import separable_scenario

    return separable_scenario(tmp_path_factory.mktemp("scenario") / "sc", size=128, seed=3)


@pytest.fixture(scope="session")
def product_catalog(scenario, tmp_path_factory) -> Path:
    """A copy of the scenario's catalog with the products of the real stages added.

    S2 ARD, land cover (optical, radar), their fusion, flood extent and risk: see
    ``tests/ui/_products.py``. The seconds per stage are written to ``timings.json`` beside
    the catalog.
    """
    work = tmp_path_factory.mktemp("products")
    root = work / "catalog"
    shutil.copytree(Path(scenario.catalog_path).parent, root)
    catalog = root / "catalog.json"
    from tests.ui._products import make_products

    seconds = make_products(catalog, work)
    seconds["total"] = sum(seconds.values())
    (work / "timings.json").write_text(json.dumps(seconds, indent=1))
    return catalog


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = get_settings().real_data
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set MUS_LAB_REAL_DATA)")
    return path.resolve()  # absolute: subprocesses run in other folders


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """A running PostgreSQL + PostGIS + pgstac cluster on 127.0.0.1 (tests/_postgres.py)."""
    from tests._postgres import running_cluster

    yield from running_cluster(tmp_path_factory)


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Tests are offline: any connection outside loopback fails at once."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in {"localhost", "::1"} or host.startswith("/")
        ):
            raise OSError(f"network access to {host} blocked in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
