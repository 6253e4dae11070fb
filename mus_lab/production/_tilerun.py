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

Whether a run's driver still lives (:func:`driver_alive`, used by ``retry``, ``status`` and
``cancel``): on the host that drives it, its process id; from another host (a registry
shared in PostgreSQL or on a shared disk), its heartbeat, which the driver refreshes every
:data:`HEARTBEAT_SECONDS` from a thread of its own while it works on the run: a driver
silent for :data:`STALE_SECONDS` is taken as dead.

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

from mus_lab._io import _trim_memory
from mus_lab._process import pid_alive
from mus_lab.compute._clusters import forget_closed_client
from mus_lab.errors import ChainError, StepError
from mus_lab.production._chainfile import ChainSpec, load_chain
from mus_lab.production._registry import Registry, TaskRecord, this_host
from mus_lab.production._tilecatalog import publish_outputs
from mus_lab.production._tilesteps import (
    INTERMEDIATES,
    TileTask,
    ard_of,
    collections_of,
    options_with_defaults,
    path_state,
    sha256_file,
    step_kinds,
)
from mus_lab.production._workerprofile import quiet_profile

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_SECONDS",
    "DriverState",
    "RunReport",
    "cancel",
    "check_coverage",
    "driver_alive",
    "history",
    "open_registry",
    "prune",
    "retry",
    "run_tiles",
    "status",
]

_RERUN = ("queued", "running", "failed", "skipped", "cancelled")

#: Seconds between two heartbeats of a run's driver (one registry write each).
HEARTBEAT_SECONDS = 10.0
#: A driver on another host whose heartbeat is older than this is taken as dead. Six
#: heartbeats: a slow registry write or a clock off by some seconds does not kill a run.
STALE_SECONDS = 60.0


@dataclass(frozen=True)
class DriverState:
    """Whether a run's driver lives, and who and where it is (for messages)."""

    alive: bool
    pid: int | None
    host: str | None
    age: float | None  # seconds since its last heartbeat, when judged by it

    def __str__(self) -> str:
        who = f"process {self.pid}"
        if self.host and self.host != this_host():
            who += f" on host {self.host}"
        if self.age is not None:
            who += f", heartbeat {self.age:.0f} s ago"
        return who


class _Heartbeat:
    """Refreshes a run's heartbeat every :data:`HEARTBEAT_SECONDS` while the driver works.

    From a daemon thread, so that the driver also beats inside one long call (a catalog
    search, hashing a large output, submitting a large graph), which would otherwise make
    it look dead from another host after :data:`STALE_SECONDS`. It stops when the driver
    leaves the run (done, failed, cancelled or taken over).
    """

    def __init__(self, registry: Registry, run_id: str) -> None:
        import threading

        self._registry = registry
        self._run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"mus-lab heartbeat {run_id}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._registry.heartbeat(self._run_id)
            except Exception:  # a registry hiccup: the driver's own writes will say it
                continue

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


#: What :func:`_drive` returns when another driver took its run over: the run is no longer
#: this process's to record.
_TAKEN_OVER = "taken-over"


def _ours(row: Mapping[str, Any]) -> bool:
    """Whether this process is the driver a run's row names."""
    return bool(row["pid"] == os.getpid() and row.get("host") in (None, this_host()))


def driver_alive(row: Mapping[str, Any], *, now: float | None = None) -> DriverState:
    """Whether the process driving a run still lives, from the run's registry row.

    On the host that recorded the run (or for a run recorded without a host), its process
    id decides (:func:`~mus_lab._process.pid_alive`). From another host, the heartbeat
    does: the driver is alive while it is younger than :data:`STALE_SECONDS`.

    Parameters
    ----------
    row
        The run's row (:meth:`Registry.run`): ``pid``, ``host``, ``heartbeat``, and
        ``clock`` where the registry stamps heartbeats with its own clock (PostgreSQL).
    now
        The time to compare the heartbeat with (default: the row's ``clock``, else now).

    Returns
    -------
    DriverState
        ``alive``, and the pid, host and heartbeat age, for messages.

    Examples
    --------
    >>> import time
    >>> driver_alive({"pid": 12, "host": "elsewhere", "heartbeat": time.time() - 5}).alive
    True
    >>> print(driver_alive({"pid": 12, "host": "elsewhere", "heartbeat": 100.0}, now=400.0))
    process 12 on host elsewhere, heartbeat 300 s ago
    """
    pid, host, beat = row.get("pid"), row.get("host"), row.get("heartbeat")
    if not host or host == this_host():
        return DriverState(pid_alive(pid), pid, host, None)
    if beat is None:
        return DriverState(False, pid, host, None)
    if now is None:  # the database's clock when it gives one (PostgreSQL), else this host's
        now = float(row["clock"]) if row.get("clock") is not None else time.time()
    age = max(0.0, now - float(beat))
    return DriverState(age < STALE_SECONDS, pid, host, age)


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
    wanted = sorted({c for s in spec.steps for c in collections_of(s, spec)})
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


