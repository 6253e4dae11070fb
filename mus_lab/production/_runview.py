"""A small dashboard view of a chain run: each step's tiles coloured by state, failures, timings.

:func:`run_grid` lays a run's tasks out as one grid of states per step (rows and columns of the
chain's tiling, read from the tile names ``r{row}c{col}``); :func:`run_view` draws it with Panel
and, while the run is going, refreshes itself from the job registry. The registry is read, never
written: opening the view on a running chain is safe.
"""

from __future__ import annotations

import html
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mus_lab.production._chainfile import ChainSpec
from mus_lab.production._registry import Registry, TaskRecord
from mus_lab.production._tilerun import (
    _latest,
    _spec_or_registry,
    driver_alive,
    open_registry,
)

if TYPE_CHECKING:  # pragma: no cover
    import panel as pn

#: Cell colours per task state (colour-blind safe: Okabe-Ito), shared by the view and its legend.
STATE_COLOURS = {
    "done": "#009E73",
    "running": "#56B4E9",
    "queued": "#DDDDDD",
    "skipped": "#F0E442",
    "failed": "#D55E00",
    "cancelled": "#999999",
}
_TILE = re.compile(r"^r(\d+)c(\d+)$")


@dataclass(frozen=True)
class StepGrid:
    """One step's tasks on the tiling: ``states[row][col]`` (``None`` where no task)."""

    step: str
    states: list[list[str | None]]
    tasks: dict[tuple[int, int], TaskRecord]

    def counts(self) -> dict[str, int]:
        """Tasks per state.

        Returns
        -------
        dict
            ``{state: count}``.
        """
        out: dict[str, int] = {}
        for task in self.tasks.values():
            out[task.state] = out.get(task.state, 0) + 1
        return out

    def seconds(self) -> list[float]:
        """The wall times of the finished tasks.

        Returns
        -------
        list of float
            Seconds, in tile order.
        """
        return [t.seconds for t in self.tasks.values() if t.seconds is not None]


def _position(tile: str, index: int) -> tuple[int, int]:
    match = _TILE.match(tile)
    return (int(match[1]), int(match[2])) if match else (0, index)


def run_grid(tasks: list[TaskRecord]) -> list[StepGrid]:
    """Lay tasks out as one grid of states per step, in the order the steps first appear.

    Parameters
    ----------
    tasks
        A run's tasks (:meth:`Registry.tasks`). Tiles named ``r{row}c{col}`` take their place
        in the tiling; other names line up on one row.

    Returns
    -------
    list of StepGrid
        One per step.

    Examples
    --------
    >>> from mus_lab.production._registry import TaskRecord
    >>> def task(step, tile, state):
    ...     return TaskRecord("r1", step, tile, state, 1, None, None, None, None, [], {}, {}, None)
    >>> grids = run_grid([task("ndvi", "r0c0", "done"), task("ndvi", "r1c1", "failed")])
    >>> grids[0].states
    [['done', None], [None, 'failed']]
    >>> grids[0].counts()
    {'done': 1, 'failed': 1}
    """
    by_step: dict[str, dict[tuple[int, int], TaskRecord]] = {}
    for task in tasks:
        cells = by_step.setdefault(task.step, {})
        cells[_position(task.tile, len(cells))] = task
    grids = []
    for step, cells in by_step.items():
        rows = 1 + max(r for r, _ in cells)
        cols = 1 + max(c for _, c in cells)
        states: list[list[str | None]] = [[None] * cols for _ in range(rows)]
        for (r, c), task in cells.items():
            states[r][c] = task.state
        grids.append(StepGrid(step, states, cells))
    return grids


def _cell(task: TaskRecord | None, size: int) -> str:
    if task is None:
        return f'<td style="width:{size}px;height:{size}px"></td>'
    colour = STATE_COLOURS.get(task.state, "#FFFFFF")
    tip = f"{task.tile}: {task.state}, attempt {task.attempts}"
    if task.seconds is not None:
        tip += f", {task.seconds:.1f} s"
    if task.error:
        tip += f"\n{task.error.splitlines()[0][:200]}"
    return (
        f'<td class="task {task.state}" title="{html.escape(tip)}" '
        f'style="width:{size}px;height:{size}px;background:{colour};border:1px solid #fff"></td>'
    )


