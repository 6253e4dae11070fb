"""A full Sentinel-2 tile through the production chain on a 2-worker Dask Gateway (issue 17).

1. Generates a sample scenario of ``--size`` px (10980: a full MGRS tile) with at least 12
   Sentinel-2 dates, Sentinel-1 and RCM (:func:`mus_lab.sample.generate` streams row blocks
   to disk). The size on disk is first extrapolated from a 256 px probe with the same dates,
   and the run stops if it (plus the chain's outputs) would pass ``--max-gb`` or the free
   space; everything is removed at the end unless ``--keep``.
2. Trains two small random forests (optical NDVI, Sentinel-1 radar) on a 512 px corner
   (not timed).
3. Starts a ``dask-gateway-server`` on 127.0.0.1 (UnsafeLocalBackend), and for each
   ``--subtiles`` n (1, 4, 16: the tile cut into n chain tiles) a fresh gateway cluster of
   2 one-thread workers, and runs the chain ARD (S2, S1, RCM) -> land cover (optical,
   radar) -> fusion -> flood (scene-wide threshold) through :func:`run_tiles`.
4. Reports, per n: wall time per step (first start to last end of the step's tasks), the
   sum of its task seconds and that sum per Mpx, and each worker's peak resident memory
   (``VmHWM`` of the worker process, fresh processes for each n). ``--worker-profile both``
   runs each n with the workers' statistical profiler on, then off (the runner's default).

Usage::

    python benchmarks/bench_full_tile.py --size 2048 --subtiles 1 4 16
    python benchmarks/bench_full_tile.py            # the full 10980 px tile

The per-Mpx costs feed the Canada estimate of docs/design/0012-production-chains.md.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import arg_parser, machine, print_table, write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START, END = "2022-04-01", "2022-09-30"  # 183 days
EVERY = {"s2_every_days": 15, "s1_every_days": 12, "rcm_every_days": 16}  # 13, 16, 12 dates


def _scenario_kwargs(size: int) -> dict[str, Any]:
    return {"size": size, "seed": 17, "start": START, "end": END, **EVERY}


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def estimate_gb(size: int, work: Path) -> tuple[float, float]:
    """Scenario GB at ``size`` extrapolated from a 256 px probe; and the chain outputs' GB
    (ARD int16 x2 bands x S2 dates, float32 per SAR date x2 sensors, maps), uncompressed."""
    from mus_lab import sample

    probe = work / "probe"
    sc = sample.generate(probe, **_scenario_kwargs(256))
    per_px = _folder_bytes(probe) / 256**2
    shutil.rmtree(probe)
    px = size**2
    n2, n1, nr = (len(sc.dates.get(k, ())) for k in ("s2", "s1", "rcm"))
    outputs = px * (2 * 2 * n2 + 4 * (2 * n1 + nr) + 2 * n1 + 8 * 6 + 4 * 16)
    return per_px * px / 1e9, outputs / 1e9


def train_models(scenario: Any, work: Path) -> None:
    from mus_lab import classify, cube, recipes

    w, s, e, n = scenario.bbox
    corner = min(512, scenario.size)
    f = corner / scenario.size
    bbox = (w, n - (n - s) * f, w + (e - w) * f, n)
    grid = cube.reference_geobox(bbox=bbox)
    for name, kw in (
        ("optical", {"sensors": "optical", "optical_variables": ("ndvi",)}),
        ("radar", {"sensors": "radar", "speckle": None, "radar_sources": ("sentinel-1-grd",)}),
    ):
        feats, recipe, _ = recipes.features_from_catalog(
            scenario.catalog_path,
            bbox=bbox,
            geobox=grid,
            every_days=30,
            datetime=f"{START}/{END}",  # the chain's period: land cover reads its ARD
            **kw,
        )
        samples = classify.extract_samples(feats, scenario.polygons, layer="reference")
        model = classify.train(samples, "rf", params={"n_estimators": 20}, recipe=recipe)
        model.save(work / name, overwrite=True)


def chain(scenario: Any, work: Path, tile: int, out: str) -> dict[str, Any]:
    return {
        "chain": f"full-tile-{out}",
        "catalog": str(scenario.catalog_path),
        "output": str(work / out),
        "period": f"{START}/{END}",
        "area": {"bbox": list(scenario.bbox), "tile": tile},
        "steps": {
            "s2": {"uses": "ard.s2", "options": {"bands": ["red", "nir"], "max_cloud": 100}},
            "s1": {"uses": "ard.sar", "options": {"sensor": "s1"}},
            "s1vh": {"uses": "ard.sar", "options": {"sensor": "s1", "polarisation": "vh"}},
            "rcm": {"uses": "ard.sar", "options": {"sensor": "rcm"}},
            "optical": {
                "uses": "landcover.predict",
                "needs": ["s2"],
                "options": {"model": str(work / "optical")},
            },
            "radar": {
                "uses": "landcover.predict",
                "needs": ["s1", "s1vh"],  # its features from the chain's ARD (VV and VH)
                "options": {"model": str(work / "radar")},
            },
            "fused": {"uses": "fusion.fuse", "needs": ["optical", "radar"]},
            "flood": {"uses": "flood.water", "needs": ["s1"]},
        },
        "intermediates": {"keep": {"conflict": "forever"}},
    }


def _hwm_mib(pid: int, field: str = "VmHWM") -> float:
    """Peak resident memory (VmHWM, or another field) of a live process, MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one(
    scenario: Any, work: Path, n_sub: int, address: str, worker_profile: bool = False
) -> dict[str, Any]:
    from mus_lab import production, set_options
    from mus_lab.compute import cluster

    grid = production.load_chain(chain(scenario, work, 16, "grid")).grid()
    side = max(grid.shape.yx)  # the chain's grid of the scenario's bbox (a pixel or so more)
    tile = math.ceil(side / math.isqrt(n_sub))
    spec = production.load_chain(chain(scenario, work, tile, f"out-{n_sub}"))
    tiles = len(spec.tiles())
    with (
        set_options(gateway_address=address),
        cluster(n_workers=2, gateway_auth="basic", timeout=300) as client,
    ):
        client.wait_for_workers(2, timeout=300)
        pids = {  # {worker address: pid}; the workers run on this machine
            addr: client.submit(os.getpid, workers=[addr], pure=False).result()
            for addr in client.scheduler_info()["workers"]
        }
        peak_poll: dict[str, float] = dict.fromkeys(pids, 0.0)
        rss: dict[str, list[tuple[float, float]]] = {a: [] for a in pids}  # (time, MiB)
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                for addr, pid in pids.items():
                    try:
                        peak_poll[addr] = max(peak_poll[addr], _hwm_mib(pid))
                        rss[addr].append((time.time(), _hwm_mib(pid, "VmRSS")))
                    except OSError:
                        pass
                time.sleep(0.5)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        t0, t0_wall = time.perf_counter(), time.time()
        report = production.run_tiles(
            spec, client=client, log=lambda line: None, worker_profile=worker_profile
        )
        wall = time.perf_counter() - t0
        done.set()
        watcher.join()
        for addr, pid in pids.items():
            try:
                peak_poll[addr] = max(peak_poll[addr], _hwm_mib(pid))
            except OSError:
                pass
        threads = client.run(threading.active_count)
        malloc_env = client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")
        nthreads = client.nthreads()
    assert report.ok, report.table()
    at_peak = {}  # what a worker was running when its resident memory was highest
    for addr, series in rss.items():
        if not series:
            continue
        when, top = max(series, key=lambda p: p[1])
        running = [
            f"{t.step}/{t.tile}"
            for t in report.tasks
            if t.worker == addr and (t.started or 0) - 0.5 <= when <= (t.finished or 0) + 0.5
        ]
        at_peak[addr] = {
            "rss_MiB": round(top, 1),
            "s_after_start": round(when - t0_wall, 1),
            "running": running,
            "rss_end_MiB": round(series[-1][1], 1),
            "done_before": sum(
                1 for t in report.tasks if t.worker == addr and (t.finished or 0) < when
            ),
        }
    mpx = grid.shape[0] * grid.shape[1] / 1e6
    steps: dict[str, dict[str, float]] = {}
    for step in spec.names:
        tasks = [t for t in report.tasks if t.step == step]
        busy = sum(t.seconds or 0.0 for t in tasks)
        span = max(t.finished or 0 for t in tasks) - min(t.started or 0 for t in tasks)
        steps[step] = {
            "wall_s": round(span, 2),
            "task_s": round(busy, 2),
            "task_s_per_mpx": round(busy / mpx, 3),
        }
    return {
        "subtiles": n_sub,
        "worker_profile": worker_profile,
        "tiles": tiles,
        "tile_px": tile,
        "chain_wall_s": round(wall, 1),
        "steps": steps,
        "peak_worker_MiB": sorted(round(v, 1) for v in peak_poll.values()),
        "at_peak": [at_peak.get(a) for a in sorted(pids)],
        "worker_MALLOC_TRIM_THRESHOLD_": [malloc_env.get(a) for a in sorted(pids)],
        "worker_threads": [f"{nthreads.get(a)} / {threads.get(a)}" for a in sorted(pids)],
        "outputs_GB": round(_folder_bytes(spec.output) / 1e9, 3),
    }


