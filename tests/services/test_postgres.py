"""The lab's own PostgreSQL cluster: private, on 127.0.0.1, started and stopped by the lab."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from mus_lab.errors import ServiceError
from mus_lab.services import postgres
from mus_lab.services.postgres import PostgresCluster, main


def test_cluster_is_local_and_private(pg_cluster: Any) -> None:
    import psycopg

    assert pg_cluster.status() == "running"
    password = pg_cluster.passfile.read_text().strip().rsplit(":", 1)[1]
    assert stat.S_IMODE(pg_cluster.passfile.stat().st_mode) == 0o600
    with psycopg.connect(pg_cluster.url) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'port', 'unix_socket_directories')"
            ).fetchall()
        )
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
    assert settings["listen_addresses"] == "127.0.0.1"
    assert int(settings["port"]) == pg_cluster.port
    assert settings["unix_socket_directories"] in ("", str(pg_cluster.folder / "run"))
    assert {"postgis", "btree_gist"} <= extensions
    for text in (
        pg_cluster.url,
        repr(pg_cluster),
        (pg_cluster.folder / "cluster.json").read_text(),
    ):
        assert password not in text
    assert password not in pg_cluster.log_file.read_text(errors="replace")


def test_module_entry(pg_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(pg_cluster.folder)]) == 0
    assert capsys.readouterr().out.strip() == f"running: {pg_cluster.url}"
    assert main(["status", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().out.strip() == "absent"


def test_restart_keeps_port_and_data(pg_cluster: Any) -> None:
    from tests._postgres import new_database

    url = new_database(pg_cluster, "restart")
    port = pg_cluster.port
    pg_cluster.stop()
    assert pg_cluster.status() == "stopped"
    pg_cluster.stop()  # nothing to do
    with pg_cluster:  # start, then stop at the end of the block...
        assert pg_cluster.port == port
        from mus_lab.catalog._pgstac import PgstacHoldings

        with PgstacHoldings(url) as holdings:
            assert holdings.collections() == ()
    assert pg_cluster.status() == "stopped"
    pg_cluster.start()  # ...and running again for the tests after this one
    assert pg_cluster.status() == "running"


def test_missing_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(postgres, "find_postgres_bindir", lambda: None)
    with pytest.raises(ServiceError, match="make postgis"):
        PostgresCluster(tmp_path / "pg").start()
    assert main(["start", str(tmp_path / "pg2")]) == 2


def test_url_needs_a_start(tmp_path: Path) -> None:
    cluster = PostgresCluster(tmp_path / "pg")
    assert cluster.status() == "absent"
    with pytest.raises(ServiceError, match="not been started"):
        _ = cluster.url
