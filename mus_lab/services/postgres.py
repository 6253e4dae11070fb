"""A PostgreSQL + PostGIS + pgstac cluster in a folder, started and stopped by the lab.

:class:`PostgresCluster` runs Debian's (or any) PostgreSQL binaries on a folder of its
own, never the system cluster: ``initdb`` makes ``DIR/data``, the server listens on
127.0.0.1 only (a free port unless one is given; its Unix socket inside ``DIR/run``),
logs to ``DIR/postgres.log``, and the database gets PostGIS and the pgstac schema.

Layout of ``DIR``::

    data/          the cluster (PGDATA)
    run/           the server's Unix socket
    postgres.log   the server's log
    pgpass         libpq password file (mode 0600): the password lives only here
    cluster.json   port, user and database of the last start

:attr:`PostgresCluster.url` names the password file (``?passfile=DIR/pgpass``) instead
of holding the password, so it is safe to print, log and pass around.

PostgreSQL refuses to run as root: run as root (a container, a CI machine), the
binaries run as the ``postgres`` user through ``runuser`` and the folder is handed to
that user.

From a shell: ``python -m mus_lab.services.postgres start|stop|status|init DIR``
(``make services`` and ``make services-stop`` call it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Literal

from mus_lab.errors import MusLabError, ServiceError

__all__ = ["PostgresCluster", "find_postgres_bindir"]

Status = Literal["absent", "stopped", "running"]

_SERVICE_USER = "postgres"
_INSTALL_HINT = (
    "install PostgreSQL and PostGIS (Debian: `make postgis`, which runs apt-get install "
    "postgresql-<major>-postgis-3), or set MUS_LAB_PG_BINDIR to the folder holding initdb"
)


def find_postgres_bindir() -> Path | None:
    """Find the folder of the PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``).

    Looked up in order: ``MUS_LAB_PG_BINDIR``; ``pg_ctl`` on the ``PATH``; the newest
    ``/usr/lib/postgresql/<major>/bin`` (Debian, Ubuntu); ``pg_config --bindir``.

    Returns
    -------
    Path or None
        The folder, or ``None`` when no server binaries are installed.

    Examples
    --------
    >>> bindir = find_postgres_bindir()
    >>> bindir is None or (bindir / "initdb").exists()
    True
    """
    candidates: list[Path] = []
    if os.environ.get("MUS_LAB_PG_BINDIR"):
        candidates.append(Path(os.environ["MUS_LAB_PG_BINDIR"]))
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates += [p / "bin" for p in reversed(majors)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A PostgreSQL cluster in a folder, with PostGIS and pgstac, bound to 127.0.0.1.

    Parameters
    ----------
    folder
        The cluster's folder (created by :meth:`init`).
    port
        TCP port; ``None`` picks a free one at each start (the last one is kept in
        ``cluster.json`` and reused while free).
    user, database
        Superuser and database created by :meth:`init` (``mus_lab`` both).
    durable
        ``False`` turns fsync off (tests, benchmarks: quicker start and stop, but a
        machine crash can lose the cluster). Applied at each start. Either way a commit
        is answered only once its WAL is written (``synchronous_commit = on``): a crash of
        the server itself (``kill -9``) loses no acknowledged write.

    Attributes
    ----------
    folder
        The absolute folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     cluster = PostgresCluster(Path(tmp) / "pg")
    ...     print(cluster.status())
    absent

    ``with PostgresCluster(folder) as pg:`` initialises the folder if needed, starts the
    server and stops it at the end of the block; ``pg.url`` is the database URL.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        port: int | None = None,
        user: str = "mus_lab",
        database: str = "mus_lab",
        durable: bool = True,
    ) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self._port = port
        self.durable = durable
        self.user = user
        self.database = database
        state = self._state()
        self.user = str(state.get("user", user))
        self.database = str(state.get("database", database))
        self._bindir: Path | None = None

    def __repr__(self) -> str:
        return f"PostgresCluster({str(self.folder)!r}, {self.status()})"

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- paths and state -----------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The cluster's data folder (``DIR/data``)."""
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        """The server's log (``DIR/postgres.log``)."""
        return self.folder / "postgres.log"

    @property
    def passfile(self) -> Path:
        """The libpq password file (``DIR/pgpass``, mode 0600)."""
        return self.folder / "pgpass"

    def _state(self) -> dict[str, object]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.folder / "cluster.json").read_text("utf-8"))
            if isinstance(data, dict):
                return data
        return {}

    def _save_state(self, port: int) -> None:
        state = {"port": port, "user": self.user, "database": self.database}
        (self.folder / "cluster.json").write_text(json.dumps(state, indent=1), "utf-8")

    @property
    def port(self) -> int | None:
        """The port the server listens on (or last listened on); ``None`` before a start."""
        saved = self._state().get("port")
        return self._port if self._port is not None else (int(str(saved)) if saved else None)

    @property
    def url(self) -> str:
        """The database URL, with the password file named instead of the password.

        Raises
        ------
        ServiceError
            The cluster was never started (no port yet).
        """
        from mus_lab.catalog._pgstac import database_url

        port = self.port
        if port is None:
            raise ServiceError(
                f"The cluster in {self.folder} has not been started yet: call start() "
                "(or `python -m mus_lab.services.postgres start DIR`) first."
            )
        return database_url(
            host="127.0.0.1",
            port=port,
            database=self.database,
            user=self.user,
            passfile=str(self.passfile),
        )

    # -- running the binaries ------------------------------------------------------
    def _bin(self, name: str) -> str:
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
            if self._bindir is None:
                raise ServiceError(
                    f"PostgreSQL server binaries are not installed: {_INSTALL_HINT}."
                )
        return str(self._bindir / name)

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root():
            cmd = ["runuser", "-u", _SERVICE_USER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env,
                cwd=str(self.folder) if self.folder.is_dir() else None,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(
                f"{Path(args[0]).name} did not finish within {timeout:.0f} s on {self.folder}: "
                f"see {self.log_file}."
            ) from exc

    def _give_to_service_user(self, *paths: Path) -> None:
        if not self._as_root():
            return
        try:
            entry = pwd.getpwnam(_SERVICE_USER)
        except KeyError:
            raise ServiceError(
                "PostgreSQL cannot run as root and there is no 'postgres' user to run it: "
                "run as an ordinary user, or install the Debian packages (`make postgis`), "
                "which create that user."
            ) from None
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def status(self) -> Status:
        """Say whether the folder holds a cluster and whether its server runs.

        Returns
        -------
        str
            ``"absent"`` (no cluster in the folder), ``"stopped"`` or ``"running"``.

        Raises
        ------
        ServiceError
            A cluster is there but the PostgreSQL binaries are not installed.
        """
        if not (self.data_dir / "PG_VERSION").is_file():
            return "absent"
        done = self._run(self._bin("pg_ctl"), "status", "-D", str(self.data_dir), timeout=30)
        return "running" if done.returncode == 0 else "stopped"

    # -- life cycle -------------------------------------------------------------
    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        initdb = self._bin("initdb")
        self.folder.mkdir(parents=True, exist_ok=True)
        run_dir = self.folder / "run"
        run_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.log_file.touch()
        password = secrets.token_urlsafe(24)
        pwfile = self.folder / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"127.0.0.1:*:*:{self.user}:{password}\n")
        if self._as_root():
            os.chmod(self.folder, 0o755)
            self._give_to_service_user(self.data_dir, run_dir, self.log_file, pwfile)
            if self._run("test", "-w", str(self.data_dir), timeout=30).returncode != 0:
                raise ServiceError(
                    f"User 'postgres' cannot reach {self.folder} (a parent folder is private): "
                    "choose a folder under /tmp or /var/tmp, or run as an ordinary user."
                )
        try:
            done = self._run(
                initdb, "-D", str(self.data_dir), "-U", self.user, f"--pwfile={pwfile}",
                "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-instructions",
                *(() if self.durable else ("--no-sync",)),
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServiceError(
                f"initdb failed on {self.data_dir}: {_tail(done.stderr or done.stdout)} "
                "Remove the folder or choose another, then try again."
            )
        socket_dir = str(run_dir) if len(str(run_dir)) < 90 else ""
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write(
                "\n# mus_lab.services.postgres: local, private, quick\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                "include_if_exists = 'mus_lab_start.conf'\n"
            )
        self._save_state(self._port or _free_port())

    def _start_server(self) -> None:
        if self.status() == "running":
            return
        saved = self.port
        attempts = 1 if self._port is not None else 3
        for attempt in range(attempts):
            port = saved if attempt == 0 and saved and _port_free(saved) else _free_port()
            if self._port is not None:
                port = self._port
            quick = "" if self.durable else "fsync = off\nfull_page_writes = off\n"
            # synchronous_commit on (clusters made before had it off): a commit is answered
            # once its WAL is written, so killing the server never loses an acknowledged
            # publish (tests/services/test_serve.py).
            (self.data_dir / "mus_lab_start.conf").write_text(
                f"port = {port}\nsynchronous_commit = on\n{quick}", "utf-8"
            )
            self._save_state(port)
            done = self._run(
                self._bin("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-w", "-t", "60",
            )  # fmt: skip
            if done.returncode == 0:
                return
            log = _read_tail(self.log_file)
            if "could not bind" not in log and "in use" not in log:
                break
        raise ServiceError(
            f"PostgreSQL did not start in {self.folder}: {_tail(log or done.stderr)} "
            f"See {self.log_file}."
        )

    def _setup(self) -> None:
        from mus_lab.catalog._pgstac import migrate_pgstac
        from mus_lab.errors import CatalogUnreachableError

        try:
            migrate_pgstac(self.url, timeout=30)
        except CatalogUnreachableError as exc:
            raise ServiceError(str(exc).replace("mus-lab holdings init", "start()")) from None

    def init(self) -> PostgresCluster:
        """Create the cluster (``initdb``), its database, PostGIS and the pgstac schema.

        Safe to call again: an existing cluster is kept and its pgstac schema
        migrated to the installed pypgstac version. The server is left as it was found
        (started for the setup and stopped again if it was not running).

        Returns
        -------
        PostgresCluster
            ``self``.

        Raises
        ------
        ServiceError
            PostgreSQL or PostGIS is not installed, the folder cannot be used, the server
            does not start, or the pgstac migration fails.
        """
        self._initdb()
        was_running = self.status() == "running"
        self._start_server()
        try:
            self._setup()
        finally:
            if not was_running:
                self.stop()
        return self

    def start(self) -> PostgresCluster:
        """Start the server, initialising the folder first if needed (see :meth:`init`).

        Returns
        -------
        PostgresCluster
            ``self``; :attr:`url` is the database URL.

        Raises
        ------
        ServiceError
            As for :meth:`init`.
        """
        self._initdb()
        self._start_server()
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); nothing if it is not running.

        Raises
        ------
        ServiceError
            The server did not stop.
        """
        if self.status() != "running":
            return
        done = self._run(
            self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"
        )
        if done.returncode != 0:
            raise ServiceError(
                f"PostgreSQL in {self.folder} did not stop: {_tail(done.stderr or done.stdout)}"
            )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text("utf-8", errors="replace")[-2000:]
    return ""


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    wanted = [ln for ln in lines if re.search(r"FATAL|ERROR|error|could not", ln)] or lines
    return " ".join(wanted[-3:])[:600]


def main(argv: list[str] | None = None) -> int:
    """``python -m mus_lab.services.postgres start|stop|status|init DIR [--port N]``.

    Parameters
    ----------
    argv
        The arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        0 on success (``status``: running), 1 for ``status`` of a cluster that is not
        running, 2 on an error (one line on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m mus_lab.services.postgres",
        description="A PostgreSQL + PostGIS + pgstac cluster in a folder, on 127.0.0.1.",
    )
    parser.add_argument("action", choices=("init", "start", "stop", "status"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(argv)
    cluster = PostgresCluster(args.folder, port=args.port)
    try:
        if args.action == "init":
            cluster.init()
            print(f"PostgreSQL cluster ready in {cluster.folder} (stopped: run start)")
        elif args.action == "start":
            cluster.start()
            print(f"PostgreSQL + pgstac running: {cluster.url}")
        elif args.action == "stop":
            cluster.stop()
            print(f"PostgreSQL in {cluster.folder} stopped")
        else:
            state = cluster.status()
            print(f"{state}: {cluster.url}" if state == "running" else state)
            return 0 if state == "running" else 1
    except MusLabError as exc:
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
