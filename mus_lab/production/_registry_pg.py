"""The job registry in PostgreSQL: the runs, tasks and outputs of the SQLite file, shared.

A schema of its own (``mus_lab_jobs`` by default) in a database the lab already has (the
holdings database of the harvest, or any other), created on first use. The tables and
methods are those of :class:`~mus_lab.production._registry.SqliteRegistry`, with the same
meaning; the JSON columns are of type ``json`` (kept as written, so key order survives, and
queryable: ``SELECT outputs->'ndvi'->>'sha256' FROM mus_lab_jobs.tasks``).

Concurrency: one connection per registry object (a lock makes it safe between threads);
every write is one transaction, so a batch of task states is seen whole or not at all by
``mus-lab chain status``, ``cancel`` or ``retry`` in other processes or on other machines.
Rows are updated in a fixed order (step, tile) and a transaction that still meets a
deadlock or serialization failure is run again (up to 5 times). A connection the server
dropped is opened again once before giving up.

Secrets: the URL's password never appears in a message or a repr
(:func:`~mus_lab.catalog._pgstac.redact_url`); driver errors are re-raised without their
chained exception (its text can quote the URL). Prefer a passfile or ``PGPASSWORD`` to a
password in a chain file.

psycopg is part of the ``holdings`` extra (``pip install 'mus_lab[holdings]'``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from mus_lab.catalog._pgstac import _scrub, redact_url
from mus_lab.errors import ChainError, ProductionError
from mus_lab.production._registry import (
    _CLAIMED,
    TASK_STATES,
    Registry,
    TaskRecord,
    is_database_url,
    this_host,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresRegistry", "check_registry_url"]

_T = TypeVar("_T")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_JSON = ("inputs", "parameters", "outputs")
_TASK_COLUMNS = frozenset(
    {"attempts", "started", "finished", "worker", "fingerprint", "error", *_JSON}
)
_RETRIES = 5
#: Heartbeats are stamped and judged with the database server's clock, not the hosts':
#: drivers and their observers on several machines then need no synchronised clocks.
_CLOCK = "extract(epoch from clock_timestamp())::double precision"

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.runs (
    run_id text PRIMARY KEY,
    chain text NOT NULL,
    chain_file text,
    chain_digest text NOT NULL,
    spec json NOT NULL,
    state text NOT NULL,
    created double precision NOT NULL,
    finished double precision,
    pid integer,
    attempts integer NOT NULL DEFAULT 1,
    versions json NOT NULL,
    host text,
    heartbeat double precision
);
CREATE INDEX IF NOT EXISTS runs_by_chain ON {s}.runs (chain, created);
CREATE TABLE IF NOT EXISTS {s}.tasks (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    run_id text NOT NULL REFERENCES {s}.runs (run_id) ON DELETE CASCADE,
    step text NOT NULL,
    tile text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    started double precision,
    finished double precision,
    worker text,
    fingerprint text,
    inputs json,
    parameters json,
    outputs json,
    error text,
    PRIMARY KEY (run_id, step, tile)
);
CREATE TABLE IF NOT EXISTS {s}.outputs (
    path text NOT NULL,
    run_id text NOT NULL,
    step text NOT NULL,
    tile text NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (path, run_id)
);
"""

# columns of ``runs`` added after the first registries were made (a schema made before
# gets them when opened)
_ADD_COLUMNS = """
ALTER TABLE {s}.runs ADD COLUMN IF NOT EXISTS host text,
    ADD COLUMN IF NOT EXISTS heartbeat double precision;
"""


