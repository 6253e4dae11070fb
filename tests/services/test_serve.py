"""``mus-lab serve`` and the crash safety of publishing: PostgreSQL killed mid-publish.

One set of services for the module (``start_services`` in a temporary folder): the CLI lists
it, the publishes are interrupted by ``kill -9`` of PostgreSQL, and ``mus-lab serve stop``
must leave no process of the folder behind.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("stac_fastapi.pgstac", reason="the serve extra is not installed")
pytest.importorskip("psycopg", reason="the holdings extra is not installed")

import pystac
from typer.testing import CliRunner

from mus_lab import publish
from mus_lab.catalog._pgstac import PgstacHoldings, _connect
from mus_lab.cli import app
from mus_lab.errors import MusLabError
from mus_lab.services.postgres import PostgresCluster, find_postgres_bindir
from mus_lab.services.serve import SERVICES, start_services, status_services, stop_services

_SEED = 20261207


@pytest.fixture(scope="module")
def served() -> Iterator[SimpleNamespace]:
    """PostgreSQL + the STAC API (+ whatever else is registered) in a temporary folder."""
    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (`make postgis`)")
    base = Path(tempfile.mkdtemp(prefix="mus-lab-serve-"))
    base.chmod(0o755)  # run as root, the cluster runs as user postgres
    folder = base / "services"
    try:
        done = start_services(folder, durable=False, only=("stac-api",))
        urls = {s.name: s.url for s in done}
        cluster = PostgresCluster(folder / "postgres", durable=False)
        yield SimpleNamespace(folder=folder, urls=urls, cluster=cluster)
    finally:
        stop_services(folder)
        shutil.rmtree(base, ignore_errors=True)


def _token(served: SimpleNamespace) -> str:
    return (served.folder / "stac-api" / "token").read_text("utf-8").strip()


def test_status_lists_urls_never_the_token(served: SimpleNamespace) -> None:
    out = CliRunner().invoke(app, ["serve", "status", "--dir", str(served.folder)])
    assert out.exit_code == 0, out.output
    assert f"stac-api: running {served.urls['stac-api']}" in out.output
    assert f"token in {served.folder / 'stac-api' / 'token'}" in out.output
    assert "postgres: running postgresql://" in out.output
    assert _token(served) not in out.output
    assert SERVICES[0].name == "stac-api"


# -- PostgreSQL killed in the middle of a publish ----------------------------------------
def _kill_postgres(cluster: PostgresCluster) -> None:
    """``kill -9`` the postmaster, then its orphaned children (as a crash of the server)."""
    pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    for victim in (pid, *children):
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in (pid, *children)):
        time.sleep(0.02)
    if Path(f"/proc/{pid}").exists():
        # Dead but not yet reaped by init (slow in some containers): its pid still answers
        # kill(0), so pg_ctl would take the server for running. Its lock files go, as
        # after a reboot.
        (cluster.data_dir / "postmaster.pid").unlink()
        for lock in (cluster.folder / "run").glob(".s.PGSQL.*.lock"):
            lock.unlink()


def _items(prefix: str, n: int, collection: str) -> list[pystac.Item]:
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        when = start + dt.timedelta(days=7 * i)
        item = pystac.Item(
            f"{prefix}-{i:03d}",
            {"type": "Point", "coordinates": [-73.5 + i * 1e-3, 45.5]},
            [-73.5 + i * 1e-3, 45.5, -73.5 + i * 1e-3, 45.5],
            when,
            {"eo:cloud_cover": i % 100, "mus:seq": i, "mus:note": f"{prefix} item {i}"},
            collection=collection,
        )
        for band in ("red", "nir", "scl"):
            item.add_asset(band, pystac.Asset(f"file:///products/{prefix}/{i}/{band}.tif"))
        out.append(item)
    return out


def _kill_during(
    served: SimpleNamespace, work: Callable[[], Any], rng: random.Random, most: float
) -> bool:
    """Run ``work`` in a thread, kill PostgreSQL at a random moment, restart it.

    Returns whether the work was interrupted (it raised a MusLabError).
    """
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except MusLabError as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(rng.uniform(min(0.02, most / 4), most))
    _kill_postgres(served.cluster)
    thread.join(60)
    assert not thread.is_alive()
    served.cluster.start()
    return bool(failed)


def _check(url: str, sent: list[pystac.Item]) -> int:
    """Each item is absent or equal (assets, properties) to what was sent; count present."""
    present = 0
    with _connect(url, timeout=10) as conn:
        for item in sent:
            row = conn.execute(
                "SELECT pgstac.get_item(%s, %s)", (item.id, item.collection_id)
            ).fetchone()
            stored = row[0] if row else None
            if stored is None:
                continue
            present += 1
            want = item.to_dict(include_self_link=False)
            assert stored["assets"] == want["assets"], item.id
            got = {k: v for k, v in stored["properties"].items() if k != "datetime"}
            assert got == {k: v for k, v in want["properties"].items() if k != "datetime"}
            assert dt.datetime.fromisoformat(stored["properties"]["datetime"]) == item.datetime
    return present


def test_killing_postgres_mid_publish_leaves_no_half_item(
    served: SimpleNamespace, tmp_path: Path
) -> None:
    rng = random.Random(_SEED)
    url = served.cluster.url
    api = served.urls["stac-api"]
    store = publish.StaticCatalog.create(tmp_path / "products")
    target = publish.StacApiTarget(api, store, token=_token(served), timeout=10)
    interrupted = 0
    totals = []
    window = 0.8  # seconds in which the kill falls; halved after a publish that ended first
    for cycle in range(8):  # through the STAC API's transactions (publish.StacApiTarget)
        if cycle >= 3 and interrupted:
            break
        collection = pystac.Collection(
            "crash-api",
            "Items published while PostgreSQL is killed",
            pystac.Extent(
                pystac.SpatialExtent([[-74.0, 45.0, -73.0, 46.0]]),
                pystac.TemporalExtent([[dt.datetime(2022, 1, 1, tzinfo=dt.UTC), None]]),
            ),
        )
        items = _items(f"api{cycle}", 30, "crash-api")
        collection.add_items(items)
        cut = _kill_during(served, partial(target.push, collection), rng, window)
        totals.append(_check(url, items))
        assert cut or totals[-1] == len(items)  # an acknowledged publish is never lost
        interrupted += cut
        window = window if cut else window / 2
    window, before = 0.4, interrupted
    for cycle in range(8):  # through the holdings' ingest (pypgstac's Loader)
        if cycle >= 3 and interrupted > before:
            break
        items = _items(f"ingest{cycle}", 150, "crash-ingest")

        def ingest(batch: list[pystac.Item] = items) -> None:
            with PgstacHoldings(url) as holdings:
                holdings.ingest(batch)

        cut = _kill_during(served, ingest, rng, window)
        totals.append(_check(url, items))
        assert cut or totals[-1] == len(items)
        interrupted += cut
        window = window if cut else window / 2
    assert before >= 1 and interrupted > before, totals  # kills landed mid-publish, both ways
    # the API serves again after the restart (its pool reconnects)
    answer = None
    for _ in range(20):
        try:
            answer = target._request("GET", "/collections/crash-api/items?limit=1")
            break
        except MusLabError:
            time.sleep(0.2)
    assert answer is not None and answer.status_code == 200


def test_stop_leaves_no_process(served: SimpleNamespace) -> None:
    """Last in the module: ``mus-lab serve stop`` ends every process of the folder."""
    folder = served.folder
    pids = _processes_in(folder)
    assert len(pids) >= 2  # the postmaster (and its workers), uvicorn
    out = CliRunner().invoke(app, ["serve", "stop", "--dir", str(folder)])
    assert out.exit_code == 0, out.output
    assert "stac-api: stopped" in out.output and "postgres: stopped" in out.output
    assert not [p for p in pids if _alive(p)]
    assert not _processes_in(folder)
    assert {s.state for s in status_services(folder)} == {"stopped"}
    out = CliRunner().invoke(app, ["serve", "status", "--dir", str(folder)])
    assert out.exit_code == 1


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working folder or command line is inside ``folder``."""
    found = []
    mark = str(folder)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (cwd.startswith(mark) or mark in cmd) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found
