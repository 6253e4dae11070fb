"""The Dask workers' statistical profiler, off while a chain runs (issue 17's memory).

A ``distributed`` worker samples the stacks of its threads every 10 ms and keeps, per
second of work, a tree of the stacks seen (``profile_history``) and one per task prefix
(``profile_keys_history``), each a deque of ``distributed.admin.low-level-log-length``
(1,000) seconds. The stacks of a chain's steps (GDAL, odc-stac, xarray, dask) are deep:
these trees made a worker's memory grow by about 1 MiB per second of work, for the first
1,000 s, so that the memory of a worker grew with the number of tasks it ran. The chain
runner registers :class:`QuietProfile` on the cluster while it drives a run: each worker
(those that join later too) stops its profiler and drops its history; at the end of the
run the plugin is removed and the profiler started again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["PLUGIN_NAME", "QuietProfile", "quiet_profile"]

PLUGIN_NAME = "mus-lab-quiet-profile"
_CALLBACKS = ("profile", "profile-cycle")


class QuietProfile(WorkerPlugin):
    """Stop a worker's statistical profiler and drop its history; start it again on removal.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from collections import deque
    >>> class Callback:
    ...     running = True
    ...     def stop(self): self.running = False
    ...     def start(self): self.running = True
    >>> worker = SimpleNamespace(
    ...     periodic_callbacks={"profile": Callback(), "profile-cycle": Callback()},
    ...     profile_history=deque([(0.0, {})]), profile_keys_history=deque([(0.0, {})]),
    ...     profile_keys={"step": {}}, profile_recent={"count": 3},
    ... )
    >>> plugin = QuietProfile()
    >>> plugin.setup(worker)
    >>> sorted(worker.periodic_callbacks), len(worker.profile_history), worker.profile_keys
    ([], 0, {})
    >>> plugin.teardown(worker)
    >>> sorted(worker.periodic_callbacks)
    ['profile', 'profile-cycle']
    """

    idempotent = True
    name = PLUGIN_NAME

    def setup(self, worker: Any) -> None:
        """Stop the profiler's callbacks (kept aside) and clear what it recorded.

        Parameters
        ----------
        worker
            The ``distributed.Worker``.
        """
        from distributed import profile

        # out of the dict: a worker still starting does not start them afterwards
        stopped = {
            n: worker.periodic_callbacks.pop(n)
            for n in _CALLBACKS
            if n in worker.periodic_callbacks
        }
        for callback in stopped.values():
            callback.stop()
        kept = getattr(worker, "_mus_lab_profile_callbacks", {})
        worker._mus_lab_profile_callbacks = {**kept, **stopped}
        for name in ("profile_history", "profile_keys_history", "profile_keys"):
            getattr(worker, name, {}).clear()
        worker.profile_recent = profile.create()

    def teardown(self, worker: Any) -> None:
        """Start the profiler's callbacks again.

        Parameters
        ----------
        worker
            The ``distributed.Worker``.
        """
        stopped = getattr(worker, "_mus_lab_profile_callbacks", {})
        for name, callback in stopped.items():
            worker.periodic_callbacks[name] = callback
            callback.start()
        worker._mus_lab_profile_callbacks = {}


@contextlib.contextmanager
def quiet_profile(client: Any, *, enabled: bool = True) -> Iterator[None]:
    """Within the block, the workers of ``client`` do not profile (see the module's doc).

    Parameters
    ----------
    client
        A ``distributed.Client``.
    enabled
        False: do nothing (the workers keep profiling).

    Returns
    -------
    contextlib.AbstractContextManager
        Yields nothing.
    """
    if not enabled:
        yield
        return
    client.register_plugin(QuietProfile(), name=PLUGIN_NAME)
    try:
        yield
    finally:
        if client.status == "running":  # not on a scheduler lost meanwhile
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(PLUGIN_NAME)
