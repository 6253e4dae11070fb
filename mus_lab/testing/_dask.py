"""Prove that a function stays lazy: a dask scheduler that fails on any compute."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["raise_if_dask_computes"]


class _CountingScheduler:
    """A dask scheduler that counts computes and fails past ``max_computes``."""

    def __init__(self, max_computes: int = 0) -> None:
        self.max_computes = max_computes
        self.total_computes = 0

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        import dask

        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were scheduled: {self.total_computes} > "
                f"{self.max_computes} (the code under test is not lazy)."
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[_CountingScheduler]:
    """Fail when dask computes more than ``max_computes`` times inside the ``with`` block.

    Parameters
    ----------
    max_computes
        How many computes are allowed (0: the block must stay fully lazy).

    Returns
    -------
    contextlib.AbstractContextManager
        Yields the scheduler, whose ``total_computes`` counts what ran.

    Raises
    ------
    RuntimeError
        On the first compute past ``max_computes`` (inside the block).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(4, chunks=2)
    >>> with raise_if_dask_computes():
    ...     y = x + 1  # lazy: fine
    >>> with raise_if_dask_computes():
    ...     int(x.sum())
    Traceback (most recent call last):
    ...
    RuntimeError: Too many dask computations were scheduled: 1 > 0 (the code under test is not lazy).
    """
    import dask

    scheduler = _CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
