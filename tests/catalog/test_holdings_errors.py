"""PostgreSQL holdings errors: one MusLabError that names the fix, never a password, never a
driver traceback."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from mus_lab import catalog
from mus_lab.catalog import open_holdings
from mus_lab.catalog._pgstac import PgstacHoldings, redact_url
from mus_lab.cli import app
from mus_lab.errors import CatalogUnreachableError
from tests._postgres import new_database
from tests.catalog.conftest import local_items
from tests.catalog.test_holdings_pgstac import query

pytest.importorskip("psycopg", reason="the holdings extra is not installed")

SECRET = "s3cret-Pa55"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_driver_chain(exc: BaseException) -> bool:
    return exc.__cause__ is None and exc.__suppress_context__


def test_not_a_database_url() -> None:
    with pytest.raises(CatalogUnreachableError, match="not a PostgreSQL URL"):
        PgstacHoldings(f"mysql://lab:{SECRET}@127.0.0.1/h")
    with pytest.raises(CatalogUnreachableError, match="postgresql:// URL"):
        open_holdings(f"mysql://lab:{SECRET}@127.0.0.1/h")


def test_malformed_url_hides_password() -> None:
    holdings = PgstacHoldings(f"postgresql://lab:{SECRET}@127.0.0.1:notaport/h")
    with pytest.raises(CatalogUnreachableError, match="not a valid PostgreSQL URL") as info:
        holdings.collections()
    assert SECRET not in str(info.value) and no_driver_chain(info.value)


def test_connection_refused_names_the_fix() -> None:
    url = f"postgresql://lab:{SECRET}@127.0.0.1:{free_port()}/holdings"
    holdings = open_holdings(url)
    assert SECRET not in repr(holdings) and SECRET not in holdings.location
    with pytest.raises(CatalogUnreachableError, match="make services") as info:
        holdings.search(query())
    assert SECRET not in str(info.value) and no_driver_chain(info.value)
    with pytest.raises(CatalogUnreachableError) as info:
        catalog.search(url, collections="sentinel-2-l2a")
    assert SECRET not in str(info.value)


def test_wrong_password(pg_cluster: Any) -> None:
    url = (
        f"postgresql://{pg_cluster.user}:{SECRET}@127.0.0.1:{pg_cluster.port}/{pg_cluster.database}"
    )
    with pytest.raises(CatalogUnreachableError, match="check the user and password") as info:
        PgstacHoldings(url).collections()
    assert SECRET not in str(info.value) and "***" in str(info.value)


def test_database_without_pgstac(pg_cluster: Any) -> None:
    import psycopg

    admin = pg_cluster.url.replace(f"/{pg_cluster.database}?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE plain_db")
    url = pg_cluster.url.replace(f"/{pg_cluster.database}?", "/plain_db?")
    with pytest.raises(CatalogUnreachableError, match=r"no pgstac schema.*holdings init"):
        PgstacHoldings(url).search(query())


def test_missing_database_names_init(pg_cluster: Any) -> None:
    url = pg_cluster.url.replace(f"/{pg_cluster.database}?", "/never_made?")
    with pytest.raises(CatalogUnreachableError, match="holdings init"):
        PgstacHoldings(url).collections()


def test_server_gone_mid_session_then_reconnects(pg_cluster: Any) -> None:
    import psycopg

    holdings = PgstacHoldings(new_database(pg_cluster))
    holdings.ingest(local_items())
    pid = holdings._connection().info.backend_pid
    admin = pg_cluster.url.replace(f"/{pg_cluster.database}?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(CatalogUnreachableError, match="went away"):
        holdings.search(query())
    assert len(holdings.search(query())) == 10  # a new connection
    holdings.close()


def test_cli_error_is_one_line_without_secret() -> None:
    url = f"postgresql://lab:{SECRET}@127.0.0.1:{free_port()}/holdings"
    result = CliRunner().invoke(app, ["holdings", "search", url, "-c", "sentinel-2-l2a"])
    assert result.exit_code == 2
    text = result.output
    assert text.startswith("Error: Cannot connect") and "make services" in text
    assert SECRET not in text and "Traceback" not in text and "psycopg" not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://lab:{SECRET}@h:5432/db", "postgresql://lab:***@h:5432/db"),
        (
            f"postgres://lab:{SECRET}@h/db?sslmode=require",
            "postgres://lab:***@h/db?sslmode=require",
        ),
        (f"postgresql://lab@h/db?password={SECRET}&x=1", "postgresql://lab@h/db?password=***&x=1"),
        (f"postgresql://lab:{SECRET}@@h/db", "postgresql://lab:***@h/db"),
        (f"host=h user=lab password={SECRET}", "host=h user=lab password=***"),
        ("postgresql://lab@h/db", "postgresql://lab@h/db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
