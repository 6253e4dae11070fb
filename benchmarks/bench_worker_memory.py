"""Memory of one worker running many step x tile tasks of a chain, one after the other.

The diagnosis of issue 17's "memory per worker must not grow with the number of tiles"
without a gateway: the chain of :mod:`bench_full_tile` (ARD S2, S1, RCM -> land cover
optical and radar -> fusion -> flood) on a ``--size`` px scenario cut in tiles of
``--tile`` px, every tile ``--rounds`` times, each task through the runner's own entry
points (``_execute``, ``_sample``, ``_reduce`` of :mod:`mus_lab.production._tilerun`):
in this process, or with ``--dask`` on one local Dask worker process (one thread), as the
chain runner sends them. After each task it prints the (worker's) resident memory,
glibc's heap in use and free (``mallinfo2``: RSS growing with "in use" flat is
fragmentation or memory outside malloc, e.g. Python's object arenas), its threads and,
with ``--dask``, the tasks and transition log the worker holds. At the end, the object
types whose count grew most between task ``--early`` and the last one
(``gc.get_objects()``) and, with ``--tracemalloc`` (slow: x10), where the Python heap grew.

What it showed (docs/design/0012-production-chains.md): in this process the tasks run
in flat memory; on a Dask worker the memory grew by about 1 MiB per task, all of it the
worker's statistical profiler (``distributed/profile.py``: a tree of stacks per second of
work, kept for 1,000 s), flat once the runner's :class:`QuietProfile` plugin stops it
(``--worker-profile`` keeps it on, to see the growth).

Usage::

    python benchmarks/bench_worker_memory.py --size 512 --tile 133 --rounds 3
    python benchmarks/bench_worker_memory.py --dask --steps s2 --rounds 2 --worker-profile
    python benchmarks/bench_worker_memory.py --dask --steps s2 --rounds 3 --tracemalloc \\
        --worker-profile
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import arg_parser, write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _peak_mib(reset: bool = True) -> float:
    """Peak resident memory (VmHWM) since the last reset, MiB; then reset it (Linux)."""
    peak = float("nan")
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    if reset:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")
        except OSError:
            pass
    return peak


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _heap_mib() -> tuple[float, float]:
    """glibc's heap: (in use incl. mmapped blocks, free kept), MiB; NaN off glibc."""
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

    class Mallinfo2(ctypes.Structure):  # here, so that the probe pickles by value
        _fields_ = [(n, ctypes.c_size_t) for n in names.split()]

    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return float("nan"), float("nan")
    fn.restype = Mallinfo2
    info = fn()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def _type_counts() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
    )


def _probe(dask_worker: Any = None) -> dict[str, Any]:
    """On a worker: its RSS, heap, threads, and the tasks and data its state holds."""
    import threading

    gc.collect()
    used, free = _heap_mib()
    out: dict[str, Any] = {
        "peak": _peak_mib(),
        "rss": _rss_mib(),
        "used": used,
        "free": free,
        "threads": threading.active_count(),
    }
    if dask_worker is not None:
        out["tasks"] = len(dask_worker.state.tasks)
        out["data"] = len(dask_worker.data)
        out["log"] = len(dask_worker.state.log)
    return out


def _worker_snapshot(trace: bool, dask_worker: Any) -> None:
    """On a worker: keep the object counts (and start tracing the Python heap)."""
    import tracemalloc

    if trace and not tracemalloc.is_tracing():
        tracemalloc.start(5)
    snap = tracemalloc.take_snapshot() if trace else None
    dask_worker._mem_probe = (_type_counts(), snap)  # type: ignore[attr-defined]


def _worker_growth(dask_worker: Any) -> str:
    """On a worker: what grew since :func:`_worker_snapshot` (object types, Python heap)."""
    counts, snap = dask_worker._mem_probe
    return _growth_text(counts, snap, 15)


def _growth_text(early: Any, snap: Any, top: int) -> str:
    import tracemalloc

    last = _type_counts()
    lines = ["object types grown:"]
    grown = sorted(((last[k] - early[k], k) for k in last), reverse=True)[:25]
    lines += [f"  {d:>+8d}  {k}  (now {last[k]})" for d, k in grown if d > 0]
    if snap is not None:
        now = tracemalloc.take_snapshot()
        lines.append(f"Python heap grown (top {top}):")
        for stat in now.compare_to(snap, "traceback")[:top]:
            lines.append(f"  {stat.size_diff / 2**10:>+9.1f} KiB  {stat.count_diff:>+7d} blocks")
            lines += ["      " + line for line in stat.traceback.format()[-8:]]
    return "\n".join(lines)


