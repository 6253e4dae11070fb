"""Running production chains: step x tile tasks on a Dask cluster, recorded in the registry.

:func:`run_tiles` checks the chain (steps, options, coverage of every tile), records a run
and its tasks, and submits one Dask task per step and tile: a step's task on a tile takes
the results of the tasks it needs on the same tile as arguments, so the scheduler keeps a
tile's chain on the worker that holds its inputs, and runs as many tiles at once as the
cluster has threads. The driving process records each task's state, timing, worker,
inputs (items and their checksums), parameters and outputs (path, sha256) as results come
back. :func:`retry` re-runs what failed, was skipped, cancelled or left running by a dead
driver, and what is done but whose inputs changed (or whose output is gone or altered),
with everything downstream of it. :func:`cancel` stops a run from another process.
:func:`history` answers "where does this file come from".

The cluster is the one of :func:`mus_lab.compute.cluster` (a local cluster by default,
Dask Gateway when ``MUS_LAB_GATEWAY_ADDRESS`` is set), or a client you pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import secrets
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mus_lab._process import pid_alive
from mus_lab.errors import ChainError, StepError
from mus_lab.production._chainfile import ChainSpec, load_chain
from mus_lab.production._registry import Registry, TaskRecord
from mus_lab.production._tilecatalog import publish_outputs
from mus_lab.production._tilesteps import (
    TileTask,
    collections_of,
    options_with_defaults,
    path_state,
    sha256_file,
    step_kinds,
)

__all__ = [
    "RunReport",
    "cancel",
    "check_coverage",
    "history",
    "open_registry",
    "retry",
    "run_tiles",
    "status",
]

_RERUN = ("queued", "running", "failed", "skipped", "cancelled")


def open_registry(chain: str | Path | ChainSpec | Registry) -> Registry:
    """The registry of a chain (or the registry given).

    The chain file's ``registry`` (a ``postgresql://`` URL or an SQLite file), else the
    setting ``registry`` (``MUS_LAB_REGISTRY``), else ``<output>/registry.sqlite``.

    Parameters
    ----------
    chain
        A chain file, a checked chain, or a :class:`Registry`.

    Returns
    -------
    Registry
        Opened (created if new): an SQLite or a PostgreSQL registry.

    Raises
    ------
    ChainError
        The chain file or the setting is wrong, or the database cannot be reached.
    """
    from mus_lab._settings import get_settings
    from mus_lab.production._chainfile import registry_location

    if isinstance(chain, Registry):
        return chain
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    location = spec.registry
    setting = get_settings().registry
    if location is None and setting:
        location = registry_location(setting, Path.cwd(), where=" (setting MUS_LAB_REGISTRY)")
    return Registry(location or spec.output / "registry.sqlite")


@dataclass
class RunReport:
    """What a run (or a retry) did: its id, state, tasks, registry and outputs' catalog."""

    run_id: str
    state: str
    tasks: list[TaskRecord] = field(default_factory=list)
    registry: Path | None = None
    catalog: Path | None = None

    @property
    def ok(self) -> bool:
        """True when every task is done."""
        return self.state == "done"

    def counts(self) -> dict[str, int]:
        """Tasks per state.

        Returns
        -------
        dict
            ``{state: count}`` for the states present.
        """
        out: dict[str, int] = {}
        for task in self.tasks:
            out[task.state] = out.get(task.state, 0) + 1
        return out

    def table(self) -> str:
        """A plain-text table of the tasks (step, tile, state, attempts, seconds, error).

        Returns
        -------
        str
            One line per task.
        """
        lines = [f"run {self.run_id}: {self.state} {self.counts()}"]
        for t in self.tasks:
            secs = f"{t.seconds:7.1f}s" if t.seconds is not None else "       -"
            err = f"  {t.error.splitlines()[0][:100]}" if t.error else ""
            lines.append(f"  {t.step:<16} {t.tile:<8} {t.state:<9} x{t.attempts} {secs}{err}")
        return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("mus_lab", "numpy", "xarray", "dask", "distributed", "rasterio", "odc-stac"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    try:
        from osgeo import gdal

        out["gdal"] = gdal.__version__
    except ImportError:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    return out


def _asset_state(href: str, asset: Mapping[str, Any]) -> str | None:
    if asset.get("file:checksum"):
        return f"multihash:{asset['file:checksum']}"
    path = href[7:] if href.startswith("file://") else href
    if "://" not in path:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return f"stat:{st.st_size}:{st.st_mtime_ns}"
    return None


def _coverage(spec: ChainSpec) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Items of each collection the steps read, by (collection, tile), from one search each."""
    from shapely.geometry import box, shape

    from mus_lab import catalog

    tiles = spec.tiles()
    wanted = sorted({c for s in spec.steps for c in collections_of(s)})
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for collection in wanted:
        found = catalog.search(
            spec.catalog, collections=collection, bbox=spec.area.bbox, datetime=spec.period
        )
        shapes = [(item, shape(item.geometry)) for item in found] if len(found) else []
        for tile in tiles:
            footprint = box(*tile.bbox_lonlat)
            out[(collection, tile.id)] = [
                {
                    "collection": collection,
                    "id": item.id,
                    "href": item.get_self_href(),
                    "assets": {
                        key: {"href": a.href, "state": _asset_state(a.href, a.extra_fields)}
                        for key, a in sorted(item.assets.items())
                    },
                }
                for item, geom in shapes
                if geom.intersects(footprint)
            ]
    return out


def check_coverage(chain: str | Path | ChainSpec) -> dict[str, int]:
    """Check that every tile has items of every collection the steps read.

    Parameters
    ----------
    chain
        A chain file or a checked chain.

    Returns
    -------
    dict
        ``{collection: items found over the area}``.

    Raises
    ------
    ChainError
        A tile has no item of a collection a step reads (the message lists the tiles and
        says to shrink the area or widen the period).
    """
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    cover = _coverage(spec)
    _check_cover(spec, cover)
    counts: dict[str, set[str]] = {}
    for (collection, _), items in cover.items():
        counts.setdefault(collection, set()).update(i["id"] for i in items)
    return {c: len(ids) for c, ids in counts.items()}


def _check_cover(spec: ChainSpec, cover: Mapping[tuple[str, str], list[Any]]) -> None:
    empty = sorted({(c, t) for (c, t), items in cover.items() if not items})
    if empty:
        tiles = sorted({t for _, t in empty})
        collections = sorted({c for c, _ in empty})
        raise ChainError(
            f"Tile(s) {tiles[:8]}{' ...' if len(tiles) > 8 else ''} of chain {spec.name!r} "
            f"have no {', '.join(collections)} item in {spec.period or 'any period'} in "
            f"{spec.catalog}: shrink area.bbox to the inputs' footprint or widen the period."
        )


def _fingerprint(
    step: Any, tile: Any, spec: ChainSpec, inputs: list[dict[str, Any]], upstream: list[str]
) -> str:
    kind = step_kinds()[step.uses]
    data = {
        "uses": step.uses,
        "options": options_with_defaults(step),
        "files": {key: path_state(step.options[key]) for key in kind.paths if key in step.options},
        "tile": [tuple(tile.geobox.affine), tile.geobox.shape.yx, str(tile.geobox.crs)],
        "period": spec.period,
        "inputs": inputs,
        "upstream": upstream,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _execute(task: TileTask, *upstream: Mapping[str, Any]) -> dict[str, Any]:
    """Run one step on one tile (on a worker). Upstream results carry their outputs."""
    import dask

    inputs = {u["step"]: {k: v["path"] for k, v in u["outputs"].items()} for u in upstream}
    task = TileTask(**{**task.__dict__, "inputs": inputs})
    started = time.time()
    kind = step_kinds()[task.uses]
    with dask.config.set(scheduler="synchronous"):
        written = kind.run(task)
    outputs = {
        name: {
            "path": str(Path(path).resolve()),
            "sha256": sha256_file(path),
            "size": Path(path).stat().st_size,
        }
        for name, path in written.items()
    }
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return {
        "step": task.step,
        "tile": task.tile,
        "outputs": outputs,
        "started": started,
        "finished": time.time(),
        "worker": worker,
    }


def _error_text(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def _drive(
    spec: ChainSpec,
    registry: Registry,
    run_id: str,
    rerun: set[tuple[str, str]],
    fingerprints: Mapping[tuple[str, str], str],
    done: Mapping[tuple[str, str], dict[str, Any]],
    client: Any,
    log: Callable[[str], None],
) -> str:
    from distributed import wait

    tiles = {t.id: t for t in spec.tiles()}
    futures: dict[tuple[str, str], Any] = {}
    for step in spec.steps:
        options = options_with_defaults(step)
        for tile_id, tile in tiles.items():
            key = (step.name, tile_id)
            if key not in rerun:
                continue
            deps = [futures.get((n, tile_id)) or done[(n, tile_id)] for n in step.needs]
            task = TileTask(
                step=step.name,
                uses=step.uses,
                tile=tile_id,
                geobox=tile.geobox,
                catalog=spec.catalog,
                period=spec.period,
                options=options,
                folder=spec.output / step.name,
            )
            futures[key] = client.submit(
                _execute,
                task,
                *deps,
                key=f"{step.name}-{tile_id}-{secrets.token_hex(4)}",
                pure=False,
                retries=0,
            )
    registry.start_attempts(run_id, [(s, t, fingerprints[(s, t)]) for s, t in futures])
    log(f"run {run_id}: {len(futures)} task(s) on {len(tiles)} tile(s) sent to the cluster")
    by_future = {f.key: k for k, f in futures.items()}
    needs = {s.name: s.needs for s in spec.steps}
    order = {s.name: i for i, s in enumerate(spec.steps)}
    failed: set[tuple[str, str]] = set()
    pending = set(futures.values())
    state = "done"
    while pending:
        try:
            finished, pending = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:  # nothing finished within the second: look for a cancel
            finished = set()
        changes: list[tuple[str, str, str, dict[str, Any]]] = []
        # upstream first, so that a task whose input failed in the same round is "skipped"
        for fut in sorted(finished, key=lambda f: order[by_future[f.key][0]]):
            step_name, tile_id = by_future[fut.key]
            if fut.status == "finished":
                result = fut.result()
                fields = {k: result[k] for k in ("started", "finished", "worker", "outputs")}
                changes.append((step_name, tile_id, "done", fields))
                log(f"  done    {step_name} {tile_id}")
                continue
            state = "failed"
            failed.add((step_name, tile_id))
            upstream_failed = any((n, tile_id) in failed for n in needs[step_name])
            now = {"finished": time.time()}
            if fut.status == "cancelled":
                changes.append((step_name, tile_id, "cancelled", now))
            elif upstream_failed:
                changes.append(
                    (step_name, tile_id, "skipped", {**now, "error": "a step it needs failed"})
                )
                log(f"  skipped {step_name} {tile_id}")
            else:
                err = _error_text(fut.exception())
                changes.append((step_name, tile_id, "failed", {**now, "error": err}))
                log(f"  FAILED  {step_name} {tile_id}: {err.splitlines()[0][:200]}")
        if changes:
            registry.set_states(run_id, changes)
        if pending and registry.run(run_id)["state"] == "cancelling":
            client.cancel(list(pending))
            registry.set_states(
                run_id,
                [(*by_future[f.key], "cancelled", {"finished": time.time()}) for f in pending],
            )
            log(f"run {run_id}: cancelled, {len(pending)} task(s) stopped")
            return "cancelled"
    return state


def _prepare(
    spec: ChainSpec,
    registry: Registry,
    run_id: str,
    previous: Mapping[tuple[str, str], TaskRecord],
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str], dict[tuple[str, str], Any]]:
    cover = _coverage(spec)
    _check_cover(spec, cover)
    fingerprints: dict[tuple[str, str], str] = {}
    rerun: set[tuple[str, str]] = set()
    done: dict[tuple[str, str], dict[str, Any]] = {}
    rows = []
    tiles = spec.tiles()  # cut once, not once per step
    for step in spec.steps:
        for tile in tiles:
            key = (step.name, tile.id)
            inputs = [i for c in collections_of(step) for i in cover[(c, tile.id)]]
            fp = _fingerprint(
                step, tile, spec, inputs, [fingerprints[(n, tile.id)] for n in step.needs]
            )
            fingerprints[key] = fp
            rows.append((step.name, tile.id, fp, inputs, options_with_defaults(step)))
            old = previous.get(key)
            upstream_rerun = any((n, tile.id) in rerun for n in step.needs)
            if (
                old is not None
                and old.state == "done"
                and old.fingerprint == fp
                and not upstream_rerun
                and _outputs_intact(old)
            ):
                done[key] = {"step": step.name, "outputs": old.outputs}
            else:
                rerun.add(key)
                if old is not None:
                    registry.set_state(run_id, step.name, tile.id, "queued", inputs=inputs)
    registry.add_tasks(run_id, rows)
    return rerun, fingerprints, done


def _outputs_intact(task: TaskRecord) -> bool:
    for out in task.outputs.values():
        path = Path(out["path"])
        if (
            not path.is_file()
            or path.stat().st_size != out.get("size")
            or sha256_file(path) != out["sha256"]
        ):
            return False
    return True


def _finish(
    spec: ChainSpec,
    registry: Registry,
    run_id: str,
    rerun: set[tuple[str, str]],
    fingerprints: Mapping[tuple[str, str], str],
    done: Mapping[tuple[str, str], Any],
    client: Any,
    log: Callable[[str], None],
) -> RunReport:
    from mus_lab import compute

    try:
        if not rerun:
            state = "done"
        elif client is not None:
            state = _drive(spec, registry, run_id, rerun, fingerprints, done, client, log)
        else:
            with compute.cluster() as own:
                state = _drive(spec, registry, run_id, rerun, fingerprints, done, own, log)
    except BaseException:
        registry.set_run_state(run_id, "failed")
        raise
    registry.set_run_state(run_id, state)
    report = RunReport(run_id, state, registry.tasks(run_id), registry.path)
    report.catalog = publish_outputs(spec, registry, run_id)
    log(report.table().splitlines()[0])
    return report


def run_tiles(
    chain: str | Path | ChainSpec,
    *,
    client: Any = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> RunReport:
    """Run a chain: every step on every tile, on the cluster, recorded in the registry.

    Parameters
    ----------
    chain
        A chain file (YAML) or a checked chain (:func:`load_chain`).
    client
        A ``distributed.Client``; default: :func:`mus_lab.compute.cluster` (local
        cluster, or Dask Gateway when configured), shut down at the end.
    registry
        Default: ``<output>/registry.sqlite``.
    log
        Called with progress lines.

    Returns
    -------
    RunReport
        ``report.ok`` when every task is done; failed tasks keep their error.

    Raises
    ------
    ChainError
        The chain is wrong or a tile has no input (before anything runs).
    """
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    _check_cover(spec, _coverage(spec))  # refuse before anything is written
    registry = registry or open_registry(spec)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    run_id = f"{spec.name}-{stamp}-{secrets.token_hex(2)}"
    registry.new_run(
        run_id,
        spec.name,
        str(spec.source) if spec.source else None,
        spec.digest(),
        spec.to_dict(),
        _versions(),
    )
    rerun, fingerprints, done = _prepare(spec, registry, run_id, {})
    return _finish(spec, registry, run_id, rerun, fingerprints, done, client, log)


def _latest(registry: Registry, run_id: str | None, chain: object = None) -> str:
    """``run_id``, or the latest run of ``chain`` (a shared registry holds several chains)."""
    if run_id:
        return run_id
    name = chain.name if isinstance(chain, ChainSpec) else None
    runs = registry.runs(name)
    if not runs:
        of = f" of chain {name!r}" if name else ""
        raise ChainError(
            f"No run{of} recorded in {registry.location}: start one with mus-lab chain run."
        )
    return str(runs[-1]["run_id"])


def _spec_or_registry(chain: str | Path | ChainSpec | Registry) -> ChainSpec | Registry:
    return chain if isinstance(chain, ChainSpec | Registry) else load_chain(chain)


def retry(
    chain: str | Path | ChainSpec,
    run_id: str | None = None,
    *,
    client: Any = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> RunReport:
    """Re-run what failed (or whose inputs changed) in a run, and what depends on it.

    Tasks done with unchanged inputs and intact outputs are kept; the others run again in
    the same run (their attempt count grows). Outputs are written under the same names, so
    a task that runs again on the same inputs writes the same bytes.

    Parameters
    ----------
    chain
        The chain file of the run (its current content is used: changed options re-run
        the tasks they touch).
    run_id
        Default: the latest run.
    client, registry, log
        As for :func:`run_tiles`.

    Returns
    -------
    RunReport
        The run after the retry.

    Raises
    ------
    ChainError
        No such run, the run is still driven by a live process, or the chain is wrong.
    """
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    registry = registry or open_registry(spec)
    run_id = _latest(registry, run_id, spec)
    row = registry.run(run_id)
    if (
        row["state"] in ("running", "cancelling")
        and pid_alive(row["pid"])
        and row["pid"] != os.getpid()
    ):
        raise ChainError(
            f"Run {run_id} is still running (process {row['pid']}): wait for it or cancel it first."
        )
    if row["chain"] != spec.name:
        raise ChainError(f"Run {run_id} is of chain {row['chain']!r}, not {spec.name!r}.")
    previous = {(t.step, t.tile): t for t in registry.tasks(run_id)}
    registry.set_run_state(run_id, "running", pid=os.getpid())
    rerun, fingerprints, done = _prepare(spec, registry, run_id, previous)
    log(f"run {run_id}: {len(rerun)} task(s) to run again, {len(done)} kept")
    return _finish(spec, registry, run_id, rerun, fingerprints, done, client, log)


def status(chain: str | Path | ChainSpec | Registry, run_id: str | None = None) -> RunReport:
    """The state of a run and of its tasks.

    Parameters
    ----------
    chain
        The chain file (or a checked chain, or its registry).
    run_id
        Default: the latest run.

    Returns
    -------
    RunReport
        As recorded; a run whose driver died is reported ``failed`` (run ``retry``).

    Raises
    ------
    ChainError
        No run recorded, or no such run.
    """
    chain = _spec_or_registry(chain)
    registry = open_registry(chain)
    run_id = _latest(registry, run_id, chain)
    row = registry.run(run_id)
    state = row["state"]
    if state in ("running", "cancelling") and not pid_alive(row["pid"]):
        state = "failed"
    return RunReport(run_id, state, registry.tasks(run_id), registry.path)


def cancel(chain: str | Path | ChainSpec | Registry, run_id: str | None = None) -> RunReport:
    """Ask a run to stop: its driver cancels what has not finished within a second or so.

    When no process drives the run any more, its unfinished tasks are marked cancelled
    here.

    Parameters
    ----------
    chain
        The chain file (or a checked chain, or its registry).
    run_id
        Default: the latest run.

    Returns
    -------
    RunReport
        The run as recorded right after the request.

    Raises
    ------
    ChainError
        No run recorded, or no such run.
    """
    chain = _spec_or_registry(chain)
    registry = open_registry(chain)
    run_id = _latest(registry, run_id, chain)
    row = registry.run(run_id)
    if row["state"] in ("running", "cancelling") and pid_alive(row["pid"]):
        registry.set_run_state(run_id, "cancelling")
    elif row["state"] not in ("done",):
        for task in registry.tasks(run_id):
            if task.state in ("queued", "running"):
                registry.set_state(run_id, task.step, task.tile, "cancelled", finished=time.time())
        registry.set_run_state(run_id, "cancelled")
    return status(registry, run_id)


def history(
    product: str | os.PathLike[str], chain: str | Path | ChainSpec | Registry
) -> dict[str, Any]:
    """Where a product file comes from: run, chain, step, tile, inputs, parameters, versions.

    Parameters
    ----------
    product
        A file a chain wrote.
    chain
        The chain file (or a checked chain, or its registry).

    Returns
    -------
    dict
        ``run`` (id, chain, digest, state, versions, created), ``chain`` (the chain as
        recorded), ``step``, ``tile``, ``uses``, ``parameters``, ``inputs`` (items with
        their assets' checksums or file states), ``upstream`` (the same, recursively, for
        the steps it needs on the tile), ``sha256`` and whether the file still matches it.

    Raises
    ------
    StepError
        No task of this registry wrote the file.
    """
    registry = open_registry(chain)
    found = registry.producer_of(product)
    if found is None:
        raise StepError(
            f"No task recorded in {registry.location} wrote {product}: give the chain that made it."
        )
    return _history(registry, *found)


def _history(registry: Registry, run_id: str, step: str, tile: str) -> dict[str, Any]:
    run = registry.run(run_id)
    task = next(t for t in registry.tasks(run_id) if t.step == step and t.tile == tile)
    needs = run["spec"]["steps"].get(step, {}).get("needs", [])
    outputs = {
        name: {
            **out,
            "intact": Path(out["path"]).is_file() and sha256_file(out["path"]) == out["sha256"],
        }
        for name, out in task.outputs.items()
    }
    run["created"] = dt.datetime.fromtimestamp(run["created"], dt.UTC).isoformat()
    return {
        "run": {
            k: run[k]
            for k in (
                "run_id",
                "chain",
                "chain_file",
                "chain_digest",
                "state",
                "created",
                "versions",
            )
        },
        "chain": run["spec"],
        "step": step,
        "tile": tile,
        "uses": run["spec"]["steps"].get(step, {}).get("uses"),
        "parameters": task.parameters,
        "inputs": task.inputs,
        "outputs": outputs,
        "worker": task.worker,
        "seconds": task.seconds,
        "upstream": [_history(registry, run_id, n, tile) for n in needs],
    }
