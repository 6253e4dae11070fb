"""Step functions the chain tests name in their chain files (``python`` steps).

``FAULTS`` is a folder the tests set through ``MUS_LAB_TEST_FAULTS``: a file named
``fail-<tile>`` makes :func:`contrast` raise on that tile, ``kill-<tile>`` makes it kill
its worker process once (the file is removed first, so the re-scheduled attempt passes),
``slow`` makes it sleep 12 s, or until ``slow`` is removed (after touching ``started-<tile>``); ``hang-<tile>`` makes
:func:`passthrough` touch ``hanging-<tile>`` and sleep 30 s (a step in the middle of which
the test restarts the scheduler).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import xarray as xr


def _faults() -> Path | None:
    folder = os.environ.get("MUS_LAB_TEST_FAULTS")
    return Path(folder) if folder else None


def contrast(task) -> xr.DataArray:  # type: ignore[no-untyped-def]
    """NDVI minus a scaled VV (dB) on the tile: reads the two steps it needs."""
    faults = _faults()
    if faults is not None:
        if (faults / f"fail-{task.tile}").exists():
            raise RuntimeError(f"injected failure on {task.tile}")
        kill = faults / f"kill-{task.tile}"
        if kill.exists():
            kill.unlink()
            os._exit(1)  # the worker process dies in the middle of the step
        if (faults / "slow").exists():
            (faults / f"started-{task.tile}").touch()
            end = time.monotonic() + 12
            while (faults / "slow").exists() and time.monotonic() < end:
                time.sleep(0.05)
    ndvi = task.read("ndvi")
    vv = task.read("vv")
    out = (ndvi - np.float32(0.05) * vv).astype("float32")
    out.name = "contrast"
    return out


def passthrough(task) -> xr.DataArray:  # type: ignore[no-untyped-def]
    """The contrast map again (a step after a step that may fail)."""
    faults = _faults()
    if faults is not None and (faults / f"hang-{task.tile}").exists():
        (faults / f"hanging-{task.tile}").touch()
        time.sleep(30)
    out = task.read("contrast").astype("float32")
    out.name = "after"
    return out


def profile_state(task) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Write what the worker's statistical profiler holds while this step runs (JSON)."""
    import json

    from distributed import get_worker

    time.sleep(0.05)  # a few of the test's 10 ms profile cycles
    worker = get_worker()
    state = {
        "history": len(worker.profile_history),
        "keys_history": len(worker.profile_keys_history),
        "profiling": "profile" in worker.periodic_callbacks,
    }
    task.folder.mkdir(parents=True, exist_ok=True)
    path = task.path(".json")
    path.write_text(json.dumps(state), encoding="utf-8")
    return {"profile": path}


CYCLES: list = []  # weak references to the garbage cycles :func:`cyclic` leaves


def cyclic(task) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Leave a reference cycle holding an array (as xarray/dask objects of a step do)."""
    import weakref

    class Node:
        pass

    node = Node()
    node.me = node  # type: ignore[attr-defined]
    node.data = np.zeros(1 << 20, dtype="uint8")  # type: ignore[attr-defined]
    CYCLES.append(weakref.ref(node))
    task.folder.mkdir(parents=True, exist_ok=True)
    path = task.path(".txt")
    path.write_text("ok", encoding="utf-8")
    return {"out": path}
