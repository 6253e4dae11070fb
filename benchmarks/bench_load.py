"""Load throughput of ``mus_lab.cube.load(...).compute()`` against odc-stac and plain rasterio.

Issue 2 benchmark. On a generated Sentinel-2 scene of 4 dates x 5490 x 5490 pixels (one 10 m
band), in one run and with the same 2 threads for everyone:

* (a) ``odc.stac.load`` called directly on the same items, same GeoBox and chunks;
* (b) the floor: the same pixels read with rasterio windowed reads (2 threads).

Then peak RSS of a streaming job (load -> temporal mean -> COG) at 1x and 4x the area with the
same chunking, each in its own process.

Usage: ``python benchmarks/bench_load.py [--size 5490] [--dates 4] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np

THREADS = 2
#: Time chunking of the memory case (-1: all dates per chunk; 1: one date per chunk).
TIME_CHUNK = int(os.environ.get("BENCH_TIME_CHUNK", "-1"))
CHUNK = 2048
BAND = "red"


def _scene(workdir: Path, size: int, dates: int):
    from mus_lab import sample

    root = workdir / f"scene_{size}_{dates}"
    if (root / "scenario.json").exists():
        return sample.Scenario.open(root)
    every = 8
    start = np.datetime64("2022-06-01")
    end = start + np.timedelta64(every * (dates - 1), "D")
    t0 = time.perf_counter()
    sc = sample.generate(
        root,
        size=size,
        seed=7,
        start=str(start),
        end=str(end),
        s2_every_days=every,
        sensors=("s2",),
        progress=True,
    )
    print(
        f"generated {size}x{size} x {dates} dates in {time.perf_counter() - t0:.0f} s", flush=True
    )
    return sc


def _items(sc):
    from mus_lab import catalog

    return catalog.search(sc.catalog_path, collections="sentinel-2-l2a")


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _rasterio_floor(items, band: str) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    hrefs = [it.assets[band].get_absolute_href() for it in items]
    with rasterio.open(hrefs[0]) as src:
        h, w, dtype = src.height, src.width, src.dtypes[0]
    out = np.empty((len(hrefs), h, w), dtype=dtype)
    jobs = [
        (t, r, c) for t in range(len(hrefs)) for r in range(0, h, CHUNK) for c in range(0, w, CHUNK)
    ]

    def read(job):
        t, r, c = job
        win = Window(c, r, min(CHUNK, w - c), min(CHUNK, h - r))
        with rasterio.open(hrefs[t]) as src:
            out[t, r : r + win.height, c : c + win.width] = src.read(1, window=win)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(read, jobs))
    return out


def throughput(sc, repeat: int) -> dict:
    import odc.stac

    from mus_lab import cube

    items = _items(sc)
    gbox = cube.reference_geobox(items)
    npix = len(items) * gbox.shape[0] * gbox.shape[1]
    chunks = {"time": 1, "y": CHUNK, "x": CHUNK}
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        ours = lambda: cube.load(items, BAND, geobox=gbox, chunks=CHUNK).compute()  # noqa: E731
        odc_direct = lambda: odc.stac.load(  # noqa: E731
            list(items), bands=[BAND], geobox=gbox, chunks=chunks, groupby="solar_day"
        ).compute()
        a = ours()
        b = odc_direct()
        floor = _rasterio_floor(items, BAND)
        assert np.array_equal(a[BAND].values, b[BAND].values), "mus_lab and odc-stac disagree"
        assert np.array_equal(a[BAND].values, floor), "mus_lab and rasterio disagree"
        t_ours, t_odc = _best(ours, repeat), _best(odc_direct, repeat)
        t_floor = _best(lambda: _rasterio_floor(items, BAND), repeat)
    mp = npix / 1e6
    return {
        "pixels": npix,
        "mus_lab_mpix_s": mp / t_ours,
        "odc_stac_mpix_s": mp / t_odc,
        "rasterio_floor_mpix_s": mp / t_floor,
        "ratio_vs_odc_stac": t_odc / t_ours,
        "ratio_vs_rasterio_floor": t_floor / t_ours,
    }


def memory_case(root: str, fraction: float, out: str) -> None:
    """Child process: stream load -> temporal mean -> COG over a fraction of the scene."""
    from mus_lab import cube, sample
    from mus_lab._io import write_cog

    sc = sample.Scenario.open(root)
    items = _items(sc)
    gbox = cube.reference_geobox(items)
    ny, nx = (round(s * fraction**0.5) for s in gbox.shape)
    sub = gbox[:ny, :nx]
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        ds = cube.load(items, BAND, geobox=sub, chunks={"time": TIME_CHUNK, "y": 1024, "x": 1024})
        mean = ds[BAND].where(ds[BAND] > 0).mean("time").astype("float32")
        write_cog(mean, out, nodata=np.nan)


def peak_rss(sc, fraction: float, workdir: Path) -> float:
    """Peak RSS (MiB) of a child process, polled every 20 ms.

    Not ``ru_maxrss``: for a forked-then-exec'd child it includes the parent's pages
    copied at fork time, which would hide the child's own peak.
    """
    import psutil

    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--memory-case",
            str(sc.root),
            str(fraction),
            str(workdir / f"mean_{fraction}.tif"),
        ]
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError(f"memory case {fraction} failed ({proc.returncode})")
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=5490)
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("bench_data"))
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput part")
    parser.add_argument("--memory-case", nargs=3, metavar=("ROOT", "FRACTION", "OUT"))
    args = parser.parse_args()
    if args.memory_case:
        root, fraction, out = args.memory_case
        memory_case(root, float(fraction), out)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    sc = _scene(args.workdir, args.size, args.dates)
    result: dict = {
        "scene": f"{args.dates} x {args.size} x {args.size} ({BAND})",
        "threads": THREADS,
    }
    # Memory first, while this parent process is still small.
    result["peak_rss_mib_1x"] = peak_rss(sc, 0.25, args.workdir)
    result["peak_rss_mib_4x"] = peak_rss(sc, 1.0, args.workdir)
    if not args.memory_only:
        result.update(throughput(sc, args.repeat))
    result["memory_time_chunk"] = TIME_CHUNK
    result["peak_rss_ratio_4x_over_1x"] = result["peak_rss_mib_4x"] / result["peak_rss_mib_1x"]
    print(json.dumps(result, indent=2))
    (args.workdir / "bench_load.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
