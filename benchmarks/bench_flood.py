"""Flood mapping throughput and memory: ``flood.map_geotiff`` against a global-threshold numpy floor.

A synthetic SAR scene (default 10000 x 10000 pixels at 10 m: VV and VH in dB after an event,
and the same before it as the change-detection reference) is generated block by block into
tiled float32 GeoTIFFs (never whole in memory): land with texture, a river network and lakes,
a flood on the post-event date, Gamma speckle of a filtered image (ENL 17.6), one band
described ``VV``, one ``VH``. Then, in one run, each case in its own process with its peak
RSS polled every 20 ms (psutil, children included):

1. **ours**: ``mus_lab.flood.map_geotiff(post, out, reference=pre)``, the ``mus-lab flood map``
   command: tiled EM thresholds (one streaming pass), change detection (focal means),
   region growing, consensus, water + likelihood COG written window by window (2 x 2
   chunks); dask threaded scheduler, 2 threads, 1024-pixel chunks (``--chunk``).
2. **floor**: plain numpy over the same arrays: read VV and VH whole, ``water = VH < T`` with
   one global threshold, write a tiled uint8 GeoTIFF (no overviews).
3. **ours at 1/4 area** (half the side) with the same chunks: memory must not grow with area.

Other helpers share the 2 cores of this machine, so wall times carry their load; the ratio
ours / floor is measured in the same run.

Usage: ``python benchmarks/bench_flood.py [--size 10000] [--workdir DIR] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
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


def _fields(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, x = np.meshgrid(rows.astype(np.float64), cols.astype(np.float64), indexing="ij")
    river = np.abs(np.sin(x / 700.0) * 300.0 + 4000.0 * np.sin(y / 2500.0) - (x % 5000) + 2500)
    lakes = np.sin(x / 310.0) * np.cos(y / 270.0) + 0.5 * np.sin((x + y) / 170.0)
    texture = np.sin(x / 37.0) * np.cos(y / 53.0) + 0.5 * np.sin((x - y) / 23.0)
    permanent = (river < 25) | (lakes > 1.3)
    flood = ~permanent & ((river < 400) | (lakes > 1.0))
    return permanent, flood, texture


def _block(rows: slice, n: int, post: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(rows.start, rows.stop)
    permanent, flood, texture = _fields(r, np.arange(n))
    water = permanent | (flood if post else False)
    rng = np.random.default_rng([seed, rows.start, int(post)])
    out = []
    for land, wet in ((-11.0, -22.0), (-18.0, -28.0)):
        db = np.where(water, wet, land + 2.0 * texture)
        lin = 10 ** (db / 10) * rng.gamma(ENL, 1 / ENL, db.shape)
        out.append((10 * np.log10(lin)).astype(np.float32))
    return out[0], out[1]


def make_scene(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``post.tif`` and ``pre.tif`` (VV, VH in dB) of ``n`` x ``n`` pixels, block by block."""
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, post in (("post", True), ("pre", False)):
        path = folder / f"{name}_{n}.tif"
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
                vv, vh = _block(rows, n, post, seed)
                window = rasterio.windows.Window(0, r0, n, rows.stop - r0)
                dst.write(vv, 1, window=window)
                dst.write(vh, 2, window=window)
        os.replace(tmp, path)
    return paths[0], paths[1]


def truth_csi(out: Path, n: int) -> float:
    """CSI of the written water map against the scene's water (block by block)."""
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
    return tp / max(tp + fp + fn, 1)


# --------------------------------------------------------------------------- the cases


def run_ours(post: Path, pre: Path | None, out: Path, chunk: int = CHUNK) -> None:
    import dask

    from mus_lab import flood

    with dask.config.set(scheduler="threads", num_workers=THREADS):
        flood.map_geotiff(post, out, reference=pre, chunks=chunk)


