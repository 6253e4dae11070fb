"""Sentinel-2 ARD throughput and memory: ``prepare_s2`` + ``s2_time_series`` against plain numpy.

On a generated Sentinel-2 scene (default 20 dates, one every 8 days, x 2048 x 2048 pixels),
in one run, with dask's threaded scheduler on 2 threads:

1. S2 ARD (SCL mask, DN -> reflectance, 20 m -> 10 m cubic, gap-fill onto a 10-day grid,
   NDVI/NDWI/MNDWI) with ``ard.s2_time_series(ard.prepare_s2(items, chunks=...))``, the whole
   output computed, against the floor: the same steps in plain numpy on DN arrays already in
   memory (no I/O).
2. Gap-filling alone: ``ard.gapfill_array`` (numba) and ``_gapfill_numpy`` on in-memory arrays.
3. Peak RSS of the ARD pipeline streamed to a COG (time-mean NDVI) at 1x and 4x the area with
   the same chunks, each in its own process (RSS polled every 20 ms), run first.
4. ``benchmarks/bench_speckle.py`` in a subprocess, its JSON included.

Bands: the four the three indices need (green, red, nir, swir16; swir16 is a 20 m band), so
both sides do the same work; ``iota2=False``.

Usage: ``python benchmarks/bench_ard.py [--size 2048] [--dates 20] [--workdir DIR]``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
from _common import arg_parser, best_of, machine, run_child, s2_items, s2_scene, write_report

THREADS = 2
CHUNK = 512
EVERY_DAYS = 8
GRID_DAYS = 10
BANDS = ("green", "red", "nir", "swir16")
INDICES = ("NDVI", "NDWI", "MNDWI")
SCL_INVALID = (0, 1, 3, 8, 9, 10)
CHUNKS = {"time": -1, "x": CHUNK, "y": CHUNK}


def _pipeline(items, geobox=None):
    from mus_lab import ard

    cube = ard.prepare_s2(items, bands=BANDS, geobox=geobox, chunks=CHUNKS)
    return ard.s2_time_series(cube, every_days=GRID_DAYS, indices=INDICES, iota2=False)


# --------------------------------------------------------------------------- floor


def _read_dn(items) -> dict:
    """DN arrays in memory (untimed): 10 m bands at 10 m, 20 m bands and SCL at 20 m."""
    import rasterio

    def read(href):
        with rasterio.open(href) as src:
            return src.read(1), src.transform, src.crs

    out = {}
    for band in (*BANDS, "scl"):
        hrefs = [it.assets[band].get_absolute_href() for it in items]
        with ThreadPoolExecutor(THREADS) as pool:
            got = list(pool.map(read, hrefs))
        out[band] = np.stack([g[0] for g in got])
        out[f"{band}_transform"], out["crs"] = got[0][1], got[0][2]
        meta = [(it.assets[band].extra_fields.get("raster:bands") or [{}])[0] for it in items]
        out[f"{band}_scale"] = np.array([m.get("scale", 1.0) for m in meta], "float32")
        out[f"{band}_offset"] = np.array([m.get("offset", 0.0) for m in meta], "float32")
    return out


def _cubic_up(dn20: np.ndarray, src_tf, dst_tf, crs, shape) -> np.ndarray:
    """20 m -> 10 m with GDAL's cubic kernel (the one odc-stac uses), in memory, 2 threads."""
    from rasterio.warp import Resampling, reproject

    dst = np.zeros((dn20.shape[0], *shape), dn20.dtype)
    reproject(
        dn20,
        dst,
        src_transform=src_tf,
        src_crs=crs,
        dst_transform=dst_tf,
        dst_crs=crs,
        resampling=Resampling.cubic,
        src_nodata=0,
        dst_nodata=0,
        num_threads=THREADS,
    )
    return dst


def _floor_rows(dn: dict, rows: slice, t_in, t_out) -> dict:
    """Mask, reflectance, gap-fill and indices of a block of rows (all pixels independent)."""
    from mus_lab.ard._gapfill import _gapfill_numpy

    scl = dn["scl10"][:, rows]
    valid = ~np.isin(scl, SCL_INVALID)
    refl = {}
    for b in BANDS:
        d = dn["dn10"][b][:, rows]
        scale = dn[f"{b}_scale"][:, None, None]
        offset = dn[f"{b}_offset"][:, None, None]
        r = d.astype("float32") * scale + offset
        bad = (d == 0) | (d == 65535)
        r[bad] = np.nan
        valid &= ~bad
        refl[b] = r
    out = {
        b: _gapfill_numpy(refl[b], valid, t_in, t_out, np.float32(np.nan)).astype("float32")
        for b in BANDS
    }
    g, r, n, s = (out[b] for b in BANDS)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ndvi"] = (n - r) / (n + r)
        out["ndwi"] = (g - n) / (g + n)
        out["mndwi"] = (g - s) / (g + s)
    out["n_valid"] = valid.sum(0).astype("uint16")
    return out


