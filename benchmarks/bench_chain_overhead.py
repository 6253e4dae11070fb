"""Scheduling and bookkeeping cost per task of a production chain (issue 17, scale on paper).

A chain of ``--steps`` no-op ``python`` steps (each needs the previous one on the same tile)
over an area cut into ``--tiles`` tiles of 16 px runs through the real
:func:`mus_lab.production.run_tiles` on a local Dask cluster (``--workers`` processes of
one thread): chain check, fingerprints and registry rows (``prepare``), submission, results
and registry updates (``drive``), the products' catalog (no outputs here, so none). The
no-op does no I/O, so what is measured is the per-task overhead of the chain machinery and
of the Dask scheduler, which the scale estimate in docs/design/0012 multiplies.

Usage: ``python benchmarks/bench_chain_overhead.py [--tiles 500 2000 8000] [--steps 3]``
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import arg_parser, machine, print_table, write_report

HERE = Path(__file__).resolve().parent
NOOP = "bench_chain_overhead:noop"


def noop(task: Any) -> dict[str, Path]:
    """Touch nothing, write nothing: the task's cost is the machinery's."""
    return {}


def _bbox(tiles: int) -> list[float]:
    """A lon/lat box near Ottawa whose 10 m grid cuts into about ``tiles`` tiles of 16 px."""
    side = math.ceil(math.sqrt(tiles)) * 16 * 10  # metres
    lat = 45.4
    dlat = side / 111_320
    dlon = side / (111_320 * math.cos(math.radians(lat)))
    return [-75.7, lat, -75.7 + dlon * 0.999, lat + dlat * 0.999]


def one(n_tiles: int, steps: int, workers: int, work: Path) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from mus_lab import production
    from mus_lab.production._tilerun import _coverage

    chain = {
        "chain": f"noop-{n_tiles}",
        "catalog": str(work / "unused-catalog.json"),
        "output": str(work / f"out-{n_tiles}"),
        "area": {"bbox": _bbox(n_tiles), "tile": 16},
        "steps": {
            f"s{i}": {
                "uses": "python",
                "options": {"function": NOOP},
                **({"needs": [f"s{i - 1}"]} if i else {}),
            }
            for i in range(steps)
        },
    }
    t0 = time.perf_counter()
    spec = production.load_chain(chain)
    tiles = len(spec.tiles())
    _coverage(spec)
    check_s = time.perf_counter() - t0
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        t0 = time.perf_counter()
        report = production.run_tiles(spec, client=client, log=lambda line: None)
        run_s = time.perf_counter() - t0
    tasks = len(report.tasks)
    assert report.ok and tasks == tiles * steps, report.table()[:500]
    registry = Path(report.registry or "")
    return {
        "tiles": tiles,
        "tasks": tasks,
        "check_s": round(check_s, 2),
        "run_s": round(run_s, 2),
        "ms_per_task": round(1000 * run_s / tasks, 3),
        "registry_MiB": round(registry.stat().st_size / 2**20, 2) if registry.is_file() else 0,
    }


def main() -> None:
    parser = arg_parser(__doc__, workdir=tempfile.gettempdir() + "/bench_chain")
    parser.add_argument("--tiles", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/chain_overhead.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])
    )
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.tiles:
        row = one(n, args.steps, args.workers, work / str(time.time_ns()))
        print(row, flush=True)
        rows.append(row)
    print_table(
        [
            ("tiles", ">7d"),
            ("tasks", ">7d"),
            ("check s", ">8.2f"),
            ("run s", ">8.2f"),
            ("ms/task", ">8.3f"),
            ("registry MiB", ">12.2f"),
        ],
        [
            [r["tiles"], r["tasks"], r["check_s"], r["run_s"], r["ms_per_task"], r["registry_MiB"]]
            for r in rows
        ],
    )
    write_report(
        {"machine": machine(workers=args.workers, steps=args.steps), "runs": rows}, args.out
    )


if __name__ == "__main__":
    main()