def run_floor(post: Path, out: Path) -> None:
    import rasterio

    with rasterio.open(post) as src:
        vh = src.read(2)
        profile = src.profile
    water = np.where(np.isnan(vh), 255, vh < THRESHOLD_VH).astype(np.uint8)
    profile.update(count=1, dtype="uint8", nodata=255)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(water, 1)


def _child(case: str, post: str, pre: str, out: str, chunk: str) -> None:
    t0 = time.perf_counter()
    if case == "ours":
        run_ours(Path(post), Path(pre), Path(out), int(chunk))
    elif case == "ours-alone":  # SAR alone, no reference (bench_hydrosar.py)
        run_ours(Path(post), None, Path(out), int(chunk))
    else:
        run_floor(Path(post), Path(out))
    print(json.dumps({"wall_s": time.perf_counter() - t0}))


def measure(case: str, post: Path, pre: Path, out: Path, chunk: int = CHUNK) -> dict[str, float]:
    """Run a case in a fresh process; wall time and peak RSS (MiB, polled every 20 ms)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS=str(THREADS))
    cmd = [sys.executable, __file__, "--child", case, str(post), str(pre), str(out), str(chunk)]
    run = run_child(cmd, env=env, capture=True, label=case)
    inner = json.loads((run.stdout or "").strip().splitlines()[-1])
    return {"process_s": run.seconds, "wall_s": inner["wall_s"], "peak_rss_mib": run.peak_rss_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench_flood_work"))
    parser.add_argument("--json", type=Path, default=Path("bench_flood.json"))
    parser.add_argument("--chunk", type=int, default=CHUNK, help="Spatial chunk size of ours.")
    parser.add_argument("--child", nargs=5, metavar=("CASE", "POST", "PRE", "OUT", "CHUNK"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    n, quarter = args.size, args.size // 2
    t0 = time.perf_counter()
    post, pre = make_scene(args.workdir, n)
    post_q, pre_q = make_scene(args.workdir, quarter)
    scene_s = time.perf_counter() - t0
    results: dict[str, dict[str, float]] = {}
    results["floor"] = measure("floor", post, pre, args.workdir / "floor.tif")
    results["ours"] = measure("ours", post, pre, args.workdir / "ours.tif", args.chunk)
    results["ours_quarter"] = measure(
        "ours", post_q, pre_q, args.workdir / "ours_q.tif", args.chunk
    )
    csi = {
        "ours": truth_csi(args.workdir / "ours.tif", n),
        "floor": truth_csi(args.workdir / "floor.tif", n),
    }
    mpix = n * n / 1e6
    report = {
        "size": n,
        "pixels": n * n,
        "chunk": args.chunk,
        "threads": THREADS,
        "scene_generation_s": scene_s,
        "results": results,
        "ratio_wall_ours_over_floor": results["ours"]["wall_s"] / results["floor"]["wall_s"],
        "mpix_per_s": {
            k: (mpix if k != "ours_quarter" else mpix / 4) / v["wall_s"] for k, v in results.items()
        },
        "rss_growth_full_over_quarter": results["ours"]["peak_rss_mib"]
        / results["ours_quarter"]["peak_rss_mib"],
        "csi_vs_scene_water": csi,
        "load_average": os.getloadavg(),
    }
    write_report(report, args.json, echo=False)
    print(
        f"Flood mapping of {n} x {n} px (VV, VH, reference), {THREADS} threads, chunks {args.chunk}"
    )
    print_table(
        [("case", "<14"), ("wall s", ">10.1f"), ("Mpix/s", ">10.2f"), ("peak RSS MiB", ">15.0f")],
        [(k, v["wall_s"], report["mpix_per_s"][k], v["peak_rss_mib"]) for k, v in results.items()],
    )
    print(
        f"ours / floor wall time: {report['ratio_wall_ours_over_floor']:.1f}x; peak RSS full / quarter "
        f"area: {report['rss_growth_full_over_quarter']:.2f}; CSI vs scene water: ours "
        f"{csi['ours']:.3f}, floor {csi['floor']:.3f}; load average {report['load_average'][0]:.1f}"
    )
    print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
