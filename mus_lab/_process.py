"""Process helpers shared by the layers (standard library only)."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs (another user's counts as running).

    Parameters
    ----------
    pid
        Process id; ``None`` or 0 is never alive.

    Returns
    -------
    bool
        False only when the process is known to be gone.

    Examples
    --------
    >>> pid_alive(os.getpid()), pid_alive(None)
    (True, False)
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