def _floor(dn: dict, t_in, t_out, shape) -> dict:
    """The numpy floor: resample (GDAL cubic / nearest), then pixel steps in 2 row blocks."""
    dst_tf = dn["green_transform"]
    dn10 = {}
    for b in BANDS:
        a = dn[b]
        dn10[b] = (
            a
            if a.shape[1:] == shape
            else _cubic_up(a, dn[f"{b}_transform"], dst_tf, dn["crs"], shape)
        )
    scl = dn["scl"]
    fy, fx = shape[0] // scl.shape[1], shape[1] // scl.shape[2]
    scl10 = np.repeat(np.repeat(scl, fy, axis=1), fx, axis=2)  # nearest neighbour x2
    work = {**dn, "dn10": dn10, "scl10": scl10}
    step = -(-shape[0] // (4 * THREADS))
    blocks = [slice(r, min(r + step, shape[0])) for r in range(0, shape[0], step)]
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(lambda s: _floor_rows(work, s, t_in, t_out), blocks))
    return {k: np.concatenate([p[k] for p in parts], axis=-2) for k in parts[0]}


def ard_throughput(items, repeat: int) -> dict:
    from mus_lab import cube

    gbox = cube.reference_geobox(items)
    shape = tuple(gbox.shape)
    lazy = _pipeline(items)
    n_dates = len(items)
    t_in_dt = _pipeline_times(items)
    t_out_dt = lazy.time.values
    to_days = lambda a: a.astype("datetime64[s]").astype("int64") / 86400.0  # noqa: E731
    t_in, t_out = to_days(t_in_dt), to_days(t_out_dt)

    with dask.config.set(scheduler="threads", num_workers=THREADS):
        _pipeline(items).isel(x=slice(0, 64), y=slice(0, 64)).compute()  # numba/GDAL warm-up
        t_ours, ours = best_of(lambda: _pipeline(items).compute(), repeat)

    t0 = time.perf_counter()
    dn = _read_dn(items)
    t_read = time.perf_counter() - t0
    t_floor, floor = best_of(lambda: _floor(dn, t_in, t_out, shape), repeat)

    diffs = {}
    for k in ("ndvi", "ndwi", "mndwi", "swir16"):
        a, b = ours[k].values, floor[k]
        both = np.isfinite(a) & np.isfinite(b)
        diffs[k] = {
            "max_abs_diff": float(np.max(np.abs(a[both] - b[both]))) if both.any() else None,
            "p99_abs_diff": float(np.percentile(np.abs(a[both] - b[both]), 99)),
            "nan_mismatch_frac": float(np.mean(np.isfinite(a) != np.isfinite(b))),
        }
    n_valid_equal = bool(np.array_equal(ours["n_valid"].values, floor["n_valid"]))
    mpd = n_dates * shape[0] * shape[1] / 1e6
    return {
        "stack": f"{n_dates} dates x {shape[0]} x {shape[1]}, bands {list(BANDS)}",
        "output_dates": int(t_out.size),
        "unit": "Mpix-dates/s = input dates x pixels / 1e6 / s",
        "mus_lab_mpix_dates_s": round(mpd / t_ours, 2),
        "mus_lab_seconds": round(t_ours, 2),
        "numpy_floor_mpix_dates_s": round(mpd / t_floor, 2),
        "numpy_floor_seconds": round(t_floor, 2),
        "ratio_mus_lab_over_floor": round(t_floor / t_ours, 3),
        "goal_ratio": 0.8,
        "floor_untimed_read_seconds": round(t_read, 2),
        "mus_lab_includes": (
            "everything from the COGs: reading DN (odc-stac, 20 m swir16 resampled cubic, SCL "
            "nearest), mask, reflectance, gap-fill (numba), 3 spyndex indices, n_valid; whole "
            f"output computed into memory; chunks {CHUNKS}; dask threads={THREADS}"
        ),
        "floor_includes": (
            "DN arrays already in memory (rasterio read NOT timed, no I/O); timed: 20 m -> 10 m "
            "GDAL cubic warp in memory (2 threads), SCL nearest x2, SCL mask {0,1,3,8,9,10} + "
            "nodata/saturation, DN*scale+offset from raster:bands, _gapfill_numpy on the same "
            f"{GRID_DAYS}-day grid, NDVI/NDWI/MNDWI numpy formulas, n_valid; pixel steps over row "
            f"blocks in {THREADS} threads"
        ),
        "agreement_vs_floor": diffs,
        "n_valid_equal": n_valid_equal,
    }


