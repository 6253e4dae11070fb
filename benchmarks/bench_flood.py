"""Flood mapping throughput and memory: ``flood.map_geotiff`` against a global-threshold numpy floor.

A synthetic SAR scene (default 10000 x 10000 pixels at 10 m: VV and VH in dB after an event,
and the same before it as the change-detection reference) is generated block by block into
tiled float32 GeoTIFFs (never whole in memory): land with texture, a river network and lakes,
a flood on the post-event date, Gamma speckle of a filtered image (ENL 17.6), one band
described ``VV``, one ``VH``. Then, in one run, each case in its own process with its peak
RSS polled every 20 ms (psutil, children included):

1. **ours**: ``mus_lab.flood.map_geotiff(post, out, reference=pre)``, the ``mus-lab flood map``
   command: tiled EM thresholds (one streaming pass), then one task per 1024-pixel window
   (``--chunk``) that reads its window of both files with the halos, runs change detection
   (focal means), region growing and the consensus, and returns the two bands; water +
   likelihood COG (LZW, overviews) written a few windows at a time; dask threaded
   scheduler, 2 threads.
2. **floor**: plain numpy over the same arrays: read VV and VH whole, ``water = VH < T`` with
   one global threshold, write a tiled uint8 GeoTIFF (no overviews).
3. **ours at 1/4 area** (half the side) with the same chunks: memory must not grow with area.

Other helpers share the 2 cores of this machine, so wall times carry their load; the ratio
ours / floor is measured in the same run, on the same cache state: both inputs are read once
before the first case (the floor alone measured 1.2-7.2 s at 10000 px as its file was or was
not in the page cache), then ``--repeat`` rounds run floor and ours (and ``--base``, another
checkout's ``mus_lab``, e.g. ``git worktree add ../base main``: A/B in one run) in turn; the
best round of each is compared (median ratio reported too), with the 1-minute load average
before each run.

``--self-trained`` adds a case ``ours_st`` to every round: the default methods plus the
``self_trained`` voter (its cost against the 5x goal).

Usage: ``python benchmarks/bench_flood.py [--size 10000] [--repeat 3] [--base DIR]
[--self-trained] [--workdir DIR] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_table, run_child, write_report

THREADS = 2
CHUNK = 1024
BLOCK = 1024
ENL = 17.6  # a 7 x 7 refined-Lee-filtered image (ENL 4.4 x ~4)
THRESHOLD_VH = -22.0  # the floor's global threshold (Sen1Floods11 VH median about -21.6 dB)


# --------------------------------------------------------------------------- the scene


def _river_lakes(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance-like field to the river centre line (px) and the lake field, at ``(y, x)`` px."""
    river = np.abs(np.sin(x / 700.0) * 300.0 + 4000.0 * np.sin(y / 2500.0) - (x % 5000) + 2500)
    lakes = np.sin(x / 310.0) * np.cos(y / 270.0) + 0.5 * np.sin((x + y) / 170.0)
    return river, lakes