def _p(row: dict[str, Any]) -> str:
    return " prof" if row["worker_profile"] else ""


def main() -> None:
    parser = arg_parser(__doc__, workdir=tempfile.gettempdir() + "/bench_full_tile", size=10980)
    parser.add_argument("--subtiles", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-gb", type=float, default=25.0)
    parser.add_argument("--worker-memory-gib", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="Keep the scenario and outputs.")
    parser.add_argument(
        "--worker-env",
        nargs="*",
        default=[],
        help="KEY=VALUE given to the workers' environment (e.g. GDAL_CACHEMAX=64).",
    )
    parser.add_argument(
        "--worker-profile",
        choices=("off", "on", "both"),
        default="off",
        help="The workers' statistical profiler during the runs (run_tiles' worker_profile); "
        "both: each --subtiles run with it on, then off (an A/B of its memory).",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    profiles = {"off": [False], "on": [True], "both": [True, False]}[args.worker_profile]
    sys.path.insert(0, str(ROOT))  # tests._servers starts the gateway server
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    from mus_lab import sample
    from tests._servers import dask_gateway_server

    work = Path(args.workdir) / f"size-{args.size}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        scenario_gb, outputs_gb = (
            estimate_gb(args.size, work)
            if not (work / "scenario" / "scenario.json").exists()
            else (_folder_bytes(work / "scenario") / 1e9, 0.0)
        )
        need = scenario_gb + outputs_gb * len(args.subtiles)
        free = shutil.disk_usage(work).free / 1e9
        print(
            f"estimated: scenario {scenario_gb:.2f} GB, outputs {outputs_gb:.2f} GB per run "
            f"(uncompressed bound), {need:.2f} GB in all; {free:.1f} GB free",
            flush=True,
        )
        if need > args.max_gb or need > 0.8 * free:
            raise SystemExit(
                f"{need:.1f} GB would pass --max-gb {args.max_gb} or 80 % of the free "
                f"{free:.1f} GB: lower --size or --subtiles."
            )
        t0 = time.perf_counter()
        if (work / "scenario" / "scenario.json").exists():  # kept by an earlier --keep run
            scenario = sample.Scenario.open(work / "scenario")
        else:
            scenario = sample.generate(work / "scenario", **_scenario_kwargs(args.size))
        generate_s = time.perf_counter() - t0
        dates = {k: len(v) for k, v in scenario.dates.items()}
        print(f"generated in {generate_s:.0f} s: {dates} dates", flush=True)
        train_models(scenario, work)
        rows = []
        (work / "gateway").mkdir(exist_ok=True)
        with dask_gateway_server(
            work / "gateway",
            lifetime_s=24 * 3600,
            worker_memory_gib=args.worker_memory_gib,
            environment=dict(kv.split("=", 1) for kv in args.worker_env),
        ) as address:
            for n_sub in args.subtiles:
                for profile in profiles:
                    row = one(scenario, work, n_sub, address, profile)
                    print(row, flush=True)
                    rows.append(row)
                    if not args.keep:
                        shutil.rmtree(work / f"out-{n_sub}", ignore_errors=True)
        names = list(rows[0]["steps"])
        print_table(
            [("step", "<9"), *[(f"n={r['subtiles']}{_p(r)} wall s", ">14.1f") for r in rows]],
            [[s, *[r["steps"][s]["wall_s"] for r in rows]] for s in names],
        )
        print_table(
            [("step", "<9"), *[(f"n={r['subtiles']}{_p(r)} s/Mpx", ">14.3f") for r in rows]],
            [[s, *[r["steps"][s]["task_s_per_mpx"] for r in rows]] for s in names],
        )
        print_table(
            [
                ("subtiles", ">8d"),
                ("tile px", ">8d"),
                ("profiler", "<8"),
                ("worker peak MiB", "<22"),
            ],
            [
                [r["subtiles"], r["tile_px"], _p(r) or " off", str(r["peak_worker_MiB"])]
                for r in rows
            ],
        )
        out = args.out or HERE / "results" / f"full_tile_{args.size}.json"
        write_report(
            {
                "machine": machine(workers=2, threads_per_worker=1, worker_env=args.worker_env),
                "size": args.size,
                "dates": dates,
                "generate_s": round(generate_s, 1),
                "scenario_GB": round(_folder_bytes(work / "scenario") / 1e9, 3),
                "runs": rows,
            },
            out,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
