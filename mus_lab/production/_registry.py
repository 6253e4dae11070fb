"""The job registry of production chains: every run, and every step x tile task, with state.

Two backends behind :class:`Registry`: :class:`SqliteRegistry` (one file, WAL mode so that
``mus-lab chain status`` can read while a run writes; the default) and
:class:`~mus_lab.production._registry_pg.PostgresRegistry` (a schema of a PostgreSQL
database, e.g. the holdings database). ``Registry(location)`` opens the one its location
names: a ``postgresql://`` URL or a file path.
Only the process that drives a run writes its tasks; workers never touch the registry.

A run's row names the process driving it: ``pid``, ``host`` (``socket.gethostname()``) and
``heartbeat`` (the time the driver last said it lives; it refreshes it while the run goes
on). Registries made before ``host`` and ``heartbeat`` existed get the two columns when
opened (empty for their old runs, whose liveness is then judged by ``pid`` alone).

Task states: ``queued`` (registered), ``running`` (sent to the cluster), ``done``,
``failed`` (the step raised; ``error`` keeps the message), ``skipped`` (a step it needs
failed on the same tile), ``cancelled``. A run is ``running``, ``done``, ``failed``
(some task failed or was skipped), ``cancelling`` (asked to stop) or ``cancelled``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from mus_lab.errors import ChainError

__all__ = [
    "TASK_STATES",
    "Registry",
    "SqliteRegistry",
    "TaskRecord",
    "is_database_url",
    "this_host",
]

TASK_STATES = ("queued", "running", "done", "failed", "skipped", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    chain TEXT NOT NULL,
    chain_file TEXT,
    chain_digest TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    pid INTEGER,
    attempts INTEGER NOT NULL DEFAULT 1,
    versions TEXT NOT NULL,
    host TEXT,
    heartbeat REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    step TEXT NOT NULL,
    tile TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    worker TEXT,
    fingerprint TEXT,
    inputs TEXT,
    parameters TEXT,
    outputs TEXT,
    error TEXT,
    PRIMARY KEY (run_id, step, tile)
);
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    tile TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (path, run_id)
);
"""

# columns added to ``runs`` after registries were first written: (name, SQLite type)
RUN_COLUMNS_ADDED = (("host", "TEXT"), ("heartbeat", "REAL"))
#: The columns of a run's row that :meth:`Registry.claim_run` compares with what was read.
_CLAIMED = ("state", "pid", "host", "heartbeat")


def this_host() -> str:
    """The name of this machine, as the registry records a run's driver.

    Returns
    -------
    str
        ``socket.gethostname()``.

    Examples
    --------
    >>> this_host() == socket.gethostname()
    True
    """
    return socket.gethostname()


