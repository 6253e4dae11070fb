"""The run view: a registry's tasks laid out per step on the tiling, failures listed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mus_lab import production
from mus_lab.cli import app
from mus_lab.errors import ChainError


def _registry(tmp_path):
    reg = production.Registry(tmp_path / "registry.sqlite")
    reg.new_run("run-1", "demo", None, "d", {"steps": {}}, {})
    tiles = [f"r{r}c{c}" for r in range(2) for c in range(3)]
    reg.add_tasks("run-1", [(s, t, "fp", [], {}) for s in ("ndvi", "after") for t in tiles])
    reg.start_attempts("run-1", [(s, t, "fp") for s in ("ndvi", "after") for t in tiles])
    for i, t in enumerate(tiles):
        reg.set_state("run-1", "ndvi", t, "done", started=100.0, finished=100.0 + i)
    reg.set_state("run-1", "after", "r1c2", "failed", error="ValueError: band 'nir' missing\n...")
    reg.set_state("run-1", "after", "r0c0", "done", started=1.0, finished=3.5)
    return reg


def test_grid_places_tiles_by_row_and_column(tmp_path):
    grids = production.run_grid(_registry(tmp_path).tasks("run-1"))
    assert [g.step for g in grids] == ["ndvi", "after"]  # the registry's order
    after = grids[1]
    assert after.states == [["done", "running", "running"], ["running", "running", "failed"]]
    assert after.counts() == {"done": 1, "running": 4, "failed": 1}
    assert grids[0].seconds() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_view_shows_states_times_and_the_failure(tmp_path):
    pn = pytest.importorskip("panel")
    reg = _registry(tmp_path)
    view = production.run_view(reg, refresh_s=None)
    assert isinstance(view, pn.Column)
    summary, grids, _, failed = view.objects
    assert "run-1" in summary.object and "running" in summary.object
    assert "7 of 12 task(s) done" in summary.object
    page = grids.object
    assert page.count('class="task done"') == 7 and page.count('class="task failed"') == 1
    assert "median 2.5 s, max 5.0 s" in page  # ndvi's six tasks took 0..5 s
    assert "r1c2: failed, attempt 1" in page and "band &#x27;nir&#x27; missing" in page
    assert failed.value.to_dict("records") == [
        {"step": "after", "tile": "r1c2", "attempts": 1, "error": "ValueError: band 'nir' missing"}
    ]


def test_view_of_a_run_whose_driver_on_another_host_went_silent(tmp_path):
    import sqlite3

    pytest.importorskip("panel")
    reg = _registry(tmp_path)
    with sqlite3.connect(reg.path) as db:  # driven from elsewhere, last heard of long ago
        db.execute("UPDATE runs SET host = 'elsewhere', pid = 77, heartbeat = 1.0")
    summary = production.run_view(reg).objects[0]  # gone: no refresh is scheduled
    assert "**failed (its driver, process 77 on host elsewhere, heartbeat" in summary.object


def test_view_of_an_empty_registry_says_how_to_start(tmp_path):
    reg = production.Registry(tmp_path / "registry.sqlite")
    with pytest.raises(ChainError, match="mus-lab chain run"):
        production.run_view(reg)
    out = CliRunner().invoke(app, ["chain", "view", str(tmp_path / "missing.yaml")])
    assert out.exit_code == 2 and "Traceback" not in out.output