def _fields(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, x = np.meshgrid(rows.astype(np.float64), cols.astype(np.float64), indexing="ij")
    river, lakes = _river_lakes(y, x)
    texture = np.sin(x / 37.0) * np.cos(y / 53.0) + 0.5 * np.sin((x - y) / 23.0)
    permanent = (river < 25) | (lakes > 1.3)
    flood = ~permanent & ((river < 400) | (lakes > 1.0))
    return permanent, flood, texture


# --------------------------------------------------------------------------- terrain variant
# ``make_scene(..., terrain=True)`` (bench_hydrosar.py): the same water on terrain consistent
# with it, and a DEM. The river runs in a valley whose floor falls 0.5 m per km to the south;
# its floodplain (the flooded 4 km either side) rises 3 m from the channel (2 m below the
# floor) to its edge; beyond it rolling hills rise to about 70 m (tanh over 12 km, with
# undulations of +-40 % over 1.2-1.9 km: slopes up to a few degrees, valleys between them).
# Lakes sit in basins at the valley floor's level (their flooded margins 0-0.6 m above it),
# with rims rising to the surrounding terrain. The DEM is sampled every 3 px (30 m, as
# Copernicus GLO-30 or SRTM) with 0.5 m of noise. The backscatter of land follows the local
# incidence angle (39 deg, sensor to the west, range along +x), and smooth dark surfaces
# (sand, tarmac, bare smooth soil: -19.5 dB VV, -26.5 dB VH, 2 % of the land, anywhere,
# the same before and after the event) are look-alikes of water: where they lie high above
# the drainage, HAND exclusion is what removes them.
DEM_STEP = 3
INCIDENCE_DEG = 39.0
LOOKALIKE_DB = (-19.5, -26.5)


def elevation(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Terrain height (m) at ``(y, x)`` px (floats) of the terrain variant, without noise."""
    river, lakes = _river_lakes(y, x)
    base = 120.0 - 0.005 * y
    plain = 3.0 * np.clip(river / 400.0, 0.0, 1.0) ** 1.5 - 2.0 * (river < 25)
    far = np.clip(river - 400.0, 0.0, None)
    hills = 70.0 * np.tanh(far / 1200.0) * (1.0 + 0.4 * np.sin(x / 120.0) * np.cos(y / 150.0))
    rim = np.clip((1.0 - lakes) / 0.4, 0.0, 1.0)  # 0 inside the flooded lake margin
    bed = np.where(lakes > 1.0, 2.0 * (1.3 - lakes), 0.0)
    return base + rim * (plain + hills) + (1.0 - rim) * bed


def _terrain_db(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backscatter change of land with the local incidence angle (dB) and the look-alikes."""
    y, x = np.meshgrid(rows.astype(np.float64), cols.astype(np.float64), indexing="ij")
    dzdx = (elevation(y, x + 0.5) - elevation(y, x - 0.5)) / 10.0  # m per m along range
    theta = np.radians(INCIDENCE_DEG)
    local = np.clip(theta - np.arctan(dzdx), 0.0, np.radians(89.0))
    incidence_db = 10.0 * np.log10(np.cos(local) / np.cos(theta))
    dark = np.sin(x / 97.0 + 0.7) * np.cos(y / 131.0 + 1.3) + 0.6 * np.sin((x - 2 * y) / 211.0)
    return incidence_db, dark > 1.3


def make_dem(folder: Path, n: int, seed: int = 0) -> Path:
    """Write ``dem_<n>.tif``: the terrain variant's elevation (m) every ``DEM_STEP`` px."""
    import rasterio
    from affine import Affine

    path = folder / f"dem_{n}.tif"
    if path.exists():
        return path
    m = -(-n // DEM_STEP)
    centre = np.arange(m) * DEM_STEP + (DEM_STEP - 1) / 2
    y, x = np.meshgrid(centre, centre, indexing="ij")
    z = elevation(y, x) + np.random.default_rng([seed, 7]).normal(0.0, 0.5, y.shape)
    step = 10.0 * DEM_STEP
    profile = {
        "driver": "GTiff",
        "width": m,
        "height": m,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32618",
        "transform": Affine(step, 0, 500_000, 0, -step, 5_100_000),
        "tiled": True,
        "nodata": -9999.0,
    }
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(z.astype(np.float32), 1)
    os.replace(tmp, path)
    return path


def _block(
    rows: slice, n: int, post: bool, seed: int, terrain: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(rows.start, rows.stop)
    permanent, flood, texture = _fields(r, np.arange(n))
    water = permanent | (flood if post else False)
    rng = np.random.default_rng([seed, rows.start, int(post)])
    incidence_db, dark = _terrain_db(r, np.arange(n)) if terrain else (0.0, None)
    out = []
    for (land, wet), look in zip(((-11.0, -22.0), (-18.0, -28.0)), LOOKALIKE_DB, strict=True):
        land_db = land + 2.0 * texture
        if dark is not None:
            land_db = np.where(dark, look, land_db)
        db = np.where(water, wet, land_db + incidence_db)
        lin = 10 ** (db / 10) * rng.gamma(ENL, 1 / ENL, db.shape)
        out.append((10 * np.log10(lin)).astype(np.float32))
    return out[0], out[1]


def make_scene(folder: Path, n: int, seed: int = 0, *, terrain: bool = False) -> tuple[Path, Path]:
    """Write ``post.tif`` and ``pre.tif`` (VV, VH in dB) of ``n`` x ``n`` pixels, block by block.

    ``terrain``: the variant with relief and look-alikes (``post_<n>_terrain.tif``; its DEM:
    :func:`make_dem`)."""
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, post in (("post", True), ("pre", False)):
        path = folder / f"{name}_{n}{'_terrain' if terrain else ''}.tif"
        paths.append(path)
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp.tif")
        profile = {
            "driver": "GTiff",
            "width": n,
            "height": n,
            "count": 2,
            "dtype": "float32",
            "crs": "EPSG:32618",
            "transform": Affine(10, 0, 500_000, 0, -10, 5_100_000),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "nodata": float("nan"),
            "BIGTIFF": "YES",
        }
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.set_band_description(1, "VV")
            dst.set_band_description(2, "VH")
            for r0 in range(0, n, BLOCK):
                rows = slice(r0, min(n, r0 + BLOCK))
                vv, vh = _block(rows, n, post, seed, terrain)
                window = rasterio.windows.Window(0, r0, n, rows.stop - r0)
                dst.write(vv, 1, window=window)
                dst.write(vh, 2, window=window)
        os.replace(tmp, path)
    return paths[0], paths[1]


def truth_csi(out: Path, n: int) -> float:
    """CSI of the written water map against the scene's water (block by block)."""
    return truth_scores(out, n)["csi"]


def truth_scores(out: Path, n: int) -> dict[str, float]:
    """CSI (= IoU of the water class), precision and recall of a written water map (band 1
    == 1) against the scene's water, block by block."""
    import rasterio

    tp = fp = fn = 0
    with rasterio.open(out) as src:
        for r0 in range(0, n, BLOCK):
            rows = slice(r0, min(n, r0 + BLOCK))
            permanent, flood, _ = _fields(np.arange(rows.start, rows.stop), np.arange(n))
            truth = permanent | flood
            got = src.read(1, window=rasterio.windows.Window(0, r0, n, rows.stop - r0)) == 1
            tp += int(np.sum(got & truth))
            fp += int(np.sum(got & ~truth))
            fn += int(np.sum(~got & truth))
    return {
        "csi": tp / max(tp + fp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
    }


# --------------------------------------------------------------------------- the cases


def run_ours(
    post: Path,
    pre: Path | None,
    out: Path,
    chunk: int = CHUNK,
    *,
    dem: Path | None = None,
    methods: tuple[str, ...] | None = None,
) -> None:
    import dask

    from mus_lab import flood

    options = flood.MappingOptions(methods=methods) if methods else None  # type: ignore[arg-type]
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        flood.map_geotiff(post, out, reference=pre, dem=dem, options=options, chunks=chunk)


def run_floor(post: Path, out: Path) -> None:
    import rasterio

    with rasterio.open(post) as src:
        vh = src.read(2)
        profile = src.profile
    water = np.where(np.isnan(vh), 255, vh < THRESHOLD_VH).astype(np.uint8)
    profile.update(count=1, dtype="uint8", nodata=255)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(water, 1)


def _child(
    case: str, post: str, pre: str, out: str, chunk: str, dem: str = "", methods: str = ""
) -> None:
    t0, cpu0 = time.perf_counter(), _cpu()
    extra = {
        "dem": Path(dem) if dem else None,
        "methods": tuple(methods.split(",")) if methods else None,
    }
    if case == "ours":
        run_ours(Path(post), Path(pre), Path(out), int(chunk), **extra)  # type: ignore[arg-type]
    elif case == "ours-alone":  # SAR alone, no reference (bench_hydrosar.py)
        run_ours(Path(post), None, Path(out), int(chunk), **extra)  # type: ignore[arg-type]
    else:
        run_floor(Path(post), Path(out))
    print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - cpu0}))


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far: less sensitive to the load than
    the wall time, as long as no other process runs on the same cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    case: str,
    post: Path,
    pre: Path,
    out: Path,
    chunk: int = CHUNK,
    *,
    code: Path | None = None,
    dem: Path | None = None,
    methods: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Run a case in a fresh process; wall time, peak RSS (MiB, polled every 20 ms) and the
    1-minute load average just before it. ``code``: import ``mus_lab`` from that checkout;
    ``dem`` and ``methods``: passed to ``map_geotiff`` (HAND and slope exclusion; methods)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS=str(THREADS))
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, __file__, "--child", case, str(post), str(pre), str(out), str(chunk)]
    cmd += ["--child-dem", str(dem or ""), "--child-methods", ",".join(methods or ())]
    load = os.getloadavg()[0]
    run = run_child(cmd, env=env, capture=True, label=case)
    inner = json.loads((run.stdout or "").strip().splitlines()[-1])
    return {
        "process_s": run.seconds,
        "wall_s": inner["wall_s"],
        "cpu_s": inner.get("cpu_s", float("nan")),
        "peak_rss_mib": run.peak_rss_mib,
        "load_1min": load,
    }


