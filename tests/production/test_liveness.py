"""Whether a run's driver lives, seen from this host: its pid here, its heartbeat elsewhere.

A driver on another host is simulated by a run row with another ``host`` and a pid that is
not a process here; the heartbeat's age decides (SQLite registry, no cluster, no catalog).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from mus_lab.errors import ChainError
from mus_lab.production import _tilerun, load_chain
from mus_lab.production._registry import SqliteRegistry, this_host
from mus_lab.production._tilerun import STALE_SECONDS, cancel, driver_alive, retry, status

NOT_HERE = 2**22 + 12345  # above the default pid_max: no process of this host has it


class _Prepared(Exception):
    """Raised instead of preparing a retry: it got past the liveness check."""


def _registry(tmp_path: Path) -> SqliteRegistry:
    reg = SqliteRegistry(tmp_path / "registry.sqlite")
    reg.new_run("r1", "demo", None, "abc", {"steps": {}}, {"mus_lab": "0"})
    reg.add_tasks("r1", [("ndvi", "r0c0", "fp", [], {}), ("ndvi", "r0c1", "fp", [], {})])
    reg.start_attempts("r1", [("ndvi", "r0c0", "fp")])
    return reg


def _driven_from(reg: SqliteRegistry, host: str | None, pid: int, age: float | None) -> None:
    beat = None if age is None else time.time() - age
    with sqlite3.connect(reg.path) as db:
        db.execute(
            "UPDATE runs SET host = ?, pid = ?, heartbeat = ? WHERE run_id = 'r1'",
            (host, pid, beat),
        )


def _spec(tmp_path: Path) -> Any:
    return load_chain(
        {
            "chain": "demo",
            "catalog": "catalog.json",
            "output": str(tmp_path),
            "area": {"bbox": [-73.62, 45.45, -73.55, 45.50], "tile": 256},
            "steps": {"ndvi": {"uses": "s2.ndvi_median"}},
        }
    )


def test_a_new_run_records_this_host_and_a_heartbeat(tmp_path: Path) -> None:
    before = time.time()
    reg = _registry(tmp_path)
    row = reg.run("r1")
    assert (row["host"], row["pid"]) == (this_host(), os.getpid())
    assert before <= row["heartbeat"] <= time.time()
    assert driver_alive(row).alive and status(reg, "r1").state == "running"


@pytest.mark.parametrize(
    ("age", "alive"), [(5.0, True), (STALE_SECONDS + 30, False), (None, False)]
)
def test_a_driver_on_another_host_lives_while_its_heartbeat_is_fresh(
    tmp_path: Path, age: float | None, alive: bool
) -> None:
    reg = _registry(tmp_path)
    _driven_from(reg, "elsewhere", NOT_HERE, age)
    driver = driver_alive(reg.run("r1"))
    assert driver.alive is alive and driver.host == "elsewhere"
    assert status(reg, "r1").state == ("running" if alive else "failed")


def test_on_this_host_the_pid_decides_whatever_the_heartbeat(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    _driven_from(reg, this_host(), os.getpid(), STALE_SECONDS * 10)
    assert status(reg, "r1").state == "running"
    _driven_from(reg, this_host(), NOT_HERE, 0.0)
    assert status(reg, "r1").state == "failed"
    _driven_from(reg, None, NOT_HERE, None)  # a run recorded before hosts were: its pid
    assert status(reg, "r1").state == "failed"


def test_retry_refuses_a_run_driven_elsewhere_and_takes_over_a_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _registry(tmp_path)
    spec = _spec(tmp_path)

    def prepared(*args: Any) -> Any:
        raise _Prepared

    monkeypatch.setattr(_tilerun, "_prepare", prepared)
    _driven_from(reg, "elsewhere", NOT_HERE, 3.0)
    with pytest.raises(
        ChainError,
        match=rf"Run r1 is still running \(process {NOT_HERE} on host elsewhere, heartbeat "
        r"\d+ s ago; it is taken as dead after 60 s without a heartbeat\): wait for it or "
        r"cancel it",
    ):
        retry(spec, "r1", registry=reg, log=lambda line: None)
    assert reg.run("r1")["pid"] == NOT_HERE  # untouched

    _driven_from(reg, "elsewhere", NOT_HERE, STALE_SECONDS + 1)
    with pytest.raises(_Prepared):
        retry(spec, "r1", registry=reg, log=lambda line: None)
    row = reg.run("r1")  # this process drives it now
    assert (row["host"], row["pid"], row["attempts"]) == (this_host(), os.getpid(), 2)
    assert time.time() - row["heartbeat"] < 5


def test_retry_gives_way_to_a_driver_that_took_the_run_over_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _registry(tmp_path)
    spec = _spec(tmp_path)
    _driven_from(reg, "elsewhere", NOT_HERE, STALE_SECONDS + 1)  # its driver died
    judged = _tilerun.driver_alive

    def judged_then_taken(row: Any) -> Any:
        # another host's retry takes the run over between this retry's read and its claim
        found = judged(row)
        _driven_from(reg, "other-host", NOT_HERE + 1, 0.0)
        return found

    monkeypatch.setattr(_tilerun, "driver_alive", judged_then_taken)
    with pytest.raises(
        ChainError,
        match=rf"Run r1 was taken over by another driver \(process {NOT_HERE + 1} on host "
        r"other-host, heartbeat \d+ s ago\) while this one was about to",
    ):
        retry(spec, "r1", registry=reg, log=lambda line: None)
    row = reg.run("r1")
    assert (row["host"], row["pid"], row["attempts"]) == ("other-host", NOT_HERE + 1, 1)


def test_the_driver_beats_inside_one_long_call_and_stops_beating_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _registry(tmp_path)
    spec = _spec(tmp_path)
    _driven_from(reg, "elsewhere", NOT_HERE, STALE_SECONDS + 1)
    monkeypatch.setattr(_tilerun, "HEARTBEAT_SECONDS", 0.05)
    beats: list[float] = []

    def long_search(*args: Any) -> Any:  # the catalog search of a large area, say
        for _ in range(8):
            beats.append(reg.run("r1")["heartbeat"])
            time.sleep(0.1)
        raise _Prepared

    monkeypatch.setattr(_tilerun, "_coverage", long_search)
    with pytest.raises(_Prepared):
        retry(spec, "r1", registry=reg, log=lambda line: None)
    assert len(set(beats)) >= 5, beats  # refreshed while the one call ran
    last = reg.run("r1")["heartbeat"]
    time.sleep(0.3)
    assert reg.run("r1")["heartbeat"] == last  # the beating ended with the driver's work


def test_cancel_asks_a_live_remote_driver_and_closes_a_dead_ones_run(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    _driven_from(reg, "elsewhere", NOT_HERE, 2.0)
    report = cancel(reg, "r1")
    assert report.state == "cancelling"  # asked; the driver on the other host stops
    assert [t.state for t in report.tasks] == ["running", "queued"]  # its driver stops them

    _driven_from(reg, "elsewhere", NOT_HERE, STALE_SECONDS * 2)
    report = cancel(reg, "r1")
    assert report.state == "cancelled"
    assert [t.state for t in report.tasks] == ["cancelled", "cancelled"]


def test_a_registry_written_before_hosts_gets_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the runs table of the first registries
        db.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, chain TEXT NOT NULL, chain_file TEXT, "
            "chain_digest TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL, "
            "created REAL NOT NULL, finished REAL, pid INTEGER, "
            "attempts INTEGER NOT NULL DEFAULT 1, versions TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO runs VALUES ('old', 'demo', NULL, 'd', '{}', 'running', 1.0, NULL, "
            "?, 1, '{}')",
            (os.getpid(),),
        )
    reg = SqliteRegistry(path)
    SqliteRegistry(path)  # opened again: nothing to add
    old = reg.run("old")
    assert (old["host"], old["heartbeat"]) == (None, None)
    assert status(reg, "old").state == "running"  # judged by its pid, as before
    reg.new_run("new", "demo", None, "d", {}, {})
    reg.heartbeat("new")
    assert reg.run("new")["host"] == this_host()
