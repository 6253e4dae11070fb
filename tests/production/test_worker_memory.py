"""Issue 17: a worker's memory must not grow with the tasks it runs (its profile history)."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import dask
import yaml
from distributed import Client

from mus_lab import production
from mus_lab.production._tilerun import _execute
from mus_lab.production._tilesteps import TileTask
from tests.production import tiles_steps

STATE = "tests.production.tiles_steps:profile_state"


def _chain(tmp: Path, scenario) -> Path:
    data = {
        "chain": "profile",
        "catalog": str(scenario.catalog_path),
        "output": "out",
        "area": {"bbox": list(scenario.bbox), "tile": 48},
        "steps": {"state": {"uses": "python", "options": {"function": STATE}}},
    }
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _seen(report) -> list[dict]:
    return [
        json.loads(Path(t.outputs["profile"]["path"]).read_text(encoding="utf-8"))
        for t in report.tasks
    ]


def test_workers_keep_no_profile_history_while_a_chain_runs(tmp_path, scenario):
    # the profiler keeps a tree of stacks per cycle (1 s by default, here 10 ms) for the
    # last 1,000 cycles: a worker's memory grew with the seconds of work it had done
    fast = {
        "distributed.worker.profile.cycle": "10ms",
        "distributed.worker.profile.interval": "2ms",
    }
    chain = _chain(tmp_path, scenario)
    with (
        dask.config.set(fast),
        Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c,
    ):
        time.sleep(0.1)
        kept = production.run_tiles(chain, client=c, log=lambda _: None, worker_profile=True)
        assert kept.ok and len(kept.tasks) >= 4
        assert max(s["history"] for s in _seen(kept)) > 0  # what grew with the tasks
        report = production.run_tiles(chain, client=c, log=lambda _: None)
        assert report.ok
        seen = _seen(report)
        assert all(s == {"history": 0, "keys_history": 0, "profiling": False} for s in seen)
        # the profiler is back once the run is over
        worker = next(iter(c.cluster.workers.values()))
        assert (
            "profile" in worker.periodic_callbacks and "profile-cycle" in worker.periodic_callbacks
        )
        time.sleep(0.1)
        assert len(worker.profile_history) > 0


def test_a_steps_cyclic_garbage_is_freed_when_its_task_ends(tmp_path, scenario):
    # cycles holding arrays waited for a full collection, which a worker running few,
    # large objects seldom triggers: a worker's peak memory grew with the tasks it ran
    task = TileTask(
        step="cyc",
        uses="python",
        tile="t0",
        geobox=production.load_chain(_chain(tmp_path, scenario)).tiles()[0].geobox,
        catalog=str(scenario.catalog_path),
        period=None,
        options={"function": "tests.production.tiles_steps:cyclic"},
        folder=tmp_path / "cyc",
    )
    tiles_steps.CYCLES.clear()
    gc.disable()  # no collection by chance: only the runner's
    try:
        for _ in range(3):
            _execute(task)
        assert len(tiles_steps.CYCLES) == 3
        assert all(ref() is None for ref in tiles_steps.CYCLES)
    finally:
        gc.enable()