@dataclass(frozen=True)
class TaskRecord:
    """One step x tile task as the registry holds it."""

    run_id: str
    step: str
    tile: str
    state: str
    attempts: int
    started: float | None
    finished: float | None
    worker: str | None
    fingerprint: str | None
    inputs: list[dict[str, Any]]
    parameters: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    error: str | None

    @property
    def seconds(self) -> float | None:
        """Wall time of the last attempt, if it finished."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


_DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: object) -> bool:
    """Whether a registry location is a PostgreSQL URL (else it is an SQLite file).

    Parameters
    ----------
    location
        A path or URL.

    Returns
    -------
    bool
        True for ``postgresql://`` and ``postgres://`` URLs.

    Examples
    --------
    >>> is_database_url("postgresql://lab@127.0.0.1/holdings"), is_database_url("reg.sqlite")
    (True, False)
    """
    return isinstance(location, str) and location.startswith(_DATABASE_SCHEMES)


class Registry:
    """A job registry: ``Registry(location)`` opens the backend its location names.

    A ``postgresql://`` URL opens a
    :class:`~mus_lab.production._registry_pg.PostgresRegistry`, anything else an
    :class:`SqliteRegistry` file. Both have the same methods, with the same meaning.

    Parameters
    ----------
    location
        A database URL or an SQLite file path.
    **options
        Passed to the backend (``schema``, ``connect_timeout`` for PostgreSQL).

    Raises
    ------
    ChainError
        A PostgreSQL URL that is wrong or whose server cannot be reached.

    Examples
    --------
    >>> import tempfile
    >>> reg = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite")
    >>> type(reg).__name__
    'SqliteRegistry'
    """

    path: Path | None = None

    def __new__(
        cls, location: str | os.PathLike[str] | None = None, *args: Any, **options: Any
    ) -> Self:
        if cls is Registry:  # a subclass called directly is itself (and unpickles)
            if is_database_url(location):
                from mus_lab.production._registry_pg import PostgresRegistry

                cls = PostgresRegistry  # type: ignore[assignment]
            else:
                cls = SqliteRegistry  # type: ignore[assignment]
        return super().__new__(cls)

    @property
    def location(self) -> str:
        """Where the registry is, for messages (a database URL without its password)."""
        return str(self.path)

    def close(self) -> None:
        """Release the registry's connection (it reconnects when used again)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        raise NotImplementedError

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
        raise NotImplementedError

    def set_states(
        self, run_id: str, changes: Sequence[tuple[str, str, str, Mapping[str, Any]]]
    ) -> None:
        """Set several tasks' states in one transaction: ``(step, tile, state, fields)``.

        Parameters
        ----------
        run_id
            The run.
        changes
            As for :meth:`set_state`, one tuple per task.
        """
        raise NotImplementedError

    def set_state(self, run_id: str, step: str, tile: str, state: str, **fields: Any) -> None:
        """Set one task's state and other fields (``started``, ``error`` ...).

        Parameters
        ----------
        run_id, step, tile
            The task.
        state
            One of :data:`TASK_STATES`.
        **fields
            Columns to set; ``outputs``, ``inputs`` and ``parameters`` are JSON-encoded.
        """
        raise NotImplementedError

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
        raise NotImplementedError

    def update_outputs(
        self, run_id: str, changes: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """Replace tasks' recorded outputs, keeping their state: ``(step, tile, outputs)``.

        Parameters
        ----------
        run_id
            The run.
        changes
            One ``(step, tile, outputs)`` per task; ``outputs`` as :meth:`set_state` takes it.
        """
        raise NotImplementedError

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
        raise NotImplementedError

    def claim_run(self, run_id: str, seen: Mapping[str, Any]) -> bool:
        """Make this process the run's driver, unless its row changed since ``seen``.

        One atomic compare-and-set on the run's ``state``, ``pid``, ``host`` and
        ``heartbeat``: of two drivers retrying the same run at once, from one host or two,
        one wins and the other gets ``False``. The winner's row is ``running``, with its
        pid, this host, a fresh heartbeat and one more attempt.

        Parameters
        ----------
        run_id
            The run.
        seen
            The run's row as the caller read it (:meth:`run`) when it decided to take over.

        Returns
        -------
        bool
            Whether this process now drives the run.
        """
        raise NotImplementedError

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's driver (this process) still lives: ``heartbeat`` = now.

        Parameters
        ----------
        run_id
            The run.
        """
        raise NotImplementedError

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's row.

        Parameters
        ----------
        run_id
            The run.

        Returns
        -------
        dict
            Columns, with ``spec`` and ``versions`` decoded.

        Raises
        ------
        ChainError
            No such run.
        """
        raise NotImplementedError

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
        raise NotImplementedError

    def tasks(self, run_id: str) -> list[TaskRecord]:
        """The tasks of a run, by step then tile.

        Parameters
        ----------
        run_id
            The run.

        Returns
        -------
        list of TaskRecord
            Decoded rows.
        """
        raise NotImplementedError

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
        raise NotImplementedError


class SqliteRegistry(Registry):
    """A job registry in an SQLite file.

    Parameters
    ----------
    path
        The database file (created with its folder).

    Examples
    --------
    >>> import tempfile
    >>> reg = SqliteRegistry(Path(tempfile.mkdtemp()) / "registry.sqlite")
    >>> reg.new_run("r1", "demo", None, "abc", {"steps": {}}, {"mus_lab": "0.1.0"})
    >>> reg.add_tasks("r1", [("ndvi", "r0c0", "fp", [], {})])
    >>> reg.start_attempts("r1", [("ndvi", "r0c0", "fp")])
    >>> [t.state for t in reg.tasks("r1")]
    ['running']
    """

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._add_columns(db)

    def __repr__(self) -> str:
        return f"SqliteRegistry({str(self.path)!r})"

    @staticmethod
    def _add_columns(db: sqlite3.Connection) -> None:
        """Add the ``runs`` columns a registry written by an older version lacks."""
        have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        for name, kind in RUN_COLUMNS_ADDED:
            if name in have:
                continue
            try:
                db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def new_run(
        self,
        run_id: str,
        chain: str,
        chain_file: str | None,
        digest: str,
        spec: Mapping[str, Any],
        versions: Mapping[str, str],
    ) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (run_id, chain, chain_file, chain_digest, spec, state, "
                "created, pid, versions, host, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    run_id,
                    chain,
                    chain_file,
                    digest,
                    json.dumps(spec, default=str),
                    now,
                    os.getpid(),
                    json.dumps(versions),
                    this_host(),
                    now,
                ),
            )

    def add_tasks(
        self, run_id: str, tasks: Sequence[tuple[str, str, str, list[Any], Mapping[str, Any]]]
    ) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO tasks (run_id, step, tile, state, fingerprint, inputs, "
                "parameters) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                [
                    (run_id, s, t, fp, json.dumps(inp), json.dumps(par, default=str))
                    for s, t, fp, inp, par in tasks
                ],
            )

    def set_states(
        self, run_id: str, changes: Sequence[tuple[str, str, str, Mapping[str, Any]]]
    ) -> None:
        with self._connect() as db:
            for step, tile, state, fields in changes:
                self._set(db, run_id, step, tile, state, fields)

    def set_state(self, run_id: str, step: str, tile: str, state: str, **fields: Any) -> None:
        with self._connect() as db:
            self._set(db, run_id, step, tile, state, fields)

    @staticmethod
    def _set(
        db: sqlite3.Connection,
        run_id: str,
        step: str,
        tile: str,
        state: str,
        fields: Mapping[str, Any],
    ) -> None:
        if state not in TASK_STATES:
            raise ValueError(f"unknown task state {state!r}")
        values = {"state": state, **fields}
        for key in ("outputs", "inputs", "parameters"):
            if key in values:
                values[key] = json.dumps(values[key], default=str)
        columns = ", ".join(f"{k} = ?" for k in values)
        db.execute(
            f"UPDATE tasks SET {columns} WHERE run_id = ? AND step = ? AND tile = ?",
            [*values.values(), run_id, step, tile],
        )
        if state == "done" and "outputs" in fields:
            for out in fields["outputs"].values():
                db.execute(
                    "INSERT OR REPLACE INTO outputs (path, run_id, step, tile, sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (out["path"], run_id, step, tile, out["sha256"]),
                )

    def start_attempts(self, run_id: str, tasks: Sequence[tuple[str, str, str]]) -> None:
        with self._connect() as db:
            db.executemany(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, error = NULL, "
                "fingerprint = ? WHERE run_id = ? AND step = ? AND tile = ?",
                [(fp, run_id, step, tile) for step, tile, fp in tasks],
            )

    def update_outputs(
        self, run_id: str, changes: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> None:
        """Replace tasks' recorded outputs, keeping their state: ``(step, tile, outputs)``.

        Used to record a pruned intermediate or a checked file's new mtime.

        Parameters
        ----------
        run_id
            The run.
        changes
            One tuple per task.
        """
        with self._connect() as db:
            db.executemany(
                "UPDATE tasks SET outputs = ? WHERE run_id = ? AND step = ? AND tile = ?",
                [(json.dumps(o, default=str), run_id, s, t) for s, t, o in changes],
            )

    def set_run_state(self, run_id: str, state: str, *, pid: int | None = None) -> None:
        final = state in ("done", "failed", "cancelled")
        now = time.time()
        host = this_host() if pid else None
        beat = now if pid else None
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET state = ?, finished = ?, pid = COALESCE(?, pid), "
                "host = COALESCE(?, host), heartbeat = COALESCE(?, heartbeat), "
                "attempts = attempts + ? WHERE run_id = ?",
                (state, now if final else None, pid, host, beat, 1 if pid else 0, run_id),
            )

    def claim_run(self, run_id: str, seen: Mapping[str, Any]) -> bool:
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE runs SET state = 'running', finished = NULL, pid = ?, host = ?, "
                "heartbeat = ?, attempts = attempts + 1 WHERE run_id = ? AND state IS ? "
                "AND pid IS ? AND host IS ? AND heartbeat IS ?",
                (
                    os.getpid(),
                    this_host(),
                    time.time(),
                    run_id,
                    *(seen.get(k) for k in _CLAIMED),
                ),
            )
            return cursor.rowcount == 1

    def heartbeat(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE run_id = ?", (time.time(), run_id))

    def run(self, run_id: str) -> dict[str, Any]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r["run_id"] for r in self.runs()][-5:]
            raise ChainError(
                f"No run {run_id!r} in {self.path}: the latest are {known or 'none'} "
                "(mus-lab chain status lists them)."
            )
        out = dict(row)
        out["spec"] = json.loads(out["spec"])
        out["versions"] = json.loads(out["versions"])
        return out

    def runs(self, chain: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT run_id, chain, state, created, finished FROM runs "
                "WHERE ? IS NULL OR chain = ? ORDER BY created",
                (chain, chain),
            ).fetchall()
        return [dict(r) for r in rows]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM tasks WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
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
                _loads(r["inputs"], []),
                _loads(r["parameters"], {}),
                _loads(r["outputs"], {}),
                r["error"],
            )
            for r in rows
        ]

    def producer_of(self, path: str | os.PathLike[str]) -> tuple[str, str, str] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT o.run_id, o.step, o.tile FROM outputs o JOIN tasks t USING "
                "(run_id, step, tile) WHERE o.path = ? ORDER BY t.finished DESC LIMIT 1",
                (str(Path(path).resolve()),),
            ).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]