def _pipeline_times(items) -> np.ndarray:
    from mus_lab import ard

    return ard.prepare_s2(items, bands=BANDS, chunks=CHUNKS).time.values


# --------------------------------------------------------------------------- gap-fill alone


def gapfill_throughput(n_dates: int, size: int, repeat: int) -> dict:
    from mus_lab.ard import gapfill_array
    from mus_lab.ard._gapfill import _gapfill_numpy

    rng = np.random.default_rng(0)
    vals = rng.random((n_dates, size, size), dtype=np.float32)
    invalid = rng.random((n_dates, size, size), dtype=np.float32) < 0.3
    t_in = np.arange(n_dates, dtype="float64") * EVERY_DAYS
    t_out = np.arange(0.0, t_in[-1] + 1, GRID_DAYS)  # the regular_dates grid
    gapfill_array(vals[:, :8, :8], invalid[:, :8, :8], t_in, t_out, nodata=np.nan)  # compile
    t_nb, ours = best_of(lambda: gapfill_array(vals, invalid, t_in, t_out, nodata=np.nan), repeat)
    t_np, ref = best_of(lambda: _gapfill_numpy(vals, ~invalid, t_in, t_out, np.nan), 1)
    mpd = n_dates * size * size / 1e6
    return {
        "array": f"{n_dates} x {size} x {size} float32, 30% invalid, {t_out.size} output dates",
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
        "gapfill_array_mpix_dates_s": round(mpd / t_nb, 2),
        "goal_mpix_dates_s": 50,
        "numpy_reference_mpix_dates_s": round(mpd / t_np, 2),
        "ratio_gapfill_array_over_numpy": round(t_np / t_nb, 2),
        "max_abs_diff": float(np.nanmax(np.abs(ours - ref))),
    }


# --------------------------------------------------------------------------- memory


def memory_case(root: str, fraction: float, out: str) -> None:
    """Child process: S2 ARD -> time-mean NDVI -> COG, streamed, over a fraction of the scene."""
    from mus_lab import cube, sample
    from mus_lab._io import write_cog

    items = s2_items(sample.Scenario.open(root))
    gbox = cube.reference_geobox(items)
    ny, nx = (round(s * fraction**0.5) for s in gbox.shape)
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        ts = _pipeline(items, geobox=gbox[:ny, :nx])
        write_cog(ts["ndvi"].mean("time").astype("float32"), out, nodata=np.nan)


def peak_rss(root: Path, fraction: float, workdir: Path) -> dict:
    """Peak RSS (MiB) of the memory case in a child process (see ``_common.run_child``)."""
    out = workdir / f"ndvi_mean_{fraction}.tif"
    run = run_child(
        [sys.executable, __file__, "--memory-case", str(root), str(fraction), str(out)],
        label=f"memory case {fraction}",
    )
    return {"peak_rss_mib": round(run.peak_rss_mib, 1), "seconds": round(run.seconds, 1)}


def speckle() -> dict:
    script = Path(__file__).with_name("bench_speckle.py")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> int:
    parser = arg_parser(__doc__, size=2048, dates=20, repeat=1, memory_case=True)
    parser.add_argument("--no-speckle", action="store_true")
    args = parser.parse_args()
    if args.memory_case:
        root, fraction, out = args.memory_case
        memory_case(root, float(fraction), out)
        return 0
    t_start = time.perf_counter()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sc, t_gen = s2_scene(
        args.workdir,
        f"s2_{args.size}_{args.dates}",
        size=args.size,
        dates=args.dates,
        start="2022-05-01",
        every_days=EVERY_DAYS,
    )
    result: dict = {
        "machine": machine(dask_scheduler="threads", threads=THREADS),
        "scene": f"{args.dates} S2 dates every {EVERY_DAYS} days x {args.size} x {args.size}",
        "generation_seconds": round(t_gen, 1),
    }
    # Memory first, while this parent process is still small.
    m1 = peak_rss(sc.root, 0.25, args.workdir)
    m4 = peak_rss(sc.root, 1.0, args.workdir)
    result["memory"] = {
        "pipeline": "prepare_s2 + s2_time_series -> time-mean NDVI -> write_cog (streamed)",
        "chunks": CHUNKS,
        "1x_quarter_scene": m1,
        "4x_whole_scene": m4,
        "ratio_4x_over_1x": round(m4["peak_rss_mib"] / m1["peak_rss_mib"], 3),
    }
    items = s2_items(sc)
    result["s2_ard"] = ard_throughput(items, args.repeat)
    result["gapfill"] = gapfill_throughput(args.dates, args.size, args.repeat)
    if not args.no_speckle:
        result["speckle"] = speckle()
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    write_report(result, args.workdir / "bench_ard.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
