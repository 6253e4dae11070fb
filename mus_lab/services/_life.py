"""The life cycle the lab's HTTP services share: is it ours, does it answer, stop it.

Each service (STAC API, tiles, WMS/WCS, processes) runs in a subprocess that leads its own
process group, and records its pid in its folder's state file. A pid read back from a state
file is signalled only when its command line still carries the service's marker: a recycled
pid is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from mus_lab.errors import MusLabError, ServiceError

__all__ = [
    "Server",
    "TokenServer",
    "answers",
    "await_answer",
    "child_env",
    "command",
    "log_tail",
    "read_state",
    "running",
    "serves",
    "stop_server",
]


def serves(pid: int, marker: bytes) -> bool:
    """Whether process ``pid`` runs the service whose command line holds ``marker``.

    Parameters
    ----------
    pid
        A process id (from a state file).
    marker
        Bytes of the service's command line (NUL-separated words), e.g.
        ``b"mus_lab.services.tiles:create_app"``.

    Returns
    -------
    bool
        False when the process is gone or runs something else.

    Examples
    --------
    >>> serves(os.getpid(), b"no such service")
    False
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in cmdline


def running(pid: int, proc: subprocess.Popen[bytes] | None, marker: bytes) -> bool:
    """Whether the service still runs (our child is reaped when it has ended).

    Parameters
    ----------
    pid
        Its process id.
    proc
        The handle, when this process started it.
    marker
        As for :func:`serves`.

    Returns
    -------
    bool
    """
    if proc is not None:
        return proc.poll() is None
    with contextlib.suppress(ChildProcessError):  # our own child (started by `start`): reap it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return serves(pid, marker)


def answers(url: str, *, timeout: float = 2) -> bool:
    """Whether ``GET url`` answers 200.

    Parameters
    ----------
    url
        A health or landing URL on 127.0.0.1.
    timeout
        Seconds.

    Returns
    -------
    bool
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def stop_server(
    proc: subprocess.Popen[bytes] | None, state_pid: Any, marker: bytes, *, timeout: float
) -> None:
    """SIGTERM the service's process group, SIGKILL it after ``timeout``, reap it.

    Parameters
    ----------
    proc
        The handle, when this process started it (then ``state_pid`` is not used).
    state_pid
        The pid its state file records (a folder's service started by another process);
        signalled only when :func:`serves` says it is that service.
    marker
        As for :func:`serves`.
    timeout
        Seconds to wait after SIGTERM.
    """
    if proc is not None:
        pid = proc.pid
        if proc.poll() is not None:  # it ended by itself
            return
    else:
        if not state_pid or not serves(int(state_pid), marker):
            return
        pid = int(state_pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running(pid, proc, marker):
        time.sleep(0.05)
    if running(pid, proc, marker):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(5)
    if proc is None:  # reap it if this process started it (no zombie left)
        with contextlib.suppress(ChildProcessError):
            for _ in range(50):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
                time.sleep(0.02)


def await_answer(proc: subprocess.Popen[bytes], ping: Callable[[], bool], timeout: float) -> bool:
    """Wait until ``ping()`` is true, the process ends, or ``timeout`` seconds pass.

    Parameters
    ----------
    proc
        The service's process.
    ping
        Whether it answers (e.g. ``lambda: answers(url)``).
    timeout
        Seconds.

    Returns
    -------
    bool
        Whether it answered.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def log_tail(path: Path, *, chars: int = 600) -> str:
    """The last words of a service's log, on one line, for an error message.

    Parameters
    ----------
    path
        The log file.
    chars
        At most this many characters.

    Returns
    -------
    str
    """
    with contextlib.suppress(OSError):
        return " ".join(path.read_text("utf-8", errors="replace").split()[-60:])[-chars:]
    return ""


def read_state(path: Path) -> dict[str, Any]:
    """A service's state file (port, pid ...), ``{}`` when absent or unreadable.

    Parameters
    ----------
    path
        The JSON state file.

    Returns
    -------
    dict
    """
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def child_env(drop: Iterable[str] = (), extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a server: ``drop``-prefixed variables removed, ``extra``
    added, and the repository on ``PYTHONPATH`` (the server imports this ``mus_lab``).

    Parameters
    ----------
    drop
        Prefixes (or whole names) of variables the server must not inherit.
    extra
        Variables to set.

    Returns
    -------
    dict
        The environment.

    Examples
    --------
    >>> env = child_env(("PG",), {"A": "1"})
    >>> env["A"], any(k.startswith("PG") for k in env)
    ('1', False)
    """
    prefixes = tuple(drop)
    env = {k: v for k, v in os.environ.items() if not (prefixes and k.startswith(prefixes))}
    env.update(extra or {})
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class Server:
    """A lab server: a subprocess on 127.0.0.1 that keeps its log and state in a folder.

    Subclasses name their files (:attr:`NAME`), their messages (:attr:`TITLE`), the marker
    of their command line (:attr:`MARKER`, see :func:`serves`) and what answers when they
    are up (:attr:`HEALTH`, below the root URL); their ``start`` prepares what they need,
    then calls :meth:`_spawn`.

    Parameters
    ----------
    folder
        Where the server keeps its log (``NAME.log``) and state (``NAME.json``).
    port
        TCP port (default: a free one at the start).

    Examples
    --------
    >>> import tempfile
    >>> class Echo(Server):
    ...     NAME, TITLE, MARKER = "echo", "The echo server", b"no-such-marker"
    >>> echo = Echo(tempfile.mkdtemp())
    >>> echo.url is None, echo.running, echo.log_file.name
    (True, False, 'echo.log')
    """

    NAME: ClassVar[str]
    TITLE: ClassVar[str]
    MARKER: ClassVar[bytes]
    #: Path (below the root URL) that answers once the server is up.
    HEALTH: ClassVar[str] = "/healthz"
    #: Path of the service's address below the root (:attr:`url`).
    PATH: ClassVar[str] = ""
    PING_TIMEOUT: ClassVar[float] = 2

    def __init__(self, folder: str | os.PathLike[str], *, port: int | None = None) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r}, url={self.url!r})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def log_file(self) -> Path:
        """The server's log (its standard output and error)."""
        return self.folder / f"{self.NAME}.log"

    @property
    def state_file(self) -> Path:
        """The server's state: its port and pid."""
        return self.folder / f"{self.NAME}.json"

    def _state(self) -> dict[str, Any]:
        return read_state(self.state_file)

    @property
    def root(self) -> str | None:
        """``http://127.0.0.1:PORT``, ``None`` before a start."""
        port = self._port or self._state().get("port")
        return f"http://127.0.0.1:{port}" if port else None

    @property
    def url(self) -> str | None:
        """The service's address, ``None`` before a start."""
        root = self.root
        return f"{root}{self.PATH}" if root else None

    @property
    def running(self) -> bool:
        """Whether the server answers."""
        root = self.root
        return root is not None and self._answers(root)

    def _answers(self, root: str) -> bool:
        return answers(f"{root}{self.HEALTH}", timeout=self.PING_TIMEOUT)

    def start(self, *, timeout: float = 60) -> Self:
        """Start the server and wait until it answers (the process outlives this object).

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Returns
        -------
        Server
            ``self``.

        Raises
        ------
        ServiceError
            Something the server needs is missing, or it did not answer in time.
        """
        raise NotImplementedError

    def _spawn(
        self,
        cmd: list[str],
        env: Mapping[str, str],
        *,
        port: int,
        timeout: float,
        state: Mapping[str, Any] | None = None,
    ) -> Self:
        """Run ``cmd`` (``sys.executable`` first) as the server and wait for its answer;
        ``state`` adds to what the state file records (port, pid)."""
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, *cmd], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=str(self.folder), env=dict(env),
                start_new_session=True,
            )  # fmt: skip
        self.state_file.write_text(
            json.dumps({"port": port, "pid": self._proc.pid, **(state or {})}, indent=1), "utf-8"
        )
        self._port = port
        root = f"http://127.0.0.1:{port}"
        if await_answer(self._proc, lambda: self._answers(root), timeout):
            return self
        self.stop()
        raise ServiceError(
            f"{self.TITLE} did not answer on {root}{self.PATH} within {timeout:.0f} s: "
            f"{log_tail(self.log_file)} See {self.log_file}."
        )

    def stop(self, *, timeout: float = 15) -> None:
        """Stop the server (the one this object, or a start from the same folder, started).

        Parameters
        ----------
        timeout
            Seconds to wait after SIGTERM before SIGKILL.
        """
        stop_server(self._proc, self._state().get("pid"), self.MARKER, timeout=timeout)
        self._proc = None