def _keep_of(spec: ChainSpec, step: Any) -> frozenset[str]:
    """The intermediates a step writes: those kept, and those a step needing it reads."""
    kinds = step_kinds()
    kind = kinds[step.uses]
    wanted = set(spec.keeps().keep)
    for other in spec.steps:
        if step.name in other.needs:
            wanted |= set(kinds[other.uses].reads)
    return frozenset(wanted & set(kind.intermediates))


def _fingerprint(
    step: Any, tile: Any, spec: ChainSpec, inputs: list[dict[str, Any]], upstream: list[str]
) -> str:
    kind = step_kinds()[step.uses]
    data = {
        "keep": sorted(_keep_of(spec, step)),
        "uses": step.uses,
        "options": options_with_defaults(step, spec),
        "files": {key: path_state(step.options[key]) for key in kind.paths if key in step.options},
        "tile": [tuple(tile.geobox.affine), tile.geobox.shape.yx, str(tile.geobox.crs)],
        "period": spec.period,
        "inputs": inputs,
        "upstream": upstream,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class _Synchronous:
    """``dask.config.set(scheduler="synchronous")`` while any step runs in this process.

    The dask config is global, not per thread: with one ``with dask.config.set`` per task,
    a task ending on one thread of a worker would give the other threads' computations
    back to the distributed client. This holds it until the last running step ends.
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._count = 0
        self._setting: Any = None

    def __enter__(self) -> None:
        import dask

        with self._lock:
            if self._count == 0:
                self._setting = dask.config.set(scheduler="synchronous")
            self._count += 1
        forget_closed_client()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0:
                self._setting.__exit__(None, None, None)
                self._setting = None
                forget_closed_client()


_SYNCHRONOUS = _Synchronous()


def _with_inputs(task: TileTask, upstream: tuple[Mapping[str, Any], ...]) -> TileTask:
    from dataclasses import replace

    inputs = {u["step"]: {k: v["path"] for k, v in u["outputs"].items()} for u in upstream}
    return replace(task, inputs=inputs)


def _sample(task: TileTask, *upstream: Mapping[str, Any]) -> Any:
    """The first stage of a scene-wide step on one tile (on a worker)."""
    kind = step_kinds()[task.uses]
    assert kind.sample is not None
    try:
        with _SYNCHRONOUS:
            return kind.sample(_with_inputs(task, upstream))
    finally:
        _trim_memory()


def _reduce(uses: str, options: Mapping[str, Any], *samples: Any) -> dict[str, Any]:
    """The scene-wide result of a two-stage step from every tile's sample."""
    kind = step_kinds()[uses]
    assert kind.reduce is not None
    return kind.reduce(list(samples), options)


def _execute(
    task: TileTask, *upstream: Mapping[str, Any], scene: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run one step on one tile (on a worker). Upstream results carry their outputs."""
    from dataclasses import replace

    task = _with_inputs(task, upstream)
    if scene is not None:
        task = replace(task, scene=scene)
    started = time.time()
    kind = step_kinds()[task.uses]
    try:
        with _SYNCHRONOUS:
            written = kind.run(task)
    finally:
        _trim_memory()  # the step's cyclic garbage (its arrays) goes now, not tasks later
    outputs = {}
    for name, path in written.items():
        st = Path(path).stat()
        outputs[name] = {
            "path": str(Path(path).resolve()),
            "sha256": sha256_file(path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
        }
        if name in INTERMEDIATES and name in task.keep:
            outputs[name]["intermediate"] = True
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
        "scene": scene,
        "read": _ard_read(task, upstream),
    }


def _ard_inputs(
    spec: ChainSpec, ard: Mapping[str, tuple[str, ...]], tile: str
) -> list[dict[str, Any]]:
    """The ARD files a land-cover task reads, as inputs (their checksums come once read)."""
    return [
        {
            "step": need,
            "tile": tile,
            "collection": coll,
            "path": str(spec.output / need / f"{tile}.tif"),
        }
        for coll, needs in sorted(ard.items())
        for need in needs
    ]


def _ard_read(task: TileTask, upstream: tuple[Mapping[str, Any], ...]) -> list[dict[str, Any]]:
    """The ARD files the task read, with the checksums their steps recorded."""
    steps = {n: c for c, needs in task.ard.items() for n in needs}
    return [
        {
            "step": u["step"],
            "tile": task.tile,
            "collection": steps[u["step"]],
            "output": name,
            "path": out["path"],
            "sha256": out["sha256"],
            "size": out["size"],
        }
        for u in upstream
        if u["step"] in steps
        for name, out in u["outputs"].items()
        if not out.get("intermediate")
    ]


def _lifetimes(spec: ChainSpec, outputs: Mapping[str, Any], finished: float) -> dict[str, Any]:
    """The outputs with each intermediate's lifetime and expiry (0: at the run's end)."""
    keeps = spec.keeps()
    out = {}
    for name, info in outputs.items():
        info = dict(info)
        if info.get("intermediate"):
            life = keeps.lifetime(name)
            info["lifetime"] = life
            info["expires"] = None if life is None else (0 if life == 0 else finished + life)
        out[name] = info
    return out


def _error_text(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def _cancelled_error() -> tuple[type[BaseException], ...]:
    try:
        from distributed.client import FuturesCancelledError
    except ImportError:  # older distributed: wait() does not raise on cancelled futures
        return ()
    return (FuturesCancelledError,)


_CANCELLED = _cancelled_error()


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
    stages: list[Any] = []  # the samples and reductions of scene-wide steps, held here
    kinds = step_kinds()
    folder = spec.keeps().folder
    options_of = {s.name: options_with_defaults(s, spec) for s in spec.steps}
    ard_steps = {s.name: ard_of(s, spec) for s in spec.steps}
    recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}  # inputs, read when needed

    def make(step: Any, tile_id: str) -> TileTask:
        return TileTask(
            step=step.name,
            uses=step.uses,
            tile=tile_id,
            geobox=tiles[tile_id].geobox,
            catalog=spec.catalog,
            period=spec.period,
            options=options_of[step.name],
            folder=spec.output / step.name,
            keep=_keep_of(spec, step),
            scratch=folder / step.name,
            ard=ard_steps[step.name],
        )

    def deps_of(step: Any, tile_id: str) -> list[Any]:
        return [futures.get((n, tile_id)) or done[(n, tile_id)] for n in step.needs]

    for step in spec.steps:
        todo = [t for t in tiles if (step.name, t) in rerun]
        if not todo:
            continue
        extra: dict[str, Any] = {}
        if kinds[step.uses].scene_wide:  # first a sample of every tile, then one reduction
            token = secrets.token_hex(4)
            samples = [
                client.submit(
                    _sample,
                    make(step, t),
                    *deps_of(step, t),
                    key=f"{step.name}-sample-{t}-{token}",
                    pure=False,
                )
                for t in tiles
            ]
            scene = client.submit(
                _reduce,
                step.uses,
                options_of[step.name],
                *samples,
                key=f"{step.name}-scene-{token}",
            )
            stages += [*samples, scene]
            extra = {"scene": scene}
        for tile_id in todo:
            futures[(step.name, tile_id)] = client.submit(
                _execute,
                make(step, tile_id),
                *deps_of(step, tile_id),
                key=f"{step.name}-{tile_id}-{secrets.token_hex(4)}",
                pure=False,
                retries=0,
                **extra,
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
        except _CANCELLED:  # the client lost the scheduler: dask cancelled the futures
            finished = {f for f in pending if f.status != "pending"}
            pending = pending - finished
        changes: list[tuple[str, str, str, dict[str, Any]]] = []
        # upstream first, so that a task whose input failed in the same round is "skipped"
        for fut in sorted(finished, key=lambda f: order[by_future[f.key][0]]):
            step_name, tile_id = by_future[fut.key]
            if fut.status not in ("finished", "error", "cancelled"):
                # "lost": its worker died holding it; the scheduler computes it again
                pending.add(fut)
                time.sleep(0.2)
                continue
            result, lost = None, ""
            if fut.status == "finished":
                try:  # the result may be lost with its worker between finishing and gathering
                    result = fut.result()
                except Exception as exc:  # recorded as the task's failure
                    lost = _error_text(exc)
                    if fut.status == "pending":  # dask re-runs it ("Couldn't gather")
                        pending.add(fut)
                        continue
            if result is not None:
                fields = {k: result[k] for k in ("started", "finished", "worker")}
                fields["outputs"] = _lifetimes(spec, result["outputs"], result["finished"])
                if result.get("scene") is not None:  # the scene-wide value, in provenance
                    fields["parameters"] = {**options_of[step_name], "scene": result["scene"]}
                if result.get("read"):  # the ARD files it read, with their checksums
                    if not recorded:
                        recorded.update(
                            {(t.step, t.tile): t.inputs for t in registry.tasks(run_id)}
                        )
                    fields["inputs"] = [
                        *(i for i in recorded[(step_name, tile_id)] if "step" not in i),
                        *result["read"],
                    ]
                changes.append((step_name, tile_id, "done", fields))
                log(f"  done    {step_name} {tile_id}")
                continue
            state = "failed"
            failed.add((step_name, tile_id))
            upstream_failed = any((n, tile_id) in failed for n in needs[step_name])
            now = {"finished": time.time()}
            if fut.status == "cancelled":
                reason = getattr(getattr(fut._state, "exception", None), "reason", None)
                why = {"error": f"cancelled by dask: {reason}"} if reason else {}
                changes.append((step_name, tile_id, "cancelled", {**now, **why}))
                log(f"  cancelled {step_name} {tile_id}{f' ({reason})' if reason else ''}")
            elif upstream_failed:
                changes.append(
                    (step_name, tile_id, "skipped", {**now, "error": "a step it needs failed"})
                )
                log(f"  skipped {step_name} {tile_id}")
            else:
                if not lost:
                    try:
                        lost = _error_text(fut.exception())
                    except RuntimeError as exc:  # distributed could not fetch it either
                        lost = _error_text(exc)
                err = lost
                changes.append((step_name, tile_id, "failed", {**now, "error": err}))
                log(f"  FAILED  {step_name} {tile_id}: {err.splitlines()[0][:200]}")
        if changes:
            registry.set_states(run_id, changes)
        row = registry.run(run_id) if pending else None
        if row is not None and not _ours(row):
            # another host took the run over, this driver having been judged dead (no
            # heartbeat for STALE_SECONDS): the tasks are that driver's now
            client.cancel(list(pending))
            log(
                f"run {run_id}: taken over by {driver_alive(row)}; this driver stops and "
                f"leaves it {len(pending)} task(s)"
            )
            return _TAKEN_OVER
        if row is not None and row["state"] == "cancelling":
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
    log: Callable[[str], None] = lambda _: None,
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str], dict[tuple[str, str], Any]]:
    cover = _coverage(spec)
    _check_cover(spec, cover)
    fingerprints: dict[tuple[str, str], str] = {}
    rerun: set[tuple[str, str]] = set()
    done: dict[tuple[str, str], dict[str, Any]] = {}
    rows = []
    tiles = spec.tiles()  # cut once, not once per step
    kinds = step_kinds()
    checked: list[tuple[str, str, dict[str, Any]]] = []
    upstream_of: dict[tuple[str, str], list[tuple[str, str]]] = {}
    ard_steps = {s.name: ard_of(s, spec) for s in spec.steps}
    options_of = {s.name: options_with_defaults(s, spec) for s in spec.steps}
    for step in spec.steps:
        scene_wide = kinds[step.uses].scene_wide
        for tile in tiles:
            key = (step.name, tile.id)
            inputs = [i for c in collections_of(step, spec) for i in cover[(c, tile.id)]]
            inputs += _ard_inputs(spec, ard_steps[step.name], tile.id)
            # a scene-wide step on one tile depends on what it needs on every tile
            ups = [(n, t.id if scene_wide else tile.id) for n in step.needs for t in tiles]
            ups = list(dict.fromkeys(ups))
            upstream_of[key] = ups
            fp = _fingerprint(step, tile, spec, inputs, [fingerprints[u] for u in ups])
            fingerprints[key] = fp
            rows.append((step.name, tile.id, fp, inputs, options_of[step.name]))
            old = previous.get(key)
            if old is None or old.state != "done":
                rerun.add(key)
                continue
            why = (
                "a step it needs runs again"
                if any(u in rerun for u in ups)
                else "its inputs or options changed"
                if old.fingerprint != fp
                else None
                if _outputs_intact(old, checked)
                else "an output is missing or its bytes changed"
            )
            if why is None:
                done[key] = {"step": step.name, "outputs": old.outputs}
            else:
                rerun.add(key)
                log(f"  again   {step.name} {tile.id}: done before, but {why}")
    # a task to run again whose input was pruned (an expired intermediate) needs it made again
    changed = True
    while changed:
        changed = False
        for key in list(rerun):
            for up in upstream_of[key]:
                if up in done and _pruned(done[up]["outputs"]):
                    del done[up]
                    rerun.add(up)
                    changed = True
    for key in rerun:
        if key in previous:
            inputs = next(r[3] for r in rows if (r[0], r[1]) == key)
            registry.set_state(run_id, key[0], key[1], "queued", inputs=inputs)
    if checked:  # files found equal by their hash after an mtime change: the new mtime
        registry.update_outputs(run_id, checked)
    registry.add_tasks(run_id, rows)
    return rerun, fingerprints, done


def _pruned(outputs: Mapping[str, Any]) -> bool:
    return any(o.get("pruned") for o in outputs.values())


def _outputs_intact(task: TaskRecord, checked: list[tuple[str, str, dict[str, Any]]]) -> bool:
    """True when every output is there with its bytes (pruned intermediates are not looked at).

    Fast path: a file with the size and modification time recorded is taken as intact
    without reading it; otherwise its sha256 is compared, and a file whose bytes match
    gets its new mtime recorded (in ``checked``), so that it is not hashed again.
    """
    outputs = {k: dict(v) for k, v in task.outputs.items()}
    touched = False
    for out in outputs.values():
        if out.get("pruned"):
            continue
        path = Path(out["path"])
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != out.get("size"):
            return False
        if st.st_mtime_ns == out.get("mtime_ns"):
            continue
        if sha256_file(path) != out["sha256"]:
            return False
        out["mtime_ns"] = st.st_mtime_ns
        touched = True
    if touched:
        checked.append((task.step, task.tile, outputs))
    return True


def _expired(out: Mapping[str, Any], run_state: str, now: float) -> bool:
    if not out.get("intermediate") or out.get("pruned"):
        return False
    expires = out.get("expires")
    if expires is None:
        return False
    if expires == 0:  # the run's lifetime: until the run is done
        return run_state == "done"
    return float(expires) <= now


def prune(
    chain: str | Path | ChainSpec,
    *,
    now: float | None = None,
    dry_run: bool = False,
    registry: Registry | None = None,
) -> list[Path]:
    """Remove the expired intermediates of a chain's runs, and refresh the products' catalog.

    An intermediate expires ``lifetime`` after the task that wrote it finished; one of
    lifetime ``run`` when its run is done. The registry marks them ``pruned`` (their
    checksum stays, for provenance); ``retry`` makes one again only if a task to re-run
    reads it.

    Parameters
    ----------
    chain
        The chain file or a checked chain.
    now
        The time to compare expiries with (default: now).
    dry_run
        Only list what would be removed.
    registry
        Default: ``<output>/registry.sqlite``.

    Returns
    -------
    list of Path
        The files removed (or that would be).

    Raises
    ------
    ChainError
        The chain file is wrong.
    """
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    registry = registry or open_registry(spec)
    removed = _prune(registry, spec.name, time.time() if now is None else now, dry_run=dry_run)
    runs = registry.runs(spec.name)  # a shared registry holds other chains' runs too
    if removed and not dry_run and runs:
        publish_outputs(spec, registry, str(runs[-1]["run_id"]))
    return removed


def _prune(registry: Registry, chain: str, now: float, *, dry_run: bool = False) -> list[Path]:
    removed: list[Path] = []
    for run in registry.runs(chain):
        changes = []
        for task in registry.tasks(run["run_id"]):
            outputs = {k: dict(v) for k, v in task.outputs.items()}
            hit = False
            for out in outputs.values():
                if _expired(out, run["state"], now):
                    removed.append(Path(out["path"]))
                    out["pruned"] = now
                    hit = True
            if hit:
                changes.append((task.step, task.tile, outputs))
        if changes and not dry_run:
            for _, _, outputs in changes:
                for out in outputs.values():
                    if out.get("pruned") == now:
                        Path(out["path"]).unlink(missing_ok=True)
            registry.update_outputs(run["run_id"], changes)
    return removed


def _finish(
    spec: ChainSpec,
    registry: Registry,
    run_id: str,
    rerun: set[tuple[str, str]],
    fingerprints: Mapping[tuple[str, str], str],
    done: Mapping[tuple[str, str], Any],
    client: Any,
    log: Callable[[str], None],
    worker_profile: bool = False,
) -> RunReport:
    from mus_lab import compute

    try:
        if not rerun:
            state = "done"
        elif client is not None:
            with quiet_profile(client, enabled=not worker_profile):
                state = _drive(spec, registry, run_id, rerun, fingerprints, done, client, log)
        else:
            with compute.cluster() as own, quiet_profile(own, enabled=not worker_profile):
                state = _drive(spec, registry, run_id, rerun, fingerprints, done, own, log)
    except BaseException:
        try:
            ours = _ours(registry.run(run_id))
        except Exception:  # the registry's own failure: say the first error, not this one
            ours = True
        if ours:
            registry.set_run_state(run_id, "failed")
        raise
    if state == _TAKEN_OVER:  # the other driver records, prunes and publishes
        row = registry.run(run_id)
        return RunReport(run_id, row["state"], registry.tasks(run_id), registry.path)
    registry.set_run_state(run_id, state)
    pruned = _prune(registry, spec.name, time.time())
    if pruned:
        log(f"run {run_id}: {len(pruned)} expired intermediate(s) removed")
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
    worker_profile: bool = False,
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
    worker_profile
        Keep the Dask workers' statistical profiler on while the chain runs (the
        dashboard's Profile page). Off by default: its history, kept for the last 1,000 s
        of work, made a worker's memory grow with the number of tasks it ran (about 1 MiB
        per second of work); it is started again at the end of the run.

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
    with _Heartbeat(registry, run_id):  # the driver lives (for status, cancel, retry)
        rerun, fingerprints, done = _prepare(spec, registry, run_id, {})
        return _finish(
            spec, registry, run_id, rerun, fingerprints, done, client, log, worker_profile
        )


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
    worker_profile: bool = False,
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
    client, registry, log, worker_profile
        As for :func:`run_tiles`.

    Returns
    -------
    RunReport
        The run after the retry.

    Raises
    ------
    ChainError
        No such run, the run is still driven by a live process (on this host, or on
        another with a heartbeat younger than :data:`STALE_SECONDS`), another retry took
        it over first, or the chain is wrong.

    Notes
    -----
    The takeover is atomic (:meth:`Registry.claim_run`): of two retries of the same run at
    once, one drives it. A driver that was taken for dead but lives stops at its next poll
    of the run and returns the run as the registry records it.
    """
    spec = chain if isinstance(chain, ChainSpec) else load_chain(chain)
    registry = registry or open_registry(spec)
    run_id = _latest(registry, run_id, spec)
    row = registry.run(run_id)
    driver = driver_alive(row)
    if row["state"] in ("running", "cancelling") and driver.alive and not _ours(row):
        stale = (
            f"; it is taken as dead after {STALE_SECONDS:.0f} s without a heartbeat"
            if driver.age is not None
            else ""
        )
        raise ChainError(
            f"Run {run_id} is still running ({driver}{stale}): wait for it or cancel it first."
        )
    if row["chain"] != spec.name:
        raise ChainError(f"Run {run_id} is of chain {row['chain']!r}, not {spec.name!r}.")
    previous = {(t.step, t.tile): t for t in registry.tasks(run_id)}
    if not registry.claim_run(run_id, row):
        now = registry.run(run_id)
        raise ChainError(
            f"Run {run_id} was taken over by another driver ({driver_alive(now)}) while this "
            "one was about to: let that retry finish, or cancel it first."
        )
    with _Heartbeat(registry, run_id):
        rerun, fingerprints, done = _prepare(spec, registry, run_id, previous, log)
        log(f"run {run_id}: {len(rerun)} task(s) to run again, {len(done)} kept")
        return _finish(
            spec, registry, run_id, rerun, fingerprints, done, client, log, worker_profile
        )


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
        As recorded; a run whose driver died (its process gone, or from another host
        no heartbeat for :data:`STALE_SECONDS`) is reported ``failed`` (run ``retry``).

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
    if state in ("running", "cancelling") and not driver_alive(row).alive:
        state = "failed"
    return RunReport(run_id, state, registry.tasks(run_id), registry.path)


def cancel(chain: str | Path | ChainSpec | Registry, run_id: str | None = None) -> RunReport:
    """Ask a run to stop: its driver cancels what has not finished within a second or so.

    When no process drives the run any more (:func:`driver_alive`), its unfinished tasks
    are marked cancelled here.

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
    if row["state"] in ("running", "cancelling") and driver_alive(row).alive:
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
            "intact": not out.get("pruned")
            and Path(out["path"]).is_file()
            and sha256_file(out["path"]) == out["sha256"],
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
