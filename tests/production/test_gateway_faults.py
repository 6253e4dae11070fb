"""A chain on a Dask Gateway cluster of 2 workers through faults: a step that raises, a worker
killed in the middle of a step, the scheduler process killed and restarted in the middle of
the run; after ``retry`` every product has the bytes of a clean run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest

from mus_lab import production, set_options
from mus_lab.compute import cluster
from tests._servers import dask_gateway_server
from tests.production.test_tiles import _chain, _checksums


def _gateway_cluster():
    return cluster(n_workers=2, gateway_auth="basic", timeout=120)


@pytest.mark.slow
def test_faults_on_a_gateway_cluster_then_retry_equals_a_clean_run(
    tmp_path, scenario, monkeypatch, client
):
    local = client
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setenv("MUS_LAB_TEST_FAULTS", str(faults))
    for name in ("fail-r0c1", "kill-r0c0", "hang-r0c0"):
        (faults / name).touch()
    path = _chain(tmp_path, scenario)
    lines: list[str] = []
    (tmp_path / "gateway").mkdir()
    server = dask_gateway_server(
        tmp_path / "gateway", environment={"MUS_LAB_TEST_FAULTS": str(faults)}
    )
    with server as address, set_options(gateway_address=address):
        # 1. the faulty run: contrast r0c1 raises, contrast r0c0 kills its worker (the nanny
        #    starts another, dask re-runs the task), then the scheduler dies under after r0c0
        first = _gateway_cluster()
        client = first.__enter__()
        try:
            client.wait_for_workers(2, timeout=120)
            scheduler_pid = client.run_on_scheduler(os.getpid)

            def kill_scheduler() -> None:
                deadline = time.time() + 120
                while time.time() < deadline and not (faults / "hanging-r0c0").exists():
                    time.sleep(0.1)
                # 'after' hangs on r0c0: wait until the driver has recorded the contrast it
                # needs, so that the kill falls in the middle of 'after', not between the two,
                # and the failure of contrast r0c1 (the other worker may come to it late
                # under load: killed before, it would be cancelled, not failed)
                registry = production.open_registry(path)
                while time.time() < deadline and not (
                    _recorded(registry, "contrast", "r0c0")
                    and _recorded(registry, "contrast", "r0c1", "failed")
                ):
                    time.sleep(0.1)
                os.kill(scheduler_pid, signal.SIGKILL)

            killer = threading.Thread(target=kill_scheduler, daemon=True)
            killer.start()
            report = production.run_tiles(path, client=client, log=lines.append)
            killer.join(timeout=5)
        finally:
            with contextlib.suppress(Exception):
                first.__exit__(None, None, None)
        told = "\n".join([*lines, report.table()])
        assert not (faults / "kill-r0c0").exists(), told
        states = {(t.step, t.tile): t.state for t in report.tasks}
        tried = {(t.step, t.tile): t.attempts for t in report.tasks}
        assert report.state == "failed", told
        assert states[("contrast", "r0c1")] == "failed", told
        assert states[("contrast", "r0c0")] == "done", told  # re-run on a live worker
        assert states[("after", "r0c0")] in ("cancelled", "failed"), told  # the scheduler died
        assert production.status(path).state == "failed"

        # 2. the faults gone, a fresh cluster (a new scheduler): retry finishes the run
        for name in ("fail-r0c1", "hang-r0c0"):
            (faults / name).unlink()
        with _gateway_cluster() as client:
            client.wait_for_workers(2, timeout=120)
            again = production.retry(path, client=client, log=lines.append)
            assert again.ok, "\n".join([*lines, again.table()])
            assert again.run_id == report.run_id
            kept = {k for k, v in states.items() if v == "done"}
            attempts = {(t.step, t.tile): t.attempts for t in again.tasks}
            # done work was not redone (a task re-run after its worker died counts 2 already)
            redone = {k: (tried[k], attempts[k]) for k in kept if attempts[k] != tried[k]}
            assert not redone, "\n".join([f"redone: {redone}", *lines])
    # 3. a clean run, elsewhere, on a local client
    clean = production.run_tiles(
        _chain(tmp_path, scenario, name="clean", out="clean"), client=local, log=lines.append
    )
    assert clean.ok
    assert _checksums(again) == _checksums(clean)
    assert len(_checksums(clean)) == 8


def _recorded(registry: object, step: str, tile: str, state: str = "done") -> bool:
    """Whether the latest run's task is recorded in ``state``."""
    runs = registry.runs()  # type: ignore[attr-defined]
    tasks = registry.tasks(runs[-1]["run_id"]) if runs else []  # type: ignore[attr-defined]
    return any(t.step == step and t.tile == tile and t.state == state for t in tasks)
