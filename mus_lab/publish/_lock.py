"""One writer per collection, and no stale temporary folder left behind.

Every writer of a product takes an exclusive lock on its collection (``fcntl.flock`` on
``<catalog>/.locks/<collection>.lock``), then sweeps what writers killed before it left
behind: temporary folders ``.<collection>.tmp-<pid>-*``, swapped-out old copies
``.<collection>.old-*`` and staging arrays ``.<collection>.arrays-*``. A lock held by a live
process makes the next writer wait (up to ``timeout`` seconds); the kernel drops the lock of a
process that dies, even by SIGKILL, so a killed writer never blocks the next one. The root
``catalog.json`` has its own lock, held only while a child link is added.

Why locks and not process ids: a folder whose writer is alive must never be swept, and a
process id can be reused; under the collection's lock no other writer of that collection is
alive, so everything its writers left is stale. (Temporary names still carry the writer's pid,
for whoever looks at the folder.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from mus_lab.errors import PublishError

__all__ = ["collection_lock", "root_lock", "stale_paths"]

_LOCKS = ".locks"
_PATTERNS = (".{c}.tmp-*", ".{c}.old-*", ".{c}.arrays-*")


def stale_paths(root: str | os.PathLike[str], collection: str) -> list[Path]:
    """Temporary folders and files that writers of ``collection`` left in a catalog folder.

    What :func:`collection_lock` removes once it holds the lock; outside the lock, a list for
    display only (a live writer's folder may be among them).

    Parameters
    ----------
    root
        The catalog folder where writers build collections.
    collection
        Collection id whose leftovers to list.

    Returns
    -------
    list of pathlib.Path
        What :func:`sweep` would remove.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / ".x.tmp-1-abc").mkdir()
    >>> [p.name for p in stale_paths(d, "x")]
    ['.x.tmp-1-abc']
    """
    folder = Path(root)
    out: list[Path] = []
    for pattern in _PATTERNS:
        out.extend(sorted(folder.glob(pattern.format(c=collection))))
    return out


def _sweep(root: str | os.PathLike[str], collection: str) -> list[Path]:
    removed = []
    for path in stale_paths(root, collection):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


@contextlib.contextmanager
def _flock(path: Path, timeout: float, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"{what} is being written by another process (lock {path}) for more "
                        f"than {timeout:g} s: wait for it to finish, or stop it. A writer that "
                        "died releases its lock by itself."
                    ) from exc
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def collection_lock(
    root: str | os.PathLike[str], collection: str, *, timeout: float = 600.0
) -> Iterator[list[Path]]:
    """Hold the write lock of one collection of a local catalog, after sweeping stale folders.

    Parameters
    ----------
    root
        The catalog folder (the lock files live in its ``.locks`` folder).
    collection
        Collection id to write.
    timeout
        Seconds to wait for a live writer of the same collection.

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the list of stale paths that were swept.

    Raises
    ------
    PublishError
        Another live process held the lock for longer than ``timeout``.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / ".c.tmp-999999-x").mkdir()
    >>> with collection_lock(d, "c") as swept:
    ...     [p.name for p in swept]
    ['.c.tmp-999999-x']
    """
    folder = Path(root)
    with _flock(folder / _LOCKS / f"{collection}.lock", timeout, f"Collection {collection!r}"):
        yield _sweep(folder, collection)


@contextlib.contextmanager
def root_lock(root: str | os.PathLike[str], *, timeout: float = 60.0) -> Iterator[None]:
    """Hold the lock of a catalog's root ``catalog.json`` (child links are read-modify-write).

    Parameters
    ----------
    root
        The catalog folder.
    timeout
        Seconds to wait for another writer.

    Returns
    -------
    contextlib.AbstractContextManager

    Raises
    ------
    PublishError
        Another live process held the lock for longer than ``timeout``.
    """
    folder = Path(root)
    with _flock(folder / _LOCKS / "catalog.json.lock", timeout, "The root catalog.json"):
        for stale in folder.glob(".catalog.json.*.json"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        yield
