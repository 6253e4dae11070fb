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

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
from _common import arg_parser, best_of, machine, run_child, s2_items, s2_scene, write_report

THREADS = 2
#: Time chunking of the memory case (-1: all dates per chunk; 1: one date per chunk).
TIME_CHUNK = int(os.environ.get("BENCH_TIME_CHUNK", "-1"))
CHUNK = 2048
BAND = "red"


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

    items = s2_items(sc)
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
        t_ours, t_odc = best_of(ours, repeat)[0], best_of(odc_direct, repeat)[0]
        t_floor = best_of(lambda: _rasterio_floor(items, BAND), repeat)[0]
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
    items = s2_items(sc)
    gbox = cube.reference_geobox(items)
    ny, nx = (round(s * fraction**0.5) for s in gbox.shape)
    sub = gbox[:ny, :nx]
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        ds = cube.load(items, BAND, geobox=sub, chunks={"time": TIME_CHUNK, "y": 1024, "x": 1024})
        mean = ds[BAND].where(ds[BAND] > 0).mean("time").astype("float32")
        write_cog(mean, out, nodata=np.nan)


def peak_rss(sc, fraction: float, workdir: Path) -> float:
    """Peak RSS (MiB) of the memory case in a child process (see ``_common.run_child``)."""
    out = workdir / f"mean_{fraction}.tif"
    cmd = [sys.executable, __file__, "--memory-case", str(sc.root), str(fraction), str(out)]
    return run_child(cmd, label=f"memory case {fraction}").peak_rss_mib


def main() -> int:
    parser = arg_parser(__doc__, size=5490, dates=4, repeat=2, memory_case=True)
    parser.add_argument("--memory-only", action="store_true", help="skip the throughput part")
    args = parser.parse_args()
    if args.memory_case:
        root, fraction, out = args.memory_case
        memory_case(root, float(fraction), out)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    sc, t_gen = s2_scene(
        args.workdir,
        f"scene_{args.size}_{args.dates}",
        size=args.size,
        dates=args.dates,
        start="2022-06-01",
        progress=True,
    )
    if t_gen:
        print(
            f"generated {args.size}x{args.size} x {args.dates} dates in {t_gen:.0f} s", flush=True
        )
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
    result["machine"] = machine()
    write_report(result, args.workdir / "bench_load.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
