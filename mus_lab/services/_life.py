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
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["answers", "await_answer", "log_tail", "read_state", "running", "serves", "stop_server"]


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