def grid_html(grid: StepGrid, *, cell: int = 14) -> str:
    """One step's tiling as an HTML table of coloured cells (hover: tile, state, time, error).

    Parameters
    ----------
    grid
        From :func:`run_grid`.
    cell
        Cell side in CSS pixels.

    Returns
    -------
    str
        The step name with its counts and median time, then the table.
    """
    counts = ", ".join(f"{n} {s}" for s, n in sorted(grid.counts().items()))
    secs = grid.seconds()
    timing = f", median {statistics.median(secs):.1f} s, max {max(secs):.1f} s" if secs else ""
    rows = []
    for r, states in enumerate(grid.states):
        cells = "".join(_cell(grid.tasks.get((r, c)), cell) for c in range(len(states)))
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="step" data-step="{html.escape(grid.step)}">'
        f"<b>{html.escape(grid.step)}</b> <small>({counts}{timing})</small>"
        f'<table style="border-collapse:collapse">{"".join(rows)}</table></div>'
    )


def _legend() -> str:
    items = "".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
        f'margin:0 4px 0 10px"></span>{s}'
        for s, c in STATE_COLOURS.items()
    )
    return f'<div class="legend">{items}</div>'


def _failures(tasks: list[TaskRecord]) -> list[dict[str, Any]]:
    return [
        {
            "step": t.step,
            "tile": t.tile,
            "attempts": t.attempts,
            "error": (t.error or "").splitlines()[0][:300] if t.error else "",
        }
        for t in tasks
        if t.state == "failed"
    ]


def _summary(registry: Registry, run_id: str, tasks: list[TaskRecord]) -> tuple[str, bool]:
    """The summary's Markdown, and whether the run goes on (its driver lives)."""
    run = registry.run(run_id)
    total = len(tasks)
    done = sum(t.state == "done" for t in tasks)
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created"]))
    end = run.get("finished") or time.time()
    state = run["state"]
    going = run.get("finished") is None
    if state in ("running", "cancelling"):
        driver = driver_alive(run)
        if not driver.alive:  # as status reports it
            state, going = f"failed (its driver, {driver}, is gone)", False
    text = (
        f"### Run `{run_id}` of chain `{run['chain']}`: **{state}**\n\n"
        f"{done} of {total} task(s) done; started {created}, {end - run['created']:.0f} s "
        f"{'so far' if not run.get('finished') else 'in all'}. "
        "Hover a tile for its state, time and error; `mus-lab chain retry` re-runs the failed ones."
    )
    return text, going


def run_view(
    chain: str | Path | ChainSpec | Registry,
    run_id: str | None = None,
    *,
    refresh_s: float | None = 2.0,
) -> pn.Column:
    """A Panel view of a run's state, refreshed from the registry while the run goes on.

    Parameters
    ----------
    chain
        The chain file, its spec, or its registry.
    run_id
        The run; by default the latest.
    refresh_s
        Seconds between refreshes while the run is not finished (``None``: draw once).

    Returns
    -------
    panel.Column
        The summary, one grid per step (tiles coloured by state, hover for details), the
        legend and the table of failed tasks. Show it in a notebook, or serve it
        (``mus-lab chain view CHAIN``).

    Raises
    ------
    ChainError
        No run in the registry, or no such run.
    """
    import pandas as pd
    import panel as pn

    chain = _spec_or_registry(chain)
    registry = open_registry(chain)
    rid = _latest(registry, run_id, chain)  # a shared registry holds several chains
    summary = pn.pane.Markdown(sizing_mode="stretch_width")
    grids = pn.pane.HTML(sizing_mode="stretch_width")
    failed = pn.widgets.Tabulator(
        pd.DataFrame(columns=["step", "tile", "attempts", "error"]),
        disabled=True,
        show_index=False,
        sizing_mode="stretch_width",
        height=160,
    )

    def draw() -> bool:
        tasks = registry.tasks(rid)
        summary.object, going = _summary(registry, rid, tasks)
        body = "".join(grid_html(g) for g in run_grid(tasks))
        grids.object = f'<div style="display:flex;flex-wrap:wrap;gap:18px">{body}</div>{_legend()}'
        failed.value = pd.DataFrame(_failures(tasks), columns=["step", "tile", "attempts", "error"])
        return going

    going = draw()
    view = pn.Column(summary, grids, pn.pane.Markdown("**Failed tasks**"), failed)
    if refresh_s and going:
        holder: dict[str, Any] = {}

        def tick() -> None:
            if not draw() and "cb" in holder:
                holder["cb"].stop()

        def start(*_: Any) -> None:
            holder["cb"] = pn.state.add_periodic_callback(tick, period=int(refresh_s * 1000))

        pn.state.onload(start)
    return view