def check_registry_url(url: str, *, where: str = "") -> str:
    """Check that ``url`` is a usable PostgreSQL URL (without connecting).

    Parameters
    ----------
    url
        ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?...]``.
    where
        Where it was found, for the message (`` in chain.yaml``).

    Returns
    -------
    str
        ``url`` unchanged.

    Raises
    ------
    ChainError
        Not such a URL (the message shows it without its password).

    Examples
    --------
    >>> check_registry_url("postgresql://lab@127.0.0.1:5432/holdings")
    'postgresql://lab@127.0.0.1:5432/holdings'
    """
    fix = "write postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    shown = redact_url(str(url))
    if not is_database_url(url):
        raise ChainError(f"registry {shown!r}{where} is not a PostgreSQL URL: {fix}.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        reason = _scrub(str(exc), url)
        raise ChainError(
            f"registry {shown!r}{where} is not a valid URL ({reason}): {fix}."
        ) from None
    if any(c.isspace() for c in url) or not (parts.hostname or "host=" in parts.query):
        raise ChainError(f"registry {shown!r}{where} names no host: {fix}.")
    return url


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the install
        raise ChainError(
            "A PostgreSQL job registry needs psycopg, which is missing: install the holdings "
            "extra (pip install 'mus_lab[holdings]') or leave `registry` out for SQLite."
        ) from None
    return psycopg


class PostgresRegistry(Registry):
    """A job registry in a schema of a PostgreSQL database (created if missing).

    Parameters
    ----------
    url
        ``postgresql://`` URL of the database (it must exist; the user needs CREATE on it
        the first time, to make the schema).
    schema
        The schema holding the tables.
    connect_timeout
        Seconds to wait for the server.

    Raises
    ------
    ChainError
        The URL is wrong, the server cannot be reached, or the schema cannot be made.
    """

    def __init__(
        self, url: str, *, schema: str = "mus_lab_jobs", connect_timeout: float = 10.0
    ) -> None:
        self._url = check_registry_url(str(url))
        if not _IDENT.match(schema):
            raise ChainError(
                f"Registry schema {schema!r} is not a plain name: use lower-case letters, "
                "digits and _ (e.g. mus_lab_jobs)."
            )
        self.schema = schema
        self.path = None
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        with self._lock:
            self._connection()

    def __repr__(self) -> str:
        return f"PostgresRegistry({self.location!r}, schema={self.schema!r})"

    @property
    def location(self) -> str:
        """The database URL without its password, and the schema."""
        return f"{redact_url(self._url)} (schema {self.schema})"

    def __getstate__(self) -> dict[str, Any]:
        return {"_url": self._url, "schema": self.schema, "_timeout": self._timeout}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)
        self.path = None
        self._lock = threading.RLock()
        self._conn = None

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- connection and transactions ----------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is not None and not (self._conn.closed or self._conn.broken):
            return self._conn
        pg = _psycopg()
        try:
            conn = pg.connect(
                self._url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except pg.Error as exc:
            reason = _scrub(str(exc), self._url)
            if "password authentication failed" in reason or "no password supplied" in reason:
                fix = "check the user and password (in the URL, a passfile or PGPASSWORD)"
            elif "does not exist" in reason:
                fix = "create the database, or name one that exists"
            else:
                fix = "start the server (`make services` starts the lab's own) or correct the URL"
            raise ChainError(
                f"Cannot open the job registry {redact_url(self._url)} ({reason}): {fix}."
            ) from None
        try:
            self._create_schema(conn)
        except Exception:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _create_schema(self, conn: psycopg.Connection) -> None:
        from psycopg import sql

        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL, (SELECT count(*) FROM "
            "information_schema.columns WHERE table_schema = %s AND table_name = 'runs' "
            "AND column_name IN ('host', 'heartbeat'))",
            (f"{self.schema}.outputs", self.schema),
        ).fetchone()
        if row and row[0] and row[1] == 2:  # made, and by this version: no lock taken
            return
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('mus_lab.jobs'))")
                conn.execute(
                    sql.SQL(_SCHEMA).format(s=sql.Identifier(self.schema))  # type: ignore[arg-type]
                )
                conn.execute(
                    sql.SQL(_ADD_COLUMNS).format(s=sql.Identifier(self.schema))  # type: ignore[arg-type]
                )
        except Exception as exc:
            raise ChainError(
                f"Cannot create the job registry's schema {self.schema} in "
                f"{redact_url(self._url)} ({_scrub(str(exc), self._url)[:300]}): the user "
                "needs CREATE on the database."
            ) from None

    def _q(self, text: str) -> Any:
        """``text`` with ``{s}`` the schema, as composed SQL."""
        from psycopg import sql

        return sql.SQL(text).format(s=sql.Identifier(self.schema))  # type: ignore[arg-type]

    def _transact(self, work: Callable[[psycopg.Connection], _T]) -> _T:
        """Run ``work`` in one transaction, again on deadlock or a dropped connection."""
        pg = _psycopg()
        reconnected = False
        for attempt in range(_RETRIES):
            with self._lock:
                conn = self._connection()
                try:
                    with conn.transaction():
                        return work(conn)
                except pg.errors.TransactionRollback:  # deadlock, serialization failure
                    if attempt == _RETRIES - 1:
                        raise
                except pg.OperationalError as exc:
                    if (conn.closed or conn.broken) and not reconnected:
                        reconnected = True
                        self._conn = None
                        continue
                    raise ProductionError(
                        f"The job registry {redact_url(self._url)} failed "
                        f"({_scrub(str(exc), self._url)[:300]}): check the server, then "
                        "`mus-lab chain retry` the run."
                    ) from None
            time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writes -------------------------------------------------------------------------------

    def new_run(
        self,
        run_id: str,
        chain: str,
        chain_file: str | None,
        digest: str,
        spec: Mapping[str, Any],
        versions: Mapping[str, str],
    ) -> None:
        """Record a new run in state ``running``, owned by this process.

        Parameters
        ----------
        run_id
            Unique id.
        chain, chain_file, digest
            The chain's name, file and content digest.
        spec
            The chain as plain data.
        versions
            Software versions of the run.
        """
        query = self._q(
            "INSERT INTO {s}.runs (run_id, chain, chain_file, chain_digest, spec, state, "
            "created, pid, versions, host, heartbeat) VALUES (%s, %s, %s, %s, %s::json, "
            f"'running', %s, %s, %s::json, %s, {_CLOCK})"
        )
        now = time.time()
        args = (
            run_id,
            chain,
            chain_file,
            digest,
            json.dumps(spec, default=str),
            now,
            os.getpid(),
            json.dumps(versions),
            this_host(),
        )
        self._transact(lambda db: db.execute(query, args))

    def add_tasks(
        self, run_id: str, tasks: Sequence[tuple[str, str, str, list[Any], Mapping[str, Any]]]
    ) -> None:
        """Register tasks ``(step, tile, fingerprint, inputs, parameters)`` as ``queued``.

        Parameters
        ----------
        run_id
            The run.
        tasks
            The tasks; an existing task keeps its row.
        """
        query = self._q(
            "INSERT INTO {s}.tasks (run_id, step, tile, state, fingerprint, inputs, "
            "parameters) VALUES (%s, %s, %s, 'queued', %s, %s::json, %s::json) "
            "ON CONFLICT (run_id, step, tile) DO NOTHING"
        )
        rows = [
            (run_id, s, t, fp, json.dumps(inp), json.dumps(par, default=str))
            for s, t, fp, inp, par in tasks
        ]
        if rows:
            self._transact(lambda db: db.cursor().executemany(query, rows))

    def set_states(
        self, run_id: str, changes: Sequence[tuple[str, str, str, Mapping[str, Any]]]
    ) -> None:
        """Set several tasks' states in one transaction: ``(step, tile, state, fields)``.

        Parameters
        ----------
        run_id
            The run.
        changes
            As for :meth:`set_state`, one tuple per task (applied in order for a task
            named twice).
        """
        ordered = sorted(changes, key=lambda c: (c[0], c[1]))  # stable: a fixed lock order

        def work(db: psycopg.Connection) -> None:
            for step, tile, state, fields in ordered:
                self._set(db, run_id, step, tile, state, fields)

        if ordered:
            self._transact(work)

    def set_state(self, run_id: str, step: str, tile: str, state: str, **fields: Any) -> None:
        """Set one task's state and other fields (``started``, ``error`` ...).

        Parameters
        ----------
        run_id, step, tile
            The task.
        state
            One of :data:`~mus_lab.production._registry.TASK_STATES`.
        **fields
            Columns to set; ``outputs``, ``inputs`` and ``parameters`` are JSON-encoded.
        """
        self._transact(lambda db: self._set(db, run_id, step, tile, state, fields))

    def _set(
        self,
        db: psycopg.Connection,
        run_id: str,
        step: str,
        tile: str,
        state: str,
        fields: Mapping[str, Any],
    ) -> None:
        from psycopg import sql

        if state not in TASK_STATES:
            raise ValueError(f"unknown task state {state!r}")
        unknown = sorted(set(fields) - _TASK_COLUMNS)
        if unknown:
            raise ValueError(f"unknown task field(s) {unknown}: known are {sorted(_TASK_COLUMNS)}")
        values: dict[str, Any] = {"state": state, **fields}
        assignments = []
        for key, value in values.items():
            if key in _JSON:
                values[key] = json.dumps(value, default=str)
                assignments.append(sql.SQL("{} = %s::json").format(sql.Identifier(key)))
            else:
                if isinstance(value, str):
                    values[key] = value.replace("\x00", "")  # text columns refuse NUL
                assignments.append(sql.SQL("{} = %s").format(sql.Identifier(key)))
        db.execute(
            sql.SQL("UPDATE {}.tasks SET {} WHERE run_id = %s AND step = %s AND tile = %s").format(
                sql.Identifier(self.schema), sql.SQL(", ").join(assignments)
            ),
            [*values.values(), run_id, step, tile],
        )
        if state == "done" and "outputs" in fields:
            query = self._q(
                "INSERT INTO {s}.outputs (path, run_id, step, tile, sha256) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (path, run_id) DO UPDATE SET "
                "step = EXCLUDED.step, tile = EXCLUDED.tile, sha256 = EXCLUDED.sha256"
            )
            for out in fields["outputs"].values():
                db.execute(query, (out["path"], run_id, step, tile, out["sha256"]))

    def start_attempts(self, run_id: str, tasks: Sequence[tuple[str, str, str]]) -> None:
        """Mark tasks ``running`` (sent to the cluster) and count the attempt, in one go.

        Parameters
        ----------
        run_id
            The run.
        tasks
            ``(step, tile, fingerprint)``: the fingerprint of the task's inputs and
            parameters for this attempt.
        """
        query = self._q(
            "UPDATE {s}.tasks SET state = 'running', attempts = attempts + 1, error = NULL, "
            "fingerprint = %s WHERE run_id = %s AND step = %s AND tile = %s"
        )
        rows = [(fp, run_id, step, tile) for step, tile, fp in sorted(tasks)]
        if rows:
            self._transact(lambda db: db.cursor().executemany(query, rows))

    def update_outputs(
        self, run_id: str, changes: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """Replace tasks' recorded outputs, keeping their state: ``(step, tile, outputs)``.

        Parameters
        ----------
        run_id
            The run.
        changes
            One tuple per task.
        """
        query = self._q(
            "UPDATE {s}.tasks SET outputs = %s::json WHERE run_id = %s AND step = %s AND tile = %s"
        )
        rows = [
            (json.dumps(o, default=str), run_id, s, t)
            for s, t, o in sorted(changes, key=lambda c: (c[0], c[1]))
        ]
        if rows:
            self._transact(lambda db: db.cursor().executemany(query, rows))

    def set_run_state(self, run_id: str, state: str, *, pid: int | None = None) -> None:
        """Set a run's state (``finished`` is stamped for final states).

        Parameters
        ----------
        run_id
            The run.
        state
            ``running``, ``done``, ``failed``, ``cancelling`` or ``cancelled``.
        pid
            The process now driving the run (on retry): it is recorded with this host
            and a fresh heartbeat.
        """
        final = state in ("done", "failed", "cancelled")
        now = time.time()
        query = self._q(
            "UPDATE {s}.runs SET state = %s, finished = %s, pid = COALESCE(%s, pid), "
            f"host = COALESCE(%s, host), heartbeat = {_CLOCK if pid else 'heartbeat'}, "
            "attempts = attempts + %s WHERE run_id = %s"
        )
        host = this_host() if pid else None
        args = (state, now if final else None, pid, host, 1 if pid else 0, run_id)
        self._transact(lambda db: db.execute(query, args))

    def claim_run(self, run_id: str, seen: Mapping[str, Any]) -> bool:
        """Make this process the run's driver, unless its row changed since ``seen``.

        See :meth:`mus_lab.production.Registry.claim_run`.

        Parameters
        ----------
        run_id
            The run.
        seen
            The run's row as the caller read it.

        Returns
        -------
        bool
            Whether this process now drives the run.
        """
        query = self._q(
            "UPDATE {s}.runs SET state = 'running', finished = NULL, pid = %s, host = %s, "
            f"heartbeat = {_CLOCK}, attempts = attempts + 1 WHERE run_id = %s "
            "AND state IS NOT DISTINCT FROM %s::text AND pid IS NOT DISTINCT FROM %s::integer "
            "AND host IS NOT DISTINCT FROM %s::text "
            "AND heartbeat IS NOT DISTINCT FROM %s::double precision"
        )
        args = (os.getpid(), this_host(), run_id, *(seen.get(k) for k in _CLAIMED))
        return bool(self._transact(lambda db: db.execute(query, args).rowcount == 1))

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's driver (this process) still lives: ``heartbeat`` = now.

        Parameters
        ----------
        run_id
            The run.
        """
        query = self._q(f"UPDATE {{s}}.runs SET heartbeat = {_CLOCK} WHERE run_id = %s")
        self._transact(lambda db: db.execute(query, (run_id,)))

    # -- reads --------------------------------------------------------------------------------

    def _rows(self, query: Any, args: Sequence[Any]) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        def work(db: psycopg.Connection) -> list[dict[str, Any]]:
            with db.cursor(row_factory=dict_row) as cur:
                return list(cur.execute(query, args).fetchall())

        return self._transact(work)

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's row.

        Parameters
        ----------
        run_id
            The run.

        Returns
        -------
        dict
            Columns, with ``spec`` and ``versions`` decoded, and ``clock``: the database
            server's time of the read, the clock its heartbeats were written with.

        Raises
        ------
        ChainError
            No such run.
        """
        rows = self._rows(
            self._q(f"SELECT *, {_CLOCK} AS clock FROM {{s}}.runs WHERE run_id = %s"), (run_id,)
        )
        if not rows:
            known = [r["run_id"] for r in self.runs()][-5:]
            raise ChainError(
                f"No run {run_id!r} in {self.location}: the latest are {known or 'none'} "
                "(mus-lab chain status lists them)."
            )
        return rows[0]

    def runs(self, chain: str | None = None) -> list[dict[str, Any]]:
        """Every run, oldest first (without spec and versions).

        Parameters
        ----------
        chain
            Only the runs of this chain (by name).

        Returns
        -------
        list of dict
            ``run_id, chain, state, created, finished``.
        """
        return self._rows(
            self._q(
                "SELECT run_id, chain, state, created, finished FROM {s}.runs "
                "WHERE %s::text IS NULL OR chain = %s ORDER BY created, run_id"
            ),
            (chain, chain),
        )

    def tasks(self, run_id: str) -> list[TaskRecord]:
        """The tasks of a run, in the order they were registered.

        Parameters
        ----------
        run_id
            The run.

        Returns
        -------
        list of TaskRecord
            Decoded rows.
        """
        rows = self._rows(
            self._q("SELECT * FROM {s}.tasks WHERE run_id = %s ORDER BY seq"), (run_id,)
        )
        return [
            TaskRecord(
                r["run_id"],
                r["step"],
                r["tile"],
                r["state"],
                r["attempts"],
                r["started"],
                r["finished"],
                r["worker"],
                r["fingerprint"],
                r["inputs"] or [],
                r["parameters"] or {},
                r["outputs"] or {},
                r["error"],
            )
            for r in rows
        ]

    def producer_of(self, path: str | os.PathLike[str]) -> tuple[str, str, str] | None:
        """The latest ``(run_id, step, tile)`` that wrote ``path``, if any.

        Parameters
        ----------
        path
            A product file.

        Returns
        -------
        tuple or None
            The task that wrote it last.
        """
        rows = self._rows(
            self._q(
                "SELECT o.run_id, o.step, o.tile FROM {s}.outputs o JOIN {s}.tasks t USING "
                "(run_id, step, tile) WHERE o.path = %s ORDER BY t.finished DESC NULLS LAST "
                "LIMIT 1"
            ),
            (str(Path(path).resolve()),),
        )
        return (rows[0]["run_id"], rows[0]["step"], rows[0]["tile"]) if rows else None
