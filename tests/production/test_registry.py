"""The job registry, on both backends: SQLite (a file) and PostgreSQL (a schema of a database).

The PostgreSQL cases use the session's test cluster (``pg_cluster``) and are skipped when
PostgreSQL is not installed.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mus_lab.errors import ChainError, MusLabError
from mus_lab.production import Registry, load_chain, open_registry
from mus_lab.production._registry import SqliteRegistry

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def pg_url(pg_cluster: Any) -> str:
    from tests._postgres import new_database

    return new_database(pg_cluster, prefix="jobs")


def _url_with_password(cluster: Any) -> str:
    """The cluster's URL with the password written in it (not in the passfile)."""
    password = cluster.passfile.read_text().strip().rsplit(":", 1)[1]
    return f"postgresql://{cluster.user}:{password}@127.0.0.1:{cluster.port}/{cluster.database}"


_SCHEMAS = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def make_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A factory of registry objects on one store (several objects: several connections)."""
    opened: list[Registry] = []
    if request.param == "sqlite":
        location, options = str(tmp_path / "registry.sqlite"), {}
    else:
        location = request.getfixturevalue("pg_url")
        options = {"schema": f"jobs_{next(_SCHEMAS)}"}

    def make() -> Registry:
        reg = Registry(location, **options)
        opened.append(reg)
        return reg

    yield make
    for reg in opened:
        reg.close()


def _run(reg: Registry, run_id: str = "r1", chain: str = "demo") -> None:
    reg.new_run(run_id, chain, "chain.yaml", "abc", {"steps": {"b": {}, "a": {}}}, {"x": "1"})


def test_the_methods_mean_the_same_on_both_backends(make_registry: Any, tmp_path: Path) -> None:
    reg = make_registry()
    _run(reg)
    _run(reg, "other", chain="elsewhere")
    tasks = [("ndvi", "r0c1", "fp1", [{"id": "i1"}], {"k": 1}), ("ndvi", "r0c0", "fp0", [], {})]
    reg.add_tasks("r1", tasks)
    reg.add_tasks("r1", [("ndvi", "r0c1", "changed", [], {})])  # an existing task keeps its row
    assert [(t.tile, t.state, t.fingerprint) for t in reg.tasks("r1")] == [
        ("r0c1", "queued", "fp1"),
        ("r0c0", "queued", "fp0"),
    ]
    reg.start_attempts("r1", [("ndvi", "r0c1", "fp2"), ("ndvi", "r0c0", "fp0")])
    product = tmp_path / "ndvi" / "r0c1.tif"
    outputs = {"z": {"path": str(product), "sha256": "aa"}, "a": {"path": "/x/a", "sha256": "b"}}
    reg.set_states(
        "r1",
        [
            ("ndvi", "r0c1", "running", {"started": 10.0, "worker": "w1"}),
            ("ndvi", "r0c1", "done", {"finished": 12.5, "outputs": outputs}),
            ("ndvi", "r0c0", "failed", {"error": "boom\nline 2", "finished": 11.0}),
        ],
    )
    first, second = reg.tasks("r1")
    assert (first.state, first.attempts, first.fingerprint, first.seconds) == (
        "done",
        1,
        "fp2",
        2.5,
    )
    assert list(first.outputs) == ["z", "a"]  # as written, key order included
    assert first.inputs == [{"id": "i1"}] and first.parameters == {"k": 1}
    assert (second.state, second.error, second.worker) == ("failed", "boom\nline 2", None)
    assert reg.producer_of(product) == ("r1", "ndvi", "r0c1")
    assert reg.producer_of(tmp_path / "never.tif") is None

    reg.start_attempts("r1", [("ndvi", "r0c0", "fp0")])  # a retry clears the error
    reg.set_state("r1", "ndvi", "r0c0", "cancelled", finished=20.0)
    assert [(t.state, t.attempts, t.error) for t in reg.tasks("r1")][1] == ("cancelled", 2, None)
    with pytest.raises(ValueError, match="unknown task state"):
        reg.set_state("r1", "ndvi", "r0c0", "lost")

    reg.set_run_state("r1", "cancelling")
    assert reg.run("r1")["finished"] is None
    reg.set_run_state("r1", "running", pid=4242)
    reg.set_run_state("r1", "failed")
    row = reg.run("r1")
    assert (row["state"], row["pid"], row["attempts"]) == ("failed", 4242, 2)
    assert row["spec"] == {"steps": {"b": {}, "a": {}}} and row["versions"] == {"x": "1"}
    assert row["finished"] >= row["created"] and row["chain_file"] == "chain.yaml"
    assert [r["run_id"] for r in reg.runs()] == ["r1", "other"]
    assert [r["run_id"] for r in reg.runs("elsewhere")] == ["other"]
    assert set(reg.runs()[0]) == {"run_id", "chain", "state", "created", "finished"}
    with pytest.raises(ChainError, match=r"No run 'nope' in .*the latest are \['r1', 'other'\]"):
        reg.run("nope")
    assert make_registry().tasks("r1") == reg.tasks("r1")  # another connection sees the same


def test_the_driver_host_and_heartbeat_are_recorded_and_added_to_old_registries(
    make_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mus_lab.production._registry as registry_module

    reg = make_registry()
    before = time.time()
    _run(reg)
    row = reg.run("r1")
    assert row["host"] == registry_module.this_host()
    assert before <= row["heartbeat"] <= time.time()
    time.sleep(0.01)
    reg.heartbeat("r1")
    beat = reg.run("r1")["heartbeat"]
    assert beat > row["heartbeat"]
    backend = sys.modules[type(reg).__module__]
    monkeypatch.setattr(backend, "this_host", lambda: "retried-here")
    reg.set_run_state("r1", "cancelling")  # no new driver: host and heartbeat stay
    assert (reg.run("r1")["host"], reg.run("r1")["heartbeat"]) == (row["host"], beat)
    reg.set_run_state("r1", "running", pid=4242)  # a retry: the new driver, its host
    row = reg.run("r1")
    assert (row["pid"], row["host"]) == (4242, "retried-here") and row["heartbeat"] >= beat

    # a registry made before the two columns gets them when opened again
    if isinstance(reg, SqliteRegistry):
        with sqlite3.connect(reg.path) as db:
            db.execute("ALTER TABLE runs DROP COLUMN host")
            db.execute("ALTER TABLE runs DROP COLUMN heartbeat")
    else:
        import psycopg

        with psycopg.connect(reg._url, autocommit=True) as db:
            db.execute(f"ALTER TABLE {reg.schema}.runs DROP COLUMN host, DROP COLUMN heartbeat")
    reg.close()
    again = make_registry()
    assert (again.run("r1")["host"], again.run("r1")["heartbeat"]) == (None, None)
    again.heartbeat("r1")
    assert again.run("r1")["heartbeat"] >= beat


def test_of_drivers_claiming_a_run_at_once_one_wins(make_registry: Any) -> None:
    """Retries on two hosts read the same dead driver's row, then claim it: one gets it."""
    _run(make_registry())
    make_registry().set_run_state("r1", "failed")
    seen = make_registry().run("r1")
    claimers = [make_registry() for _ in range(6)]  # one connection each
    won: list[bool] = []
    start = threading.Barrier(len(claimers))

    def claim(reg: Registry) -> None:
        start.wait()
        won.append(reg.claim_run("r1", seen))

    threads = [threading.Thread(target=claim, args=(reg,)) for reg in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(won) == [False] * 5 + [True]
    row = claimers[0].run("r1")
    assert (row["state"], row["finished"], row["attempts"]) == ("running", None, 2)
    assert row["heartbeat"] > seen["heartbeat"]
    assert not claimers[0].claim_run("r1", seen)  # the row read before is stale now
    assert claimers[0].claim_run("r1", row)  # the row as it is now can be claimed


def test_postgresql_judges_heartbeats_by_its_own_clock(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver host whose clock is 5 minutes behind is not taken for dead by the others."""
    import mus_lab.production._registry_pg as backend
    from mus_lab.production._tilerun import STALE_SECONDS, driver_alive

    reg = Registry(pg_url, schema=f"jobs_{next(_SCHEMAS)}")
    try:
        right = time.time
        with monkeypatch.context() as behind:  # the driver's host, its clock 300 s late
            behind.setattr(backend.time, "time", lambda: right() - 300)
            _run(reg)
            reg.heartbeat("r1")
        row = reg.run("r1")
        row["host"] = "driver-host"  # seen from another host, whose clock is right
        assert abs(row["clock"] - time.time()) < 5  # the server's clock, read with the row
        assert abs(row["heartbeat"] - time.time()) < 5  # stamped by the server too
        assert driver_alive(row).alive and driver_alive(row).age < 5
        # judged by this host's clock instead, the same heartbeat is as old as it says
        assert not driver_alive(row, now=row["heartbeat"] + STALE_SECONDS + 1).alive
    finally:
        reg.close()


def test_update_outputs_keeps_the_state(make_registry: Any) -> None:
    reg = make_registry()
    if type(reg).update_outputs is Registry.update_outputs:
        pytest.skip(f"{type(reg).__name__} has no update_outputs on this branch yet")
    _run(reg)
    reg.add_tasks("r1", [("s", "t", "fp", [], {})])
    reg.set_state("r1", "s", "t", "done", outputs={"o": {"path": "/p", "sha256": "1"}})
    reg.update_outputs("r1", [("s", "t", {"o": {"path": "/p", "sha256": "1", "pruned": True}})])
    (task,) = reg.tasks("r1")
    assert task.state == "done" and task.outputs["o"]["pruned"] is True


def test_concurrent_writers_from_several_connections(make_registry: Any) -> None:
    """A driver's batches and another process's cancel interleave without loss or deadlock."""
    _run(make_registry())
    keys = [("s", f"t{i}") for i in range(20)]
    make_registry().add_tasks("r1", [(s, t, "fp", [], {}) for s, t in keys])
    errors: list[BaseException] = []

    def writer(order: list[tuple[str, str]], worker: str) -> None:
        reg = make_registry()
        try:
            for _ in range(5):
                reg.start_attempts("r1", [(s, t, "fp") for s, t in order])
                reg.set_states("r1", [(s, t, "running", {"worker": worker}) for s, t in order])
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(keys, "a")),
        threading.Thread(target=writer, args=(keys[::-1], "b")),
    ]
    canceller = make_registry()
    for thread in threads:
        thread.start()
    canceller.set_run_state("r1", "cancelling")
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    tasks = canceller.tasks("r1")
    assert {t.attempts for t in tasks} == {10}  # every attempt counted once
    assert {t.worker for t in tasks} <= {"a", "b"}
    assert canceller.run("r1")["state"] == "cancelling"


def test_registry_dispatches_on_its_location(tmp_path: Path, pg_url: str) -> None:
    assert type(Registry(tmp_path / "r.sqlite")) is SqliteRegistry
    pg = Registry(pg_url, schema="dispatch")
    assert type(pg).__name__ == "PostgresRegistry" and pg.path is None
    copy = pickle.loads(pickle.dumps(pg))
    assert copy.runs() == [] and "dispatch" in copy.location
    pg.close()
    copy.close()


def _chain_data(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "chain": "reg",
        "catalog": "catalog.json",
        "output": str(tmp_path / "out"),
        "area": {"bbox": [-73.62, 45.45, -73.55, 45.50], "tile": 512},
        "steps": {"ndvi": {"uses": "s2.ndvi_median"}},
        **extra,
    }


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        (
            f"mysql://lab:{SECRET}@127.0.0.1/h",
            r"'mysql://lab:\*\*\*@127.0.0.1/h'.* not a PostgreSQL",
        ),
        (f"postgresql://lab:{SECRET}@127.0.0.1:port/h", r"is not a valid URL"),
        (f"postgresql://lab:{SECRET}@/h", r"names no host"),
        ("  ", r"registry .*is empty"),
    ],
)
def test_a_bad_registry_in_a_chain_file_is_refused_without_its_password(
    tmp_path: Path, registry: str, message: str
) -> None:
    with pytest.raises(ChainError, match=message) as info:
        load_chain(_chain_data(tmp_path, registry=registry))
    assert SECRET not in str(info.value) and info.value.__cause__ is None


def test_where_the_registry_comes_from(
    tmp_path: Path, pg_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url_with_password(pg_cluster)
    password = url.split(":")[2].split("@")[0]
    spec = load_chain(_chain_data(tmp_path))
    assert open_registry(spec).location == str(tmp_path / "out" / "registry.sqlite")
    monkeypatch.setenv("MUS_LAB_REGISTRY", url)
    from_setting = open_registry(spec)
    assert type(from_setting).__name__ == "PostgresRegistry"
    shown = f"{from_setting!r} {from_setting.location}"
    assert password not in shown and "***" in shown
    monkeypatch.chdir(tmp_path)
    own = load_chain(_chain_data(tmp_path, registry="jobs.sqlite"))  # the chain file wins
    assert open_registry(own).location == str(tmp_path / "jobs.sqlite")
    assert password not in repr(load_chain(_chain_data(tmp_path, registry=url)))
    monkeypatch.setenv("MUS_LAB_REGISTRY", "ftp://x/y")
    with pytest.raises(ChainError, match=r"setting MUS_LAB_REGISTRY"):
        open_registry(spec)
    from_setting.close()


def test_an_unreachable_or_refused_database_is_a_clear_error(pg_cluster: Any) -> None:
    from mus_lab.services.postgres import PostgresCluster

    assert isinstance(pg_cluster, PostgresCluster)
    wrong = f"postgresql://{pg_cluster.user}:{SECRET}@127.0.0.1:{pg_cluster.port}/x"
    with pytest.raises(ChainError, match="Cannot open the job registry") as info:
        Registry(wrong, connect_timeout=3)
    assert SECRET not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(MusLabError, match="schema"):
        Registry(pg_cluster.url, schema="Robert'); DROP")
