"""A PostgreSQL + pgstac cluster for the tests: one per session, fresh databases per test.

The session cluster (:func:`running_cluster`, behind the ``pg_cluster`` fixture of
``tests/conftest.py``) runs in a temporary folder on 127.0.0.1 and is stopped at the end.
Its database ``mus_lab`` holds an empty pgstac schema and is never written: each test gets
its own copy (:func:`new_database`, ``CREATE DATABASE ... TEMPLATE``, much faster than a
migration). When PostgreSQL or PostGIS is missing the tests that need it are skipped
(``make test`` installs both first through ``make postgis``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["new_database", "running_cluster"]

_COUNTER = itertools.count()


def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Start a cluster in a temporary folder, yield it, stop it (skip when it cannot run)."""
    pytest.importorskip("psycopg", reason="the holdings extra is not installed")
    pytest.importorskip("pypgstac.db", reason="the holdings extra is not (fully) installed")
    from mus_lab.errors import ServiceError
    from mus_lab.services.postgres import PostgresCluster, find_postgres_bindir

    if find_postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (`make postgis` installs them)")
    if os.geteuid() == 0:
        # The cluster runs as user postgres, which cannot enter pytest's private root folder.
        base = Path(tempfile.mkdtemp(prefix="mus-lab-pg-"))
        base.chmod(0o755)
    else:
        base = tmp_path_factory.mktemp("postgres")
    cluster = PostgresCluster(base / "cluster", durable=False)
    try:
        try:
            cluster.start()
        except ServiceError as exc:
            if "PostGIS is not installed" in str(exc):
                pytest.skip(f"PostGIS is missing: {exc}")
            raise
        yield cluster
    finally:
        cluster.stop()
        if os.geteuid() == 0:
            shutil.rmtree(base, ignore_errors=True)


def new_database(cluster: object, prefix: str = "t") -> str:
    """Create an empty pgstac database (a copy of the cluster's) and return its URL."""
    import psycopg

    from mus_lab.services.postgres import PostgresCluster

    assert isinstance(cluster, PostgresCluster)
    name = f"{prefix}_{os.getpid()}_{next(_COUNTER)}"
    admin = cluster.url.replace(f"/{cluster.database}?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{cluster.database}"')
    return cluster.url.replace(f"/{cluster.database}?", f"/{name}?")