class TokenServer(Server):
    """A :class:`Server` whose writes need a bearer token, kept in ``folder/token`` (0600).

    Parameters
    ----------
    folder, port
        As :class:`Server`.
    token
        The token (default: the one in ``folder/token``, else a new random one).
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, port: int | None = None, token: str | None = None
    ) -> None:
        super().__init__(folder, port=port)
        self._token = token

    @property
    def token_file(self) -> Path:
        """The token's file (mode 0600)."""
        return self.folder / "token"

    @property
    def token(self) -> str:
        """The token (send it as ``Authorization: Bearer TOKEN``)."""
        if self._token is None:
            with contextlib.suppress(OSError):
                self._token = self.token_file.read_text("utf-8").strip() or None
        if self._token is None:
            self._token = secrets.token_urlsafe(32)
        return self._token

    def _write_token(self) -> None:
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.token + "\n")


def command(build: Callable[[], Server], action: str, started: Callable[[Any], str]) -> int:
    """What ``python -m mus_lab.services.NAME start|stop|status DIR`` does with a server.

    Parameters
    ----------
    build
        Makes the server from the command line's options (may raise a MusLabError).
    action
        ``"start"``, ``"stop"`` or ``"status"``.
    started
        The line printed after a start (its URL, where its token is).

    Returns
    -------
    int
        0 on success (``status``: running), 1 for ``status`` of a server that is not
        running, 2 on an error (one line on stderr).
    """
    try:
        server = build()
        if action == "start":
            server.start()
            print(started(server))
        elif action == "stop":
            server.stop()
            print(f"{server.TITLE} in {server.folder} stopped")
        else:
            up = server.running
            print(f"running: {server.url}" if up else "stopped")
            return 0 if up else 1
    except MusLabError as exc:
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0