def main() -> None:
    parser = arg_parser(__doc__, workdir=tempfile.gettempdir() + "/bench_worker_memory", size=512)
    parser.add_argument("--tile", type=int, default=133, help="Chain tile side, px.")
    parser.add_argument("--rounds", type=int, default=3, help="Times every tile is run.")
    parser.add_argument("--steps", nargs="*", default=None, help="Steps to run (default all).")
    parser.add_argument("--tracemalloc", action="store_true", help="Trace the Python heap.")
    parser.add_argument("--early", type=int, default=5, help="Task of the first object count.")
    parser.add_argument(
        "--dask",
        action="store_true",
        help="Run each task on a local Dask worker process (1 thread) instead of here.",
    )
    parser.add_argument(
        "--chain",
        action="store_true",
        help="Run the chain with run_tiles on 2 local one-thread workers; probe them after.",
    )
    parser.add_argument(
        "--worker-profile",
        action="store_true",
        help="With --dask: keep the worker's statistical profiler on (the runner stops it).",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    from bench_full_tile import _scenario_kwargs, chain, train_models

    from mus_lab import production, sample
    from mus_lab.production._tilerun import _execute, _keep_of, _reduce, _sample
    from mus_lab.production._tilesteps import TileTask, options_with_defaults, step_kinds

    work = Path(args.workdir) / f"size-{args.size}"
    work.mkdir(parents=True, exist_ok=True)
    if (work / "scenario" / "scenario.json").exists():
        scenario = sample.Scenario.open(work / "scenario")
    else:
        scenario = sample.generate(work / "scenario", **_scenario_kwargs(args.size))
    if not (work / "radar").exists():
        train_models(scenario, work)
    spec = production.load_chain(chain(scenario, work, args.tile, "out"))
    tiles = spec.tiles()
    kinds = step_kinds()
    wanted = set(args.steps or spec.names)
    print(f"{len(tiles)} tiles of {args.tile} px; steps {sorted(wanted)}", flush=True)

    def make(step: Any, tile: Any) -> TileTask:
        return TileTask(
            step=step.name,
            uses=step.uses,
            tile=tile.id,
            geobox=tile.geobox,
            catalog=spec.catalog,
            period=spec.period,
            options=options_with_defaults(step),
            folder=spec.output / step.name,
            keep=_keep_of(spec, step),
            scratch=spec.keeps().folder / step.name,
        )

    if args.chain:  # the whole chain through run_tiles on 2 one-thread local workers
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(_probe)
            client.run(_worker_snapshot, args.tracemalloc)
            report = production.run_tiles(
                spec, client=client, log=lambda _: None, worker_profile=args.worker_profile
            )
            assert report.ok, report.table()
            for addr, probe in client.run(_probe).items():
                print(addr, {k: round(v, 1) for k, v in probe.items()})
            for addr, text in client.run(_worker_growth).items():
                print(addr, text)
        return
    client = None
    if args.dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        if not args.worker_profile:  # as the chain runner does
            from mus_lab.production._workerprofile import QuietProfile

            client.register_plugin(QuietProfile())
    if args.tracemalloc:
        tracemalloc.start(10)
    rows: list[dict[str, Any]] = []
    results: dict[tuple[str, str], dict[str, Any]] = {}
    early_counts: collections.Counter[str] | None = None
    early_snap = None
    n = 0
    print(
        f"{'#':>4} {'step':<9} {'tile':<8} {'s':>6} {'peak':>8} {'RSS':>8} {'heap use':>9} {'heap free':>9}"
        f"{' py heap':>9}"
    )
    for rnd in range(args.rounds):
        for step in spec.steps:
            # needed steps always run (their outputs are the inputs), printed only if wanted
            upstream_needed = any(step.name in s.needs for s in spec.steps if s.name in wanted)
            if step.name not in wanted and (rnd or not upstream_needed):
                continue
            scene = None
            if kinds[step.uses].scene_wide:
                call = client.submit if client is not None else (lambda f, *a, **k: f(*a))
                samples = [
                    call(_sample, make(step, t), *(results[(u, t.id)] for u in step.needs))
                    for t in tiles
                ]
                scene = call(_reduce, step.uses, options_with_defaults(step), *samples)
            for tile in tiles:
                t0 = time.perf_counter()
                ups = [results[(u, tile.id)] for u in step.needs]
                if client is None:
                    results[(step.name, tile.id)] = _execute(make(step, tile), *ups, scene=scene)
                    gc.collect()
                    probe = _probe()
                else:
                    fut = client.submit(_execute, make(step, tile), *ups, scene=scene, pure=False)
                    fut.result()
                    results[(step.name, tile.id)] = fut  # held, as the driver holds them
                    probe = next(iter(client.run(_probe).values()))
                n += 1
                used, free = probe["used"], probe["free"]
                py = tracemalloc.get_traced_memory()[0] / 2**20 if args.tracemalloc else None
                row = {
                    "task": n,
                    "round": rnd,
                    "step": step.name,
                    "tile": tile.id,
                    "seconds": round(time.perf_counter() - t0, 2),
                    "peak_MiB": round(probe["peak"], 1),
                    "rss_MiB": round(probe["rss"], 1),
                    "threads": probe["threads"],
                    "worker_tasks": probe.get("tasks"),
                    "heap_used_MiB": round(used, 1),
                    "heap_free_MiB": round(free, 1),
                    "py_heap_MiB": None if py is None else round(py, 1),
                }
                rows.append(row)
                print(
                    f"{n:>4} {step.name:<9} {tile.id:<8} {row['seconds']:>6.1f} "
                    f"{row['peak_MiB']:>8.1f} {row['rss_MiB']:>8.1f} {used:>9.1f} {free:>9.1f} {probe['threads']:>3d}"
                    + (f" {probe['tasks']:>4d} {probe['log']:>6d}" if "tasks" in probe else "")
                    + (f"{py:>9.1f}" if py is not None else ""),
                    flush=True,
                )
                if n == args.early:
                    if client is not None:
                        client.run(_worker_snapshot, args.tracemalloc)
                    else:
                        early_counts = _type_counts()
                        if args.tracemalloc:
                            early_snap = tracemalloc.take_snapshot()
    if client is not None and n >= args.early:
        print(f"\non the worker, between task {args.early} and task {n}:")
        print(next(iter(client.run(_worker_growth).values())))
    elif early_counts is not None:
        print(f"\nbetween task {args.early} and task {n}:")
        print(_growth_text(early_counts, early_snap, 15))
    out = args.out or HERE / "results" / f"worker_memory_{args.size}_{args.tile}.json"
    write_report({"size": args.size, "tile": args.tile, "tasks": rows}, out, echo=False)


if __name__ == "__main__":
    main()