def warm_cache(*paths: Path) -> float:
    """Read the files once (64 MiB at a time), so every case finds them in the page cache."""
    t0 = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f:
            while f.read(64 * 2**20):
                pass
    return time.perf_counter() - t0


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return min(runs, key=lambda r: r["wall_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench_flood_work"))
    parser.add_argument("--json", type=Path, default=Path("bench_flood.json"))
    parser.add_argument("--chunk", type=int, default=CHUNK, help="Spatial chunk size of ours.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of floor, ours (, base).")
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        help="Another checkout (e.g. a worktree of main): its mus_lab runs as case 'base', "
        "interleaved with ours in every round (A/B in one run).",
    )
    parser.add_argument(
        "--self-trained",
        action="store_true",
        help="Add the case 'ours_st' (default methods + the self-trained voter) to every round.",
    )
    parser.add_argument("--child", nargs=5, metavar=("CASE", "POST", "PRE", "OUT", "CHUNK"))
    parser.add_argument("--child-dem", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child-methods", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, post, pre, out, chunk = args.child
        _child(case, post, pre, out, chunk, dem=args.child_dem, methods=args.child_methods)
        return 0
    n, quarter = args.size, args.size // 2
    t0 = time.perf_counter()
    post, pre = make_scene(args.workdir, n)
    post_q, pre_q = make_scene(args.workdir, quarter)
    scene_s = time.perf_counter() - t0
    # Same cache state for every case: both inputs read once before the first measurement,
    # then rounds of floor, ours (and base) in turn; each case's best round is reported.
    warm_s = warm_cache(post, pre)
    cases = (
        ["floor", "ours"]
        + (["base"] if args.base else [])
        + (["ours_st"] if args.self_trained else [])
    )
    st_methods = ("threshold", "change", "region", "self_trained")
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in cases}
    for _ in range(args.repeat):
        runs["floor"].append(measure("floor", post, pre, args.workdir / "floor.tif"))
        runs["ours"].append(measure("ours", post, pre, args.workdir / "ours.tif", args.chunk))
        if args.base:
            runs["base"].append(
                measure("ours", post, pre, args.workdir / "base.tif", args.chunk, code=args.base)
            )
        if args.self_trained:
            runs["ours_st"].append(
                measure(
                    "ours", post, pre, args.workdir / "ours_st.tif", args.chunk, methods=st_methods
                )
            )
    warm_cache(post_q, pre_q)
    results = {c: _best(r) for c, r in runs.items()}
    results["ours_quarter"] = measure(
        "ours", post_q, pre_q, args.workdir / "ours_q.tif", args.chunk
    )
    csi = {c: truth_csi(args.workdir / f"{c}.tif", n) for c in cases}
    same = None
    if args.base:
        import rasterio

        with (
            rasterio.open(args.workdir / "ours.tif") as a,
            rasterio.open(args.workdir / "base.tif") as b,
        ):
            same = all(
                bool(np.array_equal(a.read(k, window=w), b.read(k, window=w)))
                for k in (1, 2)
                for _, w in a.block_windows(1)
            )
    mpix = n * n / 1e6
    floor_s = results["floor"]["wall_s"]
    report = {
        "size": n,
        "pixels": n * n,
        "chunk": args.chunk,
        "threads": THREADS,
        "repeat": args.repeat,
        "scene_generation_s": scene_s,
        "cache_warm_up_s": warm_s,
        "runs": runs,
        "results": results,
        "ratio_wall_ours_over_floor": results["ours"]["wall_s"] / floor_s,
        "ratio_wall_median_ours_over_floor": float(
            np.median([r["wall_s"] for r in runs["ours"]])
            / np.median([r["wall_s"] for r in runs["floor"]])
        ),
        # CPU seconds (user + system, all threads): less inflated by other processes than
        # the wall time on a shared machine; the floor runs on one thread, ours on two.
        "ratio_cpu_ours_over_floor": min(r["cpu_s"] for r in runs["ours"])
        / min(r["cpu_s"] for r in runs["floor"]),
        "mpix_per_s": {
            k: (mpix if k != "ours_quarter" else mpix / 4) / v["wall_s"] for k, v in results.items()
        },
        "rss_growth_full_over_quarter": results["ours"]["peak_rss_mib"]
        / results["ours_quarter"]["peak_rss_mib"],
        "csi_vs_scene_water": csi,
        "load_average": os.getloadavg(),
    }
    if args.self_trained:
        report["ratio_wall_ours_st_over_floor"] = results["ours_st"]["wall_s"] / floor_s
        report["ratio_wall_ours_st_over_ours"] = (
            results["ours_st"]["wall_s"] / results["ours"]["wall_s"]
        )
        print_st = (
            f"self-trained voter: ours_st / floor {report['ratio_wall_ours_st_over_floor']:.1f}x, "
            f"ours_st / ours {report['ratio_wall_ours_st_over_ours']:.2f}x (best wall)"
        )
    if args.base:
        report["ratio_wall_base_over_floor"] = results["base"]["wall_s"] / floor_s
        report["speedup_base_over_ours"] = results["base"]["wall_s"] / results["ours"]["wall_s"]
        report["ratio_cpu_base_over_floor"] = min(r["cpu_s"] for r in runs["base"]) / min(
            r["cpu_s"] for r in runs["floor"]
        )
        report["same_pixels_ours_base"] = same
    write_report(report, args.json, echo=False)
    print(
        f"Flood mapping of {n} x {n} px (VV, VH, reference), {THREADS} threads, chunks "
        f"{args.chunk}; best of {args.repeat} interleaved rounds, inputs in the page cache"
    )
    print_table(
        [
            ("case", "<14"),
            ("wall s", ">10.2f"),
            ("Mpix/s", ">10.2f"),
            ("peak RSS MiB", ">15.0f"),
            ("CPU s", ">10.2f"),
            ("load 1 min", ">12.2f"),
        ],
        [
            (k, v["wall_s"], report["mpix_per_s"][k], v["peak_rss_mib"], v["cpu_s"], v["load_1min"])
            for k, v in results.items()
        ],
    )
    for case, rs in runs.items():
        print(
            f"  {case} rounds: "
            + ", ".join(f"{r['wall_s']:.2f} s (load {r['load_1min']:.1f})" for r in rs)
        )
    print(
        f"ours / floor wall time: {report['ratio_wall_ours_over_floor']:.1f}x best, "
        f"{report['ratio_wall_median_ours_over_floor']:.1f}x median, CPU time "
        f"{report['ratio_cpu_ours_over_floor']:.1f}x"
        + (
            f"; base / floor {report['ratio_wall_base_over_floor']:.1f}x (CPU "
            f"{report['ratio_cpu_base_over_floor']:.1f}x), base / ours "
            f"{report['speedup_base_over_ours']:.2f}, same pixels: {same}"
            if args.base
            else ""
        )
    )
    print(
        f"peak RSS full / quarter area: {report['rss_growth_full_over_quarter']:.2f}; CSI vs "
        f"scene water: "
        + ", ".join(f"{k} {v:.3f}" for k, v in csi.items())
        + f"; load average now {report['load_average'][0]:.1f}"
    )
    if args.self_trained:
        print(print_st)
    print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
